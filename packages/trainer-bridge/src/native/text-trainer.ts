import { join } from "node:path";
import { mulberry32 } from "@freshrec/core";
import { z } from "zod";
import { bundledVocab } from "./build.js";
import { TrainerError } from "./errors.js";
import { writeTextExamples, type TextExample } from "./files.js";
import { flag, forwardRows, loraArgs, metricsSchema, parse, runTrainer, trainRun, withWorkDir, type EpochMetrics, type LoraSettings, type TrainInput } from "./trainer.js";

/**
 * Bridge to the native trainer's text-model subcommands (llama-architecture GGUFs with a real tokenizer).
 * MODEL.md "Text models" documents the flags, file formats and what is refused.
 */

/** Named layouts: `tiny` for tests; the others have the shapes of the public models (random weights). */
export const TEXT_LAYOUT_PRESETS = ["tiny", "smollm2-135m", "llama-3.2-1b"] as const;
export type TextLayoutPreset = (typeof TEXT_LAYOUT_PRESETS)[number];
export const TEXT_DTYPES = ["f32", "f16", "bf16", "q8_0"] as const;
export type TextDtype = (typeof TEXT_DTYPES)[number];

/** Hyperparameters of a llama-architecture text model (what its llama.* GGUF keys say). */
export interface TextLayout {
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** Key/value heads; fewer than nHead is grouped-query attention. */
  nHeadKv: number;
  nFf: number;
  /** Training context length written to llama.context_length. */
  nCtx: number;
  ropeFreqBase: number;
  rmsEps: number;
  /** Output projection shares the token embedding. */
  tied: boolean;
}

const hparamsSchema = z.object({
  n_vocab: z.number().int().positive(),
  n_embd: z.number().int().positive(),
  n_layer: z.number().int().positive(),
  n_head: z.number().int().positive(),
  n_head_kv: z.number().int().positive(),
  n_ff: z.number().int().positive(),
  n_ctx: z.number().int().positive(),
  rope_freq_base: z.number().positive(),
  rms_eps: z.number().positive(),
  tied: z.boolean(),
});
export type TextHparams = TextLayout & { nVocab: number };

function toHparams(h: z.infer<typeof hparamsSchema>): TextHparams {
  return {
    nVocab: h.n_vocab, nEmbd: h.n_embd, nLayer: h.n_layer, nHead: h.n_head, nHeadKv: h.n_head_kv, nFf: h.n_ff, nCtx: h.n_ctx,
    ropeFreqBase: h.rope_freq_base, rmsEps: h.rms_eps, tied: h.tied,
  };
}

function layoutArgs(preset: TextLayoutPreset | undefined, l: Partial<TextLayout> | undefined): string[] {
  return [
    ...flag("preset", preset), ...flag("n-embd", l?.nEmbd), ...flag("n-layer", l?.nLayer), ...flag("n-head", l?.nHead),
    ...flag("n-head-kv", l?.nHeadKv), ...flag("n-ff", l?.nFf), ...flag("n-ctx", l?.nCtx), ...flag("rope-freq-base", l?.ropeFreqBase),
    ...flag("rms-eps", l?.rmsEps), ...flag("output", l?.tied === undefined ? undefined : l.tied ? "tied" : "untied"),
  ];
}

export interface InitTextModelOptions {
  /** A GGUF holding the tokenizer to use (every tokenizer.* key is copied verbatim), e.g. `bundledVocab("qwen2")`. */
  vocab: string;
  out: string;
  /** Base layout (default `tiny`); `layout` overrides single fields. */
  preset?: TextLayoutPreset;
  layout?: Partial<TextLayout>;
  /** Weight type of the matrices (norms stay F32); default f32. */
  dtype?: TextDtype;
  seed?: number;
  /** general.name of the file. */
  name?: string;
}

const initDone = z.object({
  event: z.literal("done"),
  outputs: z.object({ model: z.string() }),
  dtype: z.enum(TEXT_DTYPES),
  hparams: hparamsSchema,
  n_params: z.number().int().positive(),
  bytes: z.number().int().positive(),
  wall_s: z.number(),
});
export interface InitTextModelResult {
  path: string;
  dtype: TextDtype;
  hparams: TextHparams;
  nParams: number;
  bytes: number;
  wallS: number;
}

