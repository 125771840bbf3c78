import { existsSync } from "node:fs";
import { join } from "node:path";
import { pretrain, trainLora, type LoraOptions, type ModelSize, type TrainSettings } from "../native/trainer.js";
import { trainTextLora, trainTextModel } from "../native/text-trainer.js";
import type { Trainer } from "./ports.js";

/**
 * Epoch budget shared by both jobs: `epochs` is the most, early stopping (`patience`) usually ends sooner, and
 * `exampleBudget` cuts the epochs of a large set to about that many example passes (at least one epoch), so a
 * small window gets enough steps to learn and a large one stays fast.
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
function settingsFor<T extends TrainSettings & EpochBudget>(defaults: T, hyper: Record<string, unknown>, nExamples: number): Omit<T, "exampleBudget"> {
  const { exampleBudget, ...s } = { ...defaults, ...(hyper as Partial<T>) };
  const epochs = s.epochs ?? 3;
  const cut = exampleBudget ? Math.max(1, Math.min(epochs, Math.ceil(exampleBudget / Math.max(nExamples, 1)))) : epochs;
  return { ...s, epochs: cut } as Omit<T, "exampleBudget">;
}

/** An empty val split falls back to the trainer's own random split (valFraction). */
const valOf = <E>(val: E[]) => (val.length > 0 ? { valExamples: val } : {});

/** The built-in backend: the ggml trainer (packages/trainer-bridge/src/native). Bases come out as F32 + Q8_0. */
export function nativeTrainer(): Trainer {
  return {
    name: "native",
    async pretrainBase(i) {
      const outF32 = join(i.outDir, "base-f32.gguf");
      const outQ8 = join(i.outDir, "base-q8_0.gguf");
      const { size, ...settings } = settingsFor(LOOP_PRETRAIN_DEFAULTS, i.hyper, i.examples.length);
      await pretrain({
        seed: i.seed,
        ...settings,
        ...(size ? { size } : {}),
        examples: i.examples,
        ...valOf(i.valExamples),
        layout: i.layout,
        modelId: i.modelId,
        outF32,
        outQ8,
        windowStartMs: i.window.start,
        windowEndMs: i.window.end,
        ...(i.onProgress ? { onProgress: i.onProgress } : {}),
      });
      // Q8_0 needs n_embd % 32 == 0; the trainer skips it otherwise and serving uses the F32 file.
      return { trainPath: outF32, servePath: existsSync(outQ8) ? outQ8 : outF32 };
    },
    async trainAdapter(i) {
      await trainLora({
        seed: i.seed,
        ...settingsFor(LOOP_LORA_DEFAULTS, i.hyper, i.examples.length),
        examples: i.examples,
        ...valOf(i.valExamples),
        base: i.basePath,
        out: i.outPath,
        adapterId: i.adapterId,
        ...(i.warmStartPath ? { initAdapter: i.warmStartPath } : {}),
        ...(i.onProgress ? { onProgress: i.onProgress } : {}),
      });
    },
    async trainTextAdapter(i) {
      await trainTextLora({
        seed: i.seed,
        ...settingsFor(LOOP_TEXT_LORA_DEFAULTS, i.hyper, i.examples.length),
        examples: i.examples,
        ...valOf(i.valExamples),
        base: i.basePath,
        out: i.outPath,
        adapterId: i.adapterId,
        ...(i.warmStartPath ? { initAdapter: i.warmStartPath } : {}),
        ...(i.onProgress ? { onProgress: i.onProgress } : {}),
      });
    },
    async trainTextBase(i) {
      await trainTextModel({
        seed: i.seed,
        ...settingsFor(LOOP_TEXT_BASE_DEFAULTS, i.hyper, i.examples.length),
        examples: i.examples,
        ...valOf(i.valExamples),
        base: i.fromPath,
        out: i.outPath,
        ...(i.onProgress ? { onProgress: i.onProgress } : {}),
      });
    },
  };
}
