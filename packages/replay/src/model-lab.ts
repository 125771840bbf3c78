import type { AbResult, Results } from "./results.js";
import type { Predictor } from "./predictor.js";
import type { ModelStrategyName } from "./config.js";
import type { WalkProgress } from "./walk.js";

/**
 * The model side of a replay: the real update loop (store, registry, trainer, scorer) behind the
 * strategies, plus the analyses and the A/B that need models.
 */
export interface ModelLab {
  strategies(names: ModelStrategyName[], onProgress?: (e: WalkProgress) => void): Promise<Predictor[]>;
  ragAgreement(): Promise<Results["analyses"]["ragAgreement"]>;
  abTest(arms: string[], users: number, seed: number): Promise<AbResult | undefined>;
  /** Settings to record in results.config. */
  describe(): Record<string, unknown>;
  /** Wall-clock figures (bootstrap seconds, ...) for results.timings. */
  timings(): Record<string, number>;
  close(): Promise<void>;
}
