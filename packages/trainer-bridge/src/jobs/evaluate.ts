import { historyKey, type LayoutParams } from "@freshrec/core";
import type { HoldoutMetrics } from "@freshrec/registry";
import { holdoutMetrics } from "../gates/gates.js";
import type { TrainingExample } from "../training-set/build.js";
import type { Prompt, Scorer, ScoringModel } from "@freshrec/scorer";
import type { ProgressFn } from "../native/trainer.js";

/** scoreNext over many prompts in batches, with progress. */
export async function scoreAll(
  scorer: Scorer,
  prompts: Prompt[],
  batch: number,
  phase: string,
  onProgress?: ProgressFn,
): Promise<Array<Array<{ clusterId: number; p: number }>>> {
  const out: Array<Array<{ clusterId: number; p: number }>> = [];
  for (let i = 0; i < prompts.length; i += batch) {
    out.push(...(await scorer.scoreNext(prompts.slice(i, i + batch))));
    onProgress?.({ phase, done: out.length, total: prompts.length });
  }
  return out;
}

/** Holdout metrics of base + adapter on the training set's holdout (RAG slots as of each example's time). */
export async function scoreHoldout(
  model: ScoringModel,
  adapter: { path: string; id: string } | undefined,
  holdout: TrainingExample[],
  layout: LayoutParams,
  opts: { batch: number; contexts: number; parallel: number; onProgress?: ProgressFn },
): Promise<HoldoutMetrics> {
  const scorer = await model.createScorer({ contexts: opts.contexts, parallel: opts.parallel, ...(adapter ? { adapterPath: adapter.path, adapterId: adapter.id } : {}) });
  try {
    const ranked = await scoreAll(scorer, holdout.map((e) => ({ history: e.history, rag: e.rag, ...(e.ragCounts ? { ragCounts: e.ragCounts } : {}) })), opts.batch, "holdout", opts.onProgress);
    return holdoutMetrics(
      holdout.map((e, i) => ({ next: e.next, ranked: ranked[i]!.map((x) => x.clusterId) })),
      layout.nClusters,
    );
  } finally {
    await scorer.dispose();
  }
}

/** Holdout metrics of a prediction table: the row of each example's key is its ranking (no row: a miss). */
export function tableHoldout(rows: Iterable<{ key: string; clusters: number[] }>, holdout: Array<{ history: number[]; next: number }>, nClusters: number): HoldoutMetrics {
  const byKey = new Map<string, number[]>();
  for (const r of rows) byKey.set(r.key, r.clusters);
  return holdoutMetrics(
    holdout.map((t) => ({ next: t.next, ranked: byKey.get(historyKey(t.history)) ?? [] })),
    nClusters,
  );
}
