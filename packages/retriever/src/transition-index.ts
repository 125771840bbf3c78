/**
 * In-memory index of the transitions log: per history key (and per last cluster, for backoff) the
 * transitions' times and next clusters, sorted by time. A window count is two binary searches and a
 * scan of the transitions inside the window, so point-in-time lookups are exact to the millisecond.
 */

/** Transitions of one key in time order (sorted lazily: appends are almost always in order). */
class Series {
  ts: number[] = [];
  next: number[] = [];
  private sorted = true;

  push(ts: number, next: number): void {
    const last = this.ts.length ? this.ts[this.ts.length - 1]! : -Infinity;
    if (ts < last) this.sorted = false;
    this.ts.push(ts);
    this.next.push(next);
  }

  ensureSorted(): void {
    if (this.sorted) return;
    const order = this.ts.map((_, i) => i).sort((a, b) => this.ts[a]! - this.ts[b]! || this.next[a]! - this.next[b]!);
    this.ts = order.map((i) => this.ts[i]!);
    this.next = order.map((i) => this.next[i]!);
    this.sorted = true;
  }

  /** First position whose time is >= t. */
  lowerBound(t: number): number {
    let lo = 0;
    let hi = this.ts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ts[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Next-cluster counts inside a window and their total (the support). */
export interface WindowCounts {
  counts: Map<number, number>;
  support: number;
}

export type IndexScope = "key" | "last";

export class TransitionIndex {
  private readonly byKey = new Map<string, Series>();
  private readonly byLast = new Map<string, Series>();
  size = 0;

  add(key: string, next: number, ts: number): void {
    const last = key.slice(key.lastIndexOf(",") + 1);
    seriesOf(this.byKey, key).push(ts, next);
    seriesOf(this.byLast, last).push(ts, next);
    this.size++;
  }

  keys(scope: IndexScope = "key"): IterableIterator<string> {
    return (scope === "key" ? this.byKey : this.byLast).keys();
  }

  has(key: string, scope: IndexScope = "key"): boolean {
    return (scope === "key" ? this.byKey : this.byLast).has(key);
  }

  /** Counts of transitions with from <= ts < to. */
  count(key: string, from: number, to: number, scope: IndexScope = "key"): WindowCounts {
    const counts = new Map<number, number>();
    const series = (scope === "key" ? this.byKey : this.byLast).get(key);
    if (!series || to <= from) return { counts, support: 0 };
    series.ensureSorted();
    const hi = series.lowerBound(to);
    for (let i = series.lowerBound(from); i < hi; i++) {
      const c = series.next[i]!;
      counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    return { counts, support: hi - series.lowerBound(from) };
  }
}

function seriesOf(map: Map<string, Series>, key: string): Series {
  let s = map.get(key);
  if (!s) map.set(key, (s = new Series()));
  return s;
}
