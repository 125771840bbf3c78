import { rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { smallDisk } from "../../retriever/test/helpers.js";
import { INGEST_KEY, startHarness, type Harness } from "./helpers.js";

const CLUSTERS = Array.from({ length: 4 }, (_, id) => ({ id, keywords: [`topic${id}`] }));
const ITEMS = CLUSTERS.map((c) => ({ itemId: `item${c.id}`, clusterId: c.id }));
const events = (from: number, n: number) =>
  Array.from({ length: n }, (_, j) => ({ eventId: `e${from + j}`, userId: `u${(from + j) % 7}`, itemId: `item${(from + j) % 4}`, ts: 1_700_000_000_000 + (from + j) * 60_000, signal: 5 }));

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(storeUri?: string): Promise<Harness> {
  const h = await startHarness({ limits: { bodyBytes: 4_000_000, maxBatch: 20_000, ratePerS: 1000, burst: 1000 }, ...(storeUri ? { storeUri } : {}) });
  cleanups.push(() => h.close());
  await h.store.putClusters(CLUSTERS);
  await h.store.putItems(ITEMS);
  return h;
}

describe("store faults over HTTP", () => {
  it("a lost derived table: /readyz says so with the repair command, ingest answers 503 (not 500), ready again after repair", async () => {
    const h = await harness();
    expect((await h.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: events(0, 50) } })).status).toBe(200);
    rmSync(join(h.dir, "store", "transitions.lance"), { recursive: true });

    const ready = await h.call("GET", "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.json.reason).toContain("[store-derived-missing] table 'transitions' is missing");
    expect(ready.json.reason).toContain("freshrec store repair --store store");
    expect(ready.text).not.toContain(h.dir);
    const ingest = await h.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: events(50, 10) } });
    expect(ingest.status).toBe(503);
    expect(ingest.json.error.code).toBe("store-derived-missing");
    expect(ingest.text).not.toContain(h.dir);

    expect((await h.store.repair()).ok).toBe(true);
    const after = await h.call("GET", "/readyz");
    expect(after.json.reason).not.toMatch(/store/); // only the model is missing now
    // the refused batch's events had reached the log before the fold failed; repair folded them: a retry is safe
    const retried = await h.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: events(50, 10) } });
    expect(retried.status).toBe(200);
    expect(retried.json.accepted + retried.json.duplicates).toBe(10);
    expect(await h.store.check()).toMatchObject({ ok: true, events: 60, pendingBatches: 0 });
  });

  it("a full disk: ingest answers 503 with Retry-After saying so, /readyz too, and both recover once space is freed", async (ctx) => {
    const disk = smallDisk(16);
    if ("skip" in disk) return ctx.skip(disk.skip);
    cleanups.push(() => disk.release());
    const h = await harness(join(disk.dir, "store"));
    expect((await h.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: events(0, 100) } })).status).toBe(200);
    const filler = join(disk.dir, "filler");
    const { bavail, bsize } = statfsSync(disk.dir);
    writeFileSync(filler, Buffer.alloc(bavail * bsize - 16 * 1024));

    const batch = events(100, 8000);
    const full = await h.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: batch } });
    expect(full.status).toBe(503);
    expect(full.headers.get("retry-after")).toBe("30");
    expect(full.json.error).toMatchObject({ code: "disk-full", message: expect.stringMatching(/disk is full; writes resume by themselves/) });
    const ready = await h.call("GET", "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.json.reason).toMatch(/\[disk-full\].*the store itself is intact/);
    expect(ready.json.reason).not.toMatch(/backup/);

    rmSync(filler);
    await h.store.health({ maxAgeMs: 0 }); // probe now rather than wait out the 5 s cache /readyz answers from
    expect((await h.call("GET", "/readyz")).json.reason).not.toMatch(/store/);
    const resumed = await h.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: batch } });
    expect(resumed.status).toBe(200);
    expect(resumed.json.accepted + resumed.json.duplicates).toBe(8000);
  }, 60_000);
});
