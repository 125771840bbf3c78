import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cluster } from "@freshrec/core";
// Relative import on purpose: trainer-bridge depends on the scorer (see fixtures.ts).
import { bundledVocab, initTextModel } from "../../trainer-bridge/src/index.js";

const MODIFIERS = ["urban", "retro", "indie", "cozy", "vintage", "wild", "deep", "coastal"];
const TOPICS = ["cooking", "guitar", "gaming", "fitness", "travel", "cats", "gardening", "chess"];

/** n clusters (<= 64) described by two words each, all distinct. */
export const textClusters = (n: number): Cluster[] =>
  Array.from({ length: n }, (_, id) => ({ id, keywords: [MODIFIERS[Math.floor(id / TOPICS.length)]!, TOPICS[id % TOPICS.length]!] }));

/** Small enough for CI: one layer, n_embd 32, grouped-query attention (2 heads, 1 KV head), tied output. */
export const TINY_TEXT_LAYOUT = { nEmbd: 32, nFf: 64, nHead: 2, nHeadKv: 1, nLayer: 1 };

export interface TinyTextModels {
  dir: string;
  /** Llama 3's BPE tokenizer, no chat template: a base model (completion prompts). */
  base: string;
  /** Qwen2's tokenizer with its chat template: an instruct model (chat prompts). */
  instruct: string;
  /** The Llama 3 vocabulary-only GGUF (no weights). */
  vocabOnly: string;
  cleanup(): Promise<void>;
}

/** Random-weight (seeded) text models with real production tokenizers, written by the native trainer. */
export async function makeTinyTextModels(): Promise<TinyTextModels> {
  const dir = await mkdtemp(join(tmpdir(), "freshrec-text-scorer-"));
  const base = join(dir, "base.gguf");
  const instruct = join(dir, "instruct.gguf");
  await initTextModel({ vocab: bundledVocab("llama-bpe"), out: base, layout: TINY_TEXT_LAYOUT, seed: 3 });
  await initTextModel({ vocab: bundledVocab("qwen2"), out: instruct, layout: TINY_TEXT_LAYOUT, seed: 4 });
  return { dir, base, instruct, vocabOnly: bundledVocab("llama-bpe"), cleanup: () => rm(dir, { recursive: true, force: true }) };
}
