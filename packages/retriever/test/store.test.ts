import { afterEach, describe, expect, it } from "vitest";
import { DAY_MS, ValidationError, extractTransitions, historyKey } from "@freshrec/core";
import { arrow, lancedb, openStore, type IngestEvent, type Store } from "../src/index.js";
import { utf8 } from "../src/columns.js";
import { T0, circleClusters, itemsFor, randomEvents, tempStoreDir } from "./helpers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function newStore(k = 2): Promise<{ store: Store; dir: string }> {
  const { dir, cleanup } = tempStoreDir();
  const store = await openStore(dir, { k, readConsistencyMs: 0 });
  cleanups.push(cleanup, () => store.close());
  await store.putClusters(circleClusters(8));
  await store.putItems(itemsFor(8, 3));
  return { store, dir };
}

describe("ingest", () => {
  it("stores events once, derives the same transitions as core's extractTransitions", async () => {
    const { store } = await newStore();
    const events = randomEvents({ seed: 1, users: 20, events: 600, clusters: 8, days: 20 });
    expect(await store.ingest(events.slice(0, 300))).toEqual({ accepted: 300, duplicates: 0 });
    expect(await store.ingest(events.slice(200))).toEqual({ accepted: 300, duplicates: 100 });
    expect(await store.ingest(events)).toEqual({ accepted: 0, duplicates: 600 });

    const clustered = events.map((e) => ({ ...e, clusterId: Number(e.itemId.slice(1).split("_")[0]) }));
    const expected = extractTransitions(clustered, { k: 2 });
    const stored = await store.transitions({ start: 0, end: T0 + 100 * DAY_MS });
    expect(stored.map((t) => [t.userId, historyKey(t.history), t.next, t.ts])).toEqual(expected.map((t) => [t.userId, historyKey(t.history), t.next, t.ts]));
    expect(stored.length).toBeGreaterThan(50);
    expect(await store.timeRange()).toEqual({ min: events[0]!.ts, max: events.at(-1)!.ts });
    expect(await store.version()).toBe(2);
  });

  it("keeps the last k distinct positive clusters per user", async () => {
    const { store } = await newStore();
    const ev = (id: string, c: number, day: number, signal = 5) => ({ eventId: id, userId: "u", itemId: `i${c}_0`, ts: T0 + day * DAY_MS, signal });
    await store.ingest([ev("a", 1, 0), ev("b", 2, 1), ev("c", 1, 2), ev("d", 5, 3, 1)]);
    expect(await store.userState("u")).toEqual({ userId: "u", clusters: [2, 1], lastTs: T0 + 3 * DAY_MS });
    expect(await store.userState("nobody")).toBeNull();
  });

  it("rejects a batch with any bad event, naming each field, and stores nothing", async () => {
    const { store } = await newStore();
    const good = { eventId: "ok", userId: "u", itemId: "i1_0", ts: T0, signal: 5 };
    const bad = [good, { ...good, eventId: "x1", ts: -5 }, { ...good, eventId: "x2", itemId: "nope" }, { ...good, eventId: "x3", signal: "high" }, { ...good, eventId: "x4", itemId: "i1_0", clusterId: 99 }];
    const err = await store.ingest(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    const paths = (err as ValidationError).issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(["[1].ts", "[2].itemId", "[3].signal", "[4].clusterId"]));
    expect(await store.version()).toBe(0);
    expect(await store.timeRange()).toBeNull();
    const big = await openStore((store as Store).uri, { readConsistencyMs: 0, maxBatch: 2 });
    cleanups.push(() => big.close());
    await expect(big.ingest([good, good, good])).rejects.toThrow(/exceeds the limit of 2/);
  });
});

