import type { Logger } from "pino";
import { z } from "zod";
import type { Experiment as RegisteredExperiment } from "@freshrec/registry";
import { ArtefactIdSchema } from "./api-schemas.js";
import type { ServingScorer, ServingTable } from "./model-manager.js";
import { SwapSlot } from "./swap-slot.js";

/**
 * A traffic split between the active artefacts and a candidate: a deterministic hash of the user id puts a fixed
 * share of users in the candidate arm, so a user always sees the same arm. The candidate is a table (table-mode
 * answers), an adapter (live answers and table fallbacks), or both; a candidate table alone brings its own adapter
 * (its lineage) to live answers. The split lives in the registry's pointer, so every process serving the registry
 * runs it and a restart keeps it. Answers name their arm in their lineage and in the served-answer log, and
 * /v1/quality compares the arms. Ending it is a deliberate act: promote the candidate or stop the experiment.
 */
export const ExperimentRequestSchema = z
  .strictObject({
    /** Registry id of the table the candidate arm answers table-mode requests from (default: the active table). */
    candidateTable: ArtefactIdSchema.optional(),
    /** Registry id of the adapter the candidate arm scores live answers with (default: the candidate table's own). */
    candidateAdapter: ArtefactIdSchema.optional(),
    /** Share of users in the candidate arm. */
    share: z.number().gt(0).lt(1).default(0.5),
    /** Salt of the user hash: another salt splits users anew. */
    salt: z.string().min(1).max(64).default("freshrec"),
  })
  .refine((r) => r.candidateTable !== undefined || r.candidateAdapter !== undefined, { message: "name a candidateTable, a candidateAdapter or both", path: ["candidateTable"] });
export type ExperimentRequest = z.infer<typeof ExperimentRequestSchema>;
export type Arm = "active" | "candidate";

/**
 * FNV-1a (32 bit) of `salt:userId`, finished with murmur3's avalanche step, as a fraction in [0, 1): stable across
 * processes and restarts. Without the final mix, ids that differ in their last characters (u1, u2, ...) fell into
 * correlated buckets under different salts.
 */
export function userBucket(userId: string, salt: string): number {
  let h = 0x811c9dc5;
  const text = `${salt}:${userId}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** A running split with what its candidate arm serves from, loaded beside the active artefacts. */
export class Experiment {
  constructor(
    readonly settings: RegisteredExperiment,
    /** The candidate arm's table; null: the active table answers both arms in table mode. */
    readonly candidateTable: ServingTable | null,
    /** The candidate arm's scorer; null: the active scorer (the candidate scores live as the active set does). */
    readonly candidateScorers: SwapSlot<ServingScorer> | null,
  ) {}

  armOf(userId: string): Arm {
    return userBucket(userId, this.settings.salt) < this.settings.share ? "candidate" : "active";
  }

  /** What the running split looks like in answers: ids of what each part of the candidate arm serves from. */
  describe(): RegisteredExperiment & { candidateScorer: { baseId: string; adapterId: string | null } | null } {
    const s = this.candidateScorers?.value;
    return { ...this.settings, candidateScorer: s ? { baseId: s.baseId, adapterId: s.adapterId } : null };
  }

  /** Frees the candidate scorer once requests using it are done. */
  async dispose(): Promise<void> {
    await this.candidateScorers?.close();
  }
}

/** How the control loads a candidate: the model manager's loaders, the active scorer's identity. */
export interface CandidateLoader {
  table(id: string): Promise<ServingTable>;
  /** A scorer for base + adapter, on the served model when it is that base. */
  scorer(baseId: string | null, adapterId: string | null): Promise<ServingScorer>;
  /** The registered adapter's base, to build its scorer. */
  adapterBase(adapterId: string): Promise<string>;
  /** Base and adapter of the scorer serving the active arm. */
  active(): { baseId: string; adapterId: string | null } | undefined;
}

/** The experiment this process runs: the registry's, followed on every registry change. */
export class ExperimentControl {
  current: Experiment | null = null;
  /** The registry experiment whose candidate failed to load (not retried on every poll), with why. */
  failed: { key: string; reason: string } | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly load: CandidateLoader,
    private readonly log: Logger,
  ) {}

  /** Loads what the candidate arm serves from, without running it yet (an admin call checks it loads before recording it). */
  async prepare(settings: RegisteredExperiment): Promise<Experiment> {
    const table = settings.candidateTable !== null ? await this.load.table(settings.candidateTable) : null;
    const adapterId = settings.candidateAdapter ?? table?.adapterId ?? null;
    const baseId = settings.candidateAdapter !== null ? await this.load.adapterBase(settings.candidateAdapter) : (table?.baseId ?? null);
    const active = this.load.active();
    if (active && active.baseId === baseId && active.adapterId === adapterId) return new Experiment(settings, table, null);
    const slot = new SwapSlot<ServingScorer>((err) => this.log.error({ err }, "disposing the experiment's candidate scorer failed"));
    await slot.swap(await this.load.scorer(baseId, adapterId));
    return new Experiment(settings, table, slot);
  }

  /** Runs `next` from now on (the previous one is disposed once its requests are done). */
  install(next: Experiment | null): void {
    const previous = this.current;
    this.current = next;
    this.failed = null;
    if (previous && previous !== next) void previous.dispose();
  }

  /** Brings the running split in line with the registry's (serialized; a candidate that does not load is logged and skipped). */
  follow(registered: RegisteredExperiment | null | undefined): Promise<void> {
    const run = this.queue.then(async () => {
      const key = registered ? JSON.stringify(registered) : null;
      if (key === (this.current ? JSON.stringify(this.current.settings) : null) || (key !== null && key === this.failed?.key)) return;
      if (!registered) return this.install(null);
      try {
        this.install(await this.prepare(registered));
        this.log.info({ experiment: registered }, "experiment running: traffic split between the active artefacts and the candidate");
      } catch (err) {
        this.install(null);
        this.failed = { key: key!, reason: err instanceof Error ? err.message : String(err) };
        this.log.error({ err, experiment: registered }, "the registry's experiment does not load here; serving every user from the active artefacts");
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.queue;
    const last = this.current;
    this.current = null;
    await last?.dispose();
  }
}
