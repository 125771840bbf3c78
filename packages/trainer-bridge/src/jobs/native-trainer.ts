import { existsSync } from "node:fs";
import { mulberry32 } from "@freshrec/core";
import { join } from "node:path";
import { pretrain, trainLora, type LoraOptions, type ModelSize, type ProgressFn, type TrainSettings } from "../native/trainer.js";
import { trainTextLora, trainTextModel } from "../native/text-trainer.js";
import type { Trainer } from "./ports.js";

/**
 * Example budget shared by every run: `epochs` is the most, early stopping (`patience`) usually ends sooner, and
 * `exampleBudget` cuts the epochs of a large set to about that many example passes, so a small window gets enough
 * steps to learn and a large one stays fast. A set larger than the budget trains one epoch on a seeded sample of
 * that many examples (text prompts are ~20x longer than cluster-token ones: a whole large window would take hours).
 */
export interface EpochBudget {
  exampleBudget?: number;
}
/** Pretrain hyperparameters: the native trainer's settings plus the model size. */
export type NativePretrainHyper = TrainSettings & EpochBudget & { size?: Partial<ModelSize> };
/** LoRA hyperparameters: the native trainer's settings plus rank, alpha and target tensors. */
export type NativeLoraHyper = TrainSettings & EpochBudget & Pick<LoraOptions, "rank" | "alpha" | "targets">;

/**
 * The loop's defaults, measured on the tiny synthetic world and MovieLens (MODEL.md, "Training in the loop"):
 * many short epochs ended by early stopping on the set's val split, larger batches and a higher lr than the
 * binary's standalone defaults (3 epochs of batch 32 were ~60 steps on a small window: an untrained model).
 */
export const LOOP_PRETRAIN_DEFAULTS: NativePretrainHyper = { epochs: 20, patience: 2, batch: 64, lr: 3e-3, exampleBudget: 200_000 };
export const LOOP_LORA_DEFAULTS: NativeLoraHyper = { epochs: 10, patience: 2, batch: 64, lr: 5e-3, rank: 8, alpha: 16, exampleBudget: 100_000 };
/**
 * Text LoRA: a prompt is ~100 tokens against the cluster-token model's ~6, so the example budget is smaller (a
 * 135M-layout step runs at tens of tokens a second on 2 cores, bench model --kind text), and batches are smaller.
 */
export const LOOP_TEXT_LORA_DEFAULTS: NativeLoraHyper = { epochs: 10, patience: 2, batch: 16, lr: 2e-3, rank: 8, alpha: 16, exampleBudget: 20_000 };
/**
 * Full-weight training of freshrec's own small text base (jobs/text-base.ts): every weight starts random, so a higher
 * lr. About 5,000 examples (3 epochs of the tiny world's window) took its holdout recall@1 from 25 % (random weights)
 * to 28 %, and its first adapter to 31 %; the training loss had levelled off by then.
 */
export const LOOP_TEXT_BASE_DEFAULTS: TrainSettings & EpochBudget = { epochs: 20, patience: 2, batch: 16, lr: 5e-3, exampleBudget: 5_000 };

/** Settings for the binary: defaults, then the caller's, with the epoch count cut to the example budget. */
function settingsFor<T extends TrainSettings & EpochBudget>(defaults: T, hyper: Record<string, unknown>, nExamples: number): { settings: Omit<T, "exampleBudget">; keep: number } {
  const { exampleBudget, ...s } = { ...defaults, ...(hyper as Partial<T>) };
  const epochs = s.epochs ?? 3;
  const cut = exampleBudget ? Math.max(1, Math.min(epochs, Math.ceil(exampleBudget / Math.max(nExamples, 1)))) : epochs;
  return { settings: { ...s, epochs: cut } as Omit<T, "exampleBudget">, keep: exampleBudget ? Math.min(nExamples, exampleBudget) : nExamples };
}

/** `n` of `xs` drawn without replacement by a seeded shuffle, in their original order. */
function seededSample<E>(xs: E[], n: number, seed: number): E[] {
  if (n >= xs.length) return xs;
  const rng = mulberry32(seed ^ 0x5a3b1e);
  const idx = Array.from(xs.keys());
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rng() * (idx.length - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => xs[i]!);
}

/** What every run of the binary takes from the loop: seed, settings within the budget, examples, progress. */
function runOf<T extends TrainSettings & EpochBudget, E>(defaults: T, i: { seed: number; hyper: Record<string, unknown>; examples: E[]; valExamples: E[]; onProgress?: ProgressFn }) {
  const { settings, keep } = settingsFor(defaults, i.hyper, i.examples.length);
  return {
    seed: i.seed,
    ...settings,
    examples: seededSample(i.examples, keep, i.seed),
    // An empty val split falls back to the trainer's own random split (valFraction).
    ...(i.valExamples.length > 0 ? { valExamples: i.valExamples } : {}),
    ...(i.onProgress ? { onProgress: i.onProgress } : {}),
  };
}

/** The files of a LoRA run: the base it trains against, the adapter it writes (and its id), the one it warm-starts from. */
const loraFiles = (i: { basePath: string; outPath: string; adapterId: string; warmStartPath?: string }) => ({
  base: i.basePath,
  out: i.outPath,
  adapterId: i.adapterId,
  ...(i.warmStartPath ? { initAdapter: i.warmStartPath } : {}),
});

/** The built-in backend: the ggml trainer (packages/trainer-bridge/src/native). Bases come out as F32 + Q8_0. */
export function nativeTrainer(): Trainer {
  return {
    name: "native",
    async pretrainBase(i) {
      const outF32 = join(i.outDir, "base-f32.gguf");
      const outQ8 = join(i.outDir, "base-q8_0.gguf");
      const { size, ...run } = runOf(LOOP_PRETRAIN_DEFAULTS, i);
      await pretrain({
        ...run,
        ...(size ? { size } : {}),
        layout: i.layout,
        modelId: i.modelId,
        outF32,
        outQ8,
        windowStartMs: i.window.start,
        windowEndMs: i.window.end,
      });
      // Q8_0 needs n_embd % 32 == 0; the trainer skips it otherwise and serving uses the F32 file.
      return { trainPath: outF32, servePath: existsSync(outQ8) ? outQ8 : outF32 };
    },
    async trainAdapter(i) {
      await trainLora({ ...runOf(LOOP_LORA_DEFAULTS, i), ...loraFiles(i) });
    },
    async trainTextAdapter(i) {
      await trainTextLora({ ...runOf(LOOP_TEXT_LORA_DEFAULTS, i), ...loraFiles(i) });
    },
    async trainTextBase(i) {
      await trainTextModel({ ...runOf(LOOP_TEXT_BASE_DEFAULTS, i), base: i.fromPath, out: i.outPath });
    },
  };
}
