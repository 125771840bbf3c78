import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { driftBetween } from "@freshrec/core";
import type { Store } from "@freshrec/retriever";
import type { Registry } from "../registry/registry.js";
import type { ArtefactRecord } from "../registry/schemas.js";
import { days, type JobContext } from "../jobs/context.js";
import { bootstrap } from "../jobs/bootstrap.js";
import { finetune } from "../jobs/finetune.js";
import { refreshTable } from "../jobs/refresh.js";
import { decide, type Action, type Decision, type DriftReading, type SchedulerConfig, type SchedulerState } from "./decide.js";

const meanOrUndefined = (m: number) => (Number.isFinite(m) ? m : undefined);

/**
 * Drift as the scheduler reads it at `asOf`: mean Jaccard of top-5 successors (core's driftBetween) between the
 * last `recentDays` and (a) the window the active adapter was trained on, (b) the `recentDays` before them.
 * A figure is left out when no key has enough support in both windows.
 */
export async function measureDrift(store: Store, registry: Registry, asOf: number, recentDays: number): Promise<DriftReading> {
  const r = days(recentDays);
  const recent = await store.transitions({ start: asOf - r, end: asOf });
  const before = await store.transitions({ start: asOf - 2 * r, end: asOf - r });
  const reading: DriftReading = {};
  const recentJaccard = meanOrUndefined(driftBetween(before, recent).mean);
  if (recentJaccard !== undefined) reading.recentJaccard = recentJaccard;
  const adapterId = registry.active().adapter;
  const window = adapterId ? (registry.get(adapterId).manifest.trainingSet as { window?: { start: number; end: number } } | undefined)?.window : undefined;
  if (window) {
    const adapterJaccard = meanOrUndefined(driftBetween(await store.transitions(window), recent).mean);
    if (adapterJaccard !== undefined) reading.adapterJaccard = adapterJaccard;
  }
  return reading;
}

/** Runs one scheduler action; the default runs jobs in this process (replays, tests), `freshrec scheduler` uses child processes. */
export type ActionRunner = (action: Action, ctx: JobContext) => Promise<ArtefactRecord[]>;

export const inProcessRunner: ActionRunner = async (action, ctx) => {
  if (action.kind === "bootstrap") {
    const r = await bootstrap(ctx, { rag: action.rag });
    return [r.base, ...(r.adapter ? [r.adapter] : []), ...(r.table ? [r.table] : [])];
  }
  if (action.kind === "finetune") return [await finetune(ctx)];
  return [await refreshTable(ctx, { rag: action.rag })];
};

export interface StepResult {
  state: SchedulerState;
  drift: DriftReading;
  decisions: Decision[];
  artefacts: ArtefactRecord[];
}

/**
 * One tick at ctx.asOf: measure drift, decide, run the actions in order, and append each decision (with its
 * drift figures and the artefacts it produced) to <models>/scheduler.jsonl.
 */
export async function schedulerStep(
  ctx: JobContext,
  config: SchedulerConfig,
  state: SchedulerState,
  opts: { recentDays?: number; run?: ActionRunner } = {},
): Promise<StepResult> {
  const drift = state.bootstrappedAt === null ? {} : await measureDrift(ctx.store, ctx.registry, ctx.asOf, opts.recentDays ?? config.refreshEveryDays * 2);
  const out = decide(config, state, ctx.asOf, drift);
  const artefacts: ArtefactRecord[] = [];
  for (const [i, action] of out.actions.entries()) {
    const made = await (opts.run ?? inProcessRunner)(action, { ...ctx, by: `scheduler:${config.strategy}` });
    artefacts.push(...made);
    appendFileSync(join(ctx.registry.dir, "scheduler.jsonl"), `${JSON.stringify({ ...out.decisions[i], artefacts: made.map((a) => ({ id: a.id, status: a.status })) })}\n`);
  }
  return { state: out.state, drift, decisions: out.decisions, artefacts };
}
