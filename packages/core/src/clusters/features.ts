import { z } from "zod";
import type { ItemFeatures } from "../schemas.js";

/**
 * The vector space items are clustered in: one dimension per categorical value ("genres=Drama") and per
 * tag ("tag=pixar"). Serialisable, so a new item can be placed into existing clusters later.
 */
export const FeatureSpaceSchema = z.object({
  /** Dimension names: `<field>=<value>` for categorical values, `tag=<tag>` for tags. */
  names: z.array(z.string()),
  /** Per-dimension weight: inverse document frequency times the weight of its field. */
  weights: z.array(z.number().finite()),
});
export type FeatureSpace = z.infer<typeof FeatureSpaceSchema>;

export interface FeatureSpaceOptions {
  /** A tag becomes a dimension only if at least this many items carry it (default 2). */
  minTagItems?: number;
  /** At most this many tag dimensions, most frequent first (default 300). */
  maxTags?: number;
  /** Relative weight per categorical field and for tags ("tag"); default 1 for fields, 0.6 for tags. */
  fieldWeights?: Record<string, number>;
}

const TAG_FIELD = "tag";

/** The feature names of one item (each once). */
export function featureNames(features: ItemFeatures): string[] {
  const out = new Set<string>();
  for (const [field, value] of Object.entries(features.categorical)) {
    for (const v of Array.isArray(value) ? value : [value]) if (v !== "") out.add(`${field}=${v}`);
  }
  for (const t of features.tags) {
    const tag = t.trim().toLowerCase();
    if (tag !== "") out.add(`${TAG_FIELD}=${tag}`);
  }
  return [...out];
}

const fieldOf = (name: string): string => name.slice(0, name.indexOf("="));

/** Builds the feature space from a catalogue: every categorical value, frequent tags, IDF-weighted. */
export function buildFeatureSpace(items: Iterable<ItemFeatures>, opts: FeatureSpaceOptions = {}): FeatureSpace {
  const df = new Map<string, number>();
  let n = 0;
  for (const f of items) {
    n++;
    for (const name of featureNames(f)) df.set(name, (df.get(name) ?? 0) + 1);
  }
  const categorical = [...df.keys()].filter((k) => fieldOf(k) !== TAG_FIELD).sort();
  const tags = [...df.entries()]
    .filter(([k, c]) => fieldOf(k) === TAG_FIELD && c >= (opts.minTagItems ?? 2))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, opts.maxTags ?? 300)
    .map(([k]) => k)
    .sort();
  const names = [...categorical, ...tags];
  const fieldWeight = (field: string) => opts.fieldWeights?.[field] ?? (field === TAG_FIELD ? 0.6 : 1);
  const weights = names.map((name) => fieldWeight(fieldOf(name)) * Math.log(1 + n / df.get(name)!));
  return { names, weights };
}

/**
 * An item's vector: weighted indicators, each field scaled to unit length (so a film with five genres
 * weighs as much in "genres" as one with one), then the whole vector normalised.
 */
export function vectorize(features: ItemFeatures, space: FeatureSpace, index: ReadonlyMap<string, number> = indexOf(space)): Float32Array {
  const v = new Float32Array(space.names.length);
  const byField = new Map<string, number[]>();
  for (const name of featureNames(features)) {
    const at = index.get(name);
    if (at === undefined) continue;
    const field = fieldOf(name);
    let dims = byField.get(field);
    if (!dims) byField.set(field, (dims = []));
    dims.push(at);
  }
  for (const dims of byField.values()) {
    const scale = 1 / Math.sqrt(dims.length);
    for (const at of dims) v[at] = space.weights[at]! * scale;
  }
  let norm = 0;
  for (let i = 0; i < v.length; i++) norm += v[i]! * v[i]!;
  if (norm > 0) {
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < v.length; i++) v[i]! *= inv;
  }
  return v;
}

export const indexOf = (space: FeatureSpace): Map<string, number> => new Map(space.names.map((n, i) => [n, i]));

/** Human-readable keyword of a feature name: the value ("Drama", "1990s", "pixar"). */
export const keywordOf = (name: string): string => name.slice(name.indexOf("=") + 1);
