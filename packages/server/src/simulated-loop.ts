import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import type { Event, SyntheticWorld } from "@freshrec/core";
import type { Store } from "@freshrec/retriever";
import { loadClusterModel } from "@freshrec/scorer";
import {
  initialSchedulerState,
  nativeTrainer,
  schedulerStep,
  writeFileAtomic,
  type ActionRunner,
  type LoopConfig,
  type Registry,
  type SchedulerConfig,
} from "@freshrec/trainer-bridge";
import { FreshrecError } from "@freshrec/core";
import type { JobRunner } from "./jobs.js";

const LoopStateSchema = z.object({
  /** Synthetic world preset the store was seeded with (a restart must stream the same world). */
  size: z.enum(["tiny", "default", "large"]),
  /** Simulated time reached: every world event before it is in the store. */
  now: z.number().int(),
  scheduler: z.object({ bootstrappedAt: z.number().nullable(), lastFinetune: z.number().nullable(), lastRefresh: z.number().nullable() }),
});
type LoopState = z.infer<typeof LoopStateSchema>;

export interface SimulatedLoopOptions {
  world: SyntheticWorld;
  size: LoopState["size"];
  store: Store;
  registry: Registry;
  jobs: JobRunner;
  log: Logger;
  scheduler: SchedulerConfig;
  /** Where the loop keeps its clock and scheduler state across restarts (a JSON file in the models dir). */
  stateFile: string;
  /** Simulated milliseconds per wall-clock millisecond (0 = the clock stands still; due jobs still run). */
  speed: number;
  /** Wall milliseconds between ticks. */
  tickMs: number;
  /** The loop settings the jobs run with (windows feed the drift reading). */
  loopConfig: LoopConfig;
  /** Called with every batch the loop ingests (the server invalidates cached user state with it). */
  onIngest?: (events: Event[]) => void;
}

export const loopStateFile = (modelsDir: string) => join(modelsDir, "serve-loop.json");

/** Reads the saved loop state, or null on a first start. */
export function readLoopState(file: string): LoopState | null {
  if (!existsSync(file)) return null;
  return LoopStateSchema.parse(JSON.parse(readFileSync(file, "utf8")));
}

/**
 * The hybrid update loop of `freshrec serve` on a simulated clock. Each tick runs one scheduler step at the
 * simulated now (drift, decision, due jobs as `freshrec jobs run` child processes, logged to scheduler.jsonl),
 * then advances the clock and ingests the synthetic world's events up to it. The clock stands still while
 * jobs run, so a model is never trained on a world that moved on without it.
 */
export class SimulatedLoop {
  private state: LoopState;
  private readonly stream: Generator<Event>;
  private peeked: Event | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  /** The state as last written (save skips identical writes). */
  private saved: string | undefined;
  private stopped = false;
  private failures = 0;
  private readonly resumed: boolean;

  constructor(
    private readonly o: SimulatedLoopOptions,
    initial: { now: number },
  ) {
    const saved = readLoopState(o.stateFile);
    this.resumed = saved !== null;
    this.state = saved ?? { size: o.size, now: initial.now, scheduler: initialSchedulerState() };
    this.stream = o.world.events();
  }

  /** The simulated "now" (live retrieval and jobs use it). */
  now = (): number => this.state.now;

  /** Forgets past scheduling (used when the registry has no active model: bootstrap again). */
  resetScheduler(): void {
    this.state.scheduler = initialSchedulerState();
    this.save();
  }

  /** Adopts a registry bootstrapped elsewhere (no saved loop state): scheduling counts from now. */
  adoptBootstrapped(): void {
    if (this.resumed) return;
    const now = this.state.now;
    this.state.scheduler = { bootstrappedAt: now, lastFinetune: now, lastRefresh: now };
    this.save();
  }

  /**
   * Brings the world stream to the clock: on a first start it ingests every event before it; on a restart
   * those are already durable (the clock is saved only after its events are), so they are only skipped.
   * Returns how many events were ingested.
   */
  async catchUp(): Promise<number> {
    if (!this.resumed) {
      const n = await this.ingestUntil(this.state.now);
      this.save();
      return n;
    }
    for (let e = this.next(); e && e.ts < this.state.now; e = this.next()) this.peeked = undefined;
    return 0;
  }

  /** Ticks every tickMs (call catchUp first). */
  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.ticking = this.tick()
        .catch((err) => this.o.log.error({ err }, "simulated loop tick failed"))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.o.tickMs);
        });
    };
    loop();
  }

  /** Stops ticking; a running job is stopped too (its artefacts are only published when complete). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.o.jobs.stop();
    await this.ticking;
  }

  async tick(): Promise<void> {
    if (this.failures >= 3) return; // a job failing again and again would only burn the cores serving needs
    const ctx = {
      store: this.o.store,
      registry: this.o.registry,
      trainer: nativeTrainer(),
      loadModel: loadClusterModel,
      config: this.o.loopConfig,
      asOf: this.state.now,
      by: "scheduler",
    };
    const step = await schedulerStep(ctx, this.o.scheduler, this.state.scheduler, { run: this.childRunner });
    this.state.scheduler = step.state;
    for (const d of step.decisions) this.o.log.info({ simulatedAt: new Date(d.at).toISOString(), drift: d.drift }, `scheduler: ${d.action} (${d.reason})`);
    this.save();
    if (this.stopped) return;
    const end = Math.min(this.o.world.endMs, this.state.now + Math.round(this.o.tickMs * this.o.speed));
    if (end <= this.state.now) return;
    await this.ingestUntil(end);
    this.state.now = end;
    this.save();
  }

  /** Runs an action as a `freshrec jobs run` child process; returns the artefacts it registered. */
  private childRunner: ActionRunner = async (action) => {
    const before = new Set(this.o.registry.list().map((r) => r.id));
    const args = action.kind !== "finetune" && !action.rag ? ["--no-rag"] : [];
    const job = await this.o.jobs.run(action.kind, { asOf: this.state.now, args });
    if (job.state === "failed") {
      this.failures++;
      throw new FreshrecError("job-failed", `${action.kind} job ${job.id} failed: ${job.error}`);
    }
    // A candidate rejected by its gate is a normal outcome: the previous model keeps serving.
    this.failures = 0;
    return this.o.registry.list().filter((r) => !before.has(r.id));
  };

  /** Ingests every world event with ts < end, in batches (each store write is a new LanceDB version). */
  async ingestUntil(end: number, batchSize = 20_000): Promise<number> {
    let total = 0;
    let batch: Event[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      await this.o.store.ingest(batch);
      this.o.onIngest?.(batch);
      total += batch.length;
      batch = [];
    };
    for (let e = this.next(); e && e.ts < end; e = this.next()) {
      this.peeked = undefined;
      batch.push(e);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    return total;
  }

  private next(): Event | undefined {
    this.peeked ??= this.stream.next().value ?? undefined;
    return this.peeked;
  }

  /** Writes the state when it changed: the write is synchronous and fsynced, and with a stopped clock most ticks change nothing. */
  private save(): void {
    const json = JSON.stringify(this.state);
    if (json === this.saved) return;
    writeFileAtomic(this.o.stateFile, json);
    this.saved = json;
  }
}
