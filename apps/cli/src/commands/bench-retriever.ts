/**
 * `freshrec bench retriever`: builds a store from the synthetic `large` stream and measures ingest (against
 * plain Arrow appends of the same rows in the same run), point-in-time successor lookups, snapshots, and
 * fragment/version counts after a trickle of small batches under scheduled maintenance.
 */
import { parseArgs } from "node:util";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { DAY_MS, createSyntheticWorld, mulberry32, parseHistoryKey, type Event } from "@freshrec/core";
import { arrow, lancedb, openStore, type LanceTable, type Store } from "@freshrec/retriever";
import { terminalProgress, type ProgressFn } from "../progress.js";

export const summary = "benchmark the LanceDB store: ingest vs raw appends, successors latency, snapshot, maintenance";

const BATCH = 10_000;
const LOOKUPS = 10_000;
const TRICKLE_BATCHES = 1_000;
const TRICKLE_SIZE = 10;
const WINDOW_MS = 30 * DAY_MS;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Plain LanceDB appends of the same rows as Arrow columns: the baseline for ingest. */
async function rawAppendRate(dir: string, batches: Event[][], clusterOf: Map<string, number>, report: ProgressFn): Promise<number> {
  const db = await lancedb.connect(dir);
  const started = performance.now();
  let table: LanceTable | undefined;
  for (const [i, b] of batches.entries()) {
    const data = new arrow.Table({
      eventId: arrow.vectorFromArray(b.map((e) => e.eventId), new arrow.Utf8()),
      userId: arrow.vectorFromArray(b.map((e) => e.userId), new arrow.Utf8()),
      itemId: arrow.vectorFromArray(b.map((e) => e.itemId), new arrow.Utf8()),
      clusterId: arrow.makeVector(Int32Array.from(b, (e) => clusterOf.get(e.itemId)!)),
      ts: arrow.makeVector(Float64Array.from(b, (e) => e.ts)),
      signal: arrow.makeVector(Float64Array.from(b, (e) => e.signal)),
    });
    if (table) await table.add(data);
    else table = await db.createTable("events", data);
    report({ phase: "raw appends", done: i + 1, total: batches.length });
  }
  const seconds = (performance.now() - started) / 1000;
  db.close();
  return batches.reduce((s, b) => s + b.length, 0) / seconds;
}

