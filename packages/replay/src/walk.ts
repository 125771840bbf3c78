import type { Transition } from "@freshrec/core";
import type { Predictor } from "./predictor.js";
import { Scoreboard } from "./scoreboard.js";

export interface WalkProgress {
  phase: string;
  done: number;
  total?: number;
  info?: Record<string, number | string>;
}

export interface WalkOptions {
  /** All transitions of the dataset, sorted by ts. Those before `testStart` only warm the predictors up. */
  transitions: readonly Transition[];
  testStart: number;
  /** Exclusive end of the test period (default: after the last transition). */
  testEnd?: number;
  predictors: readonly Predictor[];
  /** Length of the ranked lists (hit@10 needs 10). */
  listLength?: number;
  onProgress?: (e: WalkProgress) => void;
  /** Called with each test group after every predictor advanced to its time and predicted it (the simulated A/B serves it). */
  onStep?: (group: readonly Transition[]) => Promise<void>;
}

/**
 * The simulated clock. Transitions are taken in groups of equal timestamp: every predictor first advances
 * to t (its due updates run on data before t), then predicts each transition of the group, then observes
 * the group. So no prediction ever sees its own transition or any other event at or after t.
 */
export async function walk(opts: WalkOptions): Promise<Map<string, Scoreboard>> {
  const n = opts.listLength ?? 10;
  const boards = new Map(opts.predictors.map((p) => [p.name, new Scoreboard(p.name)]));
  const trs = opts.transitions;
  const testEnd = opts.testEnd ?? Number.POSITIVE_INFINITY;
  const total = trs.filter((t) => t.ts >= opts.testStart && t.ts < testEnd).length;
  let done = 0;
  for (let i = 0; i < trs.length; ) {
    const ts = trs[i]!.ts;
    let j = i;
    while (j < trs.length && trs[j]!.ts === ts) j++;
    const group = trs.slice(i, j);
    if (ts >= testEnd) break;
    if (ts >= opts.testStart) {
      for (const p of opts.predictors) {
        await p.advanceTo(ts);
        const board = boards.get(p.name)!;
        for (const t of group) board.record(ts, await p.predict(t.history, n), t.next, p.trainedThrough?.());
      }
      await opts.onStep?.(group);
      done += group.length;
      if (opts.onProgress && (done === total || done % 500 < group.length)) opts.onProgress({ phase: "replay", done, total });
    }
    for (const p of opts.predictors) for (const t of group) p.observe(t);
    i = j;
  }
  return boards;
}
