import { advanceRecent, emptyRecent, type ClusterId } from "@freshrec/core";
import type { ServedAnswer } from "@freshrec/retriever";
import type { Arm, ExperimentControl } from "./experiment.js";
import { blendWithRag, ragPrompt } from "@freshrec/scorer";
import type { Mode, NextInterestsAnswer } from "./api-schemas.js";
import type { JsonText } from "./json-text.js";
import type { ModelManager, ServingScorer, ServingTable } from "./model-manager.js";
import type { SwapSlot } from "./swap-slot.js";
import type { StorePort } from "./ports.js";
import type { ServerMetrics } from "./metrics.js";
import { RenderedTable } from "./rendered-table.js";
import { notFound, notReady } from "./errors.js";

export interface PredictorOptions {
  manager: ModelManager;
  store: StorePort;
  metrics: ServerMetrics;
  /** The serving clock (simulated when the update loop runs on simulated time): live retrieval is as of now. */
  clock: () => number;
  liveWindowMs: number;
  ragMethod: "frequency" | "trend";
  /** How long a user's recent clusters are reused before re-reading the store (ingest through this server invalidates at once). */
  userCacheMs: number;
  userCacheSize: number;
  /** Called with every answer to a stored user (the served-answer recorder): must not block. */
  onServed?: (answer: ServedAnswer) => void;
  /** The traffic split, if one runs: stored users in its candidate arm are answered from its table. */
  experiments?: ExperimentControl;
}

/** Successors retrieved for a live answer: the prompt shows the top RAG slots, the blend weighs them all (as table refreshes do). */
const LIVE_RAG_ITEMS = 10;

type UserState = { clusters: ClusterId[] } | null;

/** An answer: table hits come pre-rendered as JSON text, live answers (and fallbacks) as objects. */
export type Prediction = NextInterestsAnswer | JsonText;

/** Answers next-interest questions in table or live mode, with lineage. */
export class Predictor {
  private readonly users = new Map<string, { state: UserState; at: number }>();
  /** Store reads in flight, one per user: a burst of requests for a user whose entry expired waits on one read. */
  private readonly loading = new Map<string, Promise<UserState>>();
  private rendered: RenderedTable | undefined;
  private renderedCandidate: RenderedTable | undefined;

  constructor(private readonly o: PredictorOptions) {}

  async forUser(userId: string, k: number, mode: Mode): Promise<Prediction> {
    const cached = this.cachedUser(userId);
    const state = cached !== undefined ? cached : await this.loadUser(userId);
    if (!state || state.clusters.length === 0) throw notFound(`unknown user '${userId}': no positive engagement stored`);
    return this.answer(userId, state.clusters, k, mode);
  }

  forHistory(history: ClusterId[], k: number, mode: Mode): Promise<Prediction> {
    return this.answer(undefined, history, k, mode);
  }

  /** Drops cached state of users whose events were just ingested here (a read already in flight is not cached either). */
  invalidateUsers(userIds: Iterable<string>): void {
    for (const id of userIds) {
      this.users.delete(id);
      this.loading.delete(id);
    }
  }

  /** The cached state while fresh (null: known to have no state); undefined when the store must be read. */
  private cachedUser(userId: string): UserState | undefined {
    const hit = this.users.get(userId);
    return hit && performance.now() - hit.at < this.o.userCacheMs ? hit.state : undefined;
  }

  private loadUser(userId: string): Promise<UserState> {
    const inFlight = this.loading.get(userId);
    if (inFlight) return inFlight;
    const at = performance.now();
    const load: Promise<UserState> = this.o.store.userState(userId).then(
      (stored) => {
        const state = stored ? { clusters: stored.clusters } : null;
        // Cache only if no ingest invalidated this user while the read was in flight.
        if (this.loading.get(userId) === load) {
          this.loading.delete(userId);
          this.users.delete(userId); // re-insert at the end: Map order is the eviction order
          this.users.set(userId, { state, at });
          if (this.users.size > this.o.userCacheSize) this.users.delete(this.users.keys().next().value!);
        }
        return state;
      },
      (err: unknown) => {
        if (this.loading.get(userId) === load) this.loading.delete(userId);
        throw err;
      },
    );
    this.loading.set(userId, load);
    return load;
  }

