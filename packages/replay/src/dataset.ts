import {
  buildClusters,
  compareEvents,
  createSyntheticWorld,
  SYNTHETIC_SIZES,
  formatOfPath,
  ImportReport,
  loadMovieLens,
  parseGenericEvents,
  parseGenericItems,
  readLines,
  streamTransitions,
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

export type DatasetSpec =
  | { kind: "movielens"; dir: string; clusters?: number }
  | { kind: "synthetic"; size: string }
  | { kind: "events"; file: string; items?: string; clusters?: number };

/** A dataset ready for replay: clustered events in deterministic time order and their novel transitions. */
export interface ReplayDataset {
  name: string;
  source: string;
  events: Array<Event & { clusterId: ClusterId }>;
  clusters: Cluster[];
  transitions: Transition[];
  k: number;
  /** The synthetic world the data came from: ground truth for the simulated A/B (absent for recorded data). */
  world?: SyntheticWorld;
}

/** MovieLens clusters: genres, tags and release decade, balanced k-means (see core's clusters). */
export const DEFAULT_MOVIELENS_CLUSTERS = 24;

function assemble(name: string, source: string, events: Event[], clusterOf: Map<string, ClusterId>, clusters: Cluster[]): ReplayDataset {
  const clustered = events
    .filter((e) => clusterOf.has(e.itemId))
    .map((e) => ({ ...e, clusterId: clusterOf.get(e.itemId)! }))
    .sort(compareEvents);
  const transitions = [...streamTransitions(clustered, (id) => clusterOf.get(id), { k: DEFAULT_K })];
  if (transitions.length === 0) throw new ReplayError(`${source}: no novel transitions (positive engagement with k = ${DEFAULT_K} distinct clusters before)`);
  return { name, source, events: clustered, clusters, transitions, k: DEFAULT_K };
}

function clusterItems(items: readonly Item[], k: number, seed: number, source: string): { clusterOf: Map<string, ClusterId>; clusters: Cluster[] } {
  const withIds = items.filter((i) => i.clusterId !== undefined);
  if (withIds.length === items.length && withIds.length > 0) {
    const n = Math.max(...withIds.map((i) => i.clusterId!)) + 1;
    const clusters = Array.from({ length: n }, (_, id) => ({ id, keywords: [`cluster-${id}`] }));
    return { clusterOf: new Map(withIds.map((i) => [i.itemId, i.clusterId!])), clusters };
  }
  if (items.length === 0) throw new ReplayError(`${source}: no items, so no clusters`);
  const built = buildClusters(items, { k, seed });
  return { clusterOf: built.assignment, clusters: built.clusters };
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
  const { clusterOf, clusters } = clusterItems(items, spec.clusters ?? DEFAULT_MOVIELENS_CLUSTERS, seed, spec.items);
  return assemble("events", spec.file, events, clusterOf, clusters);
}

async function loadMovieLensDataset(spec: Extract<DatasetSpec, { kind: "movielens" }>, seed: number): Promise<ReplayDataset> {
  const data = await loadMovieLens(spec.dir);
  data.reports.ratings.assertOk(false);
  data.reports.movies.assertOk(false);
  const { clusterOf, clusters } = clusterItems(data.items, spec.clusters ?? DEFAULT_MOVIELENS_CLUSTERS, seed, spec.dir);
  return assemble("movielens", spec.dir, data.events, clusterOf, clusters);
}

/** Core's synthetic world at a preset size, seeded with the replay seed; its items carry their cluster ids. */
function loadSynthetic(spec: Extract<DatasetSpec, { kind: "synthetic" }>, seed: number): ReplayDataset {
  if (!(SYNTHETIC_SIZES as readonly string[]).includes(spec.size))
    throw new ReplayError(`--dataset synthetic ${spec.size}: unknown size; expected one of ${SYNTHETIC_SIZES.join(", ")}`);
  const world = createSyntheticWorld(spec.size as SyntheticSize, { seed });
  const clusterOf = new Map(world.items.map((i) => [i.itemId, i.clusterId!]));
  return { ...assemble(`synthetic-${spec.size}`, `synthetic world ${spec.size}, seed ${seed}`, [...world.events()], clusterOf, world.clusters), world };
}

/** Loads any supported dataset. */
export async function loadDataset(spec: DatasetSpec, seed: number): Promise<ReplayDataset> {
  if (spec.kind === "synthetic") return loadSynthetic(spec, seed);
  return spec.kind === "movielens" ? loadMovieLensDataset(spec, seed) : loadEvents(spec, seed);
}

export { assemble as assembleDataset };
