import { afterEach, describe, expect, it } from "vitest";
import { DAY_MS } from "@freshrec/core";
import { openStore, type Store } from "../src/index.js";
import { arrow, lancedb } from "../src/lance.js";
import { StoredIdFilter } from "../src/event-ids.js";
import { T0, circleClusters, itemsFor, randomEvents, tempStoreDir } from "./helpers.js";

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(dir: string, maxUnindexedIds?: number): Promise<Store> {
  const store = await openStore(dir, { k: 2, readConsistencyMs: 0, ...(maxUnindexedIds ? { maxUnindexedIds } : {}) });
  cleanups.push(() => store.close());
  return store;
}

async function newStore(maxUnindexedIds?: number) {
  const { dir, cleanup } = tempStoreDir();
  cleanups.push(cleanup);
  const store = await open(dir, maxUnindexedIds);
  await store.putClusters(circleClusters(8));
  await store.putItems(itemsFor(8, 3));
  return { dir, store };
}

/** The stored event ids and how many rows the eventId index covers. */
async function eventsTable(dir: string): Promise<{ ids: string[]; indexed: number; unindexed: number }> {
  const db = await lancedb.connect(dir);
  const t = await db.openTable("events");
  const ids = (await t.query().select(["eventId"]).toArray()).map((r) => String(r.eventId));
  const stats = await t.indexStats("eventId_idx");
  t.close();
  db.close();
  return { ids, indexed: stats?.numIndexedRows ?? -1, unindexed: stats?.numUnindexedRows ?? -1 };
}

const EVENTS = randomEvents({ seed: 31, users: 25, events: 1200, clusters: 8, days: 20 });

describe("idempotency by eventId with bounded memory", () => {
  it("stores each event once: duplicates inside a batch, ids only in memory, ids only in the index, and across restarts", async () => {
    const { dir, store } = await newStore();
    const withInnerDuplicates = [...EVENTS.slice(0, 400), ...EVENTS.slice(100, 200), EVENTS[0]!];
    expect(await store.ingest(withInnerDuplicates)).toEqual({ accepted: 400, duplicates: 101 });
    expect(await eventsTable(dir)).toMatchObject({ indexed: 400, unindexed: 0 }); // the first batch builds the index
    expect(await store.ingest(EVENTS.slice(0, 800))).toEqual({ accepted: 400, duplicates: 400 }); // found in the index
    expect(await eventsTable(dir)).toMatchObject({ indexed: 400, unindexed: 400 });
    expect(await store.ingest(EVENTS.slice(300, 1000))).toEqual({ accepted: 200, duplicates: 500 }); // 100 from the index, 400 from memory
    await store.close();

    // a new writer holds no ids: recovery indexes what the last one left unindexed
    const reopened = await open(dir);
    expect(await reopened.ingest(EVENTS)).toEqual({ accepted: 200, duplicates: 1000 });
    expect(await reopened.ingest(EVENTS)).toEqual({ accepted: 0, duplicates: 1200 });
    const { ids } = await eventsTable(dir);
    expect(ids.length).toBe(1200);
    expect(new Set(ids).size).toBe(1200);

    // the same transitions as one clean ingest of the events
    const { store: clean } = await newStore();
    await clean.ingest(EVENTS);
    const all = { start: 0, end: T0 + 99 * DAY_MS };
    expect(await reopened.transitions(all)).toEqual(await clean.transitions(all));
  });

  it("rebuilds the index once the writer holds maxUnindexedIds ids, and stays exact once maintenance indexes new rows", async () => {
    const { dir, store } = await newStore(500);
    await store.ingest(EVENTS.slice(0, 100));
    await store.ingest(EVENTS.slice(100, 400));
    expect(await eventsTable(dir)).toMatchObject({ indexed: 100, unindexed: 300 });
    await store.ingest(EVENTS.slice(400, 700)); // 600 held: rebuilt
    expect(await eventsTable(dir)).toMatchObject({ indexed: 700, unindexed: 0 });
    await store.ingest(EVENTS.slice(700, 900));
    await store.maintain(); // optimize() indexes the 200 new rows
    expect(await eventsTable(dir)).toMatchObject({ indexed: 900, unindexed: 0 });
    expect(await store.ingest(EVENTS.slice(0, 1000))).toEqual({ accepted: 100, duplicates: 900 });
    expect(new Set((await eventsTable(dir)).ids).size).toBe(1000);
  });

  it("the stored-id filter never forgets an id; few new ids pass it until it fills up", () => {
    const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => `event-${from + i}`);
    const filter = new StoredIdFilter();
    for (const id of ids(0, 100_000)) filter.add(id);
    expect(ids(0, 100_000).every((id) => filter.mightHave(id))).toBe(true);
    expect(ids(1_000_000, 100_000).filter((id) => filter.mightHave(id)).length).toBeLessThan(10); // each would cost a lookup
    const tiny = new StoredIdFilter(1024);
    for (const id of ids(0, 1000)) tiny.add(id);
    expect(ids(0, 1000).every((id) => tiny.mightHave(id))).toBe(true);
    expect(ids(1_000_000, 1000).filter((id) => tiny.mightHave(id)).length).toBeGreaterThan(500); // saturated: lookups, not wrong answers
  });

  it("rebuilds a large eventId index again and again in one process", async () => {
    // ~200k long ids make LanceDB spill the BTREE build to a temp folder it reuses for later builds
    const { dir, store } = await newStore(1); // rebuild after every batch
    const n = 200_000;
    const db = await lancedb.connect(dir);
    cleanups.push(() => db.close());
    const ids = Array.from({ length: n }, (_, i) => `${"x".repeat(200)}-${i}`);
    await (await db.openTable("events")).add(
      new arrow.Table({
        eventId: arrow.vectorFromArray(ids, new arrow.Utf8()),
        userId: arrow.vectorFromArray(ids.map((_, i) => `bulk${i % 100}`), new arrow.Utf8()),
        itemId: arrow.vectorFromArray(ids.map(() => "i1_0"), new arrow.Utf8()),
        clusterId: arrow.makeVector(new Int32Array(n).fill(1)),
        ts: arrow.makeVector(new Float64Array(n).fill(T0)),
        signal: arrow.makeVector(new Float64Array(n).fill(1)),
        seq: arrow.makeVector(new Int32Array(n).fill(1)),
      }),
    );
    const fold = { seq: [1], events: [n], transitions: [0] };
    await (await db.openTable("folds")).add(
      new arrow.Table({ ...Object.fromEntries(Object.entries(fold).map(([k, v]) => [k, arrow.makeVector(Int32Array.from(v))])), minTs: arrow.makeVector(Float64Array.of(T0)), maxTs: arrow.makeVector(Float64Array.of(T0)) }),
    );
    // recovery builds the index over the bulk rows, each batch rebuilds it
    for (let b = 0; b < 3; b++) expect(await store.ingest(EVENTS.slice(b * 10, (b + 1) * 10))).toEqual({ accepted: 10, duplicates: 0 });
    expect(await store.ingest([EVENTS[0]!, { ...EVENTS[0]!, eventId: ids[123]! }])).toEqual({ accepted: 0, duplicates: 2 });
    expect(await eventsTable(dir)).toMatchObject({ indexed: n + 30, unindexed: 0 });
  }, 120_000);
});
