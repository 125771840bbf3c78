import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { DAY_MS, driftBetween, FreshrecError } from "@freshrec/core";
import type { Store } from "@freshrec/retriever";
import type { Registry } from "@freshrec/registry";
import type { ArtefactRecord } from "@freshrec/registry";
import { writeFileAtomic } from "@freshrec/registry";
import { days, type JobContext } from "../jobs/context.js";
import { bootstrap } from "../jobs/bootstrap.js";
import { finetune } from "../jobs/finetune.js";
import { refreshTable } from "../jobs/refresh.js";
import { decide, initialSchedulerState, type Action, type Decision, type DriftReading, type SchedulerConfig, type SchedulerState } from "./decide.js";

/** Where the loop reads "now": the wall clock in production, a simulated or replayed one elsewhere. */
export interface Clock {
  now(): number;
}
export const wallClock: Clock = { now: () => Date.now() };

/** Brings events into the store up to a time: a synthetic world, a replayed dataset. Production has none (events arrive over HTTP). */
export interface EventSource {
  /** Ingests every event with ts < t not yet ingested; returns how many it ingested. */
  syncTo(t: number): Promise<number>;
}

/** Runs one scheduler action; resolves with the artefacts it registered. */
export type ActionRunner = (action: Action, ctx: JobContext) => Promise<ArtefactRecord[]>;

/** Runs jobs in this process (replays, tests); `JobProcesses.actionRunner` runs them as child processes. */
export const inProcessRunner: ActionRunner = async (action, ctx) => {
  if (action.kind === "bootstrap") {
    const r = await bootstrap(ctx, { rag: action.rag });
    return [r.base, ...(r.adapter ? [r.adapter] : []), ...(r.table ? [r.table] : [])];
  }
  if (action.kind === "finetune") return [await finetune(ctx)];
  return [await refreshTable(ctx, { rag: action.rag })];
};

const meanOrUndefined = (m: number) => (Number.isFinite(m) ? m : undefined);

/**
 * Drift as the scheduler reads it at `asOf`: mean Jaccard of top-5 successors (core's driftBetween) between the
 * last `windowMs` and (a) the window the active adapter was trained on, (b) the `windowMs` before it. A figure
 * is left out when no key has enough support in both windows. The only drift measure of the loop.
 */
export async function measureDrift(store: Store, registry: Registry, asOf: number, windowMs: number): Promise<DriftReading> {
  const recent = await store.transitions({ start: asOf - windowMs, end: asOf });
  const before = await store.transitions({ start: asOf - 2 * windowMs, end: asOf - windowMs });
  const reading: DriftReading = {};
  const recentJaccard = meanOrUndefined(driftBetween(before, recent).mean);
  if (recentJaccard !== undefined) reading.recentJaccard = recentJaccard;
  const adapterId = registry.active().adapter;
  const window = adapterId ? registry.getOf("adapter", adapterId).manifest.trainingSet.window : undefined;
  if (window) {
    const adapterJaccard = meanOrUndefined(driftBetween(await store.transitions(window), recent).mean);
    if (adapterJaccard !== undefined) reading.adapterJaccard = adapterJaccard;
  }
  return reading;
}

/** Persisted between runs of a long-lived loop (`<models>/loop-state.json`). */
export const LoopStateSchema = z.strictObject({
  version: z.literal(1),
  scheduler: z.strictObject({ bootstrappedAt: z.number().nullable(), lastFinetune: z.number().nullable(), lastRefresh: z.number().nullable() }),
});
export type LoopState = z.infer<typeof LoopStateSchema>;

/** One line of `<models>/scheduler.jsonl`: a decision, its drift figures and what its action produced. */
export const DecisionLogLineSchema = z.object({
  at: z.number(),
  action: z.enum(["bootstrap", "finetune", "refresh"]),
  reason: z.string(),
  drift: z.object({ adapterJaccard: z.number().optional(), recentJaccard: z.number().optional() }),
  refreshEveryMs: z.number(),
  asOf: z.number(),
  outcome: z.enum(["done", "failed"]),
  error: z.string().optional(),
  artefacts: z.array(z.object({ id: z.string(), status: z.string() })),
});
export type DecisionLogLine = z.infer<typeof DecisionLogLineSchema>;

/**
 * How the loop places its windows (the jobs' `asOf`):
 *   clock  at the clock's now (replays and the demo: the clock is the data's time)
 *   data   at the clock's now while the store has recent events; when its newest event is older than
 *          `staleAfterMs` (history imported, no live traffic yet), just after that newest event, so windows
 *          are not empty. Live events move it back to the clock.
 */
