import { historyKey, type ClusterId, type LayoutParams, type Transition } from "@freshrec/core";
import type { Snapshot, SuccessorResult } from "@freshrec/retriever";
import { fitBlend, type BlendFit, type Popularity, type Prompt, type Scorer } from "@freshrec/scorer";
import type { ProgressFn } from "../native/trainer.js";
import { scoreAll } from "./evaluate.js";

/** The prompt of a history: its RAG slots are the first retrieved successors (none retrieved: the `<none>` slots). */
export function ragPrompt(history: ClusterId[], evidence: SuccessorResult | undefined, layout: LayoutParams): Prompt {
  const items = evidence?.items.slice(0, layout.ragSlots) ?? [];
  return items.length > 0 ? { history, rag: items.map((i) => i.clusterId), ragCounts: items.map((i) => i.count) } : { history, rag: null };
}

/**
 * Fits the blend weights on past transitions the retrieval has not seen: each holdout transition's key is scored
 * with the snapshot taken before the holdout began (one scoring per distinct key), and every pair of weights of the
 * grid is tried on the model's distribution mixed with that snapshot's counts and the popularity of the same window.
 */
export async function fitRagBlend(o: {
  scorer: Scorer;
  holdout: readonly Transition[];
  snapshot: Snapshot;
  popularity: Popularity;
  layout: LayoutParams;
  batch: number;
  onProgress?: ProgressFn;
}): Promise<BlendFit> {
  const index = new Map<string, number>();
  const histories: ClusterId[][] = [];
  for (const t of o.holdout) {
    const key = historyKey(t.history);
    if (!index.has(key)) index.set(key, histories.push([...t.history]) - 1);
  }
  const evidence = histories.map((h) => o.snapshot.lookup(h));
  const dists = await scoreAll(o.scorer, histories.map((h, i) => ragPrompt(h, evidence[i], o.layout)), o.batch, "blend fit", o.onProgress);
  return fitBlend(
    o.holdout.map((t) => {
      const i = index.get(historyKey(t.history))!;
      return { dist: dists[i]!, rag: evidence[i], next: t.next };
    }),
    o.popularity,
  );
}
