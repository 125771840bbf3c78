import { advanceRecent, emptyRecent, type ClusterId } from "@freshrec/core";
import type { Mode, NextInterestsAnswer } from "./api-schemas.js";
import type { ModelManager } from "./model-manager.js";
import type { StorePort } from "./ports.js";
import type { ServerMetrics } from "./metrics.js";
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
}

type UserState = { clusters: ClusterId[] } | null;

/** Answers next-interest questions in table or live mode, with lineage. */
export class Predictor {
  private readonly users = new Map<string, { state: UserState; at: number }>();
  private keywords: { generation: number; byId: Map<ClusterId, string[]> } | undefined;

  constructor(private readonly o: PredictorOptions) {}

  async forUser(userId: string, k: number, mode: Mode): Promise<NextInterestsAnswer> {
    const state = await this.userState(userId);
    if (!state || state.clusters.length === 0) throw notFound(`unknown user '${userId}': no positive engagement stored`);
    return { userId, ...(await this.answer(state.clusters, k, mode)) };
  }

  async forHistory(history: ClusterId[], k: number, mode: Mode): Promise<NextInterestsAnswer> {
    return this.answer(history, k, mode);
  }

  /** Drops cached state of users whose events were just ingested here. */
  invalidateUsers(userIds: Iterable<string>): void {
    for (const id of userIds) this.users.delete(id);
  }

  private async userState(userId: string): Promise<UserState> {
    const now = performance.now();
    const hit = this.users.get(userId);
    if (hit && now - hit.at < this.o.userCacheMs) return hit.state;
    const stored = await this.o.store.userState(userId);
    const state = stored ? { clusters: stored.clusters } : null;
    this.users.delete(userId); // re-insert at the end: Map order is the eviction order
    this.users.set(userId, { state, at: now });
    if (this.users.size > this.o.userCacheSize) this.users.delete(this.users.keys().next().value!);
    return state;
  }

  private async answer(rawHistory: ClusterId[], k: number, mode: Mode): Promise<Omit<NextInterestsAnswer, "userId">> {
    const scorer = this.o.manager.scorers.value;
    const table = this.o.manager.tables.value;
    if (!scorer || !table) throw notReady("the server is still loading its model and table; see GET /readyz");
    const { k: historyLen, nClusters } = scorer.layout;
    const keywords = await this.clusterKeywords();
    for (const c of rawHistory) {
      if (c >= nClusters || !keywords.has(c)) throw notFound(`unknown cluster ${c}: the model knows clusters 0..${nClusters - 1}`);
    }
    const history = recentDistinct(rawHistory, historyLen);
    const describe = (clusterId: ClusterId, p: number) => ({ clusterId, p, keywords: keywords.get(clusterId) ?? [] });

    if (mode === "table") {
      const row = table.lookup(history);
      if (row) {
        const interests = row.clusters.slice(0, k).map((c, i) => describe(c, row.probs[i]!));
        return { history, interests, lineage: { baseId: table.baseId, adapterId: table.adapterId, tableId: table.id, snapshotId: table.snapshotId, mode: "table" } };
      }
      this.o.metrics.tableFallbacks.inc();
      const live = await this.live(history, k, describe);
      return { ...live, fallback: `history key '${history.join(",")}' is not in table '${table.id}'; scored live` };
    }
    return this.live(history, k, describe);
  }

  private async live(
    history: ClusterId[],
    k: number,
    describe: (c: ClusterId, p: number) => { clusterId: ClusterId; p: number; keywords: string[] },
  ): Promise<Omit<NextInterestsAnswer, "userId">> {
    const asOf = this.o.clock();
    // Pin the scorer for the whole request: a swap meanwhile disposes it only after this request is done.
    const lease = this.o.manager.scorers.acquire();
    if (!lease) throw notReady("no model is loaded yet; see GET /readyz");
    try {
      const { scorer, baseId, adapterId, layout } = lease.value;
      const retrieved = await this.o.store.successors(history, { asOf, windowMs: this.o.liveWindowMs, n: layout.ragSlots, method: this.o.ragMethod });
      const rag = retrieved.items.slice(0, layout.ragSlots).map((i) => i.clusterId);
      const [dist = []] = await scorer.scoreNext([{ history, rag: rag.length > 0 ? rag : null }]);
      return {
        history,
        interests: dist.slice(0, k).map((d) => describe(d.clusterId, d.p)),
        lineage: { baseId, adapterId, tableId: null, snapshotId: `live@${asOf}:${retrieved.source}:${retrieved.key}`, mode: "live" },
      };
    } finally {
      lease.release();
    }
  }

  private async clusterKeywords(): Promise<Map<ClusterId, string[]>> {
    // Clusters only change with a new world/bootstrap, which always comes with a new table: reload on table swaps.
    const generation = this.o.manager.tables.generation;
    if (this.keywords?.generation !== generation) {
      const clusters = await this.o.store.clusters();
      this.keywords = { generation, byId: new Map(clusters.map((c) => [c.id, c.keywords])) };
    }
    return this.keywords.byId;
  }
}

/** The last `k` distinct clusters of a history, oldest first, as the store derives them from events. */
export function recentDistinct(history: readonly ClusterId[], k: number): ClusterId[] {
  let state = emptyRecent();
  for (const c of history) state = advanceRecent(state, c, 0, k).state;
  return state.clusters;
}
