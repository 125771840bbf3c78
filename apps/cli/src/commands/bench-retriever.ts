/**
 * `freshrec bench retriever`: builds a store from the synthetic `large` stream and measures ingest (against
 * plain Arrow appends of the same rows in the same run), point-in-time successor lookups, snapshots, and
 * fragment/version counts after a trickle of small batches under scheduled maintenance. Ingest runs in a
 * child process of its own so that its peak RSS is the store's, measured beside the RSS the previous design's
 * in-memory Set of every event id took for the same events (also in a process of its own).
 */
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { z } from "zod";
import { DAY_MS, FreshrecError, createSyntheticWorld, mulberry32, parseHistoryKey, type Event } from "@freshrec/core";
import { arrow, lancedb, openStore, type LanceTable } from "@freshrec/retriever";
import { terminalProgress, type ProgressFn } from "../progress.js";

export const summary = "benchmark the LanceDB store: ingest (rate, peak RSS) vs raw appends and the old id Set, successors latency, snapshot, maintenance";

const BATCH = 10_000;
const LOOKUPS = 10_000;
const TRICKLE_BATCHES = 1_000;
const TRICKLE_SIZE = 10;
const WINDOW_MS = 30 * DAY_MS;
const MB = 1024 * 1024;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** The first `total` events of a fresh synthetic `large` stream in batches (never all in memory at once). */
function* batchesOf(stream: Iterator<Event>, total: number): Generator<Event[]> {
  for (let taken = 0; taken < total; ) {
    const batch: Event[] = [];
    while (batch.length < Math.min(BATCH, total - taken)) {
      const r = stream.next();
      if (r.done) break;
      batch.push(r.value);
    }
    if (!batch.length) return;
    taken += batch.length;
    yield batch;
  }
}

/** Plain LanceDB appends of the same rows as Arrow columns: the baseline for ingest. Returns rows and rows/s. */
async function rawAppends(dir: string, stream: Iterator<Event>, total: number, clusterOf: Map<string, number>, report: ProgressFn): Promise<{ events: number; perS: number }> {
  const db = await lancedb.connect(dir);
  let table: LanceTable | undefined;
  let events = 0;
  let seconds = 0;
  for (const b of batchesOf(stream, total)) {
    const started = performance.now(); // generating the events is not part of either rate
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
    seconds += (performance.now() - started) / 1000;
    events += b.length;
    report({ phase: "raw appends", done: events, total });
  }
  db.close();
  return { events, perS: events / seconds };
}

// ---------------------------------------------------------------- child processes (peak RSS of one thing each)

const IngestChildSchema = z.object({ events: z.number().int(), ingestPerS: z.number(), rssBeforeMb: z.number(), peakRssMb: z.number() });
const IdSetChildSchema = z.object({ ids: z.number().int(), setRssMb: z.number(), setHeapMb: z.number() });

