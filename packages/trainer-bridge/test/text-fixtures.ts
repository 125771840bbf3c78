import { readFileSync } from "node:fs";

/**
 * llama.cpp's own tokenizer test vectors shipped beside each bundled vocabulary (`<vocab>.gguf.inp` / `.out`):
 * inputs separated by `\n__ggml_vocab_test__\n`, expected token ids (no BOS, no special-token parsing) one line each.
 */
export function tokenizerVectors(vocabPath: string): Array<{ text: string; ids: number[] }> {
  const raw = readFileSync(`${vocabPath}.inp`, "utf8");
  const inputs = raw.split("\n__ggml_vocab_test__\n");
  if (inputs.at(-1) === "") inputs.pop();
  const outputs = readFileSync(`${vocabPath}.out`, "utf8").split("\n");
  if (outputs.at(-1) === "") outputs.pop();
  if (inputs.length !== outputs.length) throw new Error(`${vocabPath}: ${inputs.length} test inputs but ${outputs.length} outputs`);
  return inputs.map((text, i) => ({ text, ids: outputs[i]!.trim() ? outputs[i]!.trim().split(" ").map(Number) : [] }));
}

/** A tiny text world: 8 topics; the next topic after history (a, b), b the latest, follows a rule over topic indices. */
export const TOPICS = ["baking bread", "cooking pasta", "hiking trails", "camping gear", "jazz piano", "rock guitar", "chess openings", "poker strategy"];
export const baseTopicRule = (_a: number, b: number) => (b + 1) % TOPICS.length;
/** The shifted rule a LoRA fine-tune must learn: histories starting with topic 0 or 1 move by 3. */
export const isShiftedTopic = (a: number) => a < 2;
export const shiftedTopicRule = (a: number, b: number) => (isShiftedTopic(a) ? (baseTopicRule(a, b) + 3) % TOPICS.length : baseTopicRule(a, b));

export const promptText = (a: number, b: number) => `Recent interests: ${TOPICS[a]}; ${TOPICS[b]}. Next interest:`;
export const answerText = (t: number) => ` ${TOPICS[t]}`;

export interface TextCase {
  a: number;
  b: number;
  prompt: number[];
  answer: number[];
}

/** Every (a, b) pair with a != b, tokenized by `tokenize`; the answer ends with `eos` (multi-token answers with a special token). */
export function topicCases(tokenize: (text: string) => number[], eos: number, rule: (a: number, b: number) => number, filter: (a: number) => boolean = () => true): TextCase[] {
  const out: TextCase[] = [];
  for (let a = 0; a < TOPICS.length; a++)
    for (let b = 0; b < TOPICS.length; b++)
      if (a !== b && filter(a)) out.push({ a, b, prompt: tokenize(promptText(a, b)), answer: [...tokenize(answerText(rule(a, b))), eos] });
  return out;
}
