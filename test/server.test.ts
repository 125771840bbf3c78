import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRegistry } from "@freshrec/registry";
import { ADMIN_KEY, INGEST_KEY, READ_KEY, startServe, type ServeProcess } from "./server-process.js";

const BOOTSTRAP_MS = 8 * 60_000;

/**
 * The real `freshrec serve` process on a tiny synthetic world: real LanceDB store, bootstrap jobs in child
 * processes with the native trainer, llama.cpp scoring. One bootstrap is shared by the whole file.
 */
describe("freshrec serve end to end", () => {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-e2e-serve-"));
  // A short swap timeout: the truncated adapter below makes the GGUF reader hang instead of failing.
  const config = join(dir, "server.json");
  writeFileSync(config, JSON.stringify({ serving: { swapTimeoutMs: 10_000 } }));
  let s: ServeProcess;

  beforeAll(async () => {
    s = await startServe(dir, ["--config", config]);
    await s.waitFor("/healthz", 200, 60_000);
  }, 90_000);
  afterAll(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  it("is live but not ready before the first model, then ready after the bootstrap", async () => {
    const ready = await s.call("GET", "/readyz");
    expect(ready.status).toBe(503);
    const early = await s.call("POST", "/v1/next-interests", { key: READ_KEY, body: { history: [1, 2] } });
    expect(early.status).toBe(503);
    await s.waitFor("/readyz", 200, BOOTSTRAP_MS);
    const model = await s.call("GET", "/v1/model", { key: READ_KEY });
    expect(model.json.ready).toBe(true);
    expect(model.json.lineage.baseId).toBeTruthy();
    expect(model.json.lineage.adapterId).toBeTruthy();
    expect(model.json.lineage.tableId).toBeTruthy();
  }, BOOTSTRAP_MS + 10_000);

  it("ingests events for a new user and answers for them in table and live mode with lineage", async () => {
    const ts = Date.UTC(2024, 0, 10);
    const events = [3, 7, 3, 11].map((c, i) => ({ eventId: `e2e-${i}`, userId: "e2e-user", itemId: `c${c}-i0`, ts: ts + i * 60_000, signal: 5 }));
    const ack = await s.call("POST", "/v1/events", { key: INGEST_KEY, body: { events } });
    expect(ack.status).toBe(200);
    expect(ack.json).toEqual({ accepted: 4, duplicates: 0, received: 4 });
    expect((await s.call("POST", "/v1/events", { key: INGEST_KEY, body: { events } })).json.duplicates).toBe(4);

    const table = await s.call("GET", "/v1/users/e2e-user/next-interests?k=5", { key: READ_KEY });
    expect(table.status).toBe(200);
    expect(table.json.history).toEqual([3, 11]);
    expect(table.json.interests).toHaveLength(5);
    for (const i of table.json.interests) {
      expect([3, 11]).not.toContain(i.clusterId);
      expect(i.keywords.length).toBeGreaterThan(0);
    }
    const model = (await s.call("GET", "/v1/model", { key: READ_KEY })).json;
    if (table.json.fallback) expect(table.json.lineage.mode).toBe("live");
    else expect(table.json.lineage).toMatchObject({ mode: "table", tableId: model.lineage.tableId });

    const live = await s.call("GET", "/v1/users/e2e-user/next-interests?k=3&mode=live", { key: READ_KEY });
    expect(live.status).toBe(200);
    expect(live.json.lineage).toMatchObject({ mode: "live", baseId: model.lineage.baseId, adapterId: model.lineage.adapterId, tableId: null });
    const probs = live.json.interests.map((i: { p: number }) => i.p);
    expect([...probs].sort((a, b) => b - a)).toEqual(probs);

    const explicit = await s.call("POST", "/v1/next-interests", { key: READ_KEY, body: { history: [3, 11], k: 5, mode: "table" } });
    expect(explicit.json.interests).toEqual(table.json.interests);
    expect((await s.call("GET", "/v1/users/nobody-here/next-interests", { key: READ_KEY })).status).toBe(404);
    expect((await s.call("POST", "/v1/next-interests", { key: READ_KEY, body: { history: [1, 999] } })).status).toBe(404);
  }, 60_000);

  it("refuses bad credentials, oversize and malformed bodies without leaking internals", async () => {
    expect((await s.call("GET", "/v1/clusters")).status).toBe(401);
    expect((await s.call("GET", "/v1/clusters", { key: "wrong-key-000" })).status).toBe(401);
    expect((await s.call("POST", "/v1/admin/rollback", { key: READ_KEY, body: { kind: "adapter" } })).status).toBe(403);
    const malformed = await s.call("POST", "/v1/events", { key: INGEST_KEY, raw: "{nope" });
    expect(malformed.status).toBe(400);
    const big = await s.call("POST", "/v1/events", { key: INGEST_KEY, raw: JSON.stringify({ events: [], pad: "x".repeat(2_000_000) }) });
    expect(big.status).toBe(413);
    const invalid = await s.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: [{ eventId: "x", userId: "u", itemId: "c1-i0", ts: "yesterday", signal: 5 }] } });
    expect(invalid.status).toBe(400);
    expect(invalid.json.error.issues).toEqual([expect.objectContaining({ path: "events.0.ts" })]);
    for (const r of [malformed, big, invalid]) expect(r.text).not.toMatch(/\n\s+at |node_modules/);
  }, 60_000);

  it("promotes a new adapter (hot swap), keeps serving through a broken one, and rolls back", async () => {
    const registry = openRegistry(join(dir, "models"));
    const active = registry.active();
    const current = registry.getOf("adapter", active.adapter!);
    // A second adapter version: the same weights under a new id and path, as a fine-tune would publish.
    const staged = registry.stage("adapter");
    copyFileSync(current.path!, join(staged.dir, basename(current.path!)));
    const next = registry.publish({ id: staged.id, kind: "adapter", main: basename(current.path!), manifest: { ...current.manifest }, gate: current.gate });

    const promoted = await s.call("POST", "/v1/admin/promote", { key: ADMIN_KEY, body: { id: next.id } });
    expect(promoted.status).toBe(200);
    expect(promoted.json.swaps).toEqual([expect.objectContaining({ ok: true })]);
    expect(promoted.json.model.lineage.adapterId).toBe(next.id);
    const live = await s.call("POST", "/v1/next-interests", { key: READ_KEY, body: { history: [2, 5], mode: "live" } });
    expect(live.json.lineage.adapterId).toBe(next.id);

    // A broken adapter file: not promoted (409, the pointer stays), the server keeps the previous adapter and says why.
    const broken = registry.stage("adapter");
    writeFileSync(join(broken.dir, "adapter.gguf"), "GGUF but not really");
    const bad = registry.publish({ id: broken.id, kind: "adapter", main: "adapter.gguf", manifest: { ...current.manifest }, gate: current.gate });
    const failed = await s.call("POST", "/v1/admin/promote", { key: ADMIN_KEY, body: { id: bad.id } });
    expect(failed.status).toBe(409);
    expect(failed.json.error.message).toMatch(new RegExp(`adapter '${bad.id}' failed to load .*the active adapter stays ${next.id}`));
    expect(registry.active().adapter).toBe(next.id);
    const model = (await s.call("GET", "/v1/model", { key: READ_KEY })).json;
    expect(model.lastSwap).toMatchObject({ ok: false, reason: expect.stringMatching(/adapter/) });
    expect(model.lineage.adapterId).toBe(next.id);
    const still = await s.call("POST", "/v1/next-interests", { key: READ_KEY, body: { history: [2, 5], mode: "live" } });
    expect(still.status).toBe(200);
    expect(still.json.lineage.adapterId).toBe(next.id);

    // Rolling back off the copy returns to the original (the broken one was never active).
    const back = await s.call("POST", "/v1/admin/rollback", { key: ADMIN_KEY, body: { kind: "adapter" } });
    expect(back.status).toBe(200);
    expect(back.json.model.lineage.adapterId).toBe(current.id);
    const metrics = (await s.call("GET", "/metrics")).text;
    expect(metrics).toMatch(/freshrec_swaps_total\{what="scorer",outcome="ok"\} [3-9]/);
    expect(metrics).toMatch(/freshrec_swaps_total\{what="scorer",outcome="failed"\} 1/);
    expect(metrics).toContain(`adapter_id="${current.id}"`);
  }, 180_000);

  it("exits 0 on SIGTERM and a second start reuses the store and registry", async () => {
    const artefacts = openRegistry(join(dir, "models")).list().length;
    expect(await s.stop()).toBe(0);
    s = await startServe(dir, ["--config", config]);
    await s.waitFor("/readyz", 200, 120_000);
    expect(openRegistry(join(dir, "models")).list().length).toBe(artefacts);
    const again = await s.call("GET", "/v1/users/e2e-user/next-interests?k=5", { key: READ_KEY });
    expect(again.status).toBe(200);
    expect(again.json.history).toEqual([3, 11]);
  }, 240_000);
});
