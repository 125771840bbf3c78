import { z } from "zod";
import { FreshrecError } from "../errors.js";
import { ClusterSchema, type Cluster, type ClusterId, type Event, type Item, type ItemFeatures } from "../schemas.js";
import { kmeans, nearestCentroid } from "../kmeans.js";
import { chooseClusterCount, type ClusterCount } from "./count.js";
import { buildFeatureSpace, featureNames, FeatureSpaceSchema, indexOf, keywordOf, vectorize, type FeatureSpaceOptions } from "./features.js";

/** Everything needed to describe clusters and to place a new item: serialisable as JSON. */
export const ClusterModelSchema = z.object({
  space: FeatureSpaceSchema,
  clusters: z.array(ClusterSchema.extend({ centroid: z.array(z.number().finite()), size: z.number().int().nonnegative() })),
});
export type ClusterModel = z.infer<typeof ClusterModelSchema>;

export interface BuildClustersOptions extends FeatureSpaceOptions {
  /** Clusters wanted, capped at the distinct feature signatures; default: chooseClusterCount's rule. */
  k?: number;
  seed: number;
  /** Near-equal cluster sizes (default true, as in the paper): capacity ceil(slack * n / k). */
  balance?: boolean | { slack: number };
  maxIter?: number;
  /** Keywords per cluster (default 4). */
  keywords?: number;
}

/** Why an item is in no cluster (or an event's item is not in the catalogue): commands count items and skip their events under these reasons. */
export const UNPLACED = {
  noKeptFeature: "unclassified item (none of its features is kept for clustering)",
  noFeatures: "item without features (clusters were built from features)",
  unknownItem: "unknown item",
} as const;

export interface BuiltClusters {
  model: ClusterModel;
  clusters: Cluster[];
  /** itemId -> cluster id for every clustered item. */
  assignment: Map<string, ClusterId>;
  /** How many clusters and why. */
  count: ClusterCount;
  /** Items whose features hold no dimension of the feature space (e.g. only tags too rare to keep): in no cluster. */
  unclassified: string[];
}

/** A keyword must describe at least this share of the cluster's items (rare tags say little about a cluster). */
const MIN_KEYWORD_SHARE = 0.1;
const DEFAULT_KEYWORDS = 4;

/** Feature-name counts over a set of items: what a description is computed from. */
interface Tally {
  items: number;
  names: Map<string, number>;
}

const emptyTally = (): Tally => ({ items: 0, names: new Map() });

function count(t: Tally, names: readonly string[]): void {
  t.items++;
  for (const name of names) t.names.set(name, (t.names.get(name) ?? 0) + 1);
}

