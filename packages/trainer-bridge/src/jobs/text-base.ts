import { bundledVocab } from "../native/build.js";
import { initTextModel, type TextLayout } from "../native/text-trainer.js";
import type { TrainingSet } from "../training-set/build.js";
import { JobError, type JobContext } from "./context.js";
import { timed } from "./measure.js";
import { textExamples } from "./training-data.js";

/**
 * freshrec's own small text model: llama architecture, a production tokenizer from the llama.cpp source node-llama-cpp
 * ships (StarCoder's, the vocabulary of SmolLM2's size), random weights. Nothing is downloaded.
 */
const SMALL_TEXT_LAYOUT: Partial<TextLayout> = { nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 128, nCtx: 512 };

/** Writes freshrec's small text model with seeded random weights to `out`. */
export async function writeSmallTextModel(out: string, seed = 1): Promise<string> {
  return (await initTextModel({ vocab: bundledVocab("starcoder"), out, layout: SMALL_TEXT_LAYOUT, seed })).path;
}

/**
 * Trains every weight of a text model freshrec wrote itself on a training set (the bootstrap window's), through the
 * same prompt template its fine-tunes and scoring use. Without a download there is no pretrained language model here,
 * and LoRA cannot teach random weights a vocabulary: this gives the demo and the replay a text base that knows the
 * domain's words, the role a pretrained model plays for a team (whose own file is never trained this way).
 */
export async function trainTextBase(ctx: JobContext, set: TrainingSet, o: { from: string; out: string }): Promise<{ examples: number; wallS: number; cpuS: number }> {
  const train = ctx.trainer.trainTextBase;
  if (!train) throw new JobError("bootstrap", `trainer '${ctx.trainer.name}' cannot train a text model's weights (use the native trainer)`);
  const { examples, valExamples } = await textExamples(ctx, set, o.from);
  const { size: _size, ...hyper } = ctx.config.pretrain;
  const trained = await timed(() =>
    train({ examples, valExamples, fromPath: o.from, outPath: o.out, hyper, seed: ctx.config.seed, ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}) }),
  );
  return { examples: examples.length, wallS: trained.wallS, cpuS: trained.cpuS };
}
