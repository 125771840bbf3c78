import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { LAYOUT_VERSION, type LayoutParams } from "@freshrec/core";
import { z } from "zod";
import { ensureTrainer, llamaPaths } from "./build.js";
import { TrainerError } from "./errors.js";
import { writeExamples, writeVocab, type Example } from "./files.js";

/** Progress as freshrec packages report it (docs/ARCHITECTURE.md). */
export type ProgressFn = (e: { phase: string; done: number; total?: number; info?: Record<string, number | string> }) => void;

/** Optimisation settings shared by pretraining and LoRA training (defaults in the binary, see MODEL.md). */
export interface TrainSettings {
  epochs?: number;
  batch?: number;
  lr?: number;
  /** Final learning rate as a fraction of lr (cosine decay after warmup). */
  minLrRatio?: number;
  /** Warmup length as a fraction of all steps. */
  warmup?: number;
  weightDecay?: number;
  /** Global gradient-norm clip; 0 disables. */
  clip?: number;
  /** Held-out fraction when no validation examples are given. */
  valFraction?: number;
  /** Epochs without validation improvement before stopping. */
  patience?: number;
  seed?: number;
  threads?: number;
  progressEvery?: number;
}

export interface TrainInput<E = Example> extends TrainSettings {
  examples: readonly E[];
  valExamples?: readonly E[];
  onProgress?: ProgressFn;
}

export interface ModelSize {
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nFf: number;
  nCtx: number;
}
export const DEFAULT_MODEL_SIZE: ModelSize = { nEmbd: 128, nLayer: 4, nHead: 4, nFf: 320, nCtx: 16 };

export interface PretrainOptions extends TrainInput {
  layout: LayoutParams;
  modelId: string;
  /** Output path of the F32 base model. */
  outF32: string;
  /** Output path of the Q8_0 copy (optional). */
  outQ8?: string;
  size?: Partial<ModelSize>;
  windowStartMs?: number;
  windowEndMs?: number;
}

export type LoraTarget = "q" | "k" | "v" | "o" | "gate" | "up" | "down" | "output";
/** What both LoRA subcommands take besides their examples (`loraArgs` renders it). */
export interface LoraSettings {
  /** The base GGUF: a cluster-token model's F32 training file, or a text model's unchanged file. */
  base: string;
  out: string;
  adapterId: string;
  rank?: number;
  alpha?: number;
  /** Default q,k,v,o,gate,up,down; `output` only for untied models. */
  targets?: readonly LoraTarget[];
  /** Existing adapter to continue from (its rank, alpha and targets are kept). */
  initAdapter?: string;
}
export interface LoraOptions extends TrainInput, LoraSettings {}

export const metricsSchema = z.object({
  train_loss: z.number(),
  val_loss: z.number().nullable(),
  val_acc: z.number().nullable(),
  examples_per_s: z.number(),
  wall_s: z.number(),
  cpu_s: z.number(),
  epochs_run: z.number().int(),
  best_epoch: z.number().int(),
  steps: z.number().int(),
  n_train: z.number().int(),
  n_val: z.number().int(),
});
export type TrainMetrics = z.infer<typeof metricsSchema>;
const epochSchema = z.object({ event: z.literal("epoch"), epoch: z.number().int(), train_loss: z.number(), val_loss: z.number().nullable().optional(), val_acc: z.number().nullable().optional() });
export type EpochMetrics = Omit<z.infer<typeof epochSchema>, "event">;
const progressSchema = z.object({ event: z.literal("progress"), step: z.number(), total: z.number(), epoch: z.number(), loss: z.number().nullable(), lr: z.number() });
const pretrainDone = z.object({ event: z.literal("done"), outputs: z.object({ f32: z.string(), q8_0: z.string().optional() }), metrics: metricsSchema });
const loraDone = z.object({ event: z.literal("done"), outputs: z.object({ adapter: z.string(), rank: z.number().int(), alpha: z.number(), n_targets: z.number().int() }), metrics: metricsSchema });
const rowSchema = z.object({ event: z.literal("row"), i: z.number().int(), top: z.array(z.number().int()).optional(), logits: z.array(z.number()).optional() });
const forwardDone = z.object({ event: z.literal("done"), n: z.number().int(), recall_at_1: z.number().nullable(), loss: z.number().nullable(), model_id: z.string(), adapter_id: z.string().nullable() });
const llamaOptDone = z.object({ event: z.literal("done"), metrics: z.object({ train_loss: z.number().nullable(), examples_per_s: z.number(), tokens_per_s: z.number(), wall_s: z.number(), cpu_s: z.number() }) });

