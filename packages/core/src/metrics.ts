import { mulberry32 } from "./rng.js";
import { FreshrecError } from "./errors.js";

/** Ranking metrics for one query; `relevant` is the set of right answers (for next-cluster prediction usually one). */
type Relevant<T> = ReadonlySet<T> | readonly T[];
const has = <T>(relevant: Relevant<T>, x: T): boolean => (relevant instanceof Set ? relevant.has(x) : (relevant as readonly T[]).includes(x));
const sizeOf = <T>(relevant: Relevant<T>): number => (relevant instanceof Set ? relevant.size : (relevant as readonly T[]).length);

/** 1 if any of the top k ranked answers is relevant, else 0. */
export function hitAtK<T>(ranked: readonly T[], relevant: Relevant<T>, k: number): number {
  for (let i = 0; i < Math.min(k, ranked.length); i++) if (has(relevant, ranked[i]!)) return 1;
  return 0;
}

/** Binary-relevance NDCG of the top k: DCG over the ideal DCG of min(k, |relevant|) hits. */
export function ndcgAtK<T>(ranked: readonly T[], relevant: Relevant<T>, k: number): number {
  let dcg = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) if (has(relevant, ranked[i]!)) dcg += 1 / Math.log2(i + 2);
  let ideal = 0;
  for (let i = 0; i < Math.min(k, sizeOf(relevant)); i++) ideal += 1 / Math.log2(i + 2);
  return ideal === 0 ? 0 : dcg / ideal;
}

/** 1 / rank of the first relevant answer (1-based), 0 when none is ranked. */
export function reciprocalRank<T>(ranked: readonly T[], relevant: Relevant<T>): number {
  for (let i = 0; i < ranked.length; i++) if (has(relevant, ranked[i]!)) return 1 / (i + 1);
  return 0;
}

/** Mean reciprocal rank over queries. */
export const mrr = <T>(queries: Iterable<{ ranked: readonly T[]; relevant: Relevant<T> }>): number =>
  mean(Array.from(queries, (q) => reciprocalRank(q.ranked, q.relevant)));

export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

/** Population variance (divides by n), as a spread over keys rather than an estimate. */
export function variance(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  const m = mean(values);
  let s = 0;
  for (let i = 0; i < values.length; i++) s += (values[i]! - m) ** 2;
  return s / values.length;
}

/** Share of the catalogue that appears among the predictions. */
export function coverage<T>(predicted: Iterable<T>, catalogueSize: number): number {
  if (catalogueSize <= 0) return 0;
  return new Set(predicted).size / catalogueSize;
}

/**
 * Mean self-information -log2 p(c) of recommended clusters, p from engagement counts per cluster
 * (index = cluster id) with add-one smoothing so unseen clusters have finite novelty.
 */
export function novelty(recommended: Iterable<number>, popularity: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < popularity.length; i++) total += popularity[i]!;
  const denom = total + popularity.length;
  let sum = 0;
  let n = 0;
  for (const c of recommended) {
    sum += -Math.log2(((popularity[c] ?? 0) + 1) / denom);
    n++;
  }
  return n === 0 ? Number.NaN : sum / n;
}

export interface ConfidenceInterval {
  mean: number;
  lo: number;
  hi: number;
}

export interface BootstrapOptions {
  seed: number;
  /** Resamples (default 1000). */
  resamples?: number;
  /** Two-sided coverage (default 0.95). */
  level?: number;
}

function percentile(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function resampledMean(values: ArrayLike<number>, rng: () => number): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[Math.floor(rng() * values.length)]!;
  return s / values.length;
}

function interval(point: number, draws: Float64Array, level: number): ConfidenceInterval {
  draws.sort();
  const alpha = (1 - level) / 2;
  return { mean: point, lo: percentile(draws, alpha), hi: percentile(draws, 1 - alpha) };
}

/** Percentile-bootstrap CI of a mean (a rate when values are 0/1). Seeded: same input and seed, same interval. */
export function bootstrapCI(values: ArrayLike<number>, opts: BootstrapOptions): ConfidenceInterval {
  if (values.length === 0) return { mean: Number.NaN, lo: Number.NaN, hi: Number.NaN };
  const rng = mulberry32(opts.seed);
  const draws = new Float64Array(opts.resamples ?? 1000);
  for (let r = 0; r < draws.length; r++) draws[r] = resampledMean(values, rng);
  return interval(mean(values), draws, opts.level ?? 0.95);
}

/** Percentile-bootstrap CI of mean(treatment) - mean(control), resampling each arm independently (A/B tests). */
export function bootstrapDiffCI(treatment: ArrayLike<number>, control: ArrayLike<number>, opts: BootstrapOptions): ConfidenceInterval {
  if (treatment.length === 0 || control.length === 0) return { mean: Number.NaN, lo: Number.NaN, hi: Number.NaN };
  const rng = mulberry32(opts.seed);
  const draws = new Float64Array(opts.resamples ?? 1000);
  for (let r = 0; r < draws.length; r++) draws[r] = resampledMean(treatment, rng) - resampledMean(control, rng);
  return interval(mean(treatment) - mean(control), draws, opts.level ?? 0.95);
}

/**
 * Percentile-bootstrap CI of a paired statistic of two per-query series measured on the same queries (resampling
 * queries, not arms): "diff" = mean(a) - mean(b), "ratio" = sum(a) / sum(b) (a strategy's share of a ceiling).
 */
export function bootstrapPairedCI(a: ArrayLike<number>, b: ArrayLike<number>, stat: "diff" | "ratio", opts: BootstrapOptions): ConfidenceInterval {
  if (a.length !== b.length) throw new FreshrecError("invalid-argument", `paired bootstrap: ${a.length} values against ${b.length}`);
  if (a.length === 0) return { mean: Number.NaN, lo: Number.NaN, hi: Number.NaN };
  const of = (sa: number, sb: number) => (stat === "diff" ? (sa - sb) / a.length : sb === 0 ? Number.NaN : sa / sb);
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    sa += a[i]!;
    sb += b[i]!;
  }
  const point = of(sa, sb);
  const rng = mulberry32(opts.seed);
  const draws = new Float64Array(opts.resamples ?? 1000);
  for (let r = 0; r < draws.length; r++) {
    let ra = 0;
    let rb = 0;
    for (let i = 0; i < a.length; i++) {
      const j = Math.floor(rng() * a.length);
      ra += a[j]!;
      rb += b[j]!;
    }
    draws[r] = of(ra, rb);
  }
  return interval(point, draws, opts.level ?? 0.95);
}
