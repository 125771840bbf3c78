import type { ClusterScore } from "./distribution.js";

/** What retrieval knows about a history: its recent successors with counts, out of `support` transitions. */
export interface RagEvidence {
  items: ReadonlyArray<{ clusterId: number; count: number }>;
  support: number;
}

/**
 * Mixes the model's closed-set distribution with the retrieved successor frequencies, as kNN-LM mixes a language
 * model with its neighbours: p(c) = (1 - lambda) p_model(c) + lambda count(c) / support. The prompt already carries
 * the retrieved clusters, but a small model reads them imperfectly; the mixture keeps the counts' own evidence
 * (how many, how sure) that slot order alone loses. Only clusters of `dist` are ranked, so the history stays
 * excluded; lambda = 0 is the model alone, 1 the counts alone (model order among the rest).
 */
export function blendWithRag(dist: readonly ClusterScore[], rag: RagEvidence | undefined, lambda: number): ClusterScore[] {
  if (!rag || rag.support <= 0 || lambda <= 0) return [...dist];
  const retrieved = new Map<number, number>();
  for (const i of rag.items) retrieved.set(i.clusterId, i.count / rag.support);
  const out = dist.map((s) => ({ clusterId: s.clusterId, p: (1 - lambda) * s.p + lambda * (retrieved.get(s.clusterId) ?? 0) }));
  out.sort((a, b) => b.p - a.p || a.clusterId - b.clusterId);
  return out;
}

/** One past transition to fit the mixture on: the model's distribution and the evidence as they were before it, and what came next. */
export interface BlendCase {
  dist: readonly ClusterScore[];
  rag: RagEvidence | undefined;
  next: number;
}

export interface BlendFit {
  lambda: number;
  /** hit@1 and MRR of each lambda tried, in grid order. */
  grid: Array<{ lambda: number; hit1: number; mrr: number }>;
  cases: number;
}

export const DEFAULT_BLEND_GRID = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

/** The lambda with the best hit@1 on `cases` (ties: better MRR, then the smaller lambda, i.e. more model). */
export function fitBlend(cases: readonly BlendCase[], grid: readonly number[] = DEFAULT_BLEND_GRID): BlendFit {
  const rows = grid.map((lambda) => {
    let hit1 = 0;
    let mrr = 0;
    for (const c of cases) {
      const ranked = blendWithRag(c.dist, c.rag, lambda);
      const rank = ranked.findIndex((s) => s.clusterId === c.next);
      if (rank === 0) hit1++;
      if (rank >= 0) mrr += 1 / (rank + 1);
    }
    const n = Math.max(cases.length, 1);
    return { lambda, hit1: hit1 / n, mrr: mrr / n };
  });
  const better = (a: (typeof rows)[number], b: (typeof rows)[number]) =>
    a.hit1 !== b.hit1 ? a.hit1 > b.hit1 : a.mrr !== b.mrr ? a.mrr > b.mrr : a.lambda < b.lambda;
  const best = rows.reduce((b, r) => (better(r, b) ? r : b));
  return { lambda: best.lambda, grid: rows, cases: cases.length };
}
