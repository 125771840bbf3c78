import { FIRST_CLUSTER_TOKEN } from "@freshrec/core";

export interface ClusterScore {
  clusterId: number;
  p: number;
}

/**
 * Closed-set next-cluster distribution from llama.cpp's next-token probabilities, given flat and sorted by p
 * descending ([token0, p0, token1, p1, ...], as the addon returns them): only cluster tokens are candidates, the
 * history's clusters are masked out (a recommendation never repeats them), and the rest is renormalised, so the
 * output comes out sorted. Returns null when a probability is not finite (the caller names the prompt).
 */
export function clusterDistribution(probs: readonly number[], history: readonly number[], nClusters: number): ClusterScore[] | null {
  const excluded = new Uint8Array(nClusters);
  for (const c of history) if (c >= 0 && c < nClusters) excluded[c] = 1;
  const out: ClusterScore[] = [];
  let total = 0;
  for (let i = 0; i < probs.length; i += 2) {
    const clusterId = probs[i]! - FIRST_CLUSTER_TOKEN;
    const p = probs[i + 1]!;
    if (!Number.isFinite(p)) return null;
    if (clusterId < 0 || clusterId >= nClusters || excluded[clusterId] === 1) continue;
    out.push({ clusterId, p });
    total += p;
  }
  if (total > 0) for (const s of out) s.p /= total;
  return out;
}
