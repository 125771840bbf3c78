import { z } from "zod";
import { numberOption } from "../import/options.js";

/** Upper bound of the default cluster count (the paper's catalogue-scale interest clusters; model vocabulary and table size grow with it). */
export const MAX_DEFAULT_CLUSTERS = 64;

/** The default rule in words, for help texts. */
export const CLUSTER_COUNT_RULE = `min(${MAX_DEFAULT_CLUSTERS}, ceil(sqrt(items)), distinct feature signatures)`;

/** How many clusters a catalogue got, and why: every command prints `reason`. */
export interface ClusterCount {
  /** Clusters in the result. */
  clusters: number;
  /** k that k-means ran with. */
  k: number;
  /** k asked for (--clusters / --k); absent when the default rule chose. */
  requested?: number;
  /** Items clustered (those with at least one feature in the feature space). */
  items: number;
  /** Distinct feature signatures among them: no two clusters can be told apart below this. */
  signatures: number;
  /** k-means clusters folded into another for sharing its description. */
  merged: number;
  reason: string;
}

const fmt = (n: number) => n.toLocaleString("en-US");

/**
 * The cluster count k-means runs with. Default rule: min(64, ceil(sqrt(items)), distinct feature signatures)
 * — about sqrt(n) items per cluster, never more clusters than there are distinguishable kinds of item, at most
 * 64. A requested count is used as given but capped at the distinct signatures. Returns k and the reason.
 */
export function chooseClusterCount(o: { items: number; signatures: number; requested?: number }): { k: number; reason: string } {
  if (o.requested !== undefined) {
    return o.requested <= o.signatures
      ? { k: o.requested, reason: `${o.requested} requested` }
      : { k: o.signatures, reason: `${o.requested} requested, capped at the ${fmt(o.signatures)} distinct feature signatures` };
  }
  const root = Math.ceil(Math.sqrt(o.items));
  const k = Math.max(1, Math.min(MAX_DEFAULT_CLUSTERS, root, o.signatures));
  return { k, reason: `default rule min(${MAX_DEFAULT_CLUSTERS}, ceil(sqrt(${fmt(o.items)} items)) = ${root}, ${fmt(o.signatures)} distinct feature signatures)` };
}

/** `--clusters N` / `--k N`: a positive integer. */
export const parseClusterCountOption = (text: string, option = "--clusters"): number =>
  numberOption(option, text, z.number().int().positive(), "a positive integer (number of clusters)");
