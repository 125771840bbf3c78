import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], { encoding: "utf8", env: { ...process.env, FRESHREC_API_KEYS: "", FRESHREC_AUTH: "" } });

describe("which stores the service commands take", () => {
  it("the demo refuses a store it did not create, in one line, writing nothing to it", () => {
    const dir = mkdtempSync(join(tmpdir(), "demo-store-"));
    const store = join(dir, "store");
    writeFileSync(join(dir, "items.csv"), "itemId,clusterId\nsong-1,0\nsong-2,1\n");
    expect(cli("import", "items", join(dir, "items.csv"), "--store", store).status).toBe(0);
    const demo = cli("demo", "--size", "tiny", "--no-simulate", "--store", store, "--models", join(dir, "models"), "--port", "0", "--log-level", "silent");
    expect(demo.status).toBe(2);
    expect(demo.stderr.trim()).toMatch(/^freshrec: store .* holds data the demo did not create/);
    expect(demo.stderr.trim().split("\n")).toHaveLength(1);
  }, 60_000);

  it("a read-only replica never creates a store: a missing one is an error in one line", () => {
    const dir = mkdtempSync(join(tmpdir(), "replica-store-"));
    const replica = cli("serve", "--role", "replica", "--store", join(dir, "no-such-store"), "--models", join(dir, "models"), "--port", "0", "--log-level", "silent");
    expect(replica.status).toBe(1);
    expect(replica.stderr.trim()).toMatch(/^freshrec: no store at .*no-such-store$/);
    expect(existsSync(join(dir, "no-such-store"))).toBe(false);
  }, 60_000);
});
