import {
  compareEvents,
  createSyntheticWorld,
  SYNTHETIC_SIZES,
  DEFAULT_POSITIVE_THRESHOLD,
  formatOfPath,
  ImportReport,
  loadMovieLens,
  parseGenericEvents,
  parseGenericItems,
  readLines,
  resolveClusters,
  sameTimestampEvents,
  streamTransitions,
  countUnplaced,
  DEFAULT_K,
  type Cluster,
  type ClusterId,
  type Event,
  type Item,
  type SyntheticSize,
  type SyntheticWorld,
  type Transition,
} from "@freshrec/core";
import { ReplayError } from "./errors.js";

/**
 * What to replay. Recorded data (movielens, events) takes `clusters` (clusters built from item features; default:
 * core's rule, see IMPORT-FORMAT.md "Clusters") and `threshold` (positive engagement is signal >= threshold;
 * default 4). The synthetic world has its own clusters and positives (its ground truth).
 */
export type DatasetSpec =
  | { kind: "movielens"; dir: string; clusters?: number; threshold?: number }
  | { kind: "synthetic"; size: string; drift?: number }
  | { kind: "events"; file: string; items?: string; clusters?: number; threshold?: number };

/** A dataset ready for replay: clustered events in deterministic time order and their novel transitions. */
export interface ReplayDataset {
  name: string;
  source: string;
  events: Array<Event & { clusterId: ClusterId }>;
  clusters: Cluster[];
  transitions: Transition[];
  k: number;
  /** Positive engagement is signal >= threshold: in the transitions here and in the replay's store. */
  threshold: number;
  /** How the data was read, one line each (clusters and why, threshold, events left out): `freshrec replay` prints them. */
  notes: string[];
  /** The synthetic world the data came from: ground truth for the simulated A/B (absent for recorded data). */
  world?: SyntheticWorld;
}

/** Events with their item's cluster (those whose item has none are counted in `notes`), in compareEvents order, and their novel transitions. */
function assemble(
  name: string,
  source: string,
  events: Event[],
  placement: { clusters: Cluster[]; assignment: Map<string, ClusterId>; unplaced: ReadonlyMap<string, string>; summary: string },
  threshold: { value: number; given: boolean },
): ReplayDataset {
  const { assignment } = placement;
  const clustered = events
    .filter((e) => assignment.has(e.itemId))
    .map((e) => ({ ...e, clusterId: assignment.get(e.itemId)! }))
    .sort(compareEvents);
  const transitions = [...streamTransitions(clustered, (id) => assignment.get(id), { k: DEFAULT_K, threshold: threshold.value })];
  if (transitions.length === 0)
    throw new ReplayError(`${source}: no novel transitions (positive engagement, signal >= ${threshold.value}, with k = ${DEFAULT_K} distinct clusters before)`);
  const skipped = Object.entries(countUnplaced(events, placement));
  const tied = sameTimestampEvents(clustered);
  const notes = [
    `clusters: ${placement.summary}`,
    `positive engagement: signal >= ${threshold.value} (${threshold.given ? "--threshold" : "default"})`,
    ...(skipped.length > 0 ? [`events in no cluster, left out: ${skipped.map(([reason, n]) => `${reason}: ${n}`).join(", ")}`] : []),
    ...(tied > 0 ? [`events sharing their user's timestamp: ${tied}, ordered by itemId, then eventId (IMPORT-FORMAT.md, "Event order")`] : []),
  ];
  return { name, source, events: clustered, clusters: placement.clusters, transitions, k: DEFAULT_K, threshold: threshold.value, notes };
}

const thresholdOf = (spec: { threshold?: number }) => ({ value: spec.threshold ?? DEFAULT_POSITIVE_THRESHOLD, given: spec.threshold !== undefined });

function placeItems(items: readonly Item[], spec: { clusters?: number }, seed: number, source: string) {
  if (items.length === 0) throw new ReplayError(`${source}: no items, so no clusters`);
  const resolved = resolveClusters(items, { k: spec.clusters, seed });
  if (spec.clusters === undefined || resolved.built) return resolved;
  return { ...resolved, summary: `${resolved.summary}; --clusters ${spec.clusters} does not apply: every item carries a clusterId` };
}

async function loadEvents(spec: Extract<DatasetSpec, { kind: "events" }>, seed: number): Promise<ReplayDataset> {
  const format = formatOfPath(spec.file);
  if (!format) throw new ReplayError(`--dataset events ${spec.file}: unknown format (use .csv or .jsonl)`);
  if (!spec.items) throw new ReplayError(`--dataset events ${spec.file}: needs --items FILE with a cluster id or features per item`);
  const itemsFormat = formatOfPath(spec.items);
  if (!itemsFormat) throw new ReplayError(`--items ${spec.items}: unknown format (use .csv or .jsonl)`);
  const evReport = new ImportReport(spec.file);
  const events: Event[] = [];
  for await (const e of parseGenericEvents(readLines(spec.file), evReport, format)) events.push(e);
  evReport.assertOk(false);
  const itReport = new ImportReport(spec.items);
  const items: Item[] = [];
  for await (const i of parseGenericItems(readLines(spec.items), itReport, itemsFormat)) items.push(i);
  itReport.assertOk(false);
  return assemble("events", spec.file, events, placeItems(items, spec, seed, spec.items), thresholdOf(spec));
}

async function loadMovieLensDataset(spec: Extract<DatasetSpec, { kind: "movielens" }>, seed: number): Promise<ReplayDataset> {
  const data = await loadMovieLens(spec.dir);
  data.reports.ratings.assertOk(false);
  data.reports.movies.assertOk(false);
  return assemble("movielens", spec.dir, data.events, placeItems(data.items, spec, seed, spec.dir), thresholdOf(spec));
}

/** Core's synthetic world at a preset size, seeded with the replay seed (drift level optional); its items carry their cluster ids. */
function loadSynthetic(spec: Extract<DatasetSpec, { kind: "synthetic" }>, seed: number): ReplayDataset {
  if (!(SYNTHETIC_SIZES as readonly string[]).includes(spec.size))
    throw new ReplayError(`--dataset synthetic ${spec.size}: unknown size; expected one of ${SYNTHETIC_SIZES.join(", ")}`);
  const world = createSyntheticWorld(spec.size as SyntheticSize, { seed, ...(spec.drift === undefined ? {} : { drift: spec.drift }) });
  const placement = {
    clusters: world.clusters,
    assignment: new Map(world.items.map((i) => [i.itemId, i.clusterId!])),
    unplaced: new Map<string, string>(),
    summary: `the synthetic world's ${world.clusters.length} (its ground truth)`,
  };
  const drift = spec.drift === undefined ? "" : `, drift ${spec.drift}`;
  return { ...assemble(`synthetic-${spec.size}`, `synthetic world ${spec.size}, seed ${seed}${drift}`, [...world.events()], placement, thresholdOf({})), world };
}

/** Loads any supported dataset. */
export async function loadDataset(spec: DatasetSpec, seed: number): Promise<ReplayDataset> {
  if (spec.kind === "synthetic") return loadSynthetic(spec, seed);
  return spec.kind === "movielens" ? loadMovieLensDataset(spec, seed) : loadEvents(spec, seed);
}

export { assemble as assembleDataset };