/** Runs the trainer binary, hands each stdout JSON line to `onLine`, and turns failures into TrainerError. */
export async function runTrainer(args: string[], onLine: (line: Record<string, unknown>) => void): Promise<void> {
  const bin = await ensureTrainer();
  const child = spawn(bin, args, { env: { ...process.env, FRESHREC_GGML_LIBS: llamaPaths().libDir }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-20_000)));
  let lineError: unknown;
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => {
    if (lineError || !line.trim()) return;
    try {
      onLine(JSON.parse(line) as Record<string, unknown>);
    } catch (err) {
      lineError = err;
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res, rej) => {
    child.on("error", rej);
    child.on("close", (c, s) => res([c, s]));
  });
  if (code !== 0) {
    const errLine = stderr.split("\n").reverse().find((l) => l.startsWith('{"event":"error"'));
    const message = errLine ? (JSON.parse(errLine) as { message: string }).message : `trainer ${signal ? `killed by ${signal}` : `exited with ${code}`}: ${stderr.slice(-2000)}`;
    throw new TrainerError(`freshrec-trainer ${args[0]}: ${message}`, code ?? undefined);
  }
  if (lineError) throw new TrainerError(`freshrec-trainer ${args[0]} printed unexpected output: ${String(lineError)}`, 0, { cause: lineError });
}

export function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new TrainerError(`unexpected ${what} from freshrec-trainer: ${r.error.message}`);
  return r.data;
}

export const flag = (name: string, value: number | string | undefined): string[] => (value === undefined ? [] : [`--${name}`, String(value)]);

function settingsArgs(s: TrainSettings): string[] {
  return [
    ...flag("epochs", s.epochs), ...flag("batch", s.batch), ...flag("lr", s.lr), ...flag("min-lr-ratio", s.minLrRatio),
    ...flag("warmup", s.warmup), ...flag("weight-decay", s.weightDecay), ...flag("clip", s.clip), ...flag("val-fraction", s.valFraction),
    ...flag("patience", s.patience), ...flag("seed", s.seed), ...flag("threads", s.threads ?? 1), ...flag("progress-every", s.progressEvery),
  ];
}

/** Writes examples into a fresh temporary folder, runs `fn`, and removes the folder. */
export async function withWorkDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "freshrec-trainer-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes the examples into `dir`, runs a training subcommand, reports progress and returns its parsed result line. */
export async function trainRun<T, E = Example>(
  phase: string,
  args: string[],
  input: TrainInput<E>,
  dir: string,
  done: z.ZodType<T>,
  write: (path: string, examples: readonly E[]) => Promise<void> = writeExamples as (path: string, examples: readonly E[]) => Promise<void>,
): Promise<T & { epochs: EpochMetrics[] }> {
  await write(join(dir, "train.txt"), input.examples);
  const valArgs = input.valExamples ? ["--val", join(dir, "val.txt")] : [];
  if (input.valExamples) await write(join(dir, "val.txt"), input.valExamples);
  const epochs: EpochMetrics[] = [];
  let result: T | undefined;
  await runTrainer([...args, "--train", join(dir, "train.txt"), ...valArgs, ...settingsArgs(input)], (line) => {
    if (line.event === "progress") {
      const p = parse(progressSchema, line, "progress line");
      input.onProgress?.({ phase, done: p.step, total: p.total, info: { epoch: p.epoch, loss: p.loss ?? Number.NaN, lr: p.lr } });
    } else if (line.event === "epoch") {
      const { event: _e, ...rest } = parse(epochSchema, line, "epoch line");
      epochs.push(rest);
    } else if (line.event === "done") result = parse(done, line, "result");
  });
  if (!result) throw new TrainerError(`freshrec-trainer ${args[0]} ended without a result line`);
  return { ...result, epochs };
}

export interface PretrainResult {
  outputs: { f32: string; q8_0?: string };
  metrics: TrainMetrics;
  epochs: EpochMetrics[];
}

/** Trains a new base model (all weights) and writes it as F32 GGUF (and Q8_0 when `outQ8` is set). */
export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const size = { ...DEFAULT_MODEL_SIZE, ...o.size };
  return withWorkDir(async (dir) => {
    await writeVocab(join(dir, "vocab.txt"), o.layout);
    const args = [
      "pretrain", "--vocab", join(dir, "vocab.txt"), "--out", o.outF32, ...flag("out-q8", o.outQ8),
      "--n-embd", String(size.nEmbd), "--n-layer", String(size.nLayer), "--n-head", String(size.nHead), "--n-ff", String(size.nFf), "--n-ctx", String(size.nCtx),
      "--k", String(o.layout.k), "--rag-slots", String(o.layout.ragSlots), "--layout-version", String(LAYOUT_VERSION),
      "--model-id", o.modelId, ...flag("window-start-ms", o.windowStartMs), ...flag("window-end-ms", o.windowEndMs),
    ];
    const { event: _e, ...r } = await trainRun("pretrain", args, o, dir, pretrainDone);
    return r;
  });
}

