import { FreshrecError, historyKey, type ClusterId, type RagLine, type Transition } from "@freshrec/core";

/** Point-in-time RAG: the top successors of `history` counted over [asOf - windowMs, asOf), never at or after asOf. */
export interface RagSource {
  top(history: readonly ClusterId[], asOf: number): Promise<ClusterId[]>;
  /** The same successors with how often each followed in the window (text prompts print the counts). */
  topCounted(history: readonly ClusterId[], asOf: number): Promise<RagLine[]>;
}

/** Ranking shared with the store's "frequency" method: count desc, then cluster id asc. */
export function rankCounts(counts: ReadonlyMap<ClusterId, number>, n: number): ClusterId[] {
  return rankCounted(counts, n).map((r) => r.clusterId);
}

/** rankCounts with the counts. */
export function rankCounted(counts: ReadonlyMap<ClusterId, number>, n: number): RagLine[] {
  return [...counts]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, n)
    .map(([clusterId, count]) => ({ clusterId, count }));
}

type Counts = Map<string, Map<ClusterId, number>>;

function bump(counts: Counts, key: string, next: ClusterId, delta: number): void {
  let m = counts.get(key);
  if (!m) counts.set(key, (m = new Map()));
  const c = (m.get(next) ?? 0) + delta;
  if (c === 0) m.delete(next);
  else m.set(next, c);
  if (m.size === 0) counts.delete(key);
}

/**
 * A sliding-window successor count over time-ordered transitions, for building training sets without a store
 * query per example. Semantics of the store's snapshot lookup (what tables are scored with): the exact history
 * key's successors, else (no transition of that key in the window) those of all keys ending in its last cluster.
 * Queries must come with non-decreasing asOf (examples in time order): each transition enters and leaves once.
 */
export function rollingRagSource(transitions: readonly Transition[], opts: { windowMs: number; n: number }): RagSource {
  const byKey: Counts = new Map();
  const byLast: Counts = new Map();
  let added = 0;
  let removed = 0;
  let lastAsOf = -Infinity;
  const move = (t: Transition, delta: number) => {
    bump(byKey, historyKey(t.history), t.next, delta);
    bump(byLast, String(t.history[t.history.length - 1]), t.next, delta);
  };
  for (let i = 1; i < transitions.length; i++)
    if (transitions[i]!.ts < transitions[i - 1]!.ts) throw new FreshrecError("training-set", `rollingRagSource: transitions are not time-ordered at index ${i}`);
  const counted = async (history: readonly ClusterId[], asOf: number): Promise<RagLine[]> => {
    if (asOf < lastAsOf) throw new FreshrecError("training-set", `rollingRagSource: asOf ${asOf} went back in time (last ${lastAsOf})`);
    lastAsOf = asOf;
    while (added < transitions.length && transitions[added]!.ts < asOf) move(transitions[added++]!, 1);
    while (removed < added && transitions[removed]!.ts < asOf - opts.windowMs) move(transitions[removed++]!, -1);
    const counts = byKey.get(historyKey(history)) ?? (history.length ? byLast.get(String(history[history.length - 1])) : undefined);
    return counts ? rankCounted(counts, opts.n) : [];
  };
  return {
    top: async (history, asOf) => (await counted(history, asOf)).map((r) => r.clusterId),
    topCounted: counted,
  };
}