describe("successors", () => {
  it("counts only transitions inside [asOf - window, asOf), exactly at the millisecond", async () => {
    const { store } = await newStore();
    // user walks 0 -> 1 -> 2 (transition (0,1)->2 at day 5 + 1 ms), another user 0 -> 1 -> 3 later.
    const t = T0 + 5 * DAY_MS + 1;
    await store.ingest([
      { eventId: "1", userId: "a", itemId: "i0_0", ts: t - 2, signal: 5 },
      { eventId: "2", userId: "a", itemId: "i1_0", ts: t - 1, signal: 5 },
      { eventId: "3", userId: "a", itemId: "i2_0", ts: t, signal: 5 },
      { eventId: "4", userId: "b", itemId: "i0_0", ts: t, signal: 5 },
      { eventId: "5", userId: "b", itemId: "i1_0", ts: t + 1, signal: 5 },
      { eventId: "6", userId: "b", itemId: "i3_0", ts: t + 10, signal: 5 },
    ]);
    const q = { windowMs: DAY_MS, n: 5, minSupport: 1 };
    expect((await store.successors([0, 1], { ...q, asOf: t })).support).toBe(0);
    const atT = await store.successors([0, 1], { ...q, asOf: t + 1 });
    expect(atT).toMatchObject({ source: "exact", key: "0,1", support: 1, items: [{ clusterId: 2, count: 1, score: 1 }] });
    const later = await store.successors([0, 1], { ...q, asOf: t + 11 });
    expect(later.items.map((i) => i.clusterId)).toEqual([2, 3]);
    // the window start is inclusive, the end exclusive
    const windowed = await store.successors([0, 1], { asOf: t + 11, windowMs: 10, n: 5, minSupport: 1 });
    expect(windowed.items.map((i) => i.clusterId)).toEqual([3]);
    expect((await store.successors([0, 1], { asOf: t + 11, windowMs: 11, n: 5, minSupport: 1 })).support).toBe(2);
  });

  it("ranks by frequency or by rise against the previous window", async () => {
    const { store } = await newStore();
    const events: IngestEvent[] = [];
    let id = 0;
    // previous window (days 0-9): 0,1 -> 2 six times, -> 3 once; current (days 10-19): -> 2 four times, -> 3 three times
    const walk = (day: number, next: number) => {
      const u = `u${id}`;
      for (const [j, c] of [0, 1, next].entries()) events.push({ eventId: `e${id}_${j}`, userId: u, itemId: `i${c}_0`, ts: T0 + day * DAY_MS + j, signal: 5 });
      id++;
    };
    for (let i = 0; i < 6; i++) walk(1 + i, 2);
    walk(2, 3);
    for (let i = 0; i < 4; i++) walk(11 + i, 2);
    for (let i = 0; i < 3; i++) walk(12 + i, 3);
    await store.ingest(events);
    const q = { asOf: T0 + 20 * DAY_MS, windowMs: 10 * DAY_MS, n: 2, minSupport: 1 };
    const freq = await store.successors([0, 1], q);
    expect(freq.items).toEqual([{ clusterId: 2, count: 4, score: 4 / 7 }, { clusterId: 3, count: 3, score: 3 / 7 }]);
    const trend = await store.successors([0, 1], { ...q, method: "trend" });
    expect(trend.items).toEqual([{ clusterId: 3, count: 3, score: 2 }, { clusterId: 2, count: 4, score: -2 }]);
  });

  it("backs off to the last cluster, then to the nearest key, and says so", async () => {
    const { store } = await newStore();
    const events: IngestEvent[] = [];
    const walk = (user: string, path: number[], day: number) =>
      path.forEach((c, j) => events.push({ eventId: `${user}_${j}`, userId: user, itemId: `i${c}_0`, ts: T0 + day * DAY_MS + j, signal: 5 }));
    for (let u = 0; u < 20; u++) walk(`heavy${u}`, [3, 4, 5], 1 + (u % 5)); // key 3,4 -> 5, twenty times
    for (let u = 0; u < 2; u++) walk(`light${u}`, [1, 2, 3], 2); // key 1,2 -> 3, twice
    await store.ingest(events);
    const q = { asOf: T0 + 10 * DAY_MS, windowMs: 10 * DAY_MS, n: 3 };
    expect(await store.successors([3, 4], { ...q, minSupport: 5 })).toMatchObject({ source: "exact", key: "3,4", support: 20, items: [{ clusterId: 5, count: 20 }] });
    // unseen key 0,2: every key ending in 2 (here 1,2) counts
    expect(await store.successors([0, 2], { ...q, minSupport: 2 })).toMatchObject({ source: "last-cluster", key: "2", support: 2, items: [{ clusterId: 3 }] });
    // unseen key 3,5 with no key ending in 5: the nearest key by centroids is 3,4
    expect(await store.successors([3, 5], { ...q, minSupport: 5 })).toMatchObject({ source: "neighbour", key: "3,4", support: 20 });
    // 1,7 is nearest to 1,2 (support 2, too little): the next neighbour with support wins
    expect(await store.successors([1, 7], { ...q, minSupport: 5 })).toMatchObject({ source: "neighbour", key: "3,4" });
    // nothing anywhere reaches the support asked for: the best supported statistic, labelled
    expect(await store.successors([0, 2], { ...q, minSupport: 50 })).toMatchObject({ source: "neighbour", key: "3,4", support: 20 });
    expect(await store.successors([], { ...q, minSupport: 1 })).toMatchObject({ source: "exact", key: "", support: 0, items: [] });
  });

  it("snapshots every key with support, identified by store version and window", async () => {
    const { store } = await newStore();
    const events = randomEvents({ seed: 4, users: 25, events: 1000, clusters: 8, days: 30 });
    await store.ingest(events.slice(0, 500));
    await store.ingest(events.slice(500));
    const start = T0 + 10 * DAY_MS;
    const end = T0 + 25 * DAY_MS;
    const snap = await store.snapshot({ start, end, n: 3 });
    expect(snap.id).toContain("v2:");
    expect(snap.id).toContain(`${start}-${end}`);
    const all = await store.transitions({ start, end });
    expect([...snap.entries.values()].reduce((s, e) => s + e.support, 0)).toBe(all.length);
    for (const [key, entry] of snap.entries) {
      const direct = await store.successors(key.split(",").map(Number), { asOf: end, windowMs: end - start, n: 3, minSupport: 1 });
      expect(entry.items).toEqual(direct.items);
    }
    expect(snap.lookup([99, 7])?.source).toBe("last-cluster");
  });
});

