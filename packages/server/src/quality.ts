import { z } from "zod";
import type { ServedAnswer } from "@freshrec/retriever";
import type { ServerConfig } from "./config.js";
import type { ServerMetrics } from "./metrics.js";
import type { StorePort } from "./ports.js";
import { mergeExposures, type ServedAnswerRecorder } from "./served-recorder.js";
import type { ExperimentControl } from "./experiment.js";

/**
 * Online quality, the live counterpart of the replay's hit rate: of the answers served to a user (exposures:
 * identical answers within a repeat window count once, see the recorder), the share
 * whose top-1 (or any of whose top-k clusters) the user engaged with positively within the horizon after the
 * answer. An answer counts once its horizon has passed ("settled"); younger ones are "open" and reported
 * apart with their hits so far (counting them would bias the rate: a hit settles early, a miss only at the end).
 */

const RateSchema = z.object({ rate: z.number().nullable(), lo: z.number().nullable(), hi: z.number().nullable() }).describe("share with its 95 % Wilson interval; null without settled answers");

export const QualityGroupSchema = z.object({
  tableId: z.string().nullable(),
  adapterId: z.string().nullable(),
  mode: z.string(),
  arm: z.string(),
  settled: z.number().int(),
  top1: RateSchema,
  topk: RateSchema,
  open: z.number().int(),
  openTop1Hits: z.number().int().describe("open answers whose top-1 the user already engaged with"),
  openTopkHits: z.number().int(),
});

const DifferenceSchema = z.object({ diff: z.number(), lo: z.number(), hi: z.number() }).describe("candidate minus active, with its 95 % normal-approximation interval");

export const ExperimentRunningSchema = z.object({
  candidateTable: z.string().nullable().describe("the candidate arm's table (null: the active table answers both arms in table mode)"),
  candidateAdapter: z.string().nullable().describe("the adapter named when the experiment started (null: the candidate table's own)"),
  candidateScorer: z.object({ baseId: z.string(), adapterId: z.string().nullable() }).nullable().describe("what scores the candidate arm's live answers (null: the active scorer)"),
  share: z.number(),
  salt: z.string(),
  since: z.number().describe("wall-clock ms it started"),
  by: z.string(),
});

export const QualityAnswerSchema = z.object({
  computedAt: z.number().describe("serving clock of the report (ms)"),
  horizonMs: z.number(),
  windowMs: z.number().describe("the window counted: quality.windowMs, or shorter when it held more than quality.maxAnswers stored answers"),
  answers: z.object({
    settled: z.number().int(),
    open: z.number().int(),
    requests: z.number().int().describe("requests the counted answers stand for (repeats within a repeat window are one answer)"),
    notStored: z.number().int().describe("recorded answers held in memory (not flushed yet, or on a replica)"),
  }),
  groups: z.array(QualityGroupSchema).describe("per served table, adapter, mode and experiment arm"),
  series: z
    .array(z.object({ label: z.string(), points: z.array(z.object({ at: z.number(), settled: z.number().int(), top1: z.number().nullable(), topk: z.number().nullable() })) }))
    .describe("settled rates per time bucket (by serving time) per artefact"),
  experiment: z
    .object({
      running: ExperimentRunningSchema.nullable(),
      arms: z.array(z.object({ arm: z.string(), settled: z.number().int(), top1: RateSchema, topk: RateSchema })),
      difference: z.object({ top1: DifferenceSchema, topk: DifferenceSchema }).nullable().describe("null until both arms have settled answers"),
    })
    .nullable()
    .describe("the A/B between the active artefacts and a candidate: null when none runs and no candidate-arm answer is in the window"),
});
export type QualityAnswer = z.infer<typeof QualityAnswerSchema>;
type Rate = z.infer<typeof RateSchema>;

/**
 * Wilson score interval of a proportion. Closed form rather than core's bootstrap: this runs on the serving
 * event loop every few seconds, and a bootstrap costs answers x resamples.
 */
export function wilson(hits: number, n: number, z = 1.959964): Rate {
  if (n === 0) return { rate: null, lo: null, hi: null };
  const p = hits / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  // At 0 and n hits the bounds are exactly 0 and 1 (rounding would leave 1e-16 off them).
  return { rate: p, lo: hits === 0 ? 0 : Math.max(0, centre - half), hi: hits === n ? 1 : Math.min(1, centre + half) };
}

type Engagements = Map<string, { ts: number[]; clusters: number[] }>;

