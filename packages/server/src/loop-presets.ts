import { LoopConfigSchema, type LoopConfig } from "@freshrec/trainer-bridge";
import type { SyntheticSize } from "@freshrec/core";

/**
 * Update-loop settings `freshrec serve` hands its jobs for each synthetic world size. The tiny world (tests,
 * benchmarks) has 30 days and a few thousand events: shorter windows and a one-layer model keep its bootstrap
 * around a minute on 2 cores. Larger worlds use the loop's defaults.
 */
export function loopConfigFor(size: SyntheticSize): LoopConfig {
  if (size !== "tiny") return LoopConfigSchema.parse({});
  return LoopConfigSchema.parse({
    bootstrapDays: 14,
    finetuneDays: 14,
    tableSupportDays: 14,
    ragWindowDays: 7,
    trainingSet: { holdoutDays: 2 },
    pretrain: { size: { nEmbd: 32, nLayer: 1, nHead: 2, nFf: 64 }, epochs: 3, batch: 32, lr: 3e-3, threads: 2 },
    lora: { epochs: 2, batch: 32, lr: 5e-3, rank: 4, threads: 2 },
  });
}
