/** Turning window counts into ranked successors: `frequency` (the paper's best) or `trend` (rise against the previous window). */
import type { IndexScope, TransitionIndex } from "./transition-index.js";

export type SuccessorMethod = "frequency" | "trend";

export interface RankedSuccessor {
  clusterId: number;
  /** Transitions to this cluster inside the window. */
  count: number;
  /** frequency: share of the window's transitions; trend: count minus the previous window's count. */
  score: number;
}

export interface Ranked {
  items: RankedSuccessor[];
  support: number;
}

/** Top-n successors of `key` for transitions with asOf - windowMs <= ts < asOf. */
export function rankWindow(
  index: TransitionIndex,
  key: string,
  opts: { asOf: number; windowMs: number; n: number; method: SuccessorMethod },
  scope: IndexScope = "key",
): Ranked {
  const from = opts.asOf - opts.windowMs;
  const current = index.count(key, from, opts.asOf, scope);
  const previous = opts.method === "trend" ? index.count(key, from - opts.windowMs, from, scope).counts : undefined;
  const items: RankedSuccessor[] = [];
  for (const [clusterId, count] of current.counts) {
    const score = previous ? count - (previous.get(clusterId) ?? 0) : count / current.support;
    items.push({ clusterId, count, score });
  }
  items.sort((a, b) => b.score - a.score || b.count - a.count || a.clusterId - b.clusterId);
  return { items: items.slice(0, opts.n), support: current.support };
}
