/**
 * Embedding of a history key for neighbour backoff: the unit-normalised centroids of its k slots,
 * concatenated oldest first and right-aligned (a shorter history leaves the oldest slots zero), so keys
 * that share clusters in the same positions are close.
 */
export function keyEmbedding(history: readonly number[], centroids: ReadonlyMap<number, readonly number[]>, k: number, dim: number): number[] {
  const out = new Array<number>(k * dim).fill(0);
  const recent = history.slice(-k);
  const offset = k - recent.length;
  recent.forEach((cluster, slot) => {
    const c = centroids.get(cluster);
    if (!c) return;
    const norm = Math.hypot(...c) || 1;
    for (let d = 0; d < dim; d++) out[(offset + slot) * dim + d] = (c[d] ?? 0) / norm;
  });
  return out;
}
