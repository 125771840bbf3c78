import { FIRST_CLUSTER_TOKEN } from "@freshrec/core";
export interface ClusterScore { clusterId: number; p: number }
export function clusterDistribution(probs: Map<number, number>, history: readonly number[], nClusters: number): ClusterScore[] {
  const out: ClusterScore[] = [];
  let total = 0;
  for (const [token, p] of probs) {
    const clusterId = token - FIRST_CLUSTER_TOKEN;
    if (clusterId < 0 || clusterId >= nClusters || history.includes(clusterId)) continue;
    out.push({ clusterId, p });
    total += p;
  }
  if (total > 0) for (const s of out) s.p /= total;
  return out;
}
