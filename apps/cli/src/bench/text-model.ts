/**
 * Text-model figures of `freshrec bench model --kind text`: closed-set scoring with the prompt's KV state reused
 * across candidates against every candidate evaluated with its whole prompt (same model, prompts and scorer, same
 * run), the time a 4,032-key table takes on a model of SmolLM2-135M's shape, and native LoRA speed on that shape.
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { mulberry32, type Cluster, type TextPromptInput } from "@freshrec/core";
import { loadTextModel, type TextModel } from "@freshrec/scorer";
import { bundledVocab, initTextModel, measureLoraThroughput } from "@freshrec/trainer-bridge";
import type { ProgressFn } from "../progress.js";

/** Keys of a full table for 64 clusters and 2-cluster histories (64 x 63). */
export const TABLE_KEYS = 4032;

const MODIFIERS = ["urban", "retro", "indie", "cozy", "vintage", "wild", "deep", "coastal"];
const TOPICS = ["cooking", "guitar", "gaming", "fitness", "travel", "cats", "gardening", "chess"];
/** 64 clusters, two keywords each, as the synthetic world describes them. */
const CLUSTERS: Cluster[] = Array.from({ length: 64 }, (_, id) => ({ id, keywords: [MODIFIERS[id >> 3]!, TOPICS[id & 7]!] }));

/** Seeded table keys (two distinct clusters) with a top-1 RAG line, as a table refresh renders them. */
function tableKeys(n: number, seed: number): TextPromptInput[] {
  const rnd = mulberry32(seed);
  const c = () => Math.floor(rnd() * CLUSTERS.length);
  return Array.from({ length: n }, () => {
    const a = c();
    const b = (a + 1 + Math.floor(rnd() * (CLUSTERS.length - 1))) % CLUSTERS.length;
    return { history: [a, b], rag: [{ clusterId: c(), count: 1 + Math.floor(rnd() * 20) }] };
  });
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/** Candidates per second over `prompts` (63 candidates each, history excluded), with or without reuse. */
async function candidatesPerSecond(model: TextModel, prompts: TextPromptInput[], reuse: boolean, lanes: { parallel: number; contexts: number }): Promise<number> {
  // 256 cells hold the longest prompt (about 100 tokens) and answer with room to spare
  const scorer = await model.createScorer({ clusters: CLUSTERS, ...lanes, contextSize: 256 });
  try {
    await scorer.scoreNext(prompts.slice(0, 2), { reuse }); // warm-up
    const t = performance.now();
    const dists = await scorer.scoreNext(prompts, { reuse });
    const seconds = (performance.now() - t) / 1000;
    return dists.reduce((n, d) => n + d.length, 0) / seconds;
  } finally {
    await scorer.dispose();
  }
}

/**
 * Reuse vs naive on the tiny layout (random weights, Llama 3's tokenizer: 128k tokens), and table keys per second on
 * the SmolLM2-135M layout (random weights, Q8_0 as served, StarCoder's 49,152-token vocabulary, SmolLM2's size)
 * measured on `sampleKeys` keys and extrapolated to the 4,032-key table.
 */
export async function textModelFigures(dir: string, report: ProgressFn, opts: { prompts: number; sampleKeys: number }): Promise<Record<string, number>> {
  report({ phase: "text: write models", done: 0, total: 2 });
  const tiny = join(dir, "text-tiny.gguf");
  await initTextModel({ vocab: bundledVocab("llama-bpe"), out: tiny, preset: "tiny", seed: 1 });
  const small = await loadTextModel({ path: tiny, threads: 1 });
  const prompts = tableKeys(opts.prompts, 2);
  report({ phase: "text: candidates", done: 0, total: 2 });
  const smallLanes = { parallel: 4, contexts: 2 };
  const reused = await candidatesPerSecond(small, prompts, true, smallLanes);
  report({ phase: "text: candidates", done: 1, total: 2 });
  const naive = await candidatesPerSecond(small, prompts, false, smallLanes);
  await small.dispose();

  report({ phase: "text: write models", done: 1, total: 2 });
  const layout135m = join(dir, "text-135m.q8.gguf");
  await initTextModel({ vocab: bundledVocab("starcoder"), out: layout135m, preset: "smollm2-135m", dtype: "q8_0", seed: 1 });
  const big = await loadTextModel({ path: layout135m, threads: 1 });
  report({ phase: "text: 135m table sample", done: 0, total: opts.sampleKeys });
  // Single-token decodes of a 135M model are memory-bound (the whole model is read per decode): many keys in flight
  // batch their decodes into one llama_decode, which is what a table refresh does.
  const keysPerSecond = (await candidatesPerSecond(big, tableKeys(opts.sampleKeys, 3), true, { parallel: 16, contexts: 1 })) / (CLUSTERS.length - 2);
  await big.dispose();
  report({ phase: "text: 135m LoRA", done: 0, total: 1 });
  // the native engineer's measurement: one epoch of rank-8 LoRA on the same layout (F32, random weights), training time only
  const lora = await measureLoraThroughput({ preset: "smollm2-135m", vocab: "starcoder", threads: 1 });
  return {
    candidates_per_s: round(reused, 1),
    naive_candidates_per_s: round(naive, 1),
    candidates_reuse_speedup: round(reused / naive, 2),
    text_prompts_measured: opts.prompts,
    table_keys_per_s_135m: round(keysPerSecond, 3),
    table_135m_keys_sampled: opts.sampleKeys,
    table_135m_extrapolated_s: round(TABLE_KEYS / keysPerSecond, 0),
    lora_tokens_per_s_135m: round(lora.tokensPerS, 1),
  };
}
