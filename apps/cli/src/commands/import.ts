/**
 * `freshrec import movielens DIR` and `freshrec import events FILE --items FILE`: parse (core's streaming
 * parsers), validate everything, then write through the retriever store in time-ordered batches.
 */
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  CLUSTER_COUNT_RULE,
  DEFAULT_POSITIVE_THRESHOLD,
  FreshrecError,
  ImportReport,
  MOVIELENS_FILES,
  compareEvents,
  formatOfPath,
  isPositive,
  parseClusterCountOption,
  parseGenericEvents,
  parseGenericItems,
  parseMovieLensMovies,
  parseMovieLensRatings,
  parseMovieLensTags,
  parseThresholdOption,
  readLines,
  resolveClusters,
  sameTimestampEvents,
  countUnplaced,
  type Cluster,
  type Event,
  type Item,
  type RecordFormat,
} from "@freshrec/core";
import { acquireStoreWriterLock, openStore, type Store } from "@freshrec/retriever";
import { terminalProgress } from "../progress.js";
import { defaultStoreUri, storeLocation } from "../paths.js";

export const summary = "import MovieLens (import movielens DIR), generic events (import events FILE --items FILE) or a catalogue (import items FILE) into the store";

const HELP = `usage:
  freshrec import movielens DIR [options]
  freshrec import events FILE --items FILE [--format csv|jsonl] [options]
  freshrec import items FILE [--format csv|jsonl] [options]     the catalogue alone (events then arrive over HTTP)

options:
  --store URI       store location (default $FRESHREC_STORE or data/store under the repo root)
  --clusters N      clusters to build from item features when the store has none
                    (default: ${CLUSTER_COUNT_RULE})
  --threshold X     positive engagement is signal >= X, fixed when the store is created (default: the store's,
                    ${DEFAULT_POSITIVE_THRESHOLD} for a new store; a different X on an existing store is refused)
  --seed N          seed of cluster building (default 1)
  --batch N         events per ingest batch (default 10000)
  --strict          exit non-zero, writing nothing, if any row is bad
  --json            print the summary as one JSON line`;


class UsageError extends FreshrecError {
  constructor(message: string) {
    super("usage", `${message}\n${HELP}`);
  }
}

interface Parsed {
  items: Item[];
  events: Event[];
  reports: ImportReport[];
}

async function collect<T>(records: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const r of records) out.push(r);
  return out;
}

async function parseMovieLens(dir: string): Promise<Parsed> {
  const reports: ImportReport[] = [];
  const tagsPath = join(dir, MOVIELENS_FILES.tags);
  let tags = new Map<string, string[]>();
  if (existsSync(tagsPath)) {
    const report = new ImportReport(tagsPath);
    tags = await parseMovieLensTags(readLines(tagsPath), report);
    reports.push(report);
  }
  const movies = new ImportReport(join(dir, MOVIELENS_FILES.movies));
  const ratings = new ImportReport(join(dir, MOVIELENS_FILES.ratings));
  const items = await collect(parseMovieLensMovies(readLines(movies.file), movies, tags));
  const events = await collect(parseMovieLensRatings(readLines(ratings.file), ratings));
  return { items, events, reports: [movies, ratings, ...reports] };
}

/** Generic items, and events unless `eventsPath` is null (`import items`: the catalogue alone, events come later over HTTP). */
async function parseGeneric(eventsPath: string | null, itemsPath: string, format?: RecordFormat): Promise<Parsed> {
  const formatOf = (path: string) => {
    const f = format ?? formatOfPath(path);
    if (!f) throw new UsageError(`cannot tell the format of ${path} from its name: pass --format csv|jsonl`);
    return f;
  };
  const itemsReport = new ImportReport(itemsPath);
  const items = await collect(parseGenericItems(readLines(itemsPath), itemsReport, formatOf(itemsPath)));
  if (eventsPath === null) return { items, events: [], reports: [itemsReport] };
  const eventsReport = new ImportReport(eventsPath);
  const events = await collect(parseGenericEvents(readLines(eventsPath), eventsReport, formatOf(eventsPath)));
  return { items, events, reports: [itemsReport, eventsReport] };
}

