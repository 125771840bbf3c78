import { writeFile } from "node:fs/promises";
import { vocabulary, ValidationError, type LayoutParams } from "@freshrec/core";

/** One training or evaluation example: the prompt's token ids and, for training, the target token id. */
export interface Example {
  tokens: readonly number[];
  target?: number;
}

/**
 * Writes examples in the trainer's format: one per line, the prompt's token ids then the target id,
 * space-separated. All prompts must have the same length; ids must be non-negative integers.
 */
export async function writeExamples(path: string, examples: readonly Example[]): Promise<void> {
  const len = examples[0]?.tokens.length ?? 0;
  const lines = examples.map((e, i) => {
    const ids = e.target === undefined ? e.tokens : [...e.tokens, e.target];
    if (e.tokens.length !== len || !ids.every((t) => Number.isInteger(t) && t >= 0))
      throw new ValidationError(`examples[${i}]`, [{ path: "tokens", message: `must be ${len} non-negative integer token ids (+ target)`, value: ids }]);
    return ids.join(" ");
  });
  await writeFile(path, lines.length ? `${lines.join("\n")}\n` : "");
}

/** Writes the model vocabulary of `layout` (packages/core layout.ts) as `text<TAB>gguf token type` lines in id order. */
export async function writeVocab(path: string, layout: Pick<LayoutParams, "nClusters">): Promise<void> {
  await writeFile(path, vocabulary(layout).map((t) => `${t.text}\t${t.type}\n`).join(""));
}

/** A text-model example: prompt token ids and, for training or answer scoring, the answer's token ids. */
export interface TextExample {
  prompt: readonly number[];
  answer?: readonly number[];
}

/**
 * Writes text examples in the trainer's format: one per line, `prompt ids | answer ids`, space-separated.
 * Prompts must be non-empty; ids non-negative integers (the trainer checks them against the model's vocabulary).
 */
export async function writeTextExamples(path: string, examples: readonly TextExample[]): Promise<void> {
  const ok = (ids: readonly number[]) => ids.every((t) => Number.isInteger(t) && t >= 0);
  const lines = examples.map((e, i) => {
    if (e.prompt.length === 0 || !ok(e.prompt))
      throw new ValidationError(`examples[${i}]`, [{ path: "prompt", message: "must be a non-empty list of non-negative integer token ids", value: e.prompt }]);
    if (e.answer && !ok(e.answer))
      throw new ValidationError(`examples[${i}]`, [{ path: "answer", message: "must be non-negative integer token ids", value: e.answer }]);
    return e.answer ? `${e.prompt.join(" ")} | ${e.answer.join(" ")}` : e.prompt.join(" ");
  });
  await writeFile(path, lines.length ? `${lines.join("\n")}\n` : "");
}