export type AnchorMode = "clock" | "data";

export interface Anchor {
  mode: "clock" | "newest-event";
  asOf: number;
  newestEvent: number | null;
  reason?: string;
}

/** The log lines the loop and its job processes write (pino's shape). */
export interface LoopLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface UpdateLoopOptions {
  store: Store;
  registry: Registry;
  scheduler: SchedulerConfig;
  clock: Clock;
  /** A job's context at asOf (the loop sets `by`). */
  jobContext: (asOf: number) => JobContext;
  runner: ActionRunner;
  source?: EventSource;
  /** every-step: sync the source before each step (the demo streams its world); when-needed: only before drift readings and jobs (replays). */
  sourceSync?: "every-step" | "when-needed";
  anchor?: AnchorMode;
  /** For anchor "data": how old the newest event may be before windows anchor at it (default: the RAG window). */
  staleAfterMs?: number;
  /** Positive transitions the store must hold before the first bootstrap (default 0). */
  minTransitions?: number;
  /** Drift is read at most this often (clock ms); between readings the last one stands. */
  driftEveryMs: number;
  /** Window of the drift reading (default: the fine-tune window of the job config). */
  driftWindowMs?: number;
  /** always: read drift for every strategy (logged with decisions, shown to operators); adaptive: only where it drives decisions. */
  readDrift?: "always" | "adaptive";
  /** throw: a failed job fails the step (replays); retry: keep serving, retry with exponential backoff (services). */
  onFailure?: "throw" | "retry";
  retry?: { baseMs: number; maxMs: number };
  /** Persist the scheduler state here (services); absent: in memory only. */
  stateFile?: string;
  /** Append decisions to <models>/scheduler.jsonl (default true). */
  decisionLog?: boolean;
  log?: LoopLogger;
  /** Every decision with its outcome (metrics, dashboards). */
  onDecision?: (line: DecisionLogLine) => void;
}

export interface LoopFailure {
  action: Action["kind"];
  error: string;
  at: number;
  consecutive: number;
  nextAttemptAt: number;
}

export interface LoopStatus {
  phase: "waiting-for-data" | "bootstrapping" | "running" | "idle";
  strategy: SchedulerConfig["strategy"];
  state: SchedulerState;
  anchor: Anchor | null;
  /** While waiting for the first bootstrap: positive transitions in the store and the minimum. */
  transitions?: { have: number; need: number };
  drift: DriftReading;
  lastDecision?: DecisionLogLine;
  running?: { action: Action["kind"]; since: number };
  failure?: LoopFailure;
  steps: number;
}

export interface StepOutcome {
  asOf: number | null;
  decisions: Decision[];
  artefacts: Array<{ action: Action; artefacts: ArtefactRecord[] }>;
  skipped?: "waiting-for-data" | "backoff" | "busy";
}

/** The state change one finished action makes (decide() moves all of them at once; a failure keeps the rest). */
const advance = (s: SchedulerState, action: Action, at: number): SchedulerState =>
  action.kind === "bootstrap" ? { bootstrappedAt: at, lastFinetune: at, lastRefresh: at } : action.kind === "finetune" ? { ...s, lastFinetune: at } : { ...s, lastRefresh: at };

/**
 * The update loop: the one implementation of the scheduler's cycle (bring data to now, measure drift, decide,
 * run the due jobs, log the decision). `freshrec serve` drives it on the wall clock with jobs in child
 * processes, the demo on a simulated clock with the synthetic world as its event source, and the replay on the
 * dataset's clock with jobs in process.
 */
export class UpdateLoop {
  private state: SchedulerState;
  private drift: DriftReading = {};
  private nextDriftAt = -Infinity;
  private anchor: Anchor | null = null;
  private transitions: { have: number; need: number } | undefined;
  private lastDecision: DecisionLogLine | undefined;
  private running: LoopStatus["running"];
  private failure: LoopFailure | undefined;
  private stepping: Promise<StepOutcome> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private steps = 0;
  private lastSaved: string | undefined;
  /** The drift window and the staleness bound of anchor "data": from the options, else the job settings' windows. */
  private readonly driftWindowMs: number;
  private readonly staleAfterMs: number;