  private async answer(userId: string | undefined, rawHistory: ClusterId[], k: number, mode: Mode): Promise<Prediction> {
    const scorer = this.o.manager.scorers.value;
    const active = this.o.manager.tables.value;
    const experiment = userId === undefined ? null : (this.o.experiments?.current ?? null);
    const arm: Arm | undefined = experiment ? experiment.armOf(userId!) : undefined;
    const candidate = arm === "candidate" ? experiment : null;
    const table = candidate?.candidateTable ?? active;
    if (!scorer || !active || !table) throw notReady("the server is still loading its model and table; see GET /readyz");
    const { k: historyLen, nClusters } = scorer.layout;
    const { keywords } = table;
    for (const c of rawHistory) {
      if (c >= nClusters || !keywords.has(c)) throw notFound(`unknown cluster ${c}: the model knows clusters 0..${nClusters - 1}`);
    }
    const history = recentDistinct(rawHistory, historyLen);
    const withUser = (answer: Omit<NextInterestsAnswer, "userId">): NextInterestsAnswer => (userId === undefined ? answer : { userId, ...answer });

    if (mode === "table") {
      const row = table.lookup(history);
      if (row) {
        const rendered = this.renderedFor(table, arm);
        if (userId !== undefined) this.o.onServed?.({ userId, ts: this.o.clock(), mode: "table", clusters: row.clusters.slice(0, k), baseId: table.baseId, adapterId: table.adapterId, tableId: table.id, arm: arm ?? "active", served: 1 });
        return rendered.answer(userId, history, row, k);
      }
      this.o.metrics.tableFallbacks.inc();
      const live = await this.live(history, k, table, arm, candidate?.candidateScorers ?? this.o.manager.scorers);
      this.servedLive(userId, "table_fallback", live);
      return withUser({ ...live, fallback: `history key '${history.join(",")}' is not in table '${table.id}'; scored live` });
    }
    const live = await this.live(history, k, table, arm, candidate?.candidateScorers ?? this.o.manager.scorers);
    this.servedLive(userId, "live", live);
    return withUser(live);
  }

  /** The rendering of `table` as answered to `arm` (each arm's lineage says which one answered). */
  private renderedFor(table: ServingTable, arm: Arm | undefined): RenderedTable {
    const cached = arm === "candidate" ? this.renderedCandidate : this.rendered;
    if (cached?.table === table && cached.arm === arm) return cached;
    const fresh = new RenderedTable(table, arm);
    if (arm === "candidate") this.renderedCandidate = fresh;
    else this.rendered = fresh;
    return fresh;
  }

  private servedLive(userId: string | undefined, mode: "live" | "table_fallback", answer: Omit<NextInterestsAnswer, "userId">): void {
    if (userId === undefined || !this.o.onServed || answer.interests.length === 0) return;
    const { baseId, adapterId, arm } = answer.lineage;
    this.o.onServed({ userId, ts: this.o.clock(), mode, clusters: answer.interests.map((i) => i.clusterId), baseId, adapterId, tableId: null, arm: arm ?? "active", served: 1 });
  }

  /** Scores the history now, with retrieval as of the serving clock, mixed in as the served table's blend says. */
  private async live(history: ClusterId[], k: number, table: ServingTable, arm: Arm | undefined, scorers: SwapSlot<ServingScorer>): Promise<Omit<NextInterestsAnswer, "userId">> {
    const asOf = this.o.clock();
    // Pin the scorer for the whole request: a swap (or the experiment's end) meanwhile disposes it only after this request is done.
    const lease = scorers.acquire();
    if (!lease) throw notReady("no model is loaded yet; see GET /readyz");
    try {
      const { scorer, baseId, adapterId, layout } = lease.value;
      const retrieved = await this.o.store.successors(history, { asOf, windowMs: this.o.liveWindowMs, n: Math.max(layout.ragSlots, LIVE_RAG_ITEMS), method: this.o.ragMethod });
      const [dist = []] = await scorer.scoreNext([ragPrompt(history, retrieved, layout.ragSlots)]);
      const weights = table.blend.liveWeights;
      const ranked = blendWithRag(dist, retrieved, weights, table.blend.popularity);
      return {
        history,
        interests: ranked.slice(0, k).map((d) => ({ clusterId: d.clusterId, p: d.p, keywords: table.keywords.get(d.clusterId) ?? [] })),
        lineage: { baseId, adapterId, tableId: null, snapshotId: `live@${asOf}:${retrieved.source}:${retrieved.key}`, ragBlend: weights.rag, popularityBlend: weights.popularity, mode: "live", ...(arm ? { arm } : {}) },
      };
    } finally {
      lease.release();
    }
  }
}

/** The last `k` distinct clusters of a history, oldest first, as the store derives them from events. */
export function recentDistinct(history: readonly ClusterId[], k: number): ClusterId[] {
  let state = emptyRecent();
  for (const c of history) state = advanceRecent(state, c, 0, k).state;
  return state.clusters;
}
