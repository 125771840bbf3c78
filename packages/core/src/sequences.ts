import type { ClusterId, Event, Transition } from "./schemas.js";

/** A user's last k distinct positive clusters, oldest first (length <= k), and the time of the latest one. */
export interface RecentClusters {
  clusters: ClusterId[];
  lastTs: number;
}

export const emptyRecent = (): RecentClusters => ({ clusters: [], lastTs: 0 });

export const DEFAULT_POSITIVE_THRESHOLD = 4;

export const isPositive = (signal: number, threshold: number = DEFAULT_POSITIVE_THRESHOLD): boolean => signal >= threshold;

/** Deterministic event order: time, then item, then event id (many MovieLens users rate dozens of items in one second). */
export function compareEvents(a: Pick<Event, "ts" | "itemId" | "eventId">, b: Pick<Event, "ts" | "itemId" | "eventId">): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  if (a.itemId !== b.itemId) return a.itemId < b.itemId ? -1 : 1;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

/**
 * Feeds one positive engagement into a user's recent-cluster state.
 * A cluster already among the last k distinct ones is not novel: it moves to the most recent slot and
 * yields no transition (this also de-duplicates consecutive repeats). A novel cluster after a full
 * history of k yields the transition (history -> cluster).
 */
export function advanceRecent(
  state: RecentClusters,
  cluster: ClusterId,
  ts: number,
  k: number,
): { state: RecentClusters; transition?: Omit<Transition, "userId"> } {
  const at = state.clusters.indexOf(cluster);
  if (at >= 0) {
    const clusters = [...state.clusters.slice(0, at), ...state.clusters.slice(at + 1), cluster];
    return { state: { clusters, lastTs: Math.max(state.lastTs, ts) } };
  }
  const transition = state.clusters.length === k ? { history: [...state.clusters], next: cluster, ts } : undefined;
  const clusters = [...state.clusters, cluster].slice(-k);
  const next = { state: { clusters, lastTs: Math.max(state.lastTs, ts) } };
  return transition ? { ...next, transition } : next;
}

/** History key as stored and looked up: cluster ids oldest first, comma separated. */
export const historyKey = (history: readonly ClusterId[]): string => history.join(",");

export function parseHistoryKey(key: string): ClusterId[] {
  return key === "" ? [] : key.split(",").map(Number);
}

export type ClusteredEvent = Pick<Event, "eventId" | "userId" | "itemId" | "ts" | "signal"> & { clusterId: ClusterId };

/**
 * All novel transitions in a batch of events (any order), per user in deterministic order,
 * keeping positive engagement only. Returns transitions sorted by (ts, userId).
 */
export function extractTransitions(
  events: Iterable<ClusteredEvent>,
  opts: { k: number; threshold?: number },
): Transition[] {
  const byUser = new Map<string, ClusteredEvent[]>();
  for (const e of events) {
    if (!isPositive(e.signal, opts.threshold)) continue;
    let list = byUser.get(e.userId);
    if (!list) byUser.set(e.userId, (list = []));
    list.push(e);
  }
  const out: Transition[] = [];
  for (const [userId, list] of byUser) {
    list.sort(compareEvents);
    let state = emptyRecent();
    for (const e of list) {
      const step = advanceRecent(state, e.clusterId, e.ts, opts.k);
      state = step.state;
      if (step.transition) out.push({ userId, ...step.transition });
    }
  }
  return out.sort((a, b) => a.ts - b.ts || (a.userId! < b.userId! ? -1 : a.userId! > b.userId! ? 1 : 0));
}
