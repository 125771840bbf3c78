import { existsSync } from "node:fs";
import { join } from "node:path";
import { pretrain, trainLora, type LoraOptions, type ModelSize, type TrainSettings } from "../native/trainer.js";
import type { PretrainInput, Trainer } from "./ports.js";

/** Pretrain hyperparameters: the native trainer's settings plus the model size. */
export type NativePretrainHyper = TrainSettings & { size?: Partial<ModelSize> };
/** LoRA hyperparameters: the native trainer's settings plus rank, alpha and target tensors. */
export type NativeLoraHyper = TrainSettings & Pick<LoraOptions, "rank" | "alpha" | "targets">;

/** An empty val split falls back to the trainer's own random split (valFraction). */
const valOf = (val: PretrainInput["valExamples"]) => (val.length > 0 ? { valExamples: val } : {});

/** The built-in backend: the ggml trainer (packages/trainer-bridge/src/native). Bases come out as F32 + Q8_0. */
export function nativeTrainer(): Trainer {
  return {
    name: "native",
    async pretrainBase(i) {
      const outF32 = join(i.outDir, "base-f32.gguf");
      const outQ8 = join(i.outDir, "base-q8_0.gguf");
      const { size, ...settings } = i.hyper as NativePretrainHyper;
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
        ...(i.hyper as NativeLoraHyper),
        examples: i.examples,
        ...valOf(i.valExamples),
        base: i.basePath,
        out: i.outPath,
        adapterId: i.adapterId,
        ...(i.warmStartPath ? { initAdapter: i.warmStartPath } : {}),
        ...(i.onProgress ? { onProgress: i.onProgress } : {}),
      });
    },
  };
}
