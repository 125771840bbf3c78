import { writeFileSync } from "node:fs";
import type { LayoutParams } from "@freshrec/core";
import { loadTextEncoder } from "@freshrec/scorer";
import { buildTrainingSet, exampleTokens, TrainingSetConfigSchema, type TrainingSet, type TrainingSetConfig } from "../training-set/build.js";
import { rollingRagSource } from "../training-set/rag-source.js";
import { textTokenExamples } from "../training-set/text-examples.js";
import { days, type JobContext } from "./context.js";
import type { TokenExample } from "./ports.js";

export const trainingSetConfig = (ctx: JobContext): TrainingSetConfig =>
  TrainingSetConfigSchema.parse({ ...ctx.config.trainingSet, ragWindowDays: ctx.config.ragWindowDays, seed: ctx.config.trainingSet.seed ?? ctx.config.seed });

/** The training set of a window, RAG slots filled point-in-time from the store's transitions before each example. */
export async function trainingSetFor(ctx: JobContext, window: { start: number; end: number }, layout: LayoutParams): Promise<TrainingSet> {
  const ragWindowMs = days(ctx.config.ragWindowDays);
  const transitions = await ctx.store.transitions({ start: window.start - ragWindowMs, end: window.end });
  ctx.onProgress?.({ phase: "training set", done: 0, info: { transitions: transitions.length } });
  return buildTrainingSet({
    transitions,
    window,
    rag: rollingRagSource(transitions, { windowMs: ragWindowMs, n: layout.ragSlots }),
    layout,
    config: trainingSetConfig(ctx),
    storeVersion: await ctx.store.version(),
  });
}

/** Train and early-stopping examples as token ids. */
export const tokenExamples = (set: TrainingSet, layout: LayoutParams): { examples: TokenExample[]; valExamples: TokenExample[] } => ({
  examples: set.train.map((e) => exampleTokens(e, layout)),
  valExamples: set.val.map((e) => exampleTokens(e, layout)),
});

/**
 * The training set as JSON lines, one example per line (the external trainer contract, external/README.md):
 * {"history":[c1,c2],"rag":[r1,..]|null,"next":c,"ts":ms,"tokens":[...prompt token ids],"target":token id of next}
 */
export function writeTrainingJsonl(path: string, set: TrainingSet, layout: LayoutParams): void {
  const lines = set.train.map((e) => JSON.stringify({ history: e.history, rag: e.rag, next: e.next, ts: e.ts, ...exampleTokens(e, layout) }));
  writeFileSync(path, lines.length ? `${lines.join("\n")}\n` : "");
}

/** A training set rendered for a text model: its own tokenizer and prompt template, the store's cluster descriptions. */
export async function textExamples(ctx: JobContext, set: TrainingSet, modelPath: string) {
  const { encoder, dispose } = await loadTextEncoder({ path: modelPath, params: { k: set.manifest.layout.k, ragLines: set.manifest.layout.ragSlots } });
  try {
    return textTokenExamples(set, encoder, await ctx.store.clusters());
  } finally {
    await dispose();
  }
}
