import type { ClusterId, Event, Transition } from "./schemas.js";
import { DAY_MS } from "./rng.js";
import { streamTransitions } from "./transition-stream.js";
import { FreshrecError } from "./errors.js";
import { historyKey } from "./sequences.js";
import { mean, variance } from "./metrics.js";

/** Successor counts per history key: key "c1,c2" -> next cluster -> count. */
export type SuccessorCounts = Map<string, Map<ClusterId, number>>;

export function countSuccessors(transitions: Iterable<Pick<Transition, "history" | "next">>, into: SuccessorCounts = new Map()): SuccessorCounts {
  for (const t of transitions) addSuccessor(into, historyKey(t.history), t.next);
  return into;
}

function addSuccessor(counts: SuccessorCounts, key: string, next: ClusterId): void {
  let m = counts.get(key);
  if (!m) counts.set(key, (m = new Map()));
  m.set(next, (m.get(next) ?? 0) + 1);
}

const total = (m: ReadonlyMap<ClusterId, number>): number => {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
};

/** The n most frequent successors, most frequent first; ties broken by lower cluster id (deterministic). */
export function topSuccessors(successors: ReadonlyMap<ClusterId, number>, n: number): ClusterId[] {
  return [...successors.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, n)
    .map(([c]) => c);
}

export function jaccard<T>(a: readonly T[], b: readonly T[]): number {
  const sa = new Set(a);
  const sb = new Set(b);
  if (sa.size === 0 && sb.size === 0) return 1;
  let inter = 0;
  for (const x of sa) if (sb.has(x)) inter++;
  return inter / (sa.size + sb.size - inter);
}

export interface DriftOptions {
  /** Successors compared per key (the paper: 5). */
  topN?: number;
  /** A key counts only with at least this many transitions in each of the two windows. */
  minSupport?: number;
}
export const DEFAULT_DRIFT_TOP_N = 5;
export const DEFAULT_DRIFT_MIN_SUPPORT = 5;

export interface DriftStat {
  /** Mean Jaccard similarity of top-n successors over supported keys (NaN when no key is supported). */
  mean: number;
  variance: number;
  /** Supported keys compared. */
  keys: number;
}

/** Jaccard similarity of each supported key's top-n successors between two windows' counts. */
export function keySimilarities(a: SuccessorCounts, b: SuccessorCounts, opts: DriftOptions = {}): number[] {
  const topN = opts.topN ?? DEFAULT_DRIFT_TOP_N;
  const minSupport = opts.minSupport ?? DEFAULT_DRIFT_MIN_SUPPORT;
  const sims: number[] = [];
  for (const [key, sa] of a) {
    const sb = b.get(key);
    if (!sb || total(sa) < minSupport || total(sb) < minSupport) continue;
    sims.push(jaccard(topSuccessors(sa, topN), topSuccessors(sb, topN)));
  }
  return sims;
}

const summarize = (sims: number[]): DriftStat => ({ mean: mean(sims), variance: variance(sims), keys: sims.length });

/** The paper's drift statistic between two windows of transitions. */
export function driftBetween(
  a: Iterable<Pick<Transition, "history" | "next">>,
  b: Iterable<Pick<Transition, "history" | "next">>,
  opts: DriftOptions = {},
): DriftStat {
  return summarize(keySimilarities(countSuccessors(a), countSuccessors(b), opts));
}

export interface WindowPairDrift extends DriftStat {
  /** Start of the earlier window and end (exclusive) of the later one, ms. */
  from: number;
  to: number;
}

export interface WindowedDrift {
  windowMs: number;
  pairs: WindowPairDrift[];
  /** Over every supported (key, consecutive window pair): mean and variance of the similarities. */
  overall: DriftStat;
  transitions: number;
}

/**
 * Drift window over window (e.g. month over month) of a transition stream in time order. Windows are
 * consecutive [start + i*windowMs, start + (i+1)*windowMs) from the first transition; only the current and
 * previous window's counts are held, so it runs over streams of any length.
 */
export function windowedDrift(transitions: Iterable<Pick<Transition, "history" | "next" | "ts">>, opts: DriftOptions & { windowMs: number }): WindowedDrift {
  const pairs: WindowPairDrift[] = [];
  const all: number[] = [];
  let start: number | undefined;
  let index = 0;
  let prev: SuccessorCounts | undefined;
  let cur: SuccessorCounts = new Map();
  let n = 0;
  const closeWindow = () => {
    if (prev) {
      const sims = keySimilarities(prev, cur, opts);
      all.push(...sims);
      pairs.push({ from: start! + (index - 1) * opts.windowMs, to: start! + (index + 1) * opts.windowMs, ...summarize(sims) });
    }
    prev = cur;
    cur = new Map();
    index++;
  };
  for (const t of transitions) {
    start ??= t.ts;
    if (t.ts < start + index * opts.windowMs) throw new FreshrecError("out-of-order", `windowedDrift: transition at ts ${t.ts} comes after a later window began`);
    while (t.ts >= start + (index + 1) * opts.windowMs) closeWindow();
    addSuccessor(cur, historyKey(t.history), t.next);
    n++;
  }
  // The last window may be partial; it is compared like the others (fewer of its keys reach support).
  if (start !== undefined) closeWindow();
  return { windowMs: opts.windowMs, pairs, overall: summarize(all), transitions: n };
}

/**
 * The drift statistic of an engagement stream: events (in compareEvents order) -> clusters -> novel
 * transitions over the last k clusters -> window-over-window drift.
 */
export function eventDrift(
  events: Iterable<Pick<Event, "userId" | "itemId" | "ts" | "signal">>,
  clusterOf: (itemId: string) => ClusterId | undefined,
  opts: DriftOptions & { windowMs: number; k: number; threshold?: number },
): WindowedDrift {
  return windowedDrift(streamTransitions(events, clusterOf, opts), opts);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS };

/** "30d", "12h", "2w", "500ms" -> milliseconds. */
export function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new FreshrecError("invalid-argument", `duration ${JSON.stringify(text)}: expected a positive number with unit ms, s, m, h, d or w (e.g. 30d)`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}
