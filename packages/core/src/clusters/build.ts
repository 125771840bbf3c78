import { z } from "zod";
import { FreshrecError } from "../errors.js";
import { ClusterSchema, type Cluster, type ClusterId, type Item, type ItemFeatures } from "../schemas.js";
import { kmeans, nearestCentroid } from "../kmeans.js";
import { buildFeatureSpace, featureNames, FeatureSpaceSchema, indexOf, keywordOf, vectorize, type FeatureSpaceOptions } from "./features.js";

/** Everything needed to describe clusters and to place a new item: serialisable as JSON. */
export const ClusterModelSchema = z.object({
  space: FeatureSpaceSchema,
  clusters: z.array(ClusterSchema.extend({ centroid: z.array(z.number().finite()), size: z.number().int().nonnegative() })),
});
export type ClusterModel = z.infer<typeof ClusterModelSchema>;

export interface BuildClustersOptions extends FeatureSpaceOptions {
  k: number;
  seed: number;
  /** Near-equal cluster sizes (default true, as in the paper): capacity ceil(slack * n / k). */
  balance?: boolean | { slack: number };
  maxIter?: number;
  /** Keywords per cluster (default 4). */
  keywords?: number;
}

export interface BuiltClusters {
  model: ClusterModel;
  clusters: Cluster[];
  /** itemId -> cluster id for every item with features. */
  assignment: Map<string, ClusterId>;
}

/** A keyword must describe at least this share of the cluster's items (rare tags say little about a cluster). */
const MIN_KEYWORD_SHARE = 0.1;

/**
 * Keywords of a cluster: the features most characteristic of it, scored p(f|c) * log2(p(f|c) / p(f))
 * (frequent in the cluster and more frequent than in the whole catalogue).
 */
function describe(memberFeatures: string[][], globalShare: Map<string, number>, count: number): string[] {
  const inCluster = new Map<string, number>();
  for (const names of memberFeatures) for (const name of names) inCluster.set(name, (inCluster.get(name) ?? 0) + 1);
  const scored = [...inCluster.entries()]
    .map(([name, c]) => {
      const p = c / memberFeatures.length;
      return { name, score: p * Math.log2(p / globalShare.get(name)!) };
    })
    .filter((s) => s.score > 0 && inCluster.get(s.name)! >= MIN_KEYWORD_SHARE * memberFeatures.length)
    .sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : 1));
  const words: string[] = [];
  for (const { name } of scored) {
    const word = keywordOf(name);
    if (!words.includes(word)) words.push(word);
    if (words.length === count) break;
  }
  return words;
}

/** Interest clusters from item metadata: feature vectors, seeded (balanced) k-means, keywords, item assignment. */
export function buildClusters(items: readonly Item[], opts: BuildClustersOptions): BuiltClusters {
  const featured = items.filter((i): i is Item & { features: ItemFeatures } => i.features !== undefined);
  if (featured.length === 0) throw new FreshrecError("invalid-argument", "buildClusters: no item carries features");
  const space = buildFeatureSpace(
    featured.map((i) => i.features),
    opts,
  );
  const d = space.names.length;
  if (d === 0) throw new FreshrecError("invalid-argument", "buildClusters: the items' features give no dimensions");
  const index = indexOf(space);
  const data = new Float32Array(featured.length * d);
  featured.forEach((item, i) => data.set(vectorize(item.features, space, index), i * d));
  const result = kmeans({ data, n: featured.length, d }, { k: opts.k, seed: opts.seed, balance: opts.balance ?? true, maxIter: opts.maxIter ?? 30 });

  const names = featured.map((i) => featureNames(i.features));
  const globalShare = new Map<string, number>();
  for (const list of names) for (const name of list) globalShare.set(name, (globalShare.get(name) ?? 0) + 1 / featured.length);
  const members: string[][][] = Array.from({ length: opts.k }, () => []);
  result.assignment.forEach((c, i) => members[c]!.push(names[i]!));

  const clusters = members.map((m, c) => {
    const keywords = describe(m, globalShare, opts.keywords ?? 4);
    return {
      id: c,
      keywords: keywords.length > 0 ? keywords : [`cluster-${c}`],
      centroid: Array.from(result.centroids.subarray(c * d, (c + 1) * d)),
      size: m.length,
    };
  });
  const assignment = new Map<string, ClusterId>();
  featured.forEach((item, i) => assignment.set(item.itemId, result.assignment[i]!));
  return { model: { space, clusters }, clusters: clusters.map(({ size: _size, ...c }) => c), assignment };
}

/** The cluster of a new item: nearest centroid of its feature vector (features unknown to the model are ignored). */
export function assignToCluster(features: ItemFeatures, model: ClusterModel, index: ReadonlyMap<string, number> = indexOf(model.space)): ClusterId {
  const d = model.space.names.length;
  const centroids = new Float32Array(model.clusters.length * d);
  model.clusters.forEach((c, i) => centroids.set(c.centroid, i * d));
  return model.clusters[nearestCentroid(vectorize(features, model.space, index), centroids)]!.id;
}

/**
 * item -> cluster for a catalogue: the items' own clusterIds when every item has one, else clusters built
 * from the items' features (items without features are then left out).
 */
export function resolveClusters(items: readonly Item[], opts: BuildClustersOptions): { assignment: Map<string, ClusterId>; built?: BuiltClusters } {
  if (items.length > 0 && items.every((i) => i.clusterId !== undefined)) return { assignment: new Map(items.map((i) => [i.itemId, i.clusterId!])) };
  const built = buildClusters(items, opts);
  return { assignment: built.assignment, built };
}
