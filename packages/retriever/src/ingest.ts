/** Validating an ingest batch as a whole, and folding accepted events into user state and transitions. */
import type { z } from "zod";
import {
  ClusterIdSchema,
  EventSchema,
  ValidationError,
  advanceRecent,
  compareEvents,
  historyKey,
  isPositive,
  issuesFromZod,
  type FieldIssue,
  type RecentClusters,
} from "@freshrec/core";

/** An event as ingested: a core Event, optionally carrying its cluster (otherwise taken from the item). */
export const IngestEventSchema = EventSchema.extend({ clusterId: ClusterIdSchema.optional() });
export type IngestEvent = z.input<typeof IngestEventSchema>;

export interface EventRow {
  eventId: string;
  userId: string;
  itemId: string;
  clusterId: number;
  ts: number;
  signal: number;
}

export interface TransitionRow {
  userId: string;
  key: string;
  next: number;
  ts: number;
}

export const DEFAULT_MAX_BATCH = 100_000;
const MAX_REPORTED_ISSUES = 20;

/**
 * Checks every event of a batch before anything is written: field types and ranges, a known item or
 * cluster, and the batch size. Throws one ValidationError listing the bad fields (paths like `[3].ts`).
 */
export function validateBatch(
  events: readonly unknown[],
  ctx: { itemClusters: ReadonlyMap<string, number>; clusterIds: ReadonlySet<number>; maxBatch: number; where: string },
): EventRow[] {
  if (!Array.isArray(events)) throw new ValidationError(ctx.where, [{ path: "(batch)", message: "expected an array of events" }]);
  if (events.length > ctx.maxBatch)
    throw new ValidationError(ctx.where, [{ path: "(batch)", message: `batch of ${events.length} events exceeds the limit of ${ctx.maxBatch}` }]);
  const issues: FieldIssue[] = [];
  let bad = 0;
  const rows: EventRow[] = [];
  events.forEach((input, i) => {
    const parsed = IngestEventSchema.safeParse(input);
    const found: FieldIssue[] = [];
    if (!parsed.success) found.push(...issuesFromZod(parsed.error, input));
    else {
      const e = parsed.data;
      const clusterId = e.clusterId ?? ctx.itemClusters.get(e.itemId);
      if (clusterId === undefined) found.push({ path: "itemId", message: "unknown item (put it with a cluster first)", value: e.itemId });
      else if (!ctx.clusterIds.has(clusterId)) found.push({ path: "clusterId", message: "unknown cluster", value: clusterId });
      else rows.push({ eventId: e.eventId, userId: e.userId, itemId: e.itemId, clusterId, ts: e.ts, signal: e.signal });
    }
    if (found.length) bad++;
    for (const f of found) if (issues.length < MAX_REPORTED_ISSUES) issues.push({ ...f, path: `[${i}]${f.path ? `.${f.path}` : ""}` });
  });
  if (bad > 0) {
    if (bad > 1) issues.push({ path: "(batch)", message: `${bad} of ${events.length} events are invalid; nothing was stored` });
    throw new ValidationError(ctx.where, issues);
  }
  return rows;
}

/** A user's state as stored: last k distinct positive clusters (oldest first) and the time of their latest event. */
export type UserState = RecentClusters;

/**
 * Folds a batch (already de-duplicated) into user states in compareEvents order, with core's state machine.
 * Returns the novel transitions and the new state of every user the batch touched; `states` is not modified.
 */
export function foldBatch(
  rows: readonly EventRow[],
  states: ReadonlyMap<string, UserState>,
  opts: { k: number; threshold: number },
): { transitions: TransitionRow[]; changed: Map<string, UserState> } {
  const sorted = [...rows].sort(compareEvents);
  const changed = new Map<string, UserState>();
  const transitions: TransitionRow[] = [];
  for (const e of sorted) {
    let state = changed.get(e.userId) ?? states.get(e.userId) ?? { clusters: [], lastTs: 0 };
    if (isPositive(e.signal, opts.threshold)) {
      const step = advanceRecent(state, e.clusterId, e.ts, opts.k);
      state = step.state;
      if (step.transition) transitions.push({ userId: e.userId, key: historyKey(step.transition.history), next: step.transition.next, ts: step.transition.ts });
    } else state = { clusters: state.clusters, lastTs: Math.max(state.lastTs, e.ts) };
    changed.set(e.userId, state);
  }
  return { transitions, changed };
}
