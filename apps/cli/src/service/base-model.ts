import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { FreshrecError } from "@freshrec/core";
import { describeAssessment, inspectModelFile } from "@freshrec/scorer";
import { bundledVocab, initTextModel } from "@freshrec/trainer-bridge";

/**
 * A text GGUF the user brings (`--model`): says on stderr what freshrec will do with it, or refuses it with the
 * reason, before anything starts. Returns its absolute path for the jobs' `baseModel`.
 */
export async function textBaseModel(path: string): Promise<string> {
  const assessment = await inspectModelFile(resolve(path));
  if (assessment.kind !== "text") throw new FreshrecError("usage", `--model ${path}: a freshrec cluster-token model; serve it from a registry with --models`);
  for (const line of describeAssessment(assessment)) console.error(line);
  return assessment.path;
}

/**
 * The demo's own text model when none is given: llama architecture, a production tokenizer from the llama.cpp
 * source node-llama-cpp ships (StarCoder's, SmolLM2's size), random weights; nothing is downloaded. It knows no
 * language: its adapters learn everything from the world, which is what the demo can show without a download.
 */
export async function demoTextModel(modelsDir: string): Promise<string> {
  const out = join(modelsDir, "demo-text-base.gguf");
  if (!existsSync(out)) await initTextModel({ vocab: bundledVocab("starcoder"), out, layout: { nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 128, nCtx: 512 }, seed: 1 });
  return out;
}
