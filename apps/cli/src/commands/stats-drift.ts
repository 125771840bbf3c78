import { parseArgs } from "node:util";
import {
  CLUSTER_COUNT_RULE,
  compareEvents,
  createSyntheticWorld,
  DEFAULT_DRIFT_MIN_SUPPORT,
  DEFAULT_DRIFT_TOP_N,
  DEFAULT_K,
  DEFAULT_POSITIVE_THRESHOLD,
  eventDrift,
  FreshrecError,
  loadGenericEvents,
  loadGenericItems,
  loadMovieLens,
  parseClusterCountOption,
  parseDurationMs,
  parseThresholdOption,
  resolveClusters,
  countUnplaced,
  SYNTHETIC_SIZES,
  type ClusterId,
  type Event,
  type Item,
  type SyntheticSize,
  type WindowedDrift,
} from "@freshrec/core";

export const summary = "print the drift statistic (top-n successor Jaccard, window over window) of a dataset";

const HELP = `usage: freshrec stats drift --dataset movielens DIR | synthetic [SIZE] | events FILE --items FILE [options]

  --window D        window length, e.g. 30d (default), 2w, 12h
  --top N           successors compared per history key (default ${DEFAULT_DRIFT_TOP_N})
  --min-support N   transitions a key needs in both windows (default ${DEFAULT_DRIFT_MIN_SUPPORT})
  --k N             history length (default ${DEFAULT_K})
  --threshold X     positive engagement: signal >= X (default ${DEFAULT_POSITIVE_THRESHOLD})
  --clusters N      clusters built from item features when items carry no clusterId
                    (default: ${CLUSTER_COUNT_RULE})
  --items FILE      items of an events file (generic format: clusterId or features)
  --compare synthetic[:SIZE]  also compute the synthetic world and print both side by side
  --json            print one JSON object as the last line

Events files are held in memory and sorted by time; SIZE is ${SYNTHETIC_SIZES.join(", ")} (default: default).`;

interface Measured {
  name: string;
  drift: WindowedDrift;
  /** How the events met their clusters: the cluster choice and why, events left out; printed before the table. */
  notes: string[];
}

interface Settings {
  windowMs: number;
  topN: number;
  minSupport: number;
  k: number;
  threshold: number;
  /** Clusters asked for; undefined: the default rule. */
  clusters?: number;
}

function lookup(assignment: Map<string, ClusterId>): (itemId: string) => ClusterId | undefined {
  return (itemId) => assignment.get(itemId);
}

/** Drift of recorded events (sorted) over the catalogue's clusters (core's resolveClusters), with what was chosen and left out. */
function measureRecorded(name: string, items: readonly Item[], events: Event[], s: Settings): Measured {
  const resolved = resolveClusters(items, { k: s.clusters, seed: 1 });
  const skipped = Object.entries(countUnplaced(events, resolved));
  const notes = [`clusters: ${resolved.summary}`];
  if (skipped.length > 0) notes.push(`events in no cluster, skipped: ${skipped.map(([reason, n]) => `${reason}: ${n}`).join(", ")}`);
  return { name: `${name} (${events.length} events, ${resolved.clusters.length} clusters)`, drift: eventDrift(events, lookup(resolved.assignment), s), notes };
}

async function measureMovieLens(dir: string, s: Settings): Promise<Measured> {
  const data = await loadMovieLens(dir);
  for (const r of Object.values(data.reports)) if (r.fatal) throw new FreshrecError("import-failed", `${r.file}: ${r.fatal}`);
  return measureRecorded("movielens", data.items, data.events.sort(compareEvents), s);
}

function measureSynthetic(size: string, s: Settings): Measured {
  if (!(SYNTHETIC_SIZES as readonly string[]).includes(size)) throw new FreshrecError("invalid-argument", `synthetic size ${size}: expected ${SYNTHETIC_SIZES.join(", ")}`);
  const world = createSyntheticWorld(size as SyntheticSize, { k: s.k });
  const assignment = new Map(world.items.map((i) => [i.itemId, i.clusterId!]));
  let n = 0;
  const counted = (function* (): Generator<Event> {
    for (const e of world.events()) {
      n++;
      yield e;
    }
  })();
  const drift = eventDrift(counted, lookup(assignment), s);
  const ignored = s.clusters !== undefined ? ` (--clusters ${s.clusters} does not apply)` : "";
  return { name: `synthetic ${size} (${n} events, ${world.clusters.length} clusters)`, drift, notes: [`clusters: the synthetic world's ${world.clusters.length}${ignored}`] };
}