export interface LoraResult {
  outputs: { adapter: string; rank: number; alpha: number; n_targets: number };
  metrics: TrainMetrics;
  epochs: EpochMetrics[];
}

/** The arguments every LoRA subcommand takes (cluster-token `lora` and `lora-text`). */
export function loraArgs(command: string, o: LoraSettings): string[] {
  return [
    command, "--base", o.base, "--out", o.out, "--adapter-id", o.adapterId, ...flag("rank", o.rank), ...flag("alpha", o.alpha),
    ...flag("targets", o.targets?.join(",")), ...flag("init-adapter", o.initAdapter),
  ];
}

/** Trains a LoRA adapter on a frozen F32 base and writes it in llama.cpp's GGUF LoRA format. */
export async function trainLora(o: LoraOptions): Promise<LoraResult> {
  return withWorkDir(async (dir) => {
    const { event: _e, ...r } = await trainRun("lora", loraArgs("lora", o), o, dir, loraDone);
    return r;
  });
}

export interface ForwardOptions {
  base: string;
  adapter?: string;
  /** Adapter scale (llama.cpp's user scale; effective scale is scale * alpha / rank). */
  scale?: number;
  prompts: readonly Example[];
  /** Return the k best token ids per prompt. */
  topK?: number;
  /** Return every prompt's full logits at the last position. */
  logits?: boolean;
  threads?: number;
}
export interface ForwardResult {
  rows: Array<{ top?: number[]; logits?: number[] }>;
  /** Share of prompts whose top-1 token is their target (null when prompts have no targets). */
  recallAt1: number | null;
  loss: number | null;
  modelId: string;
  adapterId: string | null;
}

/**
 * Runs a forward subcommand on a prompts file `write` fills: one `row` line per prompt (schema `row`, indexed by
 * its `i`), then one `done` line (schema `done`). Both forward passes, cluster-token and text, go through it.
 */
export async function forwardRows<R extends { i: number }, D>(
  command: string,
  n: number,
  write: (path: string) => Promise<void>,
  args: string[],
  row: z.ZodType<R>,
  done: z.ZodType<D>,
): Promise<{ rows: R[]; done: D }> {
  return withWorkDir(async (dir) => {
    const prompts = join(dir, "prompts.txt");
    await write(prompts);
    const rows: R[] = new Array(n);
    let result: D | undefined;
    await runTrainer([command, "--prompts", prompts, ...args], (line) => {
      if (line.event === "row") {
        const r = parse(row, line, `${command} row`);
        rows[r.i] = r;
      } else if (line.event === "done") result = parse(done, line, `${command} result`);
    });
    if (result === undefined) throw new TrainerError(`freshrec-trainer ${command} ended without a result line`);
    return { rows, done: result };
  });
}

/** Runs the trainer's own forward pass (base + optional adapter) on prompts. */
export async function forward(o: ForwardOptions): Promise<ForwardResult> {
  const args = ["--base", o.base, ...flag("adapter", o.adapter), ...flag("scale", o.scale), ...flag("top-k", o.topK), "--logits", o.logits ? "1" : "0", ...flag("threads", o.threads ?? 1)];
  const { rows, done } = await forwardRows("forward", o.prompts.length, (path) => writeExamples(path, o.prompts), args, rowSchema, forwardDone);
  return {
    rows: o.topK || o.logits ? rows.map(({ top, logits }) => ({ top, logits })) : [],
    recallAt1: done.recall_at_1,
    loss: done.loss,
    modelId: done.model_id,
    adapterId: done.adapter_id,
  };
}

export interface LlamaOptBaselineOptions {
  base: string;
  examples: readonly Example[];
  epochs?: number;
  lr?: number;
  threads?: number;
}
export type LlamaOptBaselineResult = z.infer<typeof llamaOptDone>["metrics"];

/** Full-weight training of `base` through llama.cpp's llama_opt on the same examples: the benchmark's baseline. */
export async function llamaOptBaseline(o: LlamaOptBaselineOptions): Promise<LlamaOptBaselineResult> {
  return withWorkDir(async (dir) => {
    await writeExamples(join(dir, "train.txt"), o.examples);
    let done: LlamaOptBaselineResult | undefined;
    const args = ["llama-opt", "--base", o.base, "--train", join(dir, "train.txt"), ...flag("epochs", o.epochs), ...flag("lr", o.lr), ...flag("threads", o.threads ?? 1)];
    await runTrainer(args, (line) => {
      if (line.event === "done") done = parse(llamaOptDone, line, "llama-opt result").metrics;
    });
    if (!done) throw new TrainerError("freshrec-trainer llama-opt ended without a result line");
    return done;
  });
}