/** Items in no cluster after placing: their reason, for counting items and skipping their events. */
const WITHOUT_CLUSTER = "item without cluster";

/**
 * The cluster of every item. A store without clusters gets them as core's resolveClusters makes them (the
 * items' clusterIds, described by their features, or clusters built from features; see IMPORT-FORMAT.md).
 * Otherwise items keep their given or stored cluster. Items left out carry a reason (`unplaced`); their events
 * are skipped under it. `choice` says what was done and why.
 */
async function placeItems(
  store: Store,
  items: Item[],
  opts: { clusters?: number; seed: number },
): Promise<{ placed: Map<string, number>; unplaced: Map<string, string>; clusters: Cluster[]; choice: string }> {
  const stored = await store.clusters();
  let result: { placed: Map<string, number>; unplaced: Map<string, string>; clusters: Cluster[]; choice: string };
  if (stored.length === 0) {
    const resolved = resolveClusters(items, { k: opts.clusters, seed: opts.seed });
    await store.putClusters(resolved.clusters);
    result = { placed: resolved.assignment, unplaced: resolved.unplaced, clusters: resolved.clusters, choice: resolved.summary };
  } else {
    const known = new Set(stored.map((c) => c.id));
    const storedOf = await store.itemClusters(items.map((i) => i.itemId));
    const placed = new Map<string, number>();
    const unplaced = new Map<string, string>();
    for (const i of items) {
      const c = i.clusterId ?? storedOf.get(i.itemId);
      if (c !== undefined && known.has(c)) placed.set(i.itemId, c);
      else unplaced.set(i.itemId, WITHOUT_CLUSTER);
    }
    const ignored = opts.clusters !== undefined ? ` (--clusters ${opts.clusters} ignored)` : "";
    result = { placed, unplaced, clusters: stored, choice: `the store's ${stored.length} clusters${ignored}; items keep their clusterId or stored cluster` };
  }
  await store.putItems([...result.placed].map(([itemId, clusterId]) => ({ itemId, clusterId })));
  return result;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      store: { type: "string" },
      items: { type: "string" },
      format: { type: "string" },
      clusters: { type: "string" },
      threshold: { type: "string" },
      seed: { type: "string", default: "1" },
      batch: { type: "string", default: "10000" },
      strict: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [kind, path] = positionals;
  const int = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${v}`);
    return n;
  };
  const batch = int("batch", values.batch);
  const seed = int("seed", values.seed);
  const requestedClusters = values.clusters === undefined ? undefined : parseClusterCountOption(values.clusters);
  const threshold = values.threshold === undefined ? undefined : parseThresholdOption(values.threshold);
  if (values.format !== undefined && values.format !== "csv" && values.format !== "jsonl") throw new UsageError(`--format must be csv or jsonl, got ${values.format}`);
  let parsed: Parsed;
  if (kind === "movielens" && path) parsed = await parseMovieLens(path);
  else if (kind === "events" && path && values.items) parsed = await parseGeneric(path, values.items, values.format as RecordFormat | undefined);
  else if (kind === "items" && path) parsed = await parseGeneric(null, path, values.format as RecordFormat | undefined);
  else throw new UsageError("expected `import movielens DIR`, `import events FILE --items FILE` or `import items FILE`");

  // Validation pass done: stop before writing anything on an unusable file, or any bad row with --strict.
  for (const r of parsed.reports) r.assertOk(values.strict);
  const storeUri = storeLocation(values.store ?? defaultStoreUri());
  // One writer per store: an import into a store that a server is writing is refused, naming that server.
  const lock = await acquireStoreWriterLock(storeUri, { command: `freshrec import ${kind}` });
  let store: Store;
  try {
    // The store keeps the threshold it was created with: a different --threshold is refused here, before any write.
    store = await openStore(storeUri, threshold === undefined ? {} : { positiveThreshold: threshold });
  } catch (err) {
    await lock.release();
    throw err;
  }
  const progress = terminalProgress();
  try {
    const { placed, unplaced, clusters, choice } = await placeItems(store, parsed.items, { clusters: requestedClusters, seed });
    const skipReasons = countUnplaced(parsed.events, { assignment: placed, unplaced });
    const events = parsed.events.filter((e) => placed.has(e.itemId));
    const skippedHere = Object.values(skipReasons).reduce((a, b) => a + b, 0);
    if (values.strict && skippedHere > 0) throw new FreshrecError("import-failed", `${skippedHere} events name items without a cluster (${JSON.stringify(skipReasons)}); no events written`);
    // Time order, so that every user's events fold in order across batches.
    events.sort(compareEvents);
    let accepted = 0;
    let duplicates = 0;
    for (let i = 0; i < events.length; i += batch) {
      const r = await store.ingest(events.slice(i, i + batch));
      accepted += r.accepted;
      duplicates += r.duplicates;
      progress.report({ phase: "import events", done: Math.min(i + batch, events.length), total: events.length, info: { accepted, duplicates } });
    }
    progress.done();
    const result = {
      store: storeUri,
      files: parsed.reports.map((r) => {
        const s = r.summary();
        return { file: s.file, rowsRead: s.rowsRead, accepted: s.accepted, skipped: s.skipped, skipReasons: s.skipReasons };
      }),
      events: {
        candidates: parsed.events.length,
        accepted,
        duplicates,
        skipped: skippedHere,
        skipReasons,
        positives: events.filter((e) => isPositive(e.signal, store.positiveThreshold)).length,
        sameTimestamp: sameTimestampEvents(events),
      },
      threshold: { value: store.positiveThreshold, source: threshold === undefined ? "the store's setting (--threshold not given)" : "--threshold" },
      users: new Set(events.map((e) => e.userId)).size,
      items: placed.size,
      unplacedItems: countUnplaced(parsed.items, { assignment: placed, unplaced }),
      clusters: clusters.length,
      clusterChoice: choice,
      storeVersion: await store.version(),
    };
    if (values.json) console.log(JSON.stringify(result));
    else printSummary(result);
    return 0;
  } finally {
    progress.done();
    await store.close();
    await lock.release();
  }
}

function printSummary(r: {
  store: string;
  files: Array<{ file: string; rowsRead: number; accepted: number; skipped: number; skipReasons: Record<string, number> }>;
  events: { candidates: number; accepted: number; duplicates: number; skipped: number; skipReasons: Record<string, number>; positives: number; sameTimestamp: number };
  threshold: { value: number; source: string };
  users: number;
  items: number;
  unplacedItems: Record<string, number>;
  clusters: number;
  clusterChoice: string;
}): void {
  const reasons = (x: Record<string, number>) => (Object.keys(x).length ? ` (${Object.entries(x).map(([k, v]) => `${k}: ${v}`).join(", ")})` : "");
  const unplaced = Object.values(r.unplacedItems).reduce((a, b) => a + b, 0);
  for (const f of r.files) console.log(`${f.file}: ${f.rowsRead} rows read, ${f.accepted} accepted, ${f.skipped} skipped${reasons(f.skipReasons)}`);
  console.log(`clusters: ${r.clusterChoice}`);
  console.log(`positive engagement: signal >= ${r.threshold.value} (${r.threshold.source})`);
  console.log(`events: ${r.events.accepted} stored, ${r.events.duplicates} already present, ${r.events.skipped} skipped${reasons(r.events.skipReasons)}; ${r.events.positives} positive`);
  if (r.events.sameTimestamp > 0)
    console.log(`events sharing their user's timestamp: ${r.events.sameTimestamp}, ordered by itemId, then eventId (IMPORT-FORMAT.md, "Event order")`);
  console.log(`users: ${r.users}, items: ${r.items} placed, ${unplaced} in no cluster${reasons(r.unplacedItems)}, clusters: ${r.clusters}`);
  console.log(`store: ${r.store}`);
}