/** Writes a llama-architecture text model with seeded random weights around the tokenizer of `vocab`. */
export async function initTextModel(o: InitTextModelOptions): Promise<InitTextModelResult> {
  let done: z.infer<typeof initDone> | undefined;
  const args = [
    "init-text", "--vocab", o.vocab, "--out", o.out, ...layoutArgs(o.preset, o.layout), ...flag("dtype", o.dtype),
    ...flag("seed", o.seed), ...flag("name", o.name),
  ];
  await runTrainer(args, (line) => {
    if (line.event === "done") done = parse(initDone, line, "init-text result");
  });
  if (!done) throw new TrainerError("freshrec-trainer init-text ended without a result line");
  return { path: done.outputs.model, dtype: done.dtype, hparams: toHparams(done.hparams), nParams: done.n_params, bytes: done.bytes, wallS: done.wall_s };
}

const textMetricsSchema = metricsSchema.extend({ tokens_per_s: z.number() });
/** Training metrics of the text subcommands: val_acc is the share of answer tokens predicted exactly (argmax). */
export type TextTrainMetrics = z.infer<typeof textMetricsSchema>;

export interface TrainTextModelOptions extends TrainInput<TextExample> {
  /** Any llama-architecture text GGUF (F32, F16, BF16 or Q8_0; dequantised for training), e.g. from initTextModel. */
  base: string;
  out: string;
  /** Weight type written (default f32). */
  dtype?: TextDtype;
  /** Keep token_embd (and with tied output, the output projection) as it is. */
  freezeEmbedding?: boolean;
}
const trainTextDone = z.object({
  event: z.literal("done"),
  outputs: z.object({ model: z.string(), dtype: z.enum(TEXT_DTYPES), n_params_trained: z.number().int() }),
  metrics: textMetricsSchema,
});
export interface TrainTextModelResult {
  outputs: { model: string; dtype: TextDtype; n_params_trained: number };
  metrics: TextTrainMetrics;
  epochs: EpochMetrics[];
}

/** Full-weight training of a text model on prompt/answer examples (loss on answer tokens only); keeps the base's metadata. */
export async function trainTextModel(o: TrainTextModelOptions): Promise<TrainTextModelResult> {
  return withWorkDir(async (dir) => {
    const args = ["train-text", "--base", o.base, "--out", o.out, ...flag("dtype", o.dtype), ...flag("freeze-embd", o.freezeEmbedding ? 1 : undefined)];
    const { event: _e, ...r } = await trainRun("train-text", args, o, dir, trainTextDone, writeTextExamples);
    return r;
  });
}

/** `base`: the user's unchanged GGUF (llama architecture; F32, F16, BF16 or Q8_0). */
export interface TrainTextLoraOptions extends TrainInput<TextExample>, LoraSettings {}
const loraTextDone = z.object({
  event: z.literal("done"),
  outputs: z.object({ adapter: z.string(), rank: z.number().int(), alpha: z.number(), n_targets: z.number().int() }),
  metrics: textMetricsSchema,
});
export interface TrainTextLoraResult {
  outputs: { adapter: string; rank: number; alpha: number; n_targets: number };
  metrics: TextTrainMetrics;
  epochs: EpochMetrics[];
}

/** Trains a LoRA adapter (llama.cpp GGUF LoRA, loadable on the unchanged base) on prompt/answer examples. */
export async function trainTextLora(o: TrainTextLoraOptions): Promise<TrainTextLoraResult> {
  return withWorkDir(async (dir) => {
    const { event: _e, ...r } = await trainRun("lora-text", loraArgs("lora-text", o), o, dir, loraTextDone, writeTextExamples);
    return r;
  });
}

export interface ForwardTextOptions {
  base: string;
  adapter?: string;
  /** Adapter scale (llama.cpp's user scale; effective scale is scale * alpha / rank). */
  scale?: number;
  /** Prompts; with an answer, its teacher-forced log-probability is returned too. */
  prompts: readonly TextExample[];
  /** The k most likely next tokens after each prompt. */
  topK?: number;
  /** Every prompt's full next-token logits (n_vocab numbers each: keep prompts few). */
  logits?: boolean;
  /** Examples packed into one graph. */
  batch?: number;
  threads?: number;
}
const textRowSchema = z.object({
  event: z.literal("row"),
  i: z.number().int(),
  n_answer: z.number().int(),
  answer_logprob: z.number().nullable(),
  top: z.array(z.number().int()).optional(),
  logits: z.array(z.number()).optional(),
});
const forwardTextDone = z.object({
  event: z.literal("done"),
  n: z.number().int(),
  loss: z.number().nullable(),
  token_acc: z.number().nullable(),
  n_answer_tokens: z.number().int(),
  adapter_id: z.string().nullable(),
});
export interface ForwardTextResult {
  rows: Array<{ answerLogprob: number | null; nAnswer: number; top?: number[]; logits?: number[] }>;
  /** Mean negative log-likelihood per answer token (null without answers). */
  loss: number | null;
  tokenAcc: number | null;
  nAnswerTokens: number;
  adapterId: string | null;
}