/** Positive engagements per user, sorted by time. */
function byUser(events: ReadonlyArray<{ userId: string; clusterId: number; ts: number }>): Engagements {
  const sorted = [...events].sort((a, b) => a.ts - b.ts);
  const out: Engagements = new Map();
  for (const e of sorted) {
    let u = out.get(e.userId);
    if (!u) out.set(e.userId, (u = { ts: [], clusters: [] }));
    u.ts.push(e.ts);
    u.clusters.push(e.clusterId);
  }
  return out;
}

/** First index with ts[i] > t. */
function after(ts: number[], t: number): number {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ts[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether the user engaged with the answer's top-1 / any of its clusters in (ts, ts + horizon]. */
function outcome(a: ServedAnswer, events: Engagements, horizonMs: number): { top1: boolean; topk: boolean } {
  const u = events.get(a.userId);
  let top1 = false;
  let topk = false;
  if (!u) return { top1, topk };
  const end = a.ts + horizonMs;
  for (let i = after(u.ts, a.ts); i < u.ts.length && u.ts[i]! <= end; i++) {
    const c = u.clusters[i]!;
    if (c === a.clusters[0]) top1 = true;
    if (a.clusters.includes(c)) topk = true;
  }
  return { top1, topk };
}

/** The report over `answers` as of `now` (pure: the route and tests call it alike). */
export function qualityReport(
  answers: readonly ServedAnswer[],
  events: ReadonlyArray<{ userId: string; clusterId: number; ts: number }>,
  opts: { now: number; horizonMs: number; windowMs: number; bucketMs: number; notStored: number; experiment?: z.infer<typeof ExperimentRunningSchema> | null },
): QualityAnswer {
  const engagements = byUser(events);
  const groups = new Map<string, z.infer<typeof QualityGroupSchema> & { top1Hits: number; topkHits: number }>();
  const buckets = new Map<string, Map<number, { n: number; top1: number; topk: number }>>();
  const arms = new Map<string, { n: number; top1: number; topk: number }>();
  let settled = 0;
  let open = 0;
  let requests = 0;
  for (const a of answers) {
    requests += a.served;
    const key = `${a.tableId}|${a.adapterId}|${a.mode}|${a.arm}`;
    let g = groups.get(key);
    if (!g) {
      const none = wilson(0, 0);
      g = { tableId: a.tableId, adapterId: a.adapterId, mode: a.mode, arm: a.arm, settled: 0, top1: none, topk: none, open: 0, openTop1Hits: 0, openTopkHits: 0, top1Hits: 0, topkHits: 0 };
      groups.set(key, g);
    }
    const hit = outcome(a, engagements, opts.horizonMs);
    if (a.ts + opts.horizonMs > opts.now) {
      open++;
      g.open++;
      g.openTop1Hits += Number(hit.top1);
      g.openTopkHits += Number(hit.topk);
      continue;
    }
    settled++;
    g.settled++;
    g.top1Hits += Number(hit.top1);
    g.topkHits += Number(hit.topk);
    const armTotals = arms.get(a.arm) ?? { n: 0, top1: 0, topk: 0 };
    armTotals.n++;
    armTotals.top1 += Number(hit.top1);
    armTotals.topk += Number(hit.topk);
    arms.set(a.arm, armTotals);
    // Table answers by their table; answers scored live (live mode, table fallbacks) by their adapter.
    const label = `${a.mode === "table" ? a.tableId : `${a.mode} ${a.adapterId ?? a.baseId ?? "base"}`}${a.arm === "active" ? "" : ` (${a.arm})`}`;
    let series = buckets.get(label);
    if (!series) buckets.set(label, (series = new Map()));
    const at = Math.floor(a.ts / opts.bucketMs) * opts.bucketMs;
    const b = series.get(at) ?? { n: 0, top1: 0, topk: 0 };
    b.n++;
    b.top1 += Number(hit.top1);
    b.topk += Number(hit.topk);
    series.set(at, b);
  }
  return {
    computedAt: opts.now,
    horizonMs: opts.horizonMs,
    windowMs: opts.windowMs,
    answers: { settled, open, requests, notStored: opts.notStored },
    groups: [...groups.values()].map(({ top1Hits, topkHits, ...g }) => ({ ...g, top1: wilson(top1Hits, g.settled), topk: wilson(topkHits, g.settled) })),
    series: [...buckets].map(([label, points]) => ({
      label,
      points: [...points].sort((x, y) => x[0] - y[0]).map(([at, b]) => ({ at, settled: b.n, top1: b.top1 / b.n, topk: b.topk / b.n })),
    })),
    experiment: experimentReport(arms, opts.experiment ?? null, answers.some((a) => a.arm === "candidate")),
  };
}

function experimentReport(arms: Map<string, { n: number; top1: number; topk: number }>, running: z.infer<typeof ExperimentRunningSchema> | null, candidateServed: boolean): QualityAnswer["experiment"] {
  if (!running && !candidateServed) return null;
  const active = arms.get("active") ?? { n: 0, top1: 0, topk: 0 };
  const candidate = arms.get("candidate") ?? { n: 0, top1: 0, topk: 0 };
  const both = active.n > 0 && candidate.n > 0;
  return {
    running,
    arms: [["active", active] as const, ["candidate", candidate] as const].map(([arm, t]) => ({ arm, settled: t.n, top1: wilson(t.top1, t.n), topk: wilson(t.topk, t.n) })),
    difference: both ? { top1: difference(candidate.top1, candidate.n, active.top1, active.n), topk: difference(candidate.topk, candidate.n, active.topk, active.n) } : null,
  };
}

/** Difference of two proportions with the normal-approximation (Wald) interval of two independent samples. */
export function difference(hitsB: number, nB: number, hitsA: number, nA: number, z = 1.959964): { diff: number; lo: number; hi: number } {
  const pb = hitsB / nB;
  const pa = hitsA / nA;
  const se = Math.sqrt((pb * (1 - pb)) / nB + (pa * (1 - pa)) / nA);
  return { diff: pb - pa, lo: pb - pa - z * se, hi: pb - pa + z * se };
}

/** The served answers in the window (stored ones plus what the recorder still holds), joined with the store's events; cached briefly. */
export class OnlineQuality {
  private cached: { at: number; report: Promise<QualityAnswer> } | undefined;

  constructor(
    private readonly o: {
      store: Pick<StorePort, "servedAnswers" | "positiveEvents">;
      recorder: ServedAnswerRecorder;
      experiments: ExperimentControl;
      settings: ServerConfig["quality"];
      /** recording.repeatWindowMs: rows of one exposure split by a flush are joined before counting. */
      repeatWindowMs: number;
      clock: () => number;
      metrics: ServerMetrics;
    },
  ) {}

  report(): Promise<QualityAnswer> {
    const wall = performance.now();
    if (this.cached && wall - this.cached.at < this.o.settings.cacheMs) return this.cached.report;
    const report = this.compute();
    this.cached = { at: wall, report };
    report.catch(() => {
      if (this.cached?.report === report) this.cached = undefined;
    });
    return report;
  }

  private async compute(): Promise<QualityAnswer> {
    const { horizonMs, bucketMs, maxAnswers } = this.o.settings;
    const now = this.o.clock();
    const end = Number.MAX_SAFE_INTEGER;
    // Bounded work: with more stored answers than maxAnswers in the window, only its latest part (about that many) counts.
    const inWindow = await this.o.store.servedAnswers.count({ from: now - this.o.settings.windowMs, to: end });
    const windowMs = inWindow > maxAnswers ? Math.floor((this.o.settings.windowMs * maxAnswers) / inWindow) : this.o.settings.windowMs;
    const from = now - windowMs;
    const { stored, pending } = await this.o.recorder.between(async (buffered) => ({
      stored: await this.o.store.servedAnswers.read({ from, to: end }),
      pending: buffered.filter((a) => a.ts >= from),
    }));
    const answers = mergeExposures([...stored, ...pending], this.o.repeatWindowMs);
    const users = new Set(answers.map((a) => a.userId));
    const events = answers.length === 0 ? [] : (await this.o.store.positiveEvents({ start: from, end: Number.MAX_SAFE_INTEGER })).filter((e) => users.has(e.userId));
    const experiment = this.o.experiments.current?.describe() ?? null;
    const report = qualityReport(answers, events, { now, horizonMs, windowMs, bucketMs, notStored: pending.length, experiment });
    this.publish(report);
    return report;
  }

  private publish(report: QualityAnswer): void {
    const { onlineHitRate, onlineSettledAnswers } = this.o.metrics;
    onlineHitRate.reset();
    onlineSettledAnswers.reset();
    for (const g of report.groups) {
      const labels = { table_id: g.tableId ?? "", adapter_id: g.adapterId ?? "", mode: g.mode, arm: g.arm };
      onlineSettledAnswers.set(labels, g.settled);
      if (g.top1.rate !== null) onlineHitRate.set({ ...labels, at: "top1" }, g.top1.rate);
      if (g.topk.rate !== null) onlineHitRate.set({ ...labels, at: "topk" }, g.topk.rate);
    }
  }
}
