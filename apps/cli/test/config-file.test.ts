import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadServerConfig } from "@freshrec/server";
import { readServiceFile } from "../src/service/config-file.js";

const EXAMPLE = fileURLToPath(new URL("../../../config/freshrec.example.json", import.meta.url));

describe("the service config file", () => {
  it("the example in the repository is valid, section by section", () => {
    const file = readServiceFile(EXAMPLE);
    expect(file.scheduler).toMatchObject({ strategy: "hybrid", finetuneEveryDays: 30, refreshEveryDays: 2 });
    expect(file.jobs.ragWindowDays).toBe(14);
    expect(file.updateLoop).toMatchObject({ tickSeconds: 5, minTransitions: 500 });
    const server = loadServerConfig({ values: file.server, source: EXAMPLE, env: {}, overrides: { storeUri: "s", modelsDir: "m" } });
    expect(server.auth.keys.map((k) => k.name)).toEqual(["app", "ops"]);
  });

  it("names the file, the section and the field of a bad value, and unknown keys", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const write = (v: unknown) => {
      const p = join(dir, "freshrec.json");
      writeFileSync(p, JSON.stringify(v));
      return p;
    };
    expect(() => readServiceFile(write({ scheduler: { refreshEveryDays: -1 } }))).toThrow(/freshrec\.json: scheduler.*refreshEveryDays/);
    expect(() => readServiceFile(write({ updateLoop: { tickSecond: 5 } }))).toThrow(/freshrec\.json: updateLoop.*tickSecond/);
    expect(() => readServiceFile(write({ jobs: { ragWindowDays: "two weeks" } }))).toThrow(/freshrec\.json: jobs.*ragWindowDays/);
    const p = write({ prot: 8787 });
    expect(() => loadServerConfig({ values: readServiceFile(p).server, source: p, env: {}, overrides: { storeUri: "s", modelsDir: "m" } })).toThrow(/freshrec\.json.*prot/);
    writeFileSync(join(dir, "broken.json"), "{ not json");
    expect(() => readServiceFile(join(dir, "broken.json"))).toThrow(/cannot read config .*broken\.json/);
  });
});
