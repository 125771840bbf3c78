import { DAY_MS, windowedDrift, type ClusterId, type Transition } from "@freshrec/core";
import type { Results } from "./results.js";

/** The paper's drift statistic window over window (top-5 successors, 30-day windows by default) over the whole stream. */
export function driftSeries(transitions: readonly Transition[], windowDays: number, topN = 5): NonNullable<Results["analyses"]["drift"]> {
  const d = windowedDrift(transitions, { windowMs: Math.round(windowDays * DAY_MS), topN });
  const series = d.pairs.filter((p) => p.keys > 0).map((p) => ({ start: p.from + d.windowMs, mean: p.mean, variance: p.variance, keys: p.keys }));
  return { windowDays, topN, mean: Number.isNaN(d.overall.mean) ? 0 : d.overall.mean, series };
}

/** A table as the analyses need it: history key -> ranked clusters. */
export type TopTable = ReadonlyMap<string, readonly ClusterId[]>;

/** Share of keys present in both tables whose top-1 cluster is the same. */
export function top1Agreement(a: TopTable, b: TopTable): { keys: number; agreement: number } {
  let keys = 0;
  let same = 0;
  for (const [key, list] of a) {
    const other = b.get(key);
    if (!other || list.length === 0 || other.length === 0) continue;
    keys++;
    if (list[0] === other[0]) same++;
  }
  return { keys, agreement: keys === 0 ? 0 : same / keys };
}

/** Engagement count per cluster id over transitions before `until` (for novelty). */
export function popularityBefore(transitions: readonly Transition[], until: number, nClusters: number): Float64Array {
  const pop = new Float64Array(nClusters);
  for (const t of transitions) {
    if (t.ts >= until) break;
    if (t.next < nClusters) pop[t.next]!++;
  }
  return pop;
}

