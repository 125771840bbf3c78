/**
 * `freshrec bench retriever`: builds a store from the synthetic `large` stream and measures ingest (against
 * plain Arrow appends of the same rows in the same run), point-in-time successor lookups, snapshots, and
 * fragment/version counts after a trickle of small batches under scheduled maintenance. Ingest runs in a
 * child process of its own so that its peak RSS is the store's, measured beside the RSS the previous design's
 * in-memory Set of every event id took for the same events (also in a process of its own).
 * `--store s3` measures the same figures on a local S3-compatible server (s3rver, in this process) beside local
 * disk in the same run: local disk is the baseline.
 */
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { z } from "zod";
import { DAY_MS, FreshrecError, createSyntheticWorld, mulberry32, parseHistoryKey, type Event } from "@freshrec/core";
import { arrow, lancedb, objectStorageEnv, openObjectStore, openStore, startLocalS3, type LanceTable, type ObjectStorage } from "@freshrec/retriever";
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

/** Store figures for one store URI (a folder or s3://): ingest in a child process, lookups, snapshot, trickle with maintenance, size. */
async function measureStore(uri: string, total: number, trickle: Event[], seed: number, report: ProgressFn, storage?: ObjectStorage) {
  const batches = trickle.length / TRICKLE_SIZE;
  const rng = mulberry32(seed);
  const ingest = await runChild("ingest", ["--events", String(total), "--dir", uri], IngestChildSchema);
  const store = await openStore(uri, { readConsistencyMs: 1000, ...(storage ? { storage } : {}) });
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
    if (i % 1000 === 999) report({ phase: "successors", done: i + 1, total: LOOKUPS });
  }
  times.sort((a, b) => a - b);

  started = performance.now();
  const snap = await store.snapshot({ start: range.max + 1 - WINDOW_MS, end: range.max + 1, n: 10 });
  const snapshotS = (performance.now() - started) / 1000;

  // Trickle of small batches with scheduled maintenance, then one last maintenance pass.
  const maintenance = store.startMaintenance(2000, { olderThanMs: 1000 });
  started = performance.now();
  for (let i = 0; i < batches; i++) {
    await store.ingest(trickle.slice(i * TRICKLE_SIZE, (i + 1) * TRICKLE_SIZE));
    if (i % 50 === 49) report({ phase: "trickle", done: i + 1, total: batches });
  }
  const trickleS = (performance.now() - started) / 1000;
  maintenance.stop();
  const after = await store.maintain({ olderThanMs: 0 });
  const transitions = (await store.check()).tables.find((t) => t.name === "transitions")?.rows ?? 0;
  await store.close();

  const bytes = storage ? await openObjectStore(uri, storage).bytes("") : folderBytes(uri);
  return {
    events: ingest.events,
    ingest_events_per_s: Math.round(ingest.ingestPerS),
    ingest_peak_rss_mb: Math.round(ingest.peakRssMb),
    ingest_rss_before_mb: Math.round(ingest.rssBeforeMb),
    successors_lookups: LOOKUPS,
    successors_p50_ms: Number(percentile(times, 0.5).toFixed(4)),
    successors_p99_ms: Number(percentile(times, 0.99).toFixed(4)),
    successors_backed_off: backedOff,
    index_load_s: Number(indexLoadS.toFixed(3)),
    snapshot_s: Number(snapshotS.toFixed(3)),
    snapshot_keys: snap.entries.size,
    trickle_batches: batches,
    trickle_events_per_s: Math.round(trickle.length / trickleS),
    fragments_after: after.fragments,
    versions_after: after.versions,
    transitions_per_event: Number((transitions / (ingest.events + trickle.length)).toFixed(4)),
    store_bytes: bytes,
    bytes_per_event: Number((bytes / (ingest.events + trickle.length)).toFixed(1)),
  };
}

