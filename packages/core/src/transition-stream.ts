import type { ClusterId, Event, Transition } from "./schemas.js";
import { advanceRecent, emptyRecent, isPositive, type RecentClusters } from "./sequences.js";

/**
 * Novel transitions from an event stream already in time order (as compareEvents orders it), with
 * bounded memory: only each user's recent-cluster state is kept. Events whose item has no cluster are skipped.
 * Yields the same transitions as extractTransitions over the same events, in stream order.
 */
export function* streamTransitions(
  events: Iterable<Pick<Event, "userId" | "itemId" | "ts" | "signal">>,
  clusterOf: (itemId: string) => ClusterId | undefined,
  opts: { k: number; threshold?: number },
): Generator<Transition> {
  const states = new Map<string, RecentClusters>();
  for (const e of events) {
    if (!isPositive(e.signal, opts.threshold)) continue;
    const cluster = clusterOf(e.itemId);
    if (cluster === undefined) continue;
    const step = advanceRecent(states.get(e.userId) ?? emptyRecent(), cluster, e.ts, opts.k);
    states.set(e.userId, step.state);
    if (step.transition) yield { userId: e.userId, ...step.transition };
  }
}
