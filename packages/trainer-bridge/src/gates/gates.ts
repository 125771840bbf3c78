import { z } from "zod";
import type { ClusterId } from "@freshrec/core";
import type { GateResult, HoldoutMetrics } from "@freshrec/registry";

export const GateConfigSchema = z.object({
  /** Paper: halt below 90 % exact match (share of outputs that are real clusters). */
  minExactMatch: z.number().min(0).max(1).default(0.9),
  /** Paper: fail below 1.5 % recall. */
  minRecallAt1: z.number().min(0).max(1).default(0.015),
  /** Largest allowed drop in recall@1 against the active artefact on the same holdout (absolute). */
  maxRegression: z.number().min(0).max(1).default(0.01),
});
export type GateConfig = z.infer<typeof GateConfigSchema>;

/** One holdout example: the true next cluster and the ranked prediction (best first) that was made for it. */
export interface HoldoutPrediction {
  next: ClusterId;
  ranked: readonly number[];
}

/**
 * Scores predictions honestly: exact match is the share of produced top-1 outputs that are a valid cluster id
 * (0..C-1; an example with no output, e.g. a key missing from a table, is a recall miss, not an invalid output);
 * recall@k is the share of examples whose true next cluster is among the first k outputs.
 */
export function holdoutMetrics(predictions: readonly HoldoutPrediction[], nClusters: number): HoldoutMetrics {
  let produced = 0;
  let valid = 0;
  let hit1 = 0;
  let hit5 = 0;
  for (const p of predictions) {
    const top = p.ranked[0];
    if (top !== undefined) produced++;
    if (top !== undefined && Number.isInteger(top) && top >= 0 && top < nClusters) valid++;
    if (top === p.next) hit1++;
    if (p.ranked.slice(0, 5).includes(p.next)) hit5++;
  }
  const n = predictions.length;
  const share = (x: number) => (n === 0 ? 0 : x / n);
  return { n, exactMatch: produced === 0 ? 0 : valid / produced, recallAt1: share(hit1), recallAt5: share(hit5) };
}

/** The promotion gate: exact match floor, recall@1 floor, and no regression beyond a margin against the active artefact. */
export function evaluateGate(candidate: HoldoutMetrics, active: HoldoutMetrics | undefined, config: GateConfig): GateResult {
  const reasons: string[] = [];
  const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
  if (candidate.n === 0) reasons.push("holdout is empty: nothing to judge the candidate on");
  if (candidate.exactMatch < config.minExactMatch) reasons.push(`exact match ${pct(candidate.exactMatch)} < floor ${pct(config.minExactMatch)}`);
  if (candidate.recallAt1 < config.minRecallAt1) reasons.push(`holdout recall@1 ${pct(candidate.recallAt1)} < floor ${pct(config.minRecallAt1)}`);
  if (active && candidate.recallAt1 < active.recallAt1 - config.maxRegression)
    reasons.push(`holdout recall@1 ${pct(candidate.recallAt1)} is worse than the active artefact's ${pct(active.recallAt1)} by more than ${pct(config.maxRegression)}`);
  const metrics: Record<string, number> = {
    n: candidate.n,
    exactMatch: candidate.exactMatch,
    recallAt1: candidate.recallAt1,
    recallAt5: candidate.recallAt5,
  };
  if (active) {
    metrics.activeRecallAt1 = active.recallAt1;
    metrics.activeRecallAt5 = active.recallAt5;
  }
  return { passed: reasons.length === 0, reasons, metrics };
}