  constructor(private readonly o: UpdateLoopOptions) {
    const jobs = o.jobContext(o.clock.now()).config;
    this.driftWindowMs = o.driftWindowMs ?? days(jobs.finetuneDays);
    this.staleAfterMs = o.staleAfterMs ?? days(jobs.ragWindowDays);
    const saved = o.stateFile && existsSync(o.stateFile) ? readLoopState(o.stateFile) : null;
    this.state = saved?.scheduler ?? initialSchedulerState();
    this.reconcile();
  }

  /** The registry decides what exists: no active base and table means bootstrap again; a registry bootstrapped elsewhere is adopted now. */
  private reconcile(): void {
    const active = this.o.registry.active();
    const bootstrapped = active.base !== null && active.table !== null;
    if (!bootstrapped && this.state.bootstrappedAt !== null) this.state = initialSchedulerState();
    else if (bootstrapped && this.state.bootstrappedAt === null) {
      const now = this.o.clock.now();
      this.state = { bootstrappedAt: now, lastFinetune: now, lastRefresh: now };
    }
    this.save();
  }

  status(): LoopStatus {
    const phase = this.running ? (this.running.action === "bootstrap" ? "bootstrapping" : "running") : this.state.bootstrappedAt === null ? "waiting-for-data" : "idle";
    return {
      phase,
      strategy: this.o.scheduler.strategy,
      state: { ...this.state },
      anchor: this.anchor,
      ...(this.transitions && this.state.bootstrappedAt === null ? { transitions: this.transitions } : {}),
      drift: this.drift,
      ...(this.lastDecision ? { lastDecision: this.lastDecision } : {}),
      ...(this.running ? { running: this.running } : {}),
      ...(this.failure ? { failure: this.failure } : {}),
      steps: this.steps,
    };
  }

  /** One cycle at the clock's now. Steps never overlap: a call while one runs waits for it and runs after. */
  step(): Promise<StepOutcome> {
    const prev = this.stepping ?? Promise.resolve(undefined);
    const next = prev.catch(() => undefined).then(() => this.cycle());
    this.stepping = next;
    return next;
  }

