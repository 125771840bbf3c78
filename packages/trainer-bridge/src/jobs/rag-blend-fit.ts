import { historyKey, type ClusterId, type LayoutParams, type Transition } from "@freshrec/core";
import { rollingRagSource } from "../training-set/rag-source.js";
import type { Snapshot } from "@freshrec/retriever";
import { fitBlend, ragPrompt, type BlendFit, type Popularity, type RagEvidence, type Scorer } from "@freshrec/scorer";
import type { ProgressFn } from "../native/trainer.js";
import { scoreAll } from "./evaluate.js";

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
  const dists = await scoreAll(o.scorer, histories.map((h, i) => ragPrompt(h, evidence[i], o.layout.ragSlots)), o.batch, "blend fit", o.onProgress);
  return fitBlend(
    o.holdout.map((t) => {
      const i = index.get(historyKey(t.history))!;
      return { dist: dists[i]!, rag: evidence[i], next: t.next };
    }),
    o.popularity,
  );
}

/** Most recent holdout transitions a live blend is fitted on: each is scored with its own prompt (no sharing by key). */
const MAX_LIVE_BLEND_CASES = 2_000;

/**
 * Fits the blend for live serving, where retrieval is fresh: each holdout transition is scored with the successors
 * counted over the window right before it (as the server's live path retrieves them), not with the snapshot taken
 * before the holdout began. Fresh counts are worth more than a table's stale ones, so the weights differ.
 * `transitions`: time-ordered, reaching one retrieval window before the first holdout transition.
 */
export async function fitLiveBlend(o: {
  scorer: Scorer;
  transitions: readonly Transition[];
  holdoutStart: number;
  windowMs: number;
  popularity: Popularity;
  layout: LayoutParams;
  batch: number;
  onProgress?: ProgressFn;
}): Promise<BlendFit> {
  const holdout = o.transitions.filter((t) => t.ts >= o.holdoutStart).slice(-MAX_LIVE_BLEND_CASES);
  // Every successor with its count, so the shares are of all transitions retrieved (the store's support).
  const source = rollingRagSource(o.transitions, { windowMs: o.windowMs, n: Number.MAX_SAFE_INTEGER });
  const evidence: RagEvidence[] = [];
  for (const t of holdout) {
    const items = await source.topCounted(t.history, t.ts);
    evidence.push({ items, support: items.reduce((s, i) => s + i.count, 0) });
  }
  const dists = await scoreAll(o.scorer, holdout.map((t, i) => ragPrompt([...t.history], evidence[i], o.layout.ragSlots)), o.batch, "live blend fit", o.onProgress);
  return fitBlend(
    holdout.map((t, i) => ({ dist: dists[i]!, rag: evidence[i], next: t.next })),
    o.popularity,
  );
}
