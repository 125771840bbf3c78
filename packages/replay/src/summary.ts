import { bootstrapCI, coverage, hitAtK, mean, ndcgAtK, novelty } from "@freshrec/core";
import type { Quality } from "./results.js";
import type { Scoreboard } from "./scoreboard.js";

export interface SummaryContext {
  nClusters: number;
  /** Engagement count per cluster id (index) over the pretraining window, for novelty. */
  popularity: ArrayLike<number>;
  seed: number;
}

/** Quality figures of one strategy, each rate with a seeded percentile-bootstrap 95 % CI (core's metrics). */
export function summarize(board: Scoreboard, ctx: SummaryContext): Quality {
  const o = board.outcomes;
  const per = (f: (list: number[], actual: number) => number) => Float64Array.from(o, (x) => f(x.list, x.actual));
  const h1 = per((l, a) => hitAtK(l, [a], 1));
  const h5 = per((l, a) => hitAtK(l, [a], 5));
  const h10 = per((l, a) => hitAtK(l, [a], 10));
  const nd = per((l, a) => ndcgAtK(l, [a], 10));
  // Each metric gets its own seed offset so the intervals are not computed from the same resamples.
  const ci = (v: Float64Array, i: number): [number, number] => {
    const c = bootstrapCI(v, { seed: ctx.seed * 31 + i });
    return [c.lo, c.hi];
  };
  const recommended = o.flatMap((x) => x.list);
  return {
    n: o.length,
    "hit@1": mean(h1),
    "hit@5": mean(h5),
    "hit@10": mean(h10),
    "ndcg@10": mean(nd),
    coverage: coverage(recommended, ctx.nClusters),
    novelty: novelty(recommended, ctx.popularity),
    ci: { "hit@1": ci(h1, 1), "hit@5": ci(h5, 5), "hit@10": ci(h10, 10), "ndcg@10": ci(nd, 11) },
  };
}