  /** Steps every intervalMs (wall time) until stop(); `afterStep` runs after each (the demo advances its clock there). */
  start(intervalMs: number, afterStep?: () => Promise<void> | void): void {
    const tick = () => {
      if (this.stopped) return;
      void this.step()
        .then(() => afterStep?.())
        .catch((err: unknown) => this.o.log?.error({ err }, "update loop step failed"))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, intervalMs);
        });
    };
    tick();
  }

  /** Stops stepping; resolves after the step in progress ended (stop the job runner first to cut a long job short). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.stepping?.catch(() => undefined);
  }

  private async cycle(): Promise<StepOutcome> {
    this.steps++;
    const now = this.o.clock.now();
    const syncEvery = (this.o.sourceSync ?? "every-step") === "every-step";
    let synced = false;
    const sync = async () => {
      if (synced || !this.o.source) return;
      synced = true;
      await this.o.source.syncTo(now);
    };
    if (syncEvery) await sync();
    if (this.failure && Date.now() < this.failure.nextAttemptAt) return { asOf: null, decisions: [], artefacts: [], skipped: "backoff" };

    if (this.state.bootstrappedAt === null && (this.o.minTransitions ?? 0) > 0) {
      await sync();
      const asOf = (await this.placeAnchor(now))?.asOf;
      const have = asOf === undefined ? 0 : (await this.o.store.transitions({ start: -8.64e15, end: asOf })).length;
      this.transitions = { have, need: this.o.minTransitions! };
      if (have < this.o.minTransitions!) return { asOf: asOf ?? null, decisions: [], artefacts: [], skipped: "waiting-for-data" };
    }

    const adaptive = this.o.scheduler.strategy === "adaptive";
    if (this.state.bootstrappedAt !== null && ((this.o.readDrift ?? "adaptive") === "always" || adaptive) && now >= this.nextDriftAt) {
      await sync();
      const anchor = await this.placeAnchor(now);
      if (anchor) this.drift = await measureDrift(this.o.store, this.o.registry, anchor.asOf, this.driftWindowMs);
      this.nextDriftAt = now + this.o.driftEveryMs;
    }

    const out = decide(this.o.scheduler, this.state, now, this.drift);
    if (out.actions.length === 0) {
      this.failure = undefined;
      return { asOf: this.anchor?.asOf ?? null, decisions: [], artefacts: [] };
    }
    await sync();
    const anchor = await this.placeAnchor(now);
    if (!anchor) return { asOf: null, decisions: [], artefacts: [], skipped: "waiting-for-data" };
    const made: StepOutcome["artefacts"] = [];
    const by = `scheduler:${this.o.scheduler.strategy}`;
    for (const [i, action] of out.actions.entries()) {
      const decision = out.decisions[i]!;
      this.running = { action: action.kind, since: Date.now() };
      try {
        const artefacts = await this.o.runner(action, { ...this.o.jobContext(anchor.asOf), by });
        made.push({ action, artefacts });
        this.state = advance(this.state, action, now);
        this.failure = undefined;
        this.record({ ...decision, asOf: anchor.asOf, outcome: "done", artefacts: artefacts.map((a) => ({ id: a.id, status: a.status })) });
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        this.record({ ...decision, asOf: anchor.asOf, outcome: "failed", error, artefacts: [] });
        if ((err as FreshrecError).code === "job-busy") return { asOf: anchor.asOf, decisions: out.decisions.slice(0, i), artefacts: made, skipped: "busy" };
        if ((this.o.onFailure ?? "throw") === "throw") throw err;
        const consecutive = (this.failure?.consecutive ?? 0) + 1;
        const { baseMs, maxMs } = this.o.retry ?? { baseMs: 30_000, maxMs: 30 * 60_000 };
        const nextAttemptAt = Date.now() + Math.min(maxMs, baseMs * 2 ** (consecutive - 1));
        this.failure = { action: action.kind, error, at: Date.now(), consecutive, nextAttemptAt };
        this.o.log?.error({ action: action.kind, consecutive, retryAt: new Date(nextAttemptAt).toISOString(), error }, `update loop: ${action.kind} failed; serving continues on the last good model`);
        break;
      } finally {
        this.running = undefined;
        this.save();
      }
    }
    return { asOf: anchor.asOf, decisions: out.decisions.slice(0, made.length), artefacts: made };
  }

  /** Where the jobs' windows end now (see AnchorMode); null while the store holds no event. */
  private async placeAnchor(now: number): Promise<Anchor | null> {
    if ((this.o.anchor ?? "clock") === "clock") return (this.anchor = { mode: "clock", asOf: now, newestEvent: null });
    const range = await this.o.store.timeRange();
    if (!range) return (this.anchor = null);
    const prev = this.anchor?.mode;
    const anchor: Anchor =
      now - range.max > this.staleAfterMs
        ? { mode: "newest-event", asOf: range.max + 1, newestEvent: range.max, reason: `the newest event (${new Date(range.max).toISOString()}) is older than ${(this.staleAfterMs / DAY_MS).toFixed(1)} d: windows end at it, not at the wall clock` }
        : { mode: "clock", asOf: now, newestEvent: range.max };
    if (anchor.mode !== prev) this.o.log?.info({ asOf: new Date(anchor.asOf).toISOString(), newestEvent: new Date(range.max).toISOString() }, anchor.reason ? `update loop: ${anchor.reason}` : "update loop: windows end at the wall clock");
    return (this.anchor = anchor);
  }

  private record(line: DecisionLogLine): void {
    this.lastDecision = line;
    if (this.o.decisionLog ?? true) appendFileSync(join(this.o.registry.dir, "scheduler.jsonl"), `${JSON.stringify(line)}\n`);
    const msg = `scheduler: ${line.action} (${line.reason})${line.outcome === "failed" ? ` failed: ${line.error}` : ""}`;
    this.o.log?.[line.outcome === "failed" ? "warn" : "info"]({ at: new Date(line.at).toISOString(), asOf: new Date(line.asOf).toISOString(), drift: line.drift, artefacts: line.artefacts }, msg);
    this.o.onDecision?.(line);
  }

  /** Writes the state when it changed (atomic, fsynced). */
  private save(): void {
    if (!this.o.stateFile) return;
    const json = JSON.stringify({ version: 1, scheduler: this.state } satisfies LoopState);
    if (json === this.lastSaved) return;
    writeFileAtomic(this.o.stateFile, json);
    this.lastSaved = json;
  }
}

export const loopStateFile = (modelsDir: string) => join(modelsDir, "loop-state.json");

/** Reads a saved loop state; a file of another shape is an error naming the file. */
export function readLoopState(file: string): LoopState {
  const parsed = LoopStateSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!parsed.success) throw new FreshrecError("config", `${file}: not a freshrec loop state (${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}); delete it to start the schedule afresh`);
  return parsed.data;
}
