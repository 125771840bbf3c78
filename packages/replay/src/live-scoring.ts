import type { ClusterId, Transition } from "@freshrec/core";
import { blendWithRag, ragPrompt, type BlendWeights, type Scorer, type ScoringModel } from "@freshrec/scorer";
import { WindowedCounts } from "./counts.js";
import type { Predictor, StrategyCost } from "./predictor.js";

/** What a strategy serves now: base and adapter files and its table's blend weights. */
export interface LiveModel {
  basePath: string;
  adapter?: { id: string; path: string };
  blend: BlendWeights;
}

/** The strategy a live predictor follows: its updates run there; live scoring reads its model after each. */
export interface FollowedStrategy {
  readonly name: string;
  liveModel(): LiveModel;
  /** Loads a base of the strategy's kind (a text model over the store's clusters). */
  loadModel(path: string): Promise<ScoringModel>;
  trainedThrough(): number;
  cost(): StrategyCost;
}

/** Successors retrieved per prompt: the RAG slots show the first ones, the blend weighs them all (as refreshes do). */
export const RETRIEVED_SUCCESSORS = 10;

/**
 * A strategy served by live scoring (the server's `mode: "live"`) instead of its precomputed table: every
 * prediction scores the history with the strategy's current base + adapter and RAG retrieved as of that moment,
 * mixed with the same blend weights as its table. Retrieval here is the store's successor statistic kept in memory
 * (exact key, else the key's last cluster, over the same window), fed by the walk as transitions are revealed.
 */
export class LiveScoring implements Predictor {
  readonly kind = "model" as const;
  readonly name: string;
  private readonly exact: WindowedCounts;
  private readonly lastCluster: WindowedCounts;
  private model: ScoringModel | undefined;
  private scorer: Scorer | undefined;
  private serving: LiveModel | undefined;

  constructor(
    private readonly followed: FollowedStrategy,
    windowMs: number,
  ) {
    this.name = `${followed.name}-live`;
    this.exact = new WindowedCounts(windowMs);
    this.lastCluster = new WindowedCounts(windowMs);
  }

  async advanceTo(t: number): Promise<void> {
    this.exact.advanceTo(t);
    this.lastCluster.advanceTo(t);
    await this.follow(this.followed.liveModel());
  }

  /** Reloads the scorer when the followed strategy promoted another base or adapter. */
  private async follow(next: LiveModel): Promise<void> {
    const prev = this.serving;
    this.serving = next;
    if (prev && prev.basePath === next.basePath && prev.adapter?.path === next.adapter?.path) return;
    await this.scorer?.dispose();
    if (prev?.basePath !== next.basePath) {
      await this.model?.dispose();
      this.model = await this.followed.loadModel(next.basePath);
    }
    this.scorer = await this.model!.createScorer({ contexts: 1, parallel: 1, ...(next.adapter ? { adapterPath: next.adapter.path, adapterId: next.adapter.id } : {}) });
  }

  async predict(history: readonly ClusterId[], n: number): Promise<ClusterId[]> {
    const layout = this.model!.layout;
    const exact = this.exact.evidence(history, RETRIEVED_SUCCESSORS);
    const evidence = exact.support > 0 ? exact : this.lastCluster.evidence(history.slice(-1), RETRIEVED_SUCCESSORS);
    const [dist = []] = await this.scorer!.scoreNext([ragPrompt([...history], evidence, layout.ragSlots)]);
    const blend = this.serving!.blend;
    return blendWithRag(dist, evidence, blend, blend.popularity > 0 ? this.popularity(layout.nClusters) : undefined)
      .slice(0, n)
      .map((s) => s.clusterId);
  }

  /** Each cluster's share of the window's next clusters, as the table refresh computes it. */
  private popularity(nClusters: number): number[] {
    const total = this.exact.total();
    return Array.from({ length: nClusters }, (_, c) => (total > 0 ? this.exact.count(c) / total : 0));
  }

  trainedThrough(): number {
    return this.followed.trainedThrough();
  }

  observe(t: Transition): void {
    this.exact.reveal(t);
    this.lastCluster.reveal({ ...t, history: t.history.slice(-1) });
  }

  /** The followed strategy's update cost: the same fine-tunes and refreshes keep this one fresh (serving cost is not counted). */
  cost(): StrategyCost {
    return this.followed.cost();
  }

  async close(): Promise<void> {
    await this.scorer?.dispose();
    await this.model?.dispose();
  }
}
