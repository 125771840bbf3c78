import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DAY_MS, mulberry32 } from "@freshrec/core";
import { openStore } from "@freshrec/retriever";
import { rollingRagSource } from "../src/index.js";

describe("rolling RAG source", () => {
  it("gives exactly the store's point-in-time successors for every transition", async () => {
    const store = await openStore(join(mkdtempSync(join(tmpdir(), "rag-")), "store"), { k: 2 });
    const C = 8;
    await store.putClusters(Array.from({ length: C }, (_, id) => ({ id, keywords: [`k${id}`] })));
    await store.putItems(Array.from({ length: C }, (_, c) => ({ itemId: `i${c}`, clusterId: c })));
    const rng = mulberry32(3);
    const events = [];
    for (let e = 0; e < 3000; e++) {
      const c = rng() < 0.4 ? e % 3 : Math.floor(rng() * C);
      events.push({ eventId: `e${e}`, userId: `u${Math.floor(rng() * 40)}`, itemId: `i${c}`, ts: Math.floor(e * (20 * DAY_MS / 3000)), signal: 5 });
    }
    await store.ingest(events);
    const all = await store.transitions({ start: 0, end: 30 * DAY_MS });
    expect(all.length).toBeGreaterThan(500);
    const windowMs = 3 * DAY_MS;
    const rolling = rollingRagSource(all, { windowMs, n: 3 });
    let compared = 0;
    for (const t of all) {
      const ours = await rolling.top(t.history, t.ts);
      const theirs = await store.successors(t.history, { asOf: t.ts, windowMs, n: 3, minSupport: 1 });
      // The store backs off to embedding neighbours only when neither the key nor its last cluster has data.
      expect(ours).toEqual(theirs.source === "neighbour" || theirs.support === 0 ? [] : theirs.items.map((i) => i.clusterId));
      compared++;
    }
    expect(compared).toBe(all.length);
    await store.close();
  });
});