/** Child: a fresh store at `dir`, the first `total` events ingested through it in batches of 10k. */
async function ingestChild(dir: string, total: number, report: ProgressFn): Promise<z.infer<typeof IngestChildSchema>> {
  const world = createSyntheticWorld("large");
  const store = await openStore(dir, { k: world.config.k, readConsistencyMs: 1000 });
  await store.putClusters(world.clusters);
  await store.putItems(world.items.map((i) => ({ itemId: i.itemId, clusterId: i.clusterId! })));
  const rssBeforeMb = process.memoryUsage().rss / MB;
  let events = 0;
  let seconds = 0;
  for (const b of batchesOf(world.events(), total)) {
    const started = performance.now();
    await store.ingest(b);
    seconds += (performance.now() - started) / 1000;
    events += b.length;
    report({ phase: "store ingest", done: events, total, info: { rss_mb: Math.round(process.memoryUsage().rss / MB) } });
  }
  await store.close();
  return { events, ingestPerS: events / seconds, rssBeforeMb, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

/**
 * Child: what the previous writer kept besides the store, a Set of every stored event id. Two identical
 * passes over the same events, the first emptying its Set after each batch: the heap and RSS growth
 * between their ends (after GC) is what holding the ids costs, with the generator's own footprint cancelled.
 */
async function idSetChild(total: number, report: ProgressFn): Promise<z.infer<typeof IdSetChildSchema>> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new FreshrecError("bench", "the id-set child needs --expose-gc");
  const world = createSyntheticWorld("large");
  const pass = (keep: boolean) => {
    const ids = new Set<string>();
    let seen = 0;
    for (const b of batchesOf(world.events(), total)) {
      for (const e of b) ids.add(e.eventId);
      seen += b.length;
      if (!keep) ids.clear();
      report({ phase: keep ? "old id Set" : "old id Set (control)", done: seen, total });
    }
    gc();
    gc();
    return { ids, memory: process.memoryUsage() };
  };
  const control = pass(false).memory;
  const { ids, memory } = pass(true);
  return { ids: ids.size, setRssMb: (memory.rss - control.rss) / MB, setHeapMb: (memory.heapUsed - control.heapUsed) / MB };
}

/** Runs this command again as `--child kind` and reads the JSON line it prints last. */
function runChild<T>(kind: "ingest" | "id-set", args: string[], schema: z.ZodType<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const argv = [...process.execArgv, "--expose-gc", process.argv[1]!, "bench", "retriever", "--child", kind, ...args];
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.on("error", reject);
    child.on("exit", (code) => {
      const last = out.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !last) return reject(new FreshrecError("bench", `bench child '${kind}' exited with ${code}`));
      resolve(schema.parse(JSON.parse(last)));
    });
  });
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
      // internal: the measurement children (see runChild)
      child: { type: "string" },
      dir: { type: "string" },
    },
  });
  if (values.help) {
    console.log(`usage: freshrec bench retriever [--events N] [--seed S] [--keep] [--json]

Builds a store from the first N (default 1,000,000; --events 5000000 for the 5 M run, ~15 min on 2 cores)
events of the synthetic 'large' stream and measures ingest (through the store, batches of 10k, in a child
process: events/s and peak RSS) against plain LanceDB Arrow appends of the same rows, the RSS the previous
design's in-memory Set of all N event ids took (measured in its own process), 10,000 point-in-time successor
lookups, a 30-day snapshot, and fragments/versions after a trickle of 1,000 small batches plus maintenance.
--keep leaves the store folder in place. The last stdout line is one JSON object.`);
    return 0;
  }
  const total = Number(values.events);
  const progress = terminalProgress();
  if (values.child === "ingest") {
    console.log(JSON.stringify(await ingestChild(values.dir!, total, progress.report)));
    progress.done();
    return 0;
  }
  if (values.child === "id-set") {
    console.log(JSON.stringify(await idSetChild(total, progress.report)));
    progress.done();
    return 0;
  }
  const rng = mulberry32(Number(values.seed));
  const dir = mkdtempSync(join(tmpdir(), "freshrec-bench-retriever-"));
  try {
    const world = createSyntheticWorld("large");
    const clusterOf = new Map(world.items.map((i) => [i.itemId, i.clusterId!]));
    const stream = world.events();
    const raw = await rawAppends(join(dir, "raw"), stream, total, clusterOf, progress.report);
    const trickle = [...batchesOf(stream, TRICKLE_BATCHES * TRICKLE_SIZE)].flat();
    rmSync(join(dir, "raw"), { recursive: true, force: true });

    const storeDir = join(dir, "store");
    const ingest = await runChild("ingest", ["--events", String(total), "--dir", storeDir], IngestChildSchema);
    const oldIds = await runChild("id-set", ["--events", String(total)], IdSetChildSchema);

    const store = await openStore(storeDir, { readConsistencyMs: 1000 });
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
      events: ingest.events,
      ingest_events_per_s: Math.round(ingest.ingestPerS),
      raw_lancedb_events_per_s: Math.round(raw.perS),
      ingest_vs_raw: Number((ingest.ingestPerS / raw.perS).toFixed(3)),
      ingest_peak_rss_mb: Math.round(ingest.peakRssMb),
      ingest_rss_before_mb: Math.round(ingest.rssBeforeMb),
      old_id_set_rss_mb: Math.round(oldIds.setRssMb),
      old_id_set_heap_mb: Math.round(oldIds.setHeapMb),
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
      console.log(
        `ingest peak RSS ${result.ingest_peak_rss_mb} MB (${result.ingest_rss_before_mb} MB before ingest); the old design's Set of ${result.events} event ids took ${result.old_id_set_rss_mb} MB more`,
      );
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
