import type { ClusterId } from "@freshrec/core";
import type { Store, Snapshot } from "@freshrec/retriever";
import { blendWithRag, type BlendWeights } from "@freshrec/scorer";
import { RETRIEVED_SUCCESSORS, type FollowedStrategy } from "./live-scoring.js";
import type { Predictor, StrategyCost } from "./predictor.js";

/** The table a strategy serves now, as its counts-only twin needs it: when it was built and how it blends. */
export interface ServedBlend {
  tableId: string;
  asOf: number;
  weights: BlendWeights;
  popularity: readonly number[] | undefined;
}

/** The strategy whose tables a counts-only twin re-ranks. */
export type BlendedStrategy = Pick<FollowedStrategy, "name" | "cost"> & { servedBlend(): ServedBlend };

/**
 * A model strategy's own contribution, measured: the same tables (same refresh times, same RAG snapshot, same fitted
 * blend weights) with the model's weight set to 0, so only the retrieved counts and recent popularity rank. When the
 * fitted blend gave the model everything, the counts alone rank (weight 1 on the key's retrieved shares).
 */
export class CountsOnly implements Predictor {
  readonly kind = "model" as const;
  readonly name: string;
  private tableId = "";
  private snapshot: Snapshot | undefined;
  private weights: BlendWeights = { rag: 1, popularity: 0 };
  private popularity: readonly number[] | undefined;

  constructor(
    private readonly followed: BlendedStrategy,
    private readonly store: Store,
    private readonly ragWindowMs: number,
    private readonly nClusters: number,
  ) {
    this.name = `${followed.name}-counts-only`;
  }

  async advanceTo(): Promise<void> {
    const served = this.followed.servedBlend();
    if (served.tableId === this.tableId) return;
    this.tableId = served.tableId;
    this.snapshot = await this.store.snapshot({ start: served.asOf - this.ragWindowMs, end: served.asOf, n: RETRIEVED_SUCCESSORS });
    const w = served.weights;
    this.weights = w.rag + w.popularity > 0 ? w : { rag: 1, popularity: 0 };
    this.popularity = served.popularity;
  }

  async predict(history: readonly ClusterId[], n: number): Promise<ClusterId[]> {
    const candidates = [];
    for (let c = 0; c < this.nClusters; c++) if (!history.includes(c)) candidates.push({ clusterId: c, p: 0 });
    return blendWithRag(candidates, this.snapshot?.lookup(history), this.weights, this.popularity)
      .slice(0, n)
      .map((s) => s.clusterId);
  }

  observe(): void {}

  /** No model work of its own: it rides on the followed strategy's refreshes. */
  cost(): StrategyCost {
    return { ...this.followed.cost(), trainCpuS: 0, examplesTrained: 0, finetunes: 0 };
  }
}
