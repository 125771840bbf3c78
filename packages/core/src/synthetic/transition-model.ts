import { DAY_MS, mulberry32, type Rng } from "../rng.js";
import type { ClusterId } from "../schemas.js";
import { FreshrecError } from "../errors.js";
import type { SyntheticConfig } from "./config.js";

/** A trend: a cluster whose pull rises, peaks and decays over days, for all histories or after one source cluster. */
export interface Trend {
  target: ClusterId;
  /** undefined: applies to every history; else only to histories containing this cluster. */
  source?: ClusterId;
  startDay: number;
  peakDay: number;
  endDay: number;
  strength: number;
}

/** Random links per cluster in the stable affinity graph (each cluster leads strongly to a few others). */
const LINKS = 4;
/** Weight of older history positions relative to the most recent (halves per step back). */
const AGE_DECAY = 0.5;
/** Logit boost of a cluster when it appears: new content starts hot. */
const BIRTH_STRENGTH = 3;

function gaussian(rng: Rng): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Deterministic standard-normal-ish noise for an integer triple (a hash, so nothing C^3-sized is stored). */
function hashNoise(seed: number, a: number, b: number): number {
  const rng = mulberry32((Math.imul(seed ^ 0x9e3779b9, 73856093) ^ Math.imul(a + 1, 19349663) ^ Math.imul(b + 1, 83492791)) >>> 0);
  return gaussian(rng);
}

/** Poisson draw by inversion (rates here are small). */
function poisson(rate: number, rng: Rng): number {
  const u = rng();
  let k = 0;
  let p = Math.exp(-rate);
  let cdf = p;
  while (u > cdf && p > 0) {
    k++;
    p *= rate / k;
    cdf += p;
  }
  return k;
}

export const trendLevel = (t: Trend, day: number): number => {
  if (day < t.startDay || day >= t.endDay) return 0;
  if (day < t.peakDay) return (t.strength * (day - t.startDay + 1)) / (t.peakDay - t.startDay + 1);
  return (t.strength * (t.endDay - day)) / (t.endDay - t.peakDay);
};

/**
 * The ground truth P_t(next | last k clusters): softmax over born clusters not in the history of
 *   popularity + sum over history positions (affinity of that cluster, local trends after it) * age weight
 *   + per-history noise + global trends,
 * with trends and births at day granularity. Distributions are cached per day, their stable part for good.
 */
export class TransitionModel {
  readonly C: number;
  readonly birthDay: Int32Array;
  readonly trends: Trend[];
  private readonly affinity: Float32Array;
  private readonly popularity: Float32Array;
  /** Time-invariant logits per history key (at most C^k entries of C floats). */
  private readonly stable = new Map<string, Float32Array>();
  private cacheDay = -1;
  private cache = new Map<string, Float64Array>();
  private dayGlobal: Float64Array = new Float64Array(0);
  private dayLocal = new Map<ClusterId, Float64Array>();

  /** `keywords[c]`: cluster c's description; shared keywords add affinity (interests that sound alike lead to each other). */
  constructor(
    private readonly cfg: SyntheticConfig,
    keywords: readonly (readonly string[])[],
  ) {
    const rng = mulberry32(cfg.seed ^ 0x5eed);
    const C = (this.C = cfg.clusters);
    if (keywords.length !== C) throw new FreshrecError("invalid-argument", `synthetic world: ${keywords.length} keyword lists for ${C} clusters`);
    this.popularity = Float32Array.from({ length: C }, () => 0.6 * gaussian(rng));
    this.affinity = new Float32Array(C * C);
    for (let i = 0; i < C; i++) {
      for (let l = 0; l < LINKS; l++) {
        const j = Math.floor(rng() * C);
        if (j !== i) this.affinity[i * C + j] = 1.5 + 2 * rng();
      }
    }
    // The described part of the graph: what a text model can read, and all a cluster born later has to go on.
    if (cfg.keywordAffinity > 0)
      for (let i = 0; i < C; i++)
        for (let j = 0; j < C; j++) {
          if (i === j) continue;
          const shared = keywords[i]!.filter((w) => keywords[j]!.includes(w)).length;
          if (shared > 0) this.affinity[i * C + j]! += cfg.keywordAffinity * shared * (0.75 + 0.5 * rng());
        }
    // The last `newClusters` ids appear at days spread over the middle 80 % of the period.
    this.birthDay = new Int32Array(C);
    for (let n = 0; n < cfg.newClusters; n++) {
      const c = C - cfg.newClusters + n;
      this.birthDay[c] = Math.max(1, Math.floor(cfg.days * (0.1 + (0.8 * (n + rng())) / cfg.newClusters)));
    }
    this.trends = this.drawTrends(rng);
  }

