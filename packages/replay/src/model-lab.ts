import type { Results } from "./results.js";
import type { ServerAb } from "./ab.js";
import type { Predictor } from "./predictor.js";
import type { ModelStrategyName } from "./config.js";
import type { WalkProgress } from "./walk.js";

/**
 * The model side of a replay: the real update loop (store, registry, trainer, scorer) behind the
 * strategies, plus the analyses and the A/B that need models.
 */
export interface ModelLab {
  /** The strategies' predictors; each of `live` is followed by its live-scoring twin (`<name>-live`). */
  strategies(names: ModelStrategyName[], onProgress?: (e: WalkProgress) => void, live?: ModelStrategyName[]): Promise<Predictor[]>;
  ragAgreement(): Promise<Results["analyses"]["ragAgreement"]>;
  /** Starts the simulated A/B (real servers following the arms' registries); the walk feeds it with `visit`. */
  startAb(o: { arms: string[]; requestsPerArm: number; testTransitions: number; seed: number }): Promise<ServerAb>;
  /** Settings to record in results.config. */
  describe(): Record<string, unknown>;
  /** Wall-clock figures (bootstrap seconds, ...) for results.timings. */
  timings(): Record<string, number>;
  close(): Promise<void>;
}