async function ingestRate(store: Store, batches: Event[][], report: ProgressFn): Promise<number> {
  const started = performance.now();
  for (const [i, b] of batches.entries()) {
    await store.ingest(b);
    report({ phase: "store ingest", done: i + 1, total: batches.length });
  }
  return batches.reduce((s, b) => s + b.length, 0) / ((performance.now() - started) / 1000);
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      events: { type: "string", default: "1000000" },
      seed: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(`usage: freshrec bench retriever [--events N] [--seed S] [--keep] [--json]

Builds a store from the first N (default 1,000,000) events of the synthetic 'large' stream and measures ingest
(through the store, batches of 10k) against plain LanceDB Arrow appends of the same rows, 10,000 point-in-time
successor lookups, a 30-day snapshot, and fragments/versions after a trickle of 1,000 small batches plus maintenance.
--keep leaves the store folder in place. The last stdout line is one JSON object.`);
    return 0;
  }
  const total = Number(values.events);
  const rng = mulberry32(Number(values.seed));
  const progress = terminalProgress();
  const dir = mkdtempSync(join(tmpdir(), "freshrec-bench-retriever-"));
  try {
    const world = createSyntheticWorld("large");
    const clusterOf = new Map(world.items.map((i) => [i.itemId, i.clusterId!]));
    const stream = world.events();
    const take = (n: number): Event[] => {
      const out: Event[] = [];
      while (out.length < n) {
        const r = stream.next();
        if (r.done) break;
        out.push(r.value);
      }
      return out;
    };
    const all = take(total);
    const batches = Array.from({ length: Math.ceil(all.length / BATCH) }, (_, i) => all.slice(i * BATCH, (i + 1) * BATCH));
    const trickle = take(TRICKLE_BATCHES * TRICKLE_SIZE);

    const raw = await rawAppendRate(join(dir, "raw"), batches, clusterOf, progress.report);

    const store = await openStore(join(dir, "store"), { k: world.config.k, readConsistencyMs: 1000 });
    await store.putClusters(world.clusters);
    await store.putItems(world.items.map((i) => ({ itemId: i.itemId, clusterId: i.clusterId! })));
    const ingest = await ingestRate(store, batches, progress.report);

    // Successors: load the index once (reported separately), then timed random point-in-time lookups.
    const range = (await store.timeRange())!;
    let started = performance.now();
    const everything = await store.snapshot({ start: range.min, end: range.max + 1, n: 1 });
    const indexLoadS = (performance.now() - started) / 1000;
    const keys = [...everything.entries.keys()];
    const times: number[] = [];
    let backedOff = 0;
    for (let i = 0; i < LOOKUPS; i++) {
      const history = parseHistoryKey(keys[Math.floor(rng() * keys.length)]!);
      const asOf = range.min + WINDOW_MS + Math.floor(rng() * (range.max - range.min - WINDOW_MS));
      const t0 = performance.now();
      const r = await store.successors(history, { asOf, windowMs: WINDOW_MS, n: 10 });
      times.push(performance.now() - t0);
      if (r.source !== "exact") backedOff++;
      if (i % 1000 === 999) progress.report({ phase: "successors", done: i + 1, total: LOOKUPS });
    }
    times.sort((a, b) => a - b);

    started = performance.now();
    const snap = await store.snapshot({ start: range.max + 1 - WINDOW_MS, end: range.max + 1, n: 10 });
    const snapshotS = (performance.now() - started) / 1000;

    // Trickle of small batches with scheduled maintenance, then one last maintenance pass.
    const maintenance = store.startMaintenance(2000, { olderThanMs: 1000 });
    started = performance.now();
    for (let i = 0; i < TRICKLE_BATCHES; i++) {
      await store.ingest(trickle.slice(i * TRICKLE_SIZE, (i + 1) * TRICKLE_SIZE));
      if (i % 50 === 49) progress.report({ phase: "trickle", done: i + 1, total: TRICKLE_BATCHES });
    }
    const trickleS = (performance.now() - started) / 1000;
    maintenance.stop();
    const after = await store.maintain({ olderThanMs: 0 });
    await store.close();
    progress.done();

    const result = {
      events: all.length,
      ingest_events_per_s: Math.round(ingest),
      raw_lancedb_events_per_s: Math.round(raw),
      ingest_vs_raw: Number((ingest / raw).toFixed(3)),
      successors_lookups: LOOKUPS,
      successors_p50_ms: Number(percentile(times, 0.5).toFixed(4)),
      successors_p99_ms: Number(percentile(times, 0.99).toFixed(4)),
      successors_backed_off: backedOff,
      index_load_s: Number(indexLoadS.toFixed(3)),
      snapshot_s: Number(snapshotS.toFixed(3)),
      snapshot_keys: snap.entries.size,
      trickle_batches: TRICKLE_BATCHES,
      trickle_events_per_s: Math.round((TRICKLE_BATCHES * TRICKLE_SIZE) / trickleS),
      fragments_after: after.fragments,
      versions_after: after.versions,
    };
    if (!values.json) {
      console.log(`ingest ${result.ingest_events_per_s} events/s vs raw LanceDB appends ${result.raw_lancedb_events_per_s} events/s (${result.ingest_vs_raw}x)`);
      console.log(`successors p50 ${result.successors_p50_ms} ms, p99 ${result.successors_p99_ms} ms over ${LOOKUPS} lookups; snapshot ${result.snapshot_s} s`);
      console.log(`after ${TRICKLE_BATCHES} small batches + maintenance: ${result.fragments_after} fragments, ${result.versions_after} versions over all tables`);
    }
    console.log(JSON.stringify(result));
    return 0;
  } finally {
    progress.done();
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}
