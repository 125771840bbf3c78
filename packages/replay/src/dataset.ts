import {
  buildClusters,
  compareEvents,
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

/** Loads any supported dataset; the synthetic world is loaded by synthetic.ts (it also serves the A/B). */
export async function loadDataset(spec: Exclude<DatasetSpec, { kind: "synthetic" }>, seed: number): Promise<ReplayDataset> {
  return spec.kind === "movielens" ? loadMovieLensDataset(spec, seed) : loadEvents(spec, seed);
}

export { assemble as assembleDataset };