/** Bytes of every file under a folder. */
function folderBytes(dir: string): number {
  let sum = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) if (entry.isFile()) sum += statSync(join(entry.parentPath, entry.name)).size;
  return sum;
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      events: { type: "string", default: "1000000" },
      seed: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      store: { type: "string", default: "local" },
      trickle: { type: "string", default: String(TRICKLE_BATCHES) },
      help: { type: "boolean", default: false },
      // internal: the measurement children (see runChild)
      child: { type: "string" },
      dir: { type: "string" },
    },
  });
  if (values.help) {
    console.log(`usage: freshrec bench retriever [--events N] [--seed S] [--store local|s3] [--keep] [--json]

Builds a store from the first N (default 1,000,000; --events 5000000 for the 5 M run, ~15 min on 2 cores)
events of the synthetic 'large' stream and measures ingest (through the store, batches of 10k, in a child
process: events/s and peak RSS) against plain LanceDB Arrow appends of the same rows, the RSS the previous
design's in-memory Set of all N event ids took (measured in its own process), 10,000 point-in-time successor
lookups, a 30-day snapshot, and fragments/versions after a trickle of 1,000 small batches plus maintenance.
--trickle B sets the small batches (default 1,000; each is a few commits, slow on s3rver: use 100 there).
--store s3 measures the same store figures on s3:// against a local S3-compatible server (s3rver, started
in-process on 127.0.0.1) after measuring them on local disk in the same run (the baseline), each with the
store's size in bytes per event. --keep leaves the store folder in place. The last stdout line is one JSON object.`);
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
  if (values.store !== "local" && values.store !== "s3") throw new FreshrecError("usage", `--store: expected local or s3, got ${JSON.stringify(values.store)}`);
  const dir = mkdtempSync(join(tmpdir(), "freshrec-bench-retriever-"));
  try {
    const world = createSyntheticWorld("large");
    const clusterOf = new Map(world.items.map((i) => [i.itemId, i.clusterId!]));
    const stream = world.events();
    const raw = await rawAppends(join(dir, "raw"), stream, total, clusterOf, progress.report);
    const trickle = [...batchesOf(stream, Number(values.trickle) * TRICKLE_SIZE)].flat();
    rmSync(join(dir, "raw"), { recursive: true, force: true });

    const local = await measureStore(join(dir, "store"), total, trickle, Number(values.seed), progress.report);
    if (values.store === "s3") {
      const s3 = await startLocalS3({ directory: join(dir, "s3"), buckets: ["bench"] });
      try {
        // The ingest child reaches the server through the environment, as job processes do.
        Object.assign(process.env, objectStorageEnv(s3.storage));
        const remote = await measureStore("s3://bench/store", total, trickle, Number(values.seed), progress.report, s3.storage);
        progress.done();
        const ratio = (a: number, b: number) => Number((a / b).toFixed(3));
        const result = {
          events: local.events,
          store: "s3 (s3rver 3.7.1 on 127.0.0.1)",
          raw_lancedb_events_per_s: Math.round(raw.perS),
          local,
          s3: remote,
          s3_vs_local: {
            ingest: ratio(remote.ingest_events_per_s, local.ingest_events_per_s),
            successors_p99: ratio(remote.successors_p99_ms, local.successors_p99_ms),
            snapshot: ratio(remote.snapshot_s, local.snapshot_s),
            trickle: ratio(remote.trickle_events_per_s, local.trickle_events_per_s),
            bytes: ratio(remote.store_bytes, local.store_bytes),
          },
        };
        if (!values.json) {
          for (const [name, r] of [["local disk", local], ["s3", remote]] as const) {
            console.log(`${name}: ingest ${r.ingest_events_per_s} events/s, peak RSS ${r.ingest_peak_rss_mb} MB; successors p50 ${r.successors_p50_ms} ms, p99 ${r.successors_p99_ms} ms; snapshot ${r.snapshot_s} s; trickle ${r.trickle_events_per_s} events/s; ${r.bytes_per_event} bytes/event; ${r.fragments_after} fragments, ${r.versions_after} versions`);
          }
        }
        console.log(JSON.stringify(result));
        return 0;
      } finally {
        await s3.close();
      }
    }
    const oldIds = await runChild("id-set", ["--events", String(total)], IdSetChildSchema);
    progress.done();

    const result = {
      ...local,
      raw_lancedb_events_per_s: Math.round(raw.perS),
      ingest_vs_raw: Number((local.ingest_events_per_s / raw.perS).toFixed(3)),
      old_id_set_rss_mb: Math.round(oldIds.setRssMb),
      old_id_set_heap_mb: Math.round(oldIds.setHeapMb),
    };
    if (!values.json) {
      console.log(`ingest ${result.ingest_events_per_s} events/s vs raw LanceDB appends ${result.raw_lancedb_events_per_s} events/s (${result.ingest_vs_raw}x)`);
      console.log(
        `ingest peak RSS ${result.ingest_peak_rss_mb} MB (${result.ingest_rss_before_mb} MB before ingest); the old design's Set of ${result.events} event ids took ${result.old_id_set_rss_mb} MB more`,
      );
      console.log(`successors p50 ${result.successors_p50_ms} ms, p99 ${result.successors_p99_ms} ms over ${LOOKUPS} lookups; snapshot ${result.snapshot_s} s`);
      console.log(`after ${result.trickle_batches} small batches + maintenance: ${result.fragments_after} fragments, ${result.versions_after} versions over all tables`);
    }
    console.log(JSON.stringify(result));
    return 0;
  } finally {
    progress.done();
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}
