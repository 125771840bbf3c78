import type { ClusterId, Transition } from "@freshrec/core";
import { TransitionCounts, WindowedCounts, topNovel } from "./counts.js";
import { zeroCost, type Predictor } from "./predictor.js";

/**
 * Model-free baselines. Each sees exactly the transitions revealed before the prediction time and pads a
 * short list with the popularity of its own statistics, so every baseline always answers n clusters.
 */
abstract class CountingBaseline implements Predictor {
  readonly kind = "baseline" as const;
  abstract readonly name: string;
  constructor(protected readonly counts: TransitionCounts) {}
  async advanceTo(t: number): Promise<void> {
    if (this.counts instanceof WindowedCounts) this.counts.advanceTo(t);
  }
  observe(t: Transition): void {
    if (this.counts instanceof WindowedCounts) this.counts.reveal(t);
    else this.counts.add(t);
  }
  /** The key's most frequent successors, padded with the most popular next clusters. */
  async predict(history: readonly ClusterId[], n: number): Promise<ClusterId[]> {
    return topNovel(n, history, this.counts.successors(history), this.counts.popular());
  }
  cost = zeroCost;
}

/** Global popularity of next clusters in the recent window (ignores the key). */
export class PopularityBaseline extends CountingBaseline {
  readonly name = "popularity";
  constructor(windowMs: number) {
    super(new WindowedCounts(windowMs));
  }
  override async predict(history: readonly ClusterId[], n: number): Promise<ClusterId[]> {
    return topNovel(n, history, this.counts.popular());
  }
}

/** Most frequent successors of the key in the recent window: the RAG statistics served directly, no model. */
export class RecentSuccessorsBaseline extends CountingBaseline {
  readonly name = "recent-successors";
  constructor(windowMs: number) {
    super(new WindowedCounts(windowMs));
  }
}

/** First-order Markov model on the key over the whole history seen so far. */
export class MarkovBaseline extends CountingBaseline {
  readonly name = "markov";
  constructor() {
    super(new TransitionCounts());
  }
}

export const BASELINE_NAMES = ["popularity", "recent-successors", "markov"] as const;

export function baselines(recentWindowMs: number): Predictor[] {
  return [new PopularityBaseline(recentWindowMs), new RecentSuccessorsBaseline(recentWindowMs), new MarkovBaseline()];
}
