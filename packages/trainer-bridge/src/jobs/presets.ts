import { LoopConfigSchema, type LoopConfig } from "./context.js";
import type { SyntheticSize } from "@freshrec/core";

/**
 * Update-loop settings the demo (`freshrec demo`) hands its jobs for each synthetic world size. The tiny world (tests,
 * benchmarks) has 30 days and a few thousand events: shorter windows and a one-layer model keep its bootstrap
 * around a minute on 2 cores. The default world trains the two-layer model its replay measures (`freshrec replay
 * --model small`): the trainer's default four-layer size made the first start take 11 minutes on 2 cores.
 * The large world uses the loop's defaults.
 */
export function loopPresetFor(size: SyntheticSize): LoopConfig {
  if (size === "default") return LoopConfigSchema.parse({ pretrain: { size: { nEmbd: 64, nLayer: 2, nHead: 2, nFf: 128 } } });
  if (size !== "tiny") return LoopConfigSchema.parse({});
  return LoopConfigSchema.parse({
    bootstrapDays: 14,
    finetuneDays: 14,
    // Its windows hold a few hundred transitions each; the default minimum (500) is sized for real traffic.
    minWindowTransitions: 200,
    tableSupportDays: 14,
    ragWindowDays: 7,
    trainingSet: { holdoutDays: 2 },
    pretrain: { size: { nEmbd: 32, nLayer: 1, nHead: 2, nFf: 64 }, epochs: 3, batch: 32, lr: 3e-3, threads: 2 },
    lora: { epochs: 2, batch: 32, lr: 5e-3, rank: 4, threads: 2 },
  });
}