/** The trainer's own forward pass on text prompts: next-token logits after each prompt and answer log-probabilities. */
export async function forwardText(o: ForwardTextOptions): Promise<ForwardTextResult> {
  const args = [
    "--base", o.base, ...flag("adapter", o.adapter), ...flag("scale", o.scale), ...flag("top-k", o.topK), "--logits", o.logits ? "1" : "0",
    ...flag("batch", o.batch), ...flag("threads", o.threads ?? 1),
  ];
  const { rows, done } = await forwardRows("forward-text", o.prompts.length, (path) => writeTextExamples(path, o.prompts), args, textRowSchema, forwardTextDone);
  return {
    rows: rows.map((r) => ({ answerLogprob: r.answer_logprob, nAnswer: r.n_answer, top: r.top, logits: r.logits })),
    loss: done.loss,
    tokenAcc: done.token_acc,
    nAnswerTokens: done.n_answer_tokens,
    adapterId: done.adapter_id,
  };
}

export interface LoraThroughputOptions {
  /** Layout of the random-weight model (default smollm2-135m). */
  preset?: TextLayoutPreset;
  /** Bundled tokenizer (default starcoder: 49,152 tokens, SmolLM2's vocabulary size). */
  vocab?: string;
  /** Examples trained on (one epoch), prompt and answer lengths in tokens. */
  nExamples?: number;
  promptTokens?: number;
  answerTokens?: number;
  batch?: number;
  rank?: number;
  threads?: number;
  seed?: number;
  onProgress?: TrainInput<TextExample>["onProgress"];
}
export interface LoraThroughput {
  /** Sequence tokens (prompt + answer - 1 per example) trained per second of training time (model loading excluded). */
  tokensPerS: number;
  /** The same per CPU-second of the trainer process: with one thread, the figure a busy machine cannot depress. */
  tokensPerCpuS: number;
  examplesPerS: number;
  nParams: number;
  /** How it was measured, in words (for the benchmark's output). */
  how: string;
}

/**
 * Native LoRA speed on a model of real shape with random weights: writes the layout in a temporary folder, trains
 * one epoch of a rank-r adapter on seeded random token sequences, and reports the trainer's measured tokens/s.
 */
export async function measureLoraThroughput(o: LoraThroughputOptions = {}): Promise<LoraThroughput> {
  const preset = o.preset ?? "smollm2-135m";
  const vocabName = o.vocab ?? "starcoder";
  const n = o.nExamples ?? 16;
  const promptTokens = o.promptTokens ?? 48;
  const answerTokens = o.answerTokens ?? 8;
  const batch = o.batch ?? 4;
  const rank = o.rank ?? 8;
  const threads = o.threads ?? 1;
  return withWorkDir(async (dir) => {
    const base = join(dir, "base.gguf");
    const init = await initTextModel({ vocab: bundledVocab(vocabName), out: base, preset, seed: o.seed ?? 1, name: `random ${preset}` });
    const rng = mulberry32(o.seed ?? 1);
    // Ids from the first 10,000 of the vocabulary: ordinary tokens in every bundled tokenizer.
    const ids = (len: number) => Array.from({ length: len }, () => Math.floor(rng() * 10_000));
    const examples = Array.from({ length: n }, () => ({ prompt: ids(promptTokens), answer: ids(answerTokens) }));
    const r = await trainTextLora({
      base, out: join(dir, "adapter.gguf"), adapterId: "throughput", rank, examples, epochs: 1, batch, valFraction: 0, threads,
      seed: o.seed ?? 1, onProgress: o.onProgress, progressEvery: 1,
    });
    return {
      tokensPerS: r.metrics.tokens_per_s,
      tokensPerCpuS: (r.metrics.n_train * (promptTokens + answerTokens - 1)) / r.metrics.cpu_s,
      examplesPerS: r.metrics.examples_per_s,
      nParams: init.nParams,
      how:
        `lora-text rank ${rank} on q,k,v,o,gate,up,down of a random-weight ${preset} layout (${init.nParams} params, ${vocabName} vocabulary of ` +
        `${init.hparams.nVocab}, F32), ${n} examples of ${promptTokens}+${answerTokens} tokens, batch ${batch}, ${threads} thread(s), one epoch; ` +
        "training time only (model load excluded)",
    };
  });
}
