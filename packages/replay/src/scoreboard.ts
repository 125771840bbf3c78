import type { ClusterId } from "@freshrec/core";

/** One scored prediction: when, the true next cluster, its 1-based rank in the list (0 when absent) and the list. */
export interface Outcome {
  ts: number;
  actual: ClusterId;
  rank: number;
  list: ClusterId[];
  /** Model strategies: where the training data of the model that answered ended (ms; -Infinity when it saw none). */
  trainedThrough?: number;
}

/** Collects one strategy's predictions during a replay; the figures are computed from it afterwards (summary.ts). */
export class Scoreboard {
  readonly outcomes: Outcome[] = [];

  constructor(readonly strategy: string) {}

  record(ts: number, list: readonly ClusterId[], actual: ClusterId, trainedThrough?: number): void {
    this.outcomes.push({ ts, actual, rank: list.indexOf(actual) + 1, list: [...list], ...(trainedThrough === undefined ? {} : { trainedThrough }) });
  }
}
