import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { startFreshrec } from "./server-process.js";

const ROOT = join(import.meta.dirname, "..");
const MAIN = join(ROOT, "apps/cli/src/main.ts");

/**
 * API keys count from every documented source (the config file's auth.keys, FRESHREC_API_KEYS); without any,
 * auth is off on loopback only. An empty store is enough: auth is decided before any handler runs.
 */
describe("freshrec serve: API keys from every source", () => {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-auth-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const key = "cfg-key-0123456789";

  it.each([
    ["the config file's auth.keys", { auth: { keys: [{ name: "cfg", key, scopes: ["read"] }] } }, {}],
    ["FRESHREC_API_KEYS", {}, { FRESHREC_API_KEYS: `env=${key}:read` }],
  ])("keys from %s: anonymous and read-scope callers cannot promote", async (_source, file, env) => {
    const sub = mkdtempSync(join(dir, "s-"));
    const config = join(sub, "freshrec.json");
    writeFileSync(config, JSON.stringify(file));
    const s = await startFreshrec(["serve", "--store", join(sub, "store"), "--models", join(sub, "models"), "--config", config], env);
    try {
      await s.waitFor("/healthz", 200, 60_000);
      expect((await s.call("POST", "/v1/admin/promote", { body: { id: "table-x" } })).status).toBe(401);
      expect((await s.call("POST", "/v1/admin/promote", { key, body: { id: "table-x" } })).status).toBe(403);
      expect((await s.call("GET", "/v1/model", { key })).status).toBe(200);
      expect(s.output()).not.toContain(key); // keys never reach the log
    } finally {
      expect(await s.stop()).toBe(0);
    }
  }, 90_000);

  it("without keys: auth is off on loopback (with a warning), and another host is refused in one line", async () => {
    const sub = mkdtempSync(join(dir, "s-"));
    const s = await startFreshrec(["serve", "--store", join(sub, "store"), "--models", join(sub, "models")], {});
    try {
      await s.waitFor("/healthz", 200, 60_000);
      expect(s.output()).toMatch(/auth is OFF/);
      expect((await s.call("GET", "/v1/model")).status).toBe(200);
    } finally {
      expect(await s.stop()).toBe(0);
    }
    const refused = spawnSync(process.execPath, ["--import", "tsx", MAIN, "serve", "--host", "0.0.0.0", "--port", "0", "--store", join(sub, "store2"), "--models", join(sub, "models2")], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, FRESHREC_API_KEYS: "", FRESHREC_AUTH: "" },
    });
    expect(refused.status).toBe(1);
    expect(refused.stderr.trim()).toMatch(/^freshrec: refusing to serve on 0\.0\.0\.0 without API keys/);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
  }, 90_000);
});
