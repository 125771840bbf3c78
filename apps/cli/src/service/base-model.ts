import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { FreshrecError } from "@freshrec/core";
import { describeAssessment, inspectModelFile } from "@freshrec/scorer";
import { writeSmallTextModel } from "@freshrec/trainer-bridge";

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
 * The demo's own text model when none is given (trainer-bridge's small text model: random weights, a production
 * tokenizer, nothing downloaded). It knows no language: the bootstrap trains its weights on the world (text.trainBase).
 */
export async function demoTextModel(modelsDir: string): Promise<string> {
  const out = join(modelsDir, "demo-text-base.gguf");
  if (!existsSync(out)) await writeSmallTextModel(out);
  return out;
}