function addInto(into: Tally, from: Tally): void {
  into.items += from.items;
  for (const [name, c] of from.names) into.names.set(name, (into.names.get(name) ?? 0) + c);
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * Keywords of a cluster: among features on at least MIN_KEYWORD_SHARE of its items, the most characteristic,
 * scored p(f|c) * log2(p(f|c) / p(f)) (frequent in the cluster and more frequent than in the whole catalogue);
 * when none is more frequent than in the catalogue (e.g. a single cluster), the most frequent. Empty when the
 * cluster's items have no such feature.
 */
function describe(cluster: Tally, catalogue: Tally, max: number): string[] {
  const candidates = [...cluster.names]
    .filter(([, c]) => c >= MIN_KEYWORD_SHARE * cluster.items)
    .map(([name, c]) => {
      const p = c / cluster.items;
      return { name, share: p, score: p * Math.log2(p / (catalogue.names.get(name)! / catalogue.items)) };
    });
  const characteristic = candidates.filter((s) => s.score > 0).sort((a, b) => b.score - a.score || byName(a, b));
  const ranked = characteristic.length > 0 ? characteristic : candidates.sort((a, b) => b.share - a.share || byName(a, b));
  const words: string[] = [];
  for (const { name } of ranked) {
    const word = keywordOf(name);
    if (!words.includes(word)) words.push(word);
    if (words.length === max) break;
  }
  return words;
}

/** Order-insensitive identity of a description: "Drama, 1990s" and "1990s, Drama" describe the same cluster. */
const descriptionKey = (keywords: readonly string[]): string => [...keywords].sort().join("\n");

type Featured = Item & { features: ItemFeatures };

/**
 * Interest clusters from item metadata. Items whose kept features are identical (one feature signature) have the
 * same vector: they form one point, weighted by their number, so twins are never split. Seeded (balanced) k-means
 * clusters these points into k clusters (k from chooseClusterCount); a cluster may exceed the balance capacity only
 * by holding a signature heavier than it. Clusters whose descriptions coincide are folded into the first of them and
 * described again until every description differs. Items with no kept feature are left out (`unclassified`).
 */
export function buildClusters(items: readonly Item[], opts: BuildClustersOptions): BuiltClusters {
  const featured = items.filter((i): i is Featured => i.features !== undefined);
  if (featured.length === 0) throw new FreshrecError("invalid-argument", "buildClusters: no item carries features");
  const space = buildFeatureSpace(
    featured.map((i) => i.features),
    opts,
  );
  const d = space.names.length;
  if (d === 0) throw new FreshrecError("invalid-argument", "buildClusters: the items' features give no dimensions");
  const index = indexOf(space);

  const bySignature = new Map<string, Featured[]>();
  const unclassified: string[] = [];
  for (const item of featured) {
    const kept = featureNames(item.features).filter((name) => index.has(name));
    if (kept.length === 0) {
      unclassified.push(item.itemId);
      continue;
    }
    const key = kept.sort().join("\n");
    const group = bySignature.get(key);
    if (group) group.push(item);
    else bySignature.set(key, [item]);
  }
  const groups = [...bySignature.values()];
  const clustered = featured.length - unclassified.length;
  const chosen = chooseClusterCount({ items: clustered, signatures: groups.length, requested: opts.k });
  const data = new Float32Array(groups.length * d);
  groups.forEach((g, i) => data.set(vectorize(g[0]!.features, space, index), i * d));
  const result = kmeans(
    { data, n: groups.length, d, weights: groups.map((g) => g.length) },
    { k: chosen.k, seed: opts.seed, balance: opts.balance ?? true, maxIter: opts.maxIter ?? 30 },
  );

  const max = opts.keywords ?? DEFAULT_KEYWORDS;
  const catalogue = emptyTally();
  const parts = Array.from({ length: chosen.k }, () => ({ groups: [] as number[], tally: emptyTally(), keywords: [] as string[] }));
  groups.forEach((g, i) => {
    const part = parts[result.assignment[i]!]!;
    part.groups.push(i);
    for (const item of g) {
      const names = featureNames(item.features);
      count(part.tally, names);
      count(catalogue, names);
    }
  });
  let distinct = parts.filter((p) => p.groups.length > 0);
  const empty = parts.length - distinct.length;
  for (const p of distinct) p.keywords = describe(p.tally, catalogue, max);
  // Two clusters with one description cannot be told apart (by a reader or the model): fold, describe again, repeat.
  for (;;) {
    const first = new Map<string, (typeof distinct)[number]>();
    const folded = new Set<(typeof distinct)[number]>();
    for (const p of distinct) {
      const key = descriptionKey(p.keywords);
      const into = first.get(key);
      if (!into) {
        first.set(key, p);
        continue;
      }
      into.groups.push(...p.groups);
      addInto(into.tally, p.tally);
      folded.add(into);
    }
    if (folded.size === 0) break;
    distinct = [...first.values()];
    for (const p of folded) p.keywords = describe(p.tally, catalogue, max);
  }
  const merged = parts.length - empty - distinct.length;

  const clusters = distinct.map((p, id) => {
    const centroid = new Float64Array(d);
    for (const g of p.groups) for (let j = 0; j < d; j++) centroid[j]! += groups[g]!.length * data[g * d + j]!;
    for (let j = 0; j < d; j++) centroid[j]! /= p.tally.items;
    return { id, keywords: p.keywords.length > 0 ? p.keywords : [`cluster-${id}`], centroid: Array.from(centroid), size: p.tally.items };
  });
  const assignment = new Map<string, ClusterId>();
  distinct.forEach((p, id) => {
    for (const g of p.groups) for (const item of groups[g]!) assignment.set(item.itemId, id);
  });
  const notes = [merged > 0 ? `${merged} folded into clusters with the same description` : "", empty > 0 ? `${empty} left empty by k-means` : ""].filter(Boolean);
  const countInfo: ClusterCount = {
    clusters: clusters.length,
    k: chosen.k,
    ...(opts.k !== undefined ? { requested: opts.k } : {}),
    items: clustered,
    signatures: groups.length,
    merged,
    reason: `${clusters.length} clusters: k = ${chosen.k} (${chosen.reason})${notes.length > 0 ? `; ${notes.join("; ")}` : ""}`,
  };
  return { model: { space, clusters }, clusters: clusters.map(({ size: _size, ...c }) => c), assignment, count: countInfo, unclassified };
}

/** The cluster of a new item: nearest centroid of its feature vector (features unknown to the model are ignored). */
export function assignToCluster(features: ItemFeatures, model: ClusterModel, index: ReadonlyMap<string, number> = indexOf(model.space)): ClusterId {
  const d = model.space.names.length;
  const centroids = new Float32Array(model.clusters.length * d);
  model.clusters.forEach((c, i) => centroids.set(c.centroid, i * d));
  return model.clusters[nearestCentroid(vectorize(features, model.space, index), centroids)]!.id;
}

/** A catalogue's clusters and where each item went, with the reason for every item left out. */
export interface ResolvedClusters {
  clusters: Cluster[];
  assignment: Map<string, ClusterId>;
  /** itemId -> why it is in no cluster (an UNPLACED reason). */
  unplaced: Map<string, string>;
  /** How the clusters were made and how many, in words: every command prints it. */
  summary: string;
  /** Set when the clusters were built from features. */
  built?: BuiltClusters;
}

/**
 * Clusters of a catalogue whose items all carry a clusterId: ids 0..max (an id no item carries is an empty
 * cluster; more unused ids than used ones is refused as not a cluster id), each described from its items' categorical values and tags as built clusters are; `cluster-N` only
 * when its items have none. Clusters that would share a description get `cluster-N` appended.
 */
function givenClusters(items: readonly Item[], max: number): ResolvedClusters {
  const last = items.reduce((m, i) => Math.max(m, i.clusterId!), 0);
  const used = new Set(items.map((i) => i.clusterId!)).size;
  if (last + 1 > 2 * used)
    throw new FreshrecError("invalid-argument", `items' clusterId: ${used} distinct ids reach up to ${last}; cluster ids are dense 0..C-1 (IMPORT-FORMAT.md), so at most half of 0..${last} may be unused`);
  const tallies = Array.from({ length: last + 1 }, emptyTally);
  const catalogue = emptyTally();
  for (const item of items) {
    const names = item.features ? featureNames(item.features) : [];
    count(tallies[item.clusterId!]!, names);
    count(catalogue, names);
  }
  const described = tallies.map((t) => describe(t, catalogue, max));
  const seen = new Map<string, number>();
  for (const words of described) if (words.length > 0) seen.set(descriptionKey(words), (seen.get(descriptionKey(words)) ?? 0) + 1);
  const clusters = described.map((words, id) => ({
    id,
    keywords: words.length === 0 ? [`cluster-${id}`] : seen.get(descriptionKey(words))! > 1 ? [...words, `cluster-${id}`] : words,
  }));
  const without = tallies.filter((t) => t.items === 0).length;
  const placeholders = described.filter((w) => w.length === 0).length;
  const shared = described.filter((w) => w.length > 0 && seen.get(descriptionKey(w))! > 1).length;
  const notes = [
    without > 0 ? `${without} ids without items` : "",
    `keywords from the items' categorical values and tags`,
    placeholders > 0 ? `${placeholders} with none: cluster-N` : "",
    shared > 0 ? `${shared} sharing a description: cluster-N appended` : "",
  ].filter(Boolean);
  return {
    clusters,
    assignment: new Map(items.map((i) => [i.itemId, i.clusterId!])),
    unplaced: new Map(),
    summary: `${clusters.length} clusters from the items' clusterId (ids 0..${last}; ${notes.join("; ")})`,
  };
}

/**
 * item -> cluster for a catalogue: the items' own clusterIds when every item has one, else clusters built
 * from the items' features (items without features, or with none kept, are then left out with a reason).
 */
export function resolveClusters(items: readonly Item[], opts: BuildClustersOptions): ResolvedClusters {
  if (items.length === 0) throw new FreshrecError("invalid-argument", "resolveClusters: no items, so no clusters");
  if (items.every((i) => i.clusterId !== undefined)) return givenClusters(items, opts.keywords ?? DEFAULT_KEYWORDS);
  const built = buildClusters(items, opts);
  const unplaced = new Map<string, string>();
  for (const item of items) if (!item.features) unplaced.set(item.itemId, UNPLACED.noFeatures);
  for (const itemId of built.unclassified) unplaced.set(itemId, UNPLACED.noKeptFeature);
  return { clusters: built.clusters, assignment: built.assignment, unplaced, summary: built.count.reason, built };
}

/** Records (events or items) whose item is in no cluster, counted per reason: the item's `unplaced` reason, or UNPLACED.unknownItem. */
export function countUnplaced(
  records: Iterable<Pick<Event, "itemId">>,
  placement: { assignment: ReadonlyMap<string, ClusterId>; unplaced: ReadonlyMap<string, string> },
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of records) {
    if (placement.assignment.has(e.itemId)) continue;
    const reason = placement.unplaced.get(e.itemId) ?? UNPLACED.unknownItem;
    out[reason] = (out[reason] ?? 0) + 1;
  }
  return out;
}
