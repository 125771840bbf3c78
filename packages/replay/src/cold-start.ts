import type { ClusterId, Transition } from "@freshrec/core";
import { hits, pairedFigures } from "./ceilings.js";
import type { Predictor } from "./predictor.js";
import { Scoreboard } from "./scoreboard.js";
import type { Results } from "./results.js";

/** When each cluster first appears in the data, in a history or as a next cluster (transitions sorted by time). */
export function firstSeen(transitions: readonly Transition[]): Map<ClusterId, number> {
  const seen = new Map<ClusterId, number>();
  for (const t of transitions) for (const c of [...t.history, t.next]) if (!seen.has(c)) seen.set(c, t.ts);
  return seen;
}

/** The outcomes at `at` only, in order (boards of one walk record the same transitions in the same order). */
function subset(board: Scoreboard, at: readonly number[]): Scoreboard {
  const out = new Scoreboard(board.strategy);
  for (const i of at) out.outcomes.push(board.outcomes[i]!);
  return out;
}

/**
 * Cold start: test transitions into a cluster first seen after the data the strategy's served model was trained on
 * ended (its adapter's window, else its base's; a base that saw none of the data counts every cluster). A text model
 * can rank such a cluster from its description; a cluster-token model's token for it never had a training example,
 * so only retrieval can bring it up. Each model strategy gets its own transitions (its fine-tunes differ), and every
 * baseline and ceiling is scored on the same ones, paired, for scale.
 */
export function coldStartFigures(
  predictors: readonly Predictor[],
  boards: ReadonlyMap<string, Scoreboard>,
  seen: ReadonlyMap<ClusterId, number>,
  seed: number,
): NonNullable<Results["analyses"]["coldStart"]> {
  const others = predictors.filter((p) => p.kind !== "model").map((p) => p.name);
  const strategies: NonNullable<Results["analyses"]["coldStart"]>["strategies"] = {};
  const hitAt = (b: Scoreboard, k: number) => (b.outcomes.length === 0 ? 0 : hits(b, k).reduce((s, h) => s + h, 0) / b.outcomes.length);
  for (const p of predictors) {
    const board = boards.get(p.name)!;
    // Only predictors that say what their model was trained on (model strategies) have a cold start.
    if (!board.outcomes.some((o) => o.trainedThrough !== undefined)) continue;
    const at: number[] = [];
    board.outcomes.forEach((o, i) => {
      if (o.trainedThrough !== undefined && (seen.get(o.actual) ?? Number.POSITIVE_INFINITY) >= o.trainedThrough) at.push(i);
    });
    const mine = subset(board, at);
    strategies[p.name] = {
      transitions: at.length,
      clusters: new Set(mine.outcomes.map((o) => o.actual)).size,
      "hit@1": hitAt(mine, 1),
      "hit@10": hitAt(mine, 10),
      versus: Object.fromEntries(
        others.map((name) => {
          const theirs = subset(boards.get(name)!, at);
          return [name, { "hit@10": hitAt(theirs, 10), ...(at.length > 0 ? { difference: pairedFigures(mine, theirs, "diff", seed) } : {}) }];
        }),
      ),
    };
  }
  return {
    note: "test transitions into clusters first seen in the data after the end of the training window of the model each strategy served at that moment; baselines and ceilings on the same transitions",
    strategies,
  };
}
