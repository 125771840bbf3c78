import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterToToken, mulberry32, promptTokens, vocabSize, type LayoutParams } from "@freshrec/core";
import { getLlama, LlamaLogLevel, type Llama, type Token } from "node-llama-cpp";
import type { Example } from "../src/index.js";

/** Tiny models keep the native tests at a few seconds each. */
export const TINY = { nEmbd: 32, nLayer: 2, nHead: 2, nFf: 64, nCtx: 16 };
export const LAYOUT: LayoutParams = { k: 2, ragSlots: 3, nClusters: 12 };

/** The synthetic rule the base learns: next = (2a + b) mod C for history (a, b); RAG slots hold noise. */
export const baseRule = (a: number, b: number) => (2 * a + b) % LAYOUT.nClusters;
/** The shifted rule a LoRA fine-tune must learn: histories starting with a cluster below 3 move by 5. */
export const isShifted = (a: number) => a < 3;
export const shiftedRule = (a: number, b: number) => (isShifted(a) ? (baseRule(a, b) + 5) % LAYOUT.nClusters : baseRule(a, b));

export interface Case extends Example {
  a: number;
  b: number;
}

export function makeExamples(n: number, seed: number, rule: (a: number, b: number) => number, filter: (a: number) => boolean = () => true): Case[] {
  const rng = mulberry32(seed);
  const pick = () => Math.floor(rng() * LAYOUT.nClusters);
  const out: Case[] = [];
  while (out.length < n) {
    const a = pick();
    const b = pick();
    if (!filter(a)) continue;
    const rag = Array.from({ length: Math.floor(rng() * (LAYOUT.ragSlots + 1)) }, pick);
    out.push({ a, b, tokens: promptTokens([a, b], rag, LAYOUT), target: clusterToToken(rule(a, b)) });
  }
  return out;
}

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-native-test-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let llamaPromise: Promise<Llama> | undefined;
export const llama = () => (llamaPromise ??= getLlama({ build: "never", logLevel: LlamaLogLevel.error }));

/**
 * Log-probabilities of the next token at the last prompt position from llama.cpp (node-llama-cpp), F32 KV cache
 * so numerics match the trainer. node-llama-cpp exposes probabilities, not raw logits: compare log-softmax.
 */
export async function llamaCppLogProbs(modelPath: string, prompts: readonly Example[], adapter?: { filePath: string; scale: number }): Promise<number[][]> {
  const model = await (await llama()).loadModel({ modelPath });
  try {
    const ctx = await model.createContext({
      contextSize: TINY.nCtx,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
      lora: adapter ? { adapters: [adapter] } : undefined,
    });
    const out: number[][] = [];
    const seq = ctx.getSequence();
    for (const p of prompts) {
      await seq.clearHistory();
      const toks = p.tokens as readonly number[] as Token[];
      const res = await seq.controlledEvaluate([...toks.slice(0, -1), [toks.at(-1)!, { generateNext: { probabilities: true } }]]);
      const probs = res.at(-1)!.next!.probabilities!;
      out.push(Array.from({ length: vocabSize(LAYOUT) }, (_, t) => Math.log(probs.get(t as Token) ?? 0)));
    }
    await ctx.dispose();
    return out;
  } finally {
    await model.dispose();
  }
}

export function logSoftmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const lse = max + Math.log(logits.reduce((s, x) => s + Math.exp(x - max), 0));
  return logits.map((x) => x - lse);
}
