import type { ClusterId, Transition } from "@freshrec/core";
import type { UpdateEntry } from "./results.js";

/** What a strategy spent on staying fresh. CPU and refresh seconds are measured, so they vary run to run. */
export interface StrategyCost {
  /** Trainer CPU seconds (pretraining of the shared base excluded; it is the same for every model strategy). */
  trainCpuS: number;
  /** Examples the trainer saw, summed over fine-tunes. */
  examplesTrained: number;
  /** Wall seconds spent building tables (bulk scoring + RAG snapshot). */
  refreshS: number;
  finetunes: number;
  refreshes: number;
}

export const zeroCost = (): StrategyCost => ({ trainCpuS: 0, examplesTrained: 0, refreshS: 0, finetunes: 0, refreshes: 0 });

/**
 * One contender in the replay. The driver calls, for each distinct timestamp t in time order:
 * `advanceTo(t)` (updates due before t run now, seeing data with ts < t only), `predict` for every test
 * transition at t, then `observe` for each of them (they become the past).
 */
export interface Predictor {
  readonly name: string;
  readonly kind: "model" | "baseline" | "oracle";
  advanceTo(t: number): Promise<void>;
  /** Up to `n` ranked next clusters, none of them in `history`. */
  predict(history: readonly ClusterId[], n: number): Promise<ClusterId[]>;
  observe(t: Transition): void;
  cost(): StrategyCost;
  /** Model strategies: where the training data of the model answering now ended (ms; -Infinity: it saw none), for the cold-start figures. */
  trainedThrough?(): number;
  /** Model strategies: their updates so far (jobs run, promotions, lineage served). */
  updates?(): UpdateEntry[];
  close?(): Promise<void>;
}
