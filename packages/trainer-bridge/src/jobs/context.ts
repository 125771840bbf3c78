import { z } from "zod";
import { DAY_MS, DEFAULT_K, DEFAULT_RAG_LINES, DEFAULT_RAG_SLOTS, FreshrecError, type LayoutParams } from "@freshrec/core";
import { GateConfigSchema } from "../gates/gates.js";
import { TrainingSetConfigSchema } from "../training-set/build.js";
import { isUserBase, type BaseRecord, type Registry } from "@freshrec/registry";
import type { Store } from "@freshrec/retriever";
import { readGgufMetadata, TEXT_SCORINGS, type LoadScoringModelOptions, type ScoringModel } from "@freshrec/scorer";
import type { Trainer } from "./ports.js";
import type { ProgressFn } from "../native/trainer.js";

export class JobError extends FreshrecError {
  constructor(job: string, message: string, options?: { cause?: unknown }) {
    super("job", `${job}: ${message}`, options);
  }
}

export const LoopConfigSchema = z.object({
  k: z.number().int().positive().default(DEFAULT_K),
  ragSlots: z.number().int().positive().default(DEFAULT_RAG_SLOTS),
  /** The base is pretrained on the first this-many days of data. */
  bootstrapDays: z.number().positive().default(30),
  /** A fine-tune trains on the last this-many days. */
  finetuneDays: z.number().positive().default(30),
  /**
   * A training window (bootstrap or fine-tune) whose days hold fewer positive transitions than this is widened until
   * it holds this many (jobs/windows.ts); with fewer in the whole store the job reports the data too thin.
   */
  minWindowTransitions: z.number().int().positive().default(500),
  /** A table covers every key with a transition in the last this-many days (all keys when they are few). */
  tableSupportDays: z.number().positive().default(30),
  /** Score every possible key when there are at most this many. */
  allKeysUpTo: z.number().int().nonnegative().default(5_000),
  /** RAG successors are counted over the last this-many days (tables and training sets alike). */
  ragWindowDays: z.number().positive().default(14),
  /**
   * Weights of the retrieved successor shares (`rag`) and of recent next-cluster popularity (`popularity`) mixed
   * into a RAG table's model scores; the model keeps the rest ({0, 0}: the model alone, as in the paper). "fit":
   * chosen per refresh on the last holdout days, scored with retrieval as it was before them, so the weights are
   * measured on transitions retrieval has not seen.
   */
  ragBlend: z
    .union([
      z.literal("fit"),
      z.object({ rag: z.number().min(0).max(1), popularity: z.number().min(0).max(1) }).refine((w) => w.rag + w.popularity <= 1, "rag + popularity must be at most 1"),
    ])
    .default("fit"),
  /**
   * Delete the store's copy of tables the registry's retention retires. Off where registries are copies of one
   * another and share table ids (the replay starts every strategy from one bootstrap registry).
   */
  dropRetiredTables: z.boolean().default(true),
  /** Clusters stored per table row. */
  tableTopN: z.number().int().positive().default(10),
  /** Sequences per scoring context: prompts of one scoreNext call are decoded together across them. */
  scoreParallel: z.number().int().positive().default(16),
  /** Prompts per scoreNext call. */
  scoreBatch: z.number().int().positive().default(256),
  warmStart: z.boolean().default(true),
  /**
   * A text GGUF to start from (Llama, Qwen, SmolLM2, ...): bootstrap registers it as the base (linked, named by its
   * sha256) instead of pretraining a cluster-token model, and every fine-tune trains a LoRA adapter on it.
   */
  baseModel: z.string().min(1).optional(),
  /** Text models: RAG lines shown in the prompt (the paper's instance-level RAG: top 1) and how answers become a distribution. */
  text: z
    .strictObject({
      ragLines: z.number().int().nonnegative().default(DEFAULT_RAG_LINES),
      scoring: z.enum(TEXT_SCORINGS).default("constrained"),
      /**
       * Train every weight of baseModel on the bootstrap window before registering it (jobs/text-base.ts). Only for a
       * model freshrec wrote itself with random weights (the demo's, the replay's): LoRA cannot teach random weights a
       * vocabulary. A model a team brings is used as it is.
       */
      trainBase: z.boolean().default(false),
    })
    .prefault({}),
  trainingSet: TrainingSetConfigSchema.partial().prefault({}),
  gate: GateConfigSchema.prefault({}),
  /** Passed to the trainer as is (see the native bridge's pretrain / trainLora options). */
  pretrain: z.record(z.string(), z.unknown()).default({}),
  lora: z.record(z.string(), z.unknown()).default({}),
  /** Scoring contexts for holdout and table scoring, one thread each (two threads per context run slower on a busy machine). */
  threads: z.number().int().positive().default(2),
  seed: z.number().int().default(1),
});
export type LoopConfig = z.infer<typeof LoopConfigSchema>;

export interface JobContext {
  store: Store;
  registry: Registry;
  trainer: Trainer;
  /** Injected so tests and benches can share one llama.cpp model cache; normally the scorer's loadScoringModel (either kind). */
  loadModel: (opts: LoadScoringModelOptions) => Promise<ScoringModel>;
  config: LoopConfig;
  /** "Now" of the job: wall clock in production, the simulated clock in replays and tests. */
  asOf: number;
  /** Who triggered it, recorded in the promotion log ("scheduler:adaptive", "user:ana", ...). */
  by: string;
  /** Promote a candidate that passes its gate (default true). */
  autoPromote?: boolean;
  onProgress?: ProgressFn;
}

export const days = (d: number) => Math.round(d * DAY_MS);

/** The layout of models trained now: k and RAG slots from config, C from the store's clusters. */
export async function currentLayout(ctx: JobContext): Promise<LayoutParams> {
  const clusters = await ctx.store.clusters();
  if (clusters.length === 0) throw new JobError("layout", "the store has no clusters yet: ingest items and clusters first");
  return { k: ctx.config.k, ragSlots: ctx.config.ragSlots, nClusters: Math.max(...clusters.map((c) => c.id)) + 1 };
}

/** The layout a base is scored and trained with: a cluster-token model's from its file; a text model's from config and the store's clusters. */
export async function baseLayout(ctx: JobContext, base: BaseRecord): Promise<LayoutParams> {
  if (!isUserBase(base.manifest)) return (await readGgufMetadata(base.path!)).layout;
  return { ...(await currentLayout(ctx)), ragSlots: ctx.config.text.ragLines };
}

/** Loads a base model for bulk scoring: one thread per context, `config.threads` contexts (see scoreOptions); a text model over the store's clusters. */
export const loadForScoring = async (ctx: JobContext, path: string) =>
  ctx.loadModel({ path, threads: 1, clusters: await ctx.store.clusters(), text: { k: ctx.config.k, ragLines: ctx.config.text.ragLines, scoring: ctx.config.text.scoring } });
export const scoreOptions = (ctx: JobContext) => ({ batch: ctx.config.scoreBatch, contexts: ctx.config.threads, parallel: ctx.config.scoreParallel, ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}) });
