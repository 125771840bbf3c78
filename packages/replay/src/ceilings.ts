import { bootstrapPairedCI, hitAtK, type ClusterId, type SyntheticWorld, type Transition } from "@freshrec/core";
import { TransitionCounts, topNovel } from "./counts.js";
import { zeroCost, type Predictor } from "./predictor.js";
import type { Scoreboard } from "./scoreboard.js";

/**
 * The Bayes-optimal predictor of the synthetic world: the top of the true P_t(next | history) at each test
 * transition's time. No strategy can beat it in expectation; a strategy's hit rate as a share of it says how
 * much of the achievable quality it reaches.
 */
export class OraclePredictor implements Predictor {
  readonly name = "oracle";
  readonly kind = "oracle" as const;
  private now = 0;
  constructor(private readonly world: SyntheticWorld) {}
  async advanceTo(t: number): Promise<void> {
    this.now = t;
  }
  async predict(history: readonly ClusterId[], n: number): Promise<ClusterId[]> {
    const p = this.world.groundTruth(history, this.now);
    const order = Array.from(p.keys()).filter((c) => p[c]! > 0);
    order.sort((a, b) => p[b]! - p[a]! || a - b);
    return topNovel(n, history, order);
  }
  observe(): void {}
  cost = zeroCost;
}

/**
 * The best single table keyed on the last k clusters, chosen in hindsight: each key's most frequent successors over
 * the test period itself. It needs no ground truth, so it exists for every dataset. It bounds what any fixed
 * last-k table could score on this period; refreshed tables may exceed it by following drift.
 */
export class HindsightTablePredictor implements Predictor {
  readonly name = "hindsight-table";
  readonly kind = "oracle" as const;
  private readonly counts = new TransitionCounts();
  constructor(test: readonly Transition[]) {
    for (const t of test) this.counts.add(t);
  }
  async advanceTo(): Promise<void> {}
  async predict(history: readonly ClusterId[], n: number): Promise<ClusterId[]> {
    return topNovel(n, history, this.counts.successors(history), this.counts.popular());
  }
  observe(): void {}
  cost = zeroCost;
}

const Share = (x: { mean: number; lo: number; hi: number }) => ({ value: x.mean, ci: [x.lo, x.hi] as [number, number] });
type Paired = ReturnType<typeof Share>;
export type PairedFigures = Record<"hit@1" | "hit@10", Paired>;

/** Per outcome of `board`: 1 when the actual next cluster is in the top `k`, else 0. */
export function hits(board: Scoreboard, k: number): Float64Array {
  return Float64Array.from(board.outcomes, (o) => hitAtK(o.list, [o.actual], k));
}

/** Paired on the same test transitions: `a`'s hit@1 / hit@10 as a share of `ceiling`'s, or minus `b`'s. */
export function pairedFigures(a: Scoreboard, b: Scoreboard, stat: "diff" | "ratio", seed: number): PairedFigures {
  return {
    "hit@1": Share(bootstrapPairedCI(hits(a, 1), hits(b, 1), stat, { seed: seed * 37 + 1 })),
    "hit@10": Share(bootstrapPairedCI(hits(a, 10), hits(b, 10), stat, { seed: seed * 37 + 10 })),
  };
}
