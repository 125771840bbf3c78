import { FreshrecError } from "@freshrec/core";
import { days, JobError, type JobContext } from "./context.js";

/** The data cannot support the job yet; says how much there is and how much it needs (not a gate failure on nothing). */
export class DataTooThinError extends FreshrecError {
  constructor(job: string, message: string) {
    super("data-too-thin", `${job}: ${message}`);
  }
}

export interface TrainingWindow {
  start: number;
  end: number;
  /** Set when the configured days held too few transitions and the window was widened to hold enough. */
  widened?: string;
}

/** What sizing a window reads of a job's context. */
export type WindowContext = Pick<JobContext, "store" | "config" | "asOf" | "onProgress">;

const iso = (t: number) => new Date(t).toISOString();

/**
 * Windows are configured in days, but traffic is not uniform (sparse first months, growth over years): a window
 * whose days hold fewer than `minWindowTransitions` positive transitions is widened, away from its anchor, until
 * it holds that many. When all the data up to asOf holds fewer, the job cannot run yet and says so with numbers.
 */
async function sized(ctx: WindowContext, job: string, from: "start" | "end", start: number, end: number): Promise<TrainingWindow> {
  const need = ctx.config.minWindowTransitions;
  const inDays = await ctx.store.transitions({ start, end });
  if (inDays.length >= need) return { start, end };
  const range = (await ctx.store.timeRange())!;
  const all = await ctx.store.transitions({ start: range.min, end: ctx.asOf });
  if (all.length < need)
    throw new DataTooThinError(
      job,
      `${all.length} positive transitions in the store from ${iso(range.min)} to ${iso(ctx.asOf)}, and a training window needs at least ${need} (jobs config minWindowTransitions); ${inDays.length} fall in its configured days [${iso(start)}, ${iso(end)})`,
    );
  all.sort((a, b) => a.ts - b.ts);
  const widened =
    from === "start" ? { start, end: all[need - 1]!.ts + 1 } : { start: all[all.length - need]!.ts, end };
  const note = `its configured days [${iso(start)}, ${iso(end)}) held ${inDays.length} positive transitions, fewer than ${need}: widened to [${iso(widened.start)}, ${iso(widened.end)})`;
  ctx.onProgress?.({ phase: `${job} window`, done: 0, info: { widened: note } });
  return { ...widened, widened: note };
}

/** The base's window: the first `bootstrapDays` of data (widened forward, never past asOf, when thin). */
export async function bootstrapWindow(ctx: WindowContext): Promise<TrainingWindow> {
  const range = await ctx.store.timeRange();
  if (!range) throw new JobError("bootstrap", "the store holds no events: ingest some first");
  return sized(ctx, "bootstrap", "start", range.min, Math.min(ctx.asOf, range.min + days(ctx.config.bootstrapDays)));
}

/** A fine-tune's window: the last `finetuneDays` before asOf (widened into the past when thin). */
export async function finetuneWindow(ctx: WindowContext): Promise<TrainingWindow> {
  if (!(await ctx.store.timeRange())) throw new JobError("finetune", "the store holds no events: ingest some first");
  return sized(ctx, "finetune", "end", ctx.asOf - days(ctx.config.finetuneDays), ctx.asOf);
}

/**
 * Where a table's holdout starts: the last `holdoutDays` before asOf, reaching further back when those days hold
 * fewer than `minHoldoutTransitions` (sparse traffic), so the gate and the blend fit judge on real transitions.
 */
export async function tableHoldoutStart(ctx: WindowContext, holdoutDays: number, minHoldoutTransitions: number): Promise<number> {
  const start = ctx.asOf - days(holdoutDays);
  if (minHoldoutTransitions === 0 || (await ctx.store.transitions({ start, end: ctx.asOf })).length >= minHoldoutTransitions) return start;
  const range = await ctx.store.timeRange();
  if (!range) return start;
  const all = await ctx.store.transitions({ start: range.min, end: ctx.asOf });
  all.sort((a, b) => a.ts - b.ts);
  return Math.min(start, all[Math.max(0, all.length - minHoldoutTransitions)]?.ts ?? start);
}