async function measureEvents(file: string, itemsFile: string | undefined, s: Settings): Promise<Measured> {
  if (!itemsFile) throw new FreshrecError("invalid-argument", "--dataset events FILE needs --items FILE to map items to clusters");
  const items = await loadGenericItems(itemsFile);
  const events = await loadGenericEvents(file);
  for (const r of [items.report, events.report]) {
    if (r.fatal) throw new FreshrecError("import-failed", `${r.file}: ${r.fatal}`);
    if (r.skipped > 0) console.error(`${r.file}: skipped ${r.skipped} of ${r.rowsRead} rows (first: ${r.rejected[0]})`);
  }
  return measureRecorded(file, items.items, events.events, s);
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : "n/a");

function printTable(rows: Measured[], s: Settings): void {
  console.log(`drift: Jaccard of top-${s.topN} successors of each history key (k=${s.k}), window over window (${s.windowMs / 86_400_000} d), keys with >= ${s.minSupport} transitions in both windows`);
  const width = Math.max(...rows.map((r) => r.name.length), 7);
  console.log(`${"dataset".padEnd(width)}  ${"mean".padStart(6)}  ${"var".padStart(6)}  ${"keys".padStart(6)}  ${"pairs".padStart(5)}  transitions`);
  for (const r of rows) {
    const o = r.drift.overall;
    console.log(`${r.name.padEnd(width)}  ${fmt(o.mean).padStart(6)}  ${fmt(o.variance).padStart(6)}  ${String(o.keys).padStart(6)}  ${String(r.drift.pairs.filter((p) => p.keys > 0).length).padStart(5)}  ${r.drift.transitions}`);
  }
  console.log(`${"paper (production)".padEnd(width)}  ${"0.170".padStart(6)}  ${"0.070".padStart(6)}`);
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      dataset: { type: "string" },
      items: { type: "string" },
      window: { type: "string", default: "30d" },
      top: { type: "string", default: String(DEFAULT_DRIFT_TOP_N) },
      "min-support": { type: "string", default: String(DEFAULT_DRIFT_MIN_SUPPORT) },
      k: { type: "string", default: String(DEFAULT_K) },
      threshold: { type: "string" },
      clusters: { type: "string" },
      compare: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.dataset) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const int = (name: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new FreshrecError("invalid-argument", `--${name} ${text}: expected a positive integer`);
    return n;
  };
  const s: Settings = {
    windowMs: parseDurationMs(values.window),
    topN: int("top", values.top),
    minSupport: int("min-support", values["min-support"]),
    k: int("k", values.k),
    threshold: values.threshold === undefined ? DEFAULT_POSITIVE_THRESHOLD : parseThresholdOption(values.threshold),
    ...(values.clusters === undefined ? {} : { clusters: parseClusterCountOption(values.clusters) }),
  };
  const rows: Measured[] = [];
  const target = positionals[0];
  if (values.dataset === "movielens") {
    if (!target) throw new FreshrecError("invalid-argument", "--dataset movielens needs the dataset directory");
    rows.push(await measureMovieLens(target, s));
  } else if (values.dataset === "synthetic") rows.push(measureSynthetic(target ?? "default", s));
  else if (values.dataset === "events") {
    if (!target) throw new FreshrecError("invalid-argument", "--dataset events needs the events file");
    rows.push(await measureEvents(target, values.items, s));
  } else throw new FreshrecError("invalid-argument", `--dataset ${values.dataset}: expected movielens, synthetic or events`);
  if (values.compare !== undefined) {
    const [kind, size] = values.compare.split(":");
    if (kind !== "synthetic") throw new FreshrecError("invalid-argument", `--compare ${values.compare}: expected synthetic[:SIZE]`);
    rows.push(measureSynthetic(size ?? "default", s));
  }
  console.log(`positive engagement: signal >= ${s.threshold} (${values.threshold === undefined ? "default" : "--threshold"})`);
  for (const r of rows) for (const note of r.notes) console.log(`${r.name}: ${note}`);
  printTable(rows, s);
  if (values.json) console.log(JSON.stringify({ settings: s, datasets: rows.map((r) => ({ name: r.name, notes: r.notes, ...r.drift.overall, transitions: r.drift.transitions, windowPairs: r.drift.pairs.length })) }));
  return 0;
}
