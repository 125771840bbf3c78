/**
 * `freshrec import movielens DIR` and `freshrec import events FILE --items FILE`: parse (core's streaming
 * parsers), validate everything, then write through the retriever store in time-ordered batches.
 */
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import {
  FreshrecError,
  ImportReport,
  MOVIELENS_FILES,
  buildClusters,
  compareEvents,
  formatOfPath,
  isPositive,
  parseGenericEvents,
  parseGenericItems,
  parseMovieLensMovies,
  parseMovieLensRatings,
  parseMovieLensTags,
  readLines,
  type Cluster,
  type Event,
  type Item,
  type RecordFormat,
} from "@freshrec/core";
import { openStore, type Store } from "@freshrec/retriever";
import { terminalProgress } from "../progress.js";

export const summary = "import MovieLens (import movielens DIR) or generic events (import events FILE --items FILE) into the store";

const HELP = `usage:
  freshrec import movielens DIR [options]
  freshrec import events FILE --items FILE [--format csv|jsonl] [options]

options:
  --store URI       store location (default $FRESHREC_STORE or data/store under the repo root)
  --clusters N      clusters to build from item features when the store has none (default 64)
  --seed N          seed of cluster building (default 1)
  --batch N         events per ingest batch (default 10000)
  --strict          exit non-zero, writing nothing, if any row is bad
  --json            print the summary as one JSON line`;

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
export const defaultStoreUri = (): string => process.env.FRESHREC_STORE ?? join(REPO_ROOT, "data", "store");

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

async function parseGeneric(eventsPath: string, itemsPath: string, format?: RecordFormat): Promise<Parsed> {
  const formatOf = (path: string) => {
    const f = format ?? formatOfPath(path);
    if (!f) throw new UsageError(`cannot tell the format of ${path} from its name: pass --format csv|jsonl`);
    return f;
  };
  const itemsReport = new ImportReport(itemsPath);
  const eventsReport = new ImportReport(eventsPath);
  const items = await collect(parseGenericItems(readLines(itemsPath), itemsReport, formatOf(itemsPath)));
  const events = await collect(parseGenericEvents(readLines(eventsPath), eventsReport, formatOf(eventsPath)));
  return { items, events, reports: [itemsReport, eventsReport] };
}

/**
 * The cluster of every item. A store without clusters gets them: from the items' clusterIds (placeholder
 * keywords) when every item has one, else built from item features. Otherwise items keep their given or
 * stored cluster; items with neither are left out (their events are skipped as "item without cluster").
 */
async function placeItems(store: Store, items: Item[], opts: { clusters: number; seed: number }): Promise<{ placed: Map<string, number>; clusters: Cluster[]; built: boolean }> {
  let clusters = await store.clusters();
  const placed = new Map<string, number>();
  let built = false;
  if (clusters.length === 0) {
    if (items.every((i) => i.clusterId !== undefined)) {
      const ids = [...new Set(items.map((i) => i.clusterId!))].sort((a, b) => a - b);
      clusters = ids.map((id) => ({ id, keywords: [`cluster-${id}`] }));
      for (const i of items) placed.set(i.itemId, i.clusterId!);
    } else {
      const result = buildClusters(items, { k: opts.clusters, seed: opts.seed });
      clusters = result.clusters;
      for (const [itemId, c] of result.assignment) placed.set(itemId, c);
      built = true;
    }
    await store.putClusters(clusters);
  } else {
    const known = new Set(clusters.map((c) => c.id));
    const stored = await store.itemClusters(items.map((i) => i.itemId));
    for (const i of items) {
      const c = i.clusterId ?? stored.get(i.itemId);
      if (c !== undefined && known.has(c)) placed.set(i.itemId, c);
    }
  }
  await store.putItems([...placed].map(([itemId, clusterId]) => ({ itemId, clusterId })));
  return { placed, clusters, built };
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      store: { type: "string" },
      items: { type: "string" },
      format: { type: "string" },
      clusters: { type: "string", default: "64" },
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
  if (values.format !== undefined && values.format !== "csv" && values.format !== "jsonl") throw new UsageError(`--format must be csv or jsonl, got ${values.format}`);
  let parsed: Parsed;
  if (kind === "movielens" && path) parsed = await parseMovieLens(path);
  else if (kind === "events" && path && values.items) parsed = await parseGeneric(path, values.items, values.format as RecordFormat | undefined);
  else throw new UsageError("expected `import movielens DIR` or `import events FILE --items FILE`");

  // Validation pass done: stop before writing anything on an unusable file, or any bad row with --strict.
  for (const r of parsed.reports) r.assertOk(values.strict);
  const storeUri = values.store ?? defaultStoreUri();
  const store = await openStore(storeUri);
  const progress = terminalProgress();
  try {
    const { placed, clusters, built } = await placeItems(store, parsed.items, { clusters: int("clusters", values.clusters), seed: int("seed", values.seed) });
    const skipReasons: Record<string, number> = {};
    const itemIds = new Set(parsed.items.map((i) => i.itemId));
    const events = parsed.events.filter((e) => {
      if (placed.has(e.itemId)) return true;
      const reason = itemIds.has(e.itemId) ? "item without cluster" : "unknown item";
      skipReasons[reason] = (skipReasons[reason] ?? 0) + 1;
      return false;
    });
    const skippedHere = Object.values(skipReasons).reduce((a, b) => a + b, 0);
    if (values.strict && skippedHere > 0) throw new FreshrecError("import-failed", `${skippedHere} events name items without a cluster (${JSON.stringify(skipReasons)}); nothing written`);
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
      events: { candidates: parsed.events.length, accepted, duplicates, skipped: skippedHere, skipReasons, positives: events.filter((e) => isPositive(e.signal, store.positiveThreshold)).length },
      users: new Set(events.map((e) => e.userId)).size,
      items: placed.size,
      clusters: clusters.length,
      clustersBuilt: built,
      storeVersion: await store.version(),
    };
    if (values.json) console.log(JSON.stringify(result));
    else printSummary(result);
    return 0;
  } finally {
    progress.done();
    await store.close();
  }
}

function printSummary(r: {
  store: string;
  files: Array<{ file: string; rowsRead: number; accepted: number; skipped: number; skipReasons: Record<string, number> }>;
  events: { candidates: number; accepted: number; duplicates: number; skipped: number; skipReasons: Record<string, number>; positives: number };
  users: number;
  items: number;
  clusters: number;
  clustersBuilt: boolean;
}): void {
  const reasons = (x: Record<string, number>) => (Object.keys(x).length ? ` (${Object.entries(x).map(([k, v]) => `${k}: ${v}`).join(", ")})` : "");
  for (const f of r.files) console.log(`${f.file}: ${f.rowsRead} rows read, ${f.accepted} accepted, ${f.skipped} skipped${reasons(f.skipReasons)}`);
  console.log(`events: ${r.events.accepted} stored, ${r.events.duplicates} already present, ${r.events.skipped} skipped${reasons(r.events.skipReasons)}; ${r.events.positives} positive`);
  console.log(`users: ${r.users}, items: ${r.items}, clusters: ${r.clusters}${r.clustersBuilt ? " (built from item features)" : ""}`);
  console.log(`store: ${r.store}`);
}
