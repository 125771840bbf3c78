import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterToToken, mulberry32, promptTokens, type LayoutParams } from "@freshrec/core";
import type { Prompt } from "../src/index.js";
// Relative import on purpose: trainer-bridge depends on the scorer, so a package dependency back would be a cycle.
import { pretrain, trainLora, type Example } from "../../trainer-bridge/src/index.js";

export const LAYOUT: LayoutParams = { k: 2, ragSlots: 3, nClusters: 24 };
/** Tiny; n_embd 64 keeps its Q8_0 copy clear of llama.cpp's AMX Q8_0 bug at width 32 (the narrow base below meets it on purpose). */
const SIZE = { nEmbd: 64, nLayer: 2, nHead: 2, nFf: 128, nCtx: 16 };

/** Seeded prompts: two history clusters and up to three RAG clusters (sometimes none). */
export function randomPrompts(n: number, seed: number): Prompt[] {
  const rnd = mulberry32(seed);
  const c = () => Math.floor(rnd() * LAYOUT.nClusters);
  return Array.from({ length: n }, () => {
    const a = c();
    let b = c();
    if (b === a) b = (a + 1) % LAYOUT.nClusters;
    return { history: [a, b], rag: rnd() < 0.2 ? null : [c(), c(), c()].slice(0, 1 + Math.floor(rnd() * 3)) };
  });
}

/** A learnable synthetic world: the next cluster is a permutation of the last history cluster; `shift` changes the permutation. */
function examples(n: number, seed: number, shift: number): Example[] {
  return randomPrompts(n, seed).map((p) => {
    const next = (p.history[1]! * 7 + 3 + shift) % LAYOUT.nClusters;
    return { tokens: promptTokens(p.history, p.rag, LAYOUT), target: clusterToToken(next) };
  });
}

export interface TinyModels {
  dir: string;
  f32: string;
  q8: string;
  adapter: string;
  /**
   * A second base with n_embd 32 (F32 and Q8_0) and its adapter: its shapes cannot fit `f32`, and its Q8_0 file
   * hits llama.cpp's AMX Q8_0 kernel bug on batches of 32+ tokens where llama.cpp runs AMX kernels
   * (src/llama-cpp-workarounds.ts); elsewhere it is scored in batches of any size.
   */
  narrowF32: string;
  narrowQ8: string;
  otherAdapter: string;
  cleanup(): Promise<void>;
}

/** Trains (seeded, 1 thread) a tiny base in F32 and Q8_0, a LoRA adapter for it, and a narrower base (F32, Q8_0) with its own adapter. */
export async function trainTinyModels(): Promise<TinyModels> {
  const dir = await mkdtemp(join(tmpdir(), "freshrec-scorer-test-"));
  const common = { seed: 7, threads: 1, layout: LAYOUT };
  await pretrain({
    ...common, modelId: "tiny-base", outF32: join(dir, "base.f32.gguf"), outQ8: join(dir, "base.q8.gguf"), size: SIZE,
    examples: examples(1500, 1, 0), epochs: 8, windowStartMs: 1_700_000_000_000, windowEndMs: 1_700_086_400_000,
  });
  await trainLora({
    seed: 7, threads: 1, base: join(dir, "base.f32.gguf"), out: join(dir, "adapter.gguf"), adapterId: "tiny-adapter",
    rank: 8, alpha: 16, examples: examples(1500, 2, 5), epochs: 8,
  });
  await pretrain({
    ...common, modelId: "other-base", outF32: join(dir, "other.f32.gguf"), outQ8: join(dir, "other.q8.gguf"), size: { ...SIZE, nEmbd: 32 },
    examples: examples(1000, 3, 0), epochs: 4,
  });
  await trainLora({ seed: 7, threads: 1, base: join(dir, "other.f32.gguf"), out: join(dir, "other-adapter.gguf"), adapterId: "other-adapter", rank: 4, examples: examples(400, 4, 5), epochs: 2 });
  return {
    dir, f32: join(dir, "base.f32.gguf"), q8: join(dir, "base.q8.gguf"), adapter: join(dir, "adapter.gguf"), otherAdapter: join(dir, "other-adapter.gguf"),
    narrowF32: join(dir, "other.f32.gguf"), narrowQ8: join(dir, "other.q8.gguf"),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Natural-log softmax of raw logits. */
export function logSoftmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const lse = max + Math.log(logits.reduce((s, l) => s + Math.exp(l - max), 0));
  return logits.map((l) => l - lse);
}
