/**
 * Served-answer recording and online quality on a real LanceDB store: the served-answers table round trip,
 * the recorder's bounded buffer and sampling, and the join with positive events (horizon, settled vs open,
 * per-group Wilson intervals).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { DAY_MS, FreshrecError } from "@freshrec/core";
import { openStore, type ServedAnswer, type Store } from "@freshrec/retriever";
import { loadServerConfig } from "../src/config.js";
import { ServerMetrics } from "../src/metrics.js";
import { ExperimentControl, userBucket } from "../src/experiment.js";
import { difference, OnlineQuality, qualityReport, wilson } from "../src/quality.js";
import { ServedAnswerRecorder } from "../src/served-recorder.js";

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;
const CLUSTERS = Array.from({ length: 6 }, (_, id) => ({ id, keywords: [`topic${id}`] }));
const ITEMS = CLUSTERS.map((c) => ({ itemId: `item${c.id}`, clusterId: c.id }));

const answer = (userId: string, ts: number, clusters: number[], over: Partial<ServedAnswer> = {}): ServedAnswer => ({
  userId,
  ts,
  mode: "table",
  clusters,
  baseId: "base-1",
  adapterId: "adapter-1",
  tableId: "table-1",
  arm: "active",
  served: 1,
  ...over,
});
const engagement = (userId: string, clusterId: number, ts: number) => ({ userId, clusterId, ts });

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tinyStore(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-quality-"));
  const store = await openStore(join(dir, "store"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => store.close());
  await store.putClusters(CLUSTERS);
  await store.putItems(ITEMS);
  return store;
}

const noCandidate = () => Promise.reject(new Error("no candidate in this test"));
const noExperiment = () => new ExperimentControl({ table: noCandidate, scorer: noCandidate, adapterBase: noCandidate, active: () => undefined }, pino({ level: "silent" }));
const settings = (over: Record<string, unknown> = {}) => loadServerConfig({ env: {}, overrides: { storeUri: "unused", modelsDir: "unused", auth: { enabled: false }, ...over } });

describe("wilson", () => {
  it("matches the closed form on known cases and stays inside [0, 1]", () => {
    // 0 of 10: the upper bound is z^2 / (n + z^2) = 3.8415 / 13.8415.
    const none = wilson(0, 10);
    expect(none.rate).toBe(0);
    expect(none.lo).toBe(0);
    expect(none.hi).toBeCloseTo(3.841459 / 13.841459, 6);
    // 5 of 10: symmetric around 0.5, half-width z * sqrt(0.025 + z^2/400) / (1 + z^2/10).
    const half = wilson(5, 10);
    const z = 1.959964;
    const w = (z * Math.sqrt(0.025 + (z * z) / 400)) / (1 + (z * z) / 10);
    expect(half.lo).toBeCloseTo(0.5 - w, 12);
    expect(half.hi).toBeCloseTo(0.5 + w, 12);
    expect(wilson(10, 10).hi).toBe(1);
    expect(wilson(0, 0)).toEqual({ rate: null, lo: null, hi: null });
  });
});

describe("qualityReport", () => {
  const opts = { now: T0 + 3 * DAY_MS, horizonMs: DAY_MS, windowMs: 7 * DAY_MS, bucketMs: DAY_MS, notStored: 0 };

  it("counts an engagement after the answer and within the horizon; top-1 apart from top-k; open answers apart", () => {
    const answers = [
      answer("hit1", T0, [1, 2, 3]),
      answer("hitk", T0, [1, 2, 3]),
      answer("late", T0, [1, 2, 3]),
      answer("before", T0, [1, 2, 3]),
      answer("other", T0, [1, 2, 3]),
      answer("open", opts.now - HOUR, [4, 5], { tableId: "table-2" }),
    ];
    const events = [
      engagement("hit1", 1, T0 + HOUR),
      engagement("hitk", 3, T0 + DAY_MS), // the horizon's last millisecond counts
      engagement("late", 1, T0 + DAY_MS + 1),
      engagement("before", 1, T0 - 1),
      engagement("before", 1, T0), // at the answer itself: not after it
      engagement("other", 0, T0 + HOUR),
      engagement("open", 4, opts.now - 1),
      engagement("hit1", 9, T0 + 2 * HOUR),
    ];
    const r = qualityReport(answers, events, opts);
    expect(r.answers).toEqual({ settled: 5, open: 1, requests: 6, notStored: 0 });
    const t1 = r.groups.find((g) => g.tableId === "table-1")!;
    expect(t1.settled).toBe(5);
    expect(t1.top1).toEqual(wilson(1, 5));
    expect(t1.topk).toEqual(wilson(2, 5));
    const t2 = r.groups.find((g) => g.tableId === "table-2")!;
    expect(t2).toMatchObject({ settled: 0, open: 1, openTop1Hits: 1, openTopkHits: 1, top1: { rate: null } });
    expect(r.series).toEqual([{ label: "table-1", points: [{ at: Math.floor(T0 / DAY_MS) * DAY_MS, settled: 5, top1: 0.2, topk: 0.4 }] }]);
  });

  it("groups by table, adapter, mode and arm", () => {
    const answers = [answer("a", T0, [1]), answer("b", T0, [1], { mode: "live", tableId: null }), answer("c", T0, [1], { arm: "candidate" }), answer("d", T0, [1], { adapterId: "adapter-2" })];
    const r = qualityReport(answers, [engagement("b", 1, T0 + 1)], opts);
    expect(r.groups).toHaveLength(4);
    expect(r.groups.find((g) => g.mode === "live")!.top1.rate).toBe(1);
    expect(r.series.map((s) => s.label).sort()).toEqual(["live adapter-1", "table-1", "table-1 (candidate)"]);
  });
});

describe("served answers in the store", () => {
  it("round-trips batches, reads by time, and refuses a malformed row naming it", async () => {
    const store = await tinyStore();
    expect(await store.servedAnswers.read({ from: 0, to: Number.MAX_SAFE_INTEGER })).toEqual([]);
    const rows = [answer("u1", T0, [3, 1, 2]), answer("u2", T0 + HOUR, [0], { mode: "live", tableId: null, adapterId: null })];
    await store.servedAnswers.append(rows);
    await store.servedAnswers.append([answer("u3", T0 + 2 * HOUR, [5])]);
    const all = await store.servedAnswers.read({ from: 0, to: Number.MAX_SAFE_INTEGER });
    expect(all.sort((a, b) => a.ts - b.ts)).toEqual([...rows, answer("u3", T0 + 2 * HOUR, [5])]);
    expect((await store.servedAnswers.read({ from: T0 + 1, to: T0 + 2 * HOUR })).map((a) => a.userId)).toEqual(["u2"]);
    const bad = { ...answer("u4", T0, [1]), clusters: [] };
    await expect(store.servedAnswers.append([bad])).rejects.toThrow(/served answers batch: 0\.clusters/);
    expect(await store.servedAnswers.read({ from: 0, to: Number.MAX_SAFE_INTEGER })).toHaveLength(3);
  });

  it("survives the store's maintenance and leaves its check clean", async () => {
    const store = await tinyStore();
    for (let i = 0; i < 3; i++) await store.servedAnswers.append([answer(`u${i}`, T0 + i, [1])]);
    await store.maintain({ olderThanMs: 0 });
    expect(await store.servedAnswers.count({ from: 0, to: Number.MAX_SAFE_INTEGER })).toBe(3);
    expect((await store.check()).problems).toEqual([]);
  });

  it("positiveEvents keeps engagements at or above the store's threshold, in the time range", async () => {
    const store = await tinyStore();
    const ev = (id: number, user: string, item: number, ts: number, signal: number) => ({ eventId: `e${id}`, userId: user, itemId: `item${item}`, ts, signal });
    await store.ingest([ev(1, "u", 1, T0, 5), ev(2, "u", 2, T0 + 1, store.positiveThreshold), ev(3, "u", 3, T0 + 2, store.positiveThreshold - 0.5), ev(4, "v", 4, T0 + 10, 5)]);
    const got = await store.positiveEvents({ start: T0, end: T0 + 10 });
    expect(got.sort((a, b) => a.ts - b.ts)).toEqual([engagement("u", 1, T0), engagement("u", 2, T0 + 1)]);
  });
});

describe("ServedAnswerRecorder", () => {
  const log = pino({ level: "silent" });
  const count = async (m: ServerMetrics, outcome: string) => (await m.servedAnswers.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;

  it("on the writer: buffers, drops and counts past the bound, flushes in one batch to the store", async () => {
    const store = await tinyStore();
    const metrics = new ServerMetrics({ processMetrics: false });
    const recorder = new ServedAnswerRecorder({ settings: { ...settings().recording, bufferSize: 3 }, sink: store, metrics, log });
    for (let i = 0; i < 5; i++) recorder.record(answer(`u${i}`, T0 + i, [1]));
    expect(recorder.pending().map((a) => a.userId)).toEqual(["u0", "u1", "u2"]);
    recorder.publishCounts();
    expect([await count(metrics, "recorded"), await count(metrics, "dropped")]).toEqual([3, 2]);
    await recorder.flush();
    expect(recorder.pending()).toEqual([]);
    expect(await count(metrics, "stored")).toBe(3);
    expect((await store.servedAnswers.read({ from: 0, to: Number.MAX_SAFE_INTEGER })).map((a) => a.userId).sort()).toEqual(["u0", "u1", "u2"]);
    recorder.record(answer("u9", T0, [1]));
    await recorder.close();
    expect(await store.servedAnswers.read({ from: 0, to: Number.MAX_SAFE_INTEGER })).toHaveLength(4);
  });

  it("on a replica (no sink): keeps the latest answers, forgetting the older half when full", async () => {
    const metrics = new ServerMetrics({ processMetrics: false });
    const recorder = new ServedAnswerRecorder({ settings: { ...settings().recording, bufferSize: 4 }, metrics, log });
    for (let i = 0; i < 5; i++) recorder.record(answer(`u${i}`, T0 + i, [1]));
    expect(recorder.pending().map((a) => a.userId)).toEqual(["u2", "u3", "u4"]);
    recorder.publishCounts();
    expect(await count(metrics, "forgotten")).toBe(2);
  });

  it("samples with its seed: the same seed records the same answers, about the configured share", async () => {
    const recorded = () => {
      const r = new ServedAnswerRecorder({ settings: { ...settings().recording, sampleRate: 0.3, seed: 7, bufferSize: 10_000 }, metrics: new ServerMetrics({ processMetrics: false }), log });
      for (let i = 0; i < 2000; i++) r.record(answer(`u${i}`, T0, [1]));
      return r.pending().map((a) => a.userId);
    };
    const a = recorded();
    expect(recorded()).toEqual(a);
    // Binomial(2000, 0.3): mean 600, sd 20.5; five sd either side.
    expect(a.length).toBeGreaterThan(600 - 5 * 20.5);
    expect(a.length).toBeLessThan(600 + 5 * 20.5);
  });

  it("merges repeats into one exposure per user, answer and repeat window, and joins a window split by a flush", async () => {
    const store = await tinyStore();
    const metrics = new ServerMetrics({ processMetrics: false });
    const W = 60_000;
    const start = Math.ceil(T0 / W) * W;
    const recorder = new ServedAnswerRecorder({ settings: { ...settings().recording, repeatWindowMs: W }, sink: store, metrics, log });
    recorder.record(answer("u", start, [1, 2]));
    recorder.record(answer("u", start + 10, [1, 2]));
    recorder.record(answer("v", start + 20, [1, 2])); // another user
    recorder.record(answer("u", start + 30, [1, 2])); // u's latest answer is still the first
    recorder.record(answer("u", start + 40, [2, 1])); // another answer
    recorder.record(answer("u", start + 50, [2, 1], { tableId: "table-2" })); // another table
    recorder.record(answer("u", start + 60, [2, 1], { tableId: "table-2" }));
    recorder.record(answer("u", start + W, [2, 1], { tableId: "table-2" })); // the next window
    expect(recorder.pending().map((a) => [a.userId, a.ts - start, a.served])).toEqual([["u", 0, 3], ["v", 20, 1], ["u", 40, 1], ["u", 50, 2], ["u", W, 1]]);
    recorder.publishCounts();
    expect([await count(metrics, "recorded"), await count(metrics, "repeated")]).toEqual([5, 3]);
    // The window of the last row goes on after a flush: stored and buffered rows are one exposure on read.
    await recorder.flush();
    recorder.record(answer("u", start + W + 5, [2, 1], { tableId: "table-2" }));
    const cfg = settings({ quality: { cacheMs: 0 }, recording: { repeatWindowMs: W } });
    const quality = new OnlineQuality({ store, recorder, experiments: noExperiment(), settings: cfg.quality, repeatWindowMs: W, clock: () => start + 2 * DAY_MS, metrics });
    const r = await quality.report();
    expect(r.answers).toMatchObject({ settled: 5, requests: 9, notStored: 1 });
    expect(r.groups.find((g) => g.tableId === "table-2")!.settled).toBe(2);
  });

  it("stores every request as its own row with repeatWindowMs 0", () => {
    const r = new ServedAnswerRecorder({ settings: { ...settings().recording, repeatWindowMs: 0 }, metrics: new ServerMetrics({ processMetrics: false }), log });
    for (let i = 0; i < 3; i++) r.record(answer("u", T0, [1]));
    expect(r.pending().map((a) => a.served)).toEqual([1, 1, 1]);
  });

  it("records nothing when disabled", () => {
    const r = new ServedAnswerRecorder({ settings: { ...settings().recording, enabled: false }, metrics: new ServerMetrics({ processMetrics: false }), log });
    r.record(answer("u", T0, [1]));
    expect(r.pending()).toEqual([]);
  });
});

describe("OnlineQuality", () => {
  it("joins stored and buffered answers with the store's events as of the serving clock, and publishes gauges", async () => {
    const store = await tinyStore();
    const metrics = new ServerMetrics({ processMetrics: false });
    const cfg = settings({ quality: { cacheMs: 0 } });
    const recorder = new ServedAnswerRecorder({ settings: cfg.recording, sink: store, metrics, log: pino({ level: "silent" }) });
    let now = T0;
    const quality = new OnlineQuality({ store, recorder, experiments: noExperiment(), settings: cfg.quality, repeatWindowMs: cfg.recording.repeatWindowMs, clock: () => now, metrics });
    await store.servedAnswers.append([answer("u", T0 - 2 * DAY_MS, [1, 2])]);
    recorder.record(answer("v", T0, [3, 4]));
    const ev = (id: number, user: string, item: number, ts: number) => ({ eventId: `e${id}`, userId: user, itemId: `item${item}`, ts, signal: 5 });
    await store.ingest([ev(1, "u", 2, T0 - 2 * DAY_MS + HOUR), ev(2, "v", 3, T0 + HOUR)]);

    let r = await quality.report();
    expect(r.answers).toEqual({ settled: 1, open: 1, requests: 2, notStored: 1 });
    // A flush under way: the answer counts once, stored or pending, never twice or not at all.
    const flushing = recorder.flush();
    expect((await quality.report()).answers).toMatchObject({ settled: 1, open: 1 });
    await flushing;
    expect((await quality.report()).answers).toEqual({ settled: 1, open: 1, requests: 2, notStored: 0 });
    expect(r.groups[0]).toMatchObject({ settled: 1, open: 1, openTop1Hits: 1, top1: { rate: 0 }, topk: { rate: 1 } });
    now = T0 + DAY_MS;
    r = await quality.report();
    expect(r.groups[0]).toMatchObject({ settled: 2, open: 0, top1: { rate: 0.5 }, topk: { rate: 1 } });
    const gauge = (await metrics.onlineHitRate.get()).values.find((v) => v.labels.at === "top1");
    expect(gauge?.value).toBe(0.5);
    expect(gauge?.labels).toMatchObject({ table_id: "table-1", adapter_id: "adapter-1", mode: "table", arm: "active" });
    // Past the window the stored answer no longer counts.
    now = T0 - 2 * DAY_MS + cfg.quality.windowMs + 1;
    expect((await quality.report()).answers.settled).toBe(1);
  });

  it("joins at most about quality.maxAnswers stored answers: the window shrinks to the latest ones", async () => {
    const store = await tinyStore();
    const metrics = new ServerMetrics({ processMetrics: false });
    const cfg = settings({ quality: { cacheMs: 0, maxAnswers: 2, windowMs: 4 * DAY_MS } });
    const recorder = new ServedAnswerRecorder({ settings: cfg.recording, metrics, log: pino({ level: "silent" }) });
    const now = T0 + 4 * DAY_MS;
    await store.servedAnswers.append([0, 1, 2, 3].map((d) => answer(`u${d}`, T0 + d * DAY_MS + 1, [1])));
    const r = await new OnlineQuality({ store, recorder, experiments: noExperiment(), settings: cfg.quality, repeatWindowMs: cfg.recording.repeatWindowMs, clock: () => now, metrics }).report();
    expect(r.windowMs).toBe(2 * DAY_MS);
    expect(r.answers.settled + r.answers.open).toBe(2);
  });

  it("prune deletes stored answers served before the cut", async () => {
    const store = await tinyStore();
    await store.servedAnswers.append([answer("old", T0 - 1, [1]), answer("new", T0, [1])]);
    await store.servedAnswers.prune(T0);
    expect((await store.servedAnswers.read({ from: 0, to: Number.MAX_SAFE_INTEGER })).map((a) => a.userId)).toEqual(["new"]);
    expect(await store.servedAnswers.count({ from: 0, to: Number.MAX_SAFE_INTEGER })).toBe(1);
  });

  it("a store that fails is an error of the report, not a crash, and the next call tries again", async () => {
    const store = await tinyStore();
    const metrics = new ServerMetrics({ processMetrics: false });
    const cfg = settings({ quality: { cacheMs: 60_000 } });
    const recorder = new ServedAnswerRecorder({ settings: cfg.recording, metrics, log: pino({ level: "silent" }) });
    const log = store.servedAnswers;
    const failing = {
      positiveEvents: store.positiveEvents.bind(store),
      servedAnswers: { append: log.append.bind(log), count: log.count.bind(log), prune: log.prune.bind(log), read: async (): Promise<ServedAnswer[]> => Promise.reject(new FreshrecError("store-unavailable", "gone")) },
    };
    const quality = new OnlineQuality({ store: failing, recorder, experiments: noExperiment(), settings: cfg.quality, repeatWindowMs: cfg.recording.repeatWindowMs, clock: () => T0, metrics });
    await expect(quality.report()).rejects.toThrow("gone");
    failing.servedAnswers.read = async () => [];
    expect((await quality.report()).answers.settled).toBe(0);
  });
});

describe("experiment split and comparison", () => {
  it("puts a user in the same arm every time, about the configured share of users, reshuffled by another salt", () => {
    const users = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
    const inCandidate = (salt: string) => users.filter((u) => userBucket(u, salt) < 0.2);
    const a = inCandidate("one");
    expect(inCandidate("one")).toEqual(a);
    // Binomial(10000, 0.2): sd 40; five sd either side.
    expect(Math.abs(a.length - 2000)).toBeLessThan(200);
    const b = new Set(inCandidate("two"));
    const overlap = a.filter((u) => b.has(u)).length;
    // Independent splits overlap on about 0.2 x 0.2 of users (400, sd 19.6), not on all 2000.
    expect(Math.abs(overlap - 400)).toBeLessThan(100);
  });

  it("difference: candidate minus active with the Wald interval", () => {
    const d = difference(30, 100, 20, 100);
    const se = Math.sqrt((0.3 * 0.7) / 100 + (0.2 * 0.8) / 100);
    expect(d.diff).toBeCloseTo(0.1, 12);
    expect(d.lo).toBeCloseTo(0.1 - 1.959964 * se, 12);
    expect(d.hi).toBeCloseTo(0.1 + 1.959964 * se, 12);
  });

  it("compares the arms' settled answers; null without an experiment", () => {
    const opts = { now: T0 + 3 * DAY_MS, horizonMs: DAY_MS, windowMs: 7 * DAY_MS, bucketMs: DAY_MS, notStored: 0 };
    expect(qualityReport([answer("a", T0, [1])], [], opts).experiment).toBeNull();
    const answers = [answer("a", T0, [1]), answer("b", T0, [1]), answer("c", T0, [1], { arm: "candidate", tableId: "table-2" }), answer("d", T0, [1], { arm: "candidate", tableId: "table-2" })];
    const events = [engagement("a", 1, T0 + 1), engagement("c", 1, T0 + 1), engagement("d", 1, T0 + 1)];
    const running = { candidateTable: "table-2", candidateAdapter: null, candidateScorer: null, share: 0.5, salt: "s", since: T0, by: "test" };
    const r = qualityReport(answers, events, { ...opts, experiment: running });
    expect(r.experiment?.running).toEqual(running);
    expect(r.experiment?.arms).toEqual([
      { arm: "active", settled: 2, top1: wilson(1, 2), topk: wilson(1, 2) },
      { arm: "candidate", settled: 2, top1: wilson(2, 2), topk: wilson(2, 2) },
    ]);
    expect(r.experiment?.difference?.top1).toEqual(difference(2, 2, 1, 2));
    // A running experiment whose candidate arm has no settled answer yet: arms shown, no difference.
    expect(qualityReport(answers.slice(0, 2), events, { ...opts, experiment: running }).experiment?.difference).toBeNull();
  });
});