  private drawTrends(rng: Rng): Trend[] {
    const { cfg, C } = this;
    const trends: Trend[] = [];
    const rate = cfg.drift * cfg.trendsPerDay;
    const strength = cfg.trendStrength * Math.min(1, cfg.drift) ** 0.5;
    // Trends may start before day 0 so the world is already in motion when it begins.
    for (let day = -Math.ceil(cfg.trendRiseDays + cfg.trendDecayDays); day < cfg.days; day++) {
      const count = poisson(rate, rng);
      for (let i = 0; i < count; i++) {
        const rise = Math.max(1, Math.round(cfg.trendRiseDays * (0.5 + rng())));
        const decay = Math.max(1, Math.round(cfg.trendDecayDays * (0.5 + rng())));
        const trend: Trend = { target: Math.floor(rng() * C), startDay: day, peakDay: day + rise, endDay: day + rise + decay, strength: strength * (0.5 + rng()) };
        if (rng() >= cfg.globalTrendShare) trend.source = Math.floor(rng() * C);
        trends.push(trend);
      }
    }
    for (let c = 0; c < C; c++) {
      const b = this.birthDay[c]!;
      if (b > 0) trends.push({ target: c, startDay: b, peakDay: b, endDay: b + Math.round(cfg.trendDecayDays * 2), strength: BIRTH_STRENGTH });
    }
    return trends;
  }

  dayOf(t: number): number {
    return Math.floor((t - this.cfg.startMs) / DAY_MS);
  }

  isBorn(c: ClusterId, day: number): boolean {
    return this.birthDay[c]! <= day;
  }

  private enterDay(day: number): void {
    if (day === this.cacheDay) return;
    this.cacheDay = day;
    this.cache.clear();
    this.dayGlobal = new Float64Array(this.C);
    this.dayLocal.clear();
    for (const tr of this.trends) {
      const level = trendLevel(tr, day);
      if (level === 0) continue;
      let into = this.dayGlobal;
      if (tr.source !== undefined) {
        into = this.dayLocal.get(tr.source) ?? new Float64Array(this.C);
        this.dayLocal.set(tr.source, into);
      }
      into[tr.target]! += level;
    }
  }

  /** The time-invariant part of the logits for a history: popularity, age-weighted affinity, per-history noise. */
  private stableLogits(hist: readonly ClusterId[], key: string): Float32Array {
    const hit = this.stable.get(key);
    if (hit) return hit;
    const { C } = this;
    const logits = Float32Array.from(this.popularity);
    let weight = 1;
    for (let i = hist.length - 1; i >= 0; i--, weight *= AGE_DECAY) {
      const h = hist[i]!;
      for (let n = 0; n < C; n++) logits[n]! += weight * this.affinity[h * C + n]!;
    }
    if (this.cfg.pairNoise > 0) {
      const keyHash = hist.reduce((acc, c) => Math.imul(acc, 31) + c + 1, 17);
      for (let n = 0; n < C; n++) logits[n]! += this.cfg.pairNoise * hashNoise(this.cfg.seed, keyHash, n);
    }
    this.stable.set(key, logits);
    return logits;
  }

  /** P_t(next | history) over all cluster ids (0 for unborn clusters and those in the history). `history` oldest first. */
  distribution(history: readonly ClusterId[], t: number): Float64Array {
    const day = this.dayOf(t);
    this.enterDay(day);
    const hist = history.slice(-this.cfg.k);
    const key = hist.join(",");
    const cached = this.cache.get(key);
    if (cached) return cached;
    const { C } = this;
    const logits = Float64Array.from(this.stableLogits(hist, key));
    let weight = 1;
    for (let i = hist.length - 1; i >= 0; i--, weight *= AGE_DECAY) {
      const local = this.dayLocal.get(hist[i]!);
      if (local) for (let n = 0; n < C; n++) logits[n]! += weight * local[n]!;
    }
    let max = -Infinity;
    for (let n = 0; n < C; n++) {
      if (!this.isBorn(n, day) || hist.includes(n)) {
        logits[n] = -Infinity;
        continue;
      }
      logits[n]! += this.dayGlobal[n]!;
      if (logits[n]! > max) max = logits[n]!;
    }
    let sum = 0;
    for (let n = 0; n < C; n++) {
      logits[n] = logits[n] === -Infinity ? 0 : Math.exp(logits[n]! - max);
      sum += logits[n]!;
    }
    for (let n = 0; n < C; n++) logits[n]! /= sum;
    this.cache.set(key, logits);
    return logits;
  }

  /** Draws a next cluster from P_t(. | history). */
  sample(history: readonly ClusterId[], t: number, rng: Rng): ClusterId {
    const p = this.distribution(history, t);
    let u = rng();
    for (let n = 0; n < p.length; n++) {
      u -= p[n]!;
      if (u < 0) return n;
    }
    for (let n = p.length - 1; n >= 0; n--) if (p[n]! > 0) return n;
    return 0;
  }

  /** Popularity-weighted draw of a born cluster (session starts, negative engagement). */
  samplePopular(day: number, rng: Rng, exclude: readonly ClusterId[] = []): ClusterId {
    this.enterDay(day);
    const w = new Float64Array(this.C);
    let sum = 0;
    for (let n = 0; n < this.C; n++) {
      if (!this.isBorn(n, day) || exclude.includes(n)) continue;
      w[n] = Math.exp(this.popularity[n]! + this.dayGlobal[n]!);
      sum += w[n]!;
    }
    let u = rng() * sum;
    let last = 0;
    for (let n = 0; n < this.C; n++) {
      if (w[n] === 0) continue;
      last = n;
      u -= w[n]!;
      if (u < 0) return n;
    }
    return last;
  }
}