describe("items, clusters, prediction tables", () => {
  it("assigns vector-only items to the nearest centroid", async () => {
    const { store } = await newStore();
    const c = circleClusters(8);
    const r = await store.putItems([{ itemId: "v1", vector: c[5]!.centroid!.map((x) => x * 1.01) }, { itemId: "v2", vector: c[2]!.centroid! }, { itemId: "v3", clusterId: 7 }]);
    expect(r).toEqual({ assigned: 2 });
    expect(await store.itemClusters(["v1", "v2", "v3", "missing"])).toEqual(new Map([["v1", 5], ["v2", 2], ["v3", 7]]));
    await expect(store.putItems([{ itemId: "bad", clusterId: 42 }])).rejects.toThrow(/\[0\]\.clusterId: unknown cluster/);
    expect((await store.clusters()).map((x) => x.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("stores prediction tables atomically and replaces them by id", async () => {
    const { store } = await newStore();
    await store.putPredictionTable({ id: "t1", meta: { snapshot: "v1", n: 2 }, rows: [{ key: "1,2", clusters: [3, 4], probs: [0.7, 0.3] }] });
    await store.putPredictionTable({ id: "t1", meta: { snapshot: "v2", n: 1 }, rows: [{ key: "1,2", clusters: [5], probs: [1] }, { key: "2,3", clusters: [4], probs: [1] }] });
    await store.putPredictionTable({ id: "t0", meta: {}, rows: [] });
    expect(await store.predictionTable("t1")).toEqual({ id: "t1", meta: { snapshot: "v2", n: 1 }, rows: [{ key: "1,2", clusters: [5], probs: [1] }, { key: "2,3", clusters: [4], probs: [1] }] });
    expect(await store.predictionTable("t0")).toEqual({ id: "t0", meta: {}, rows: [] });
    expect(await store.predictionTable("none")).toBeNull();
    expect(await store.predictionTableIds()).toEqual(["t0", "t1"]);
    await store.dropPredictionTables(["t1", "never-stored", "it's quoted"]);
    expect(await store.predictionTableIds()).toEqual(["t0"]);
    expect(await store.predictionTable("t1")).toBeNull();
    expect(await store.predictionTable("t0")).toEqual({ id: "t0", meta: {}, rows: [] });
    await expect(store.putPredictionTable({ id: "bad", meta: {}, rows: [{ key: "1", clusters: [1, 2], probs: [1] }] })).rejects.toThrow(/rows\.0\.probs/);
  });

  it("finds a table written by another handle at once, even inside that reader's consistency interval", async () => {
    const { store, dir } = await newStore();
    await store.putPredictionTable({ id: "old", meta: {}, rows: [] });
    const reader = await openStore(dir, { readConsistencyMs: 3_600_000 });
    cleanups.push(() => reader.close());
    expect(await reader.predictionTable("old")).not.toBeNull();
    await store.putPredictionTable({ id: "new", meta: { n: 1 }, rows: [{ key: "1,2", clusters: [3], probs: [1] }] });
    expect(await reader.predictionTable("new")).toEqual({ id: "new", meta: { n: 1 }, rows: [{ key: "1,2", clusters: [3], probs: [1] }] });
  });
});

describe("large tables", () => {
  // Math.max(...values) throws past ~1.3e5 values; these sizes are past it.
  const N = 300_000;

  it("reads the time range and version over 300k fold rows", async () => {
    const { store, dir } = await newStore();
    const db = await lancedb.connect(dir);
    cleanups.push(() => db.close());
    const seq = Int32Array.from({ length: N }, (_, i) => i + 1);
    const minTs = Float64Array.from(seq, (s) => T0 + s * 1000);
    await (await db.openTable("folds")).add(
      new arrow.Table({
        seq: arrow.makeVector(seq),
        events: arrow.makeVector(new Int32Array(N).fill(1)),
        transitions: arrow.makeVector(new Int32Array(N)),
        minTs: arrow.makeVector(minTs),
        maxTs: arrow.makeVector(Float64Array.from(minTs, (t) => t + 500)),
      }),
    );
    expect(await store.timeRange()).toEqual({ min: T0 + 1000, max: T0 + N * 1000 + 500 });
    expect(await store.version()).toBe(N);
  });

  it("writes and reads a prediction table of 200k rows, and replaces it", async () => {
    const { store } = await newStore();
    const rows = Array.from({ length: 200_000 }, (_, i) => ({ key: `${i % 8},${i}`, clusters: [i % 8], probs: [1] }));
    await store.putPredictionTable({ id: "big", meta: { n: 1 }, rows });
    await store.putPredictionTable({ id: "big", meta: { n: 2 }, rows });
    const read = await store.predictionTable("big");
    expect(read?.meta).toEqual({ n: 2 });
    expect(read?.rows.length).toBe(200_000);
    expect(read?.rows[199_999]).toEqual(rows[199_999]);
  }, 60_000);
});

describe("served answers log", () => {
  it("gives a log written before exposures were counted its count column (1 per old row) and keeps its rows", async () => {
    const { store, dir } = await newStore();
    const old = { userId: "u1", ts: T0, mode: "table", clusters: "3,1", baseId: "b", adapterId: "a", tableId: "t", arm: "active" };
    // The log's schema before the count column, as the previous release created it.
    const utf8 = (name: string, nullable = false) => new arrow.Field(name, new arrow.Utf8(), nullable);
    const oldSchema = new arrow.Schema([utf8("userId"), new arrow.Field("ts", new arrow.Float64(), false), utf8("mode"), utf8("clusters"), utf8("baseId", true), utf8("adapterId", true), utf8("tableId", true), utf8("arm")]);
    const db = await lancedb.connect(dir);
    await (await db.createEmptyTable("served_answers", oldSchema)).add([old]);
    await store.servedAnswers.append([{ ...old, userId: "u2", ts: T0 + 1, mode: "table", clusters: [2], arm: "active", served: 4 }]);
    const rows = (await store.servedAnswers.read({ from: 0, to: Number.MAX_SAFE_INTEGER })).sort((a, b) => a.ts - b.ts);
    expect(rows.map((r) => [r.userId, r.clusters, r.served])).toEqual([["u1", [3, 1], 1], ["u2", [2], 4]]);
  });
});

describe("utf8 columns", () => {
  it("hold multi-byte, empty and null strings exactly, as arrow's own builder does", async () => {
    const values = ["plain", null, "", "crème brûlée", "日本語", "🙂 emoji", null, "x".repeat(300)];
    const col = utf8(values);
    expect(Array.from({ length: col.length }, (_, i) => col.get(i))).toEqual(values);
    expect(col.nullCount).toBe(2);
    // And through LanceDB: a table written from it reads back the same strings.
    const { dir, cleanup } = tempStoreDir();
    cleanups.push(cleanup);
    const db = await lancedb.connect(dir);
    const t = await db.createTable("strings", new arrow.Table({ s: col }));
    const back = (await t.query().toArrow()).getChild("s")!;
    expect(Array.from({ length: back.length }, (_, i) => back.get(i))).toEqual(values);
  });
});
