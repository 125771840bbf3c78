import { historyKey, type ClusterId, type Transition } from "@freshrec/core";

/** Successor counts per history key plus overall next-cluster counts, add/remove in O(1). */
export class TransitionCounts {
  private readonly byKey = new Map<string, Map<ClusterId, number>>();
  private readonly overall = new Map<ClusterId, number>();

  add(t: Pick<Transition, "history" | "next">, delta = 1): void {
    const key = historyKey(t.history);
    let m = this.byKey.get(key);
    if (!m) this.byKey.set(key, (m = new Map()));
    bump(m, t.next, delta);
    if (m.size === 0) this.byKey.delete(key);
    bump(this.overall, t.next, delta);
  }

  /** Successors of a key, most frequent first (ties: lower cluster id first, so results are deterministic). */
  successors(history: readonly ClusterId[]): ClusterId[] {
    return ranked(this.byKey.get(historyKey(history)));
  }

  /** The key's `n` most frequent successors with their counts, out of all its transitions (what a RAG snapshot holds). */
  evidence(history: readonly ClusterId[], n: number): { items: Array<{ clusterId: ClusterId; count: number }>; support: number } {
    const m = this.byKey.get(historyKey(history));
    if (!m) return { items: [], support: 0 };
    let support = 0;
    for (const v of m.values()) support += v;
    const items = [...m.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, n).map(([clusterId, count]) => ({ clusterId, count }));
    return { items, support };
  }

  /** All next clusters, most frequent first. */
  popular(): ClusterId[] {
    return ranked(this.overall);
  }

  /** Count of a next cluster over all keys (0 when never seen). */
  count(c: ClusterId): number {
    return this.overall.get(c) ?? 0;
  }

  total(): number {
    let n = 0;
    for (const v of this.overall.values()) n += v;
    return n;
  }
}

function bump(m: Map<ClusterId, number>, c: ClusterId, delta: number): void {
  const v = (m.get(c) ?? 0) + delta;
  if (v <= 0) m.delete(c);
  else m.set(c, v);
}

function ranked(m: Map<ClusterId, number> | undefined): ClusterId[] {
  if (!m) return [];
  return [...m.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([c]) => c);
}

/**
 * Transition counts over a sliding time window [t - windowMs, t): transitions are revealed in time order
 * with `reveal` and expire as the clock moves with `advanceTo`.
 */
export class WindowedCounts extends TransitionCounts {
  private readonly queue: Transition[] = [];
  private head = 0;

  constructor(readonly windowMs: number) {
    super();
  }

  reveal(t: Transition): void {
    this.queue.push(t);
    this.add(t);
  }

  advanceTo(now: number): void {
    const from = now - this.windowMs;
    while (this.head < this.queue.length && this.queue[this.head]!.ts < from) this.add(this.queue[this.head++]!, -1);
    // Drop the consumed prefix now and then so the queue does not grow with the whole stream.
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }
}

/** Top `n` of `primary`, skipping excluded clusters and duplicates, then filled from `fallback` in order. */
export function topNovel(n: number, exclude: readonly ClusterId[], ...lists: ClusterId[][]): ClusterId[] {
  const out: ClusterId[] = [];
  const seen = new Set(exclude);
  for (const list of lists)
    for (const c of list) {
      if (out.length >= n) return out;
      if (seen.has(c)) continue;
      seen.add(c);
      out.push(c);
    }
  return out;
}
