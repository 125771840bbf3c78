import { z } from "zod";
import { DAY_MS, parseOrThrow } from "@freshrec/core";
import { ReplayError } from "./errors.js";

/** The update strategies the replay compares (the paper's four, its rag-frozen variant and our drift-adaptive one). */
export const MODEL_STRATEGIES = ["static", "finetune", "rag", "hybrid", "adaptive", "rag-frozen"] as const;
export type ModelStrategyName = (typeof MODEL_STRATEGIES)[number];

/** Paper cadences in days. */
export const PAPER_FINETUNE_DAYS = 30;
export const PAPER_REFRESH_DAYS = 2;

export const ReplayConfigSchema = z.object({
  strategies: z.array(z.enum(MODEL_STRATEGIES)).min(0),
  seed: z.number().int().nonnegative(),
  /** Multiplies every cadence and window: 1 for paper-scale traffic, larger for sparse data (see scaleFor). */
  timeScale: z.number().positive(),
  finetuneEveryDays: z.number().positive(),
  refreshEveryDays: z.number().positive(),
  /** Window of recent transitions for RAG statistics and the recent baselines (days, before scaling). */
  recentWindowDays: z.number().positive(),
  /** Window a fine-tune trains on (days, before scaling). */
  finetuneWindowDays: z.number().positive(),
  /** Length of one evaluation period of the curves (days, not scaled: chosen to give about 20 points). */
  periodDays: z.number().positive(),
  /** Test period [testStart, testEnd) in ms; everything before testStart is the pretraining window. */
  testStart: z.number().int(),
  testEnd: z.number().int(),
  listLength: z.number().int().min(1).max(100),
});
export type ReplayConfig = z.infer<typeof ReplayConfigSchema>;

export const parseReplayConfig = (input: unknown): ReplayConfig => parseOrThrow(ReplayConfigSchema, input, "replay config");

/** Cadences and windows in ms after scaling. */
export function scaled(c: ReplayConfig) {
  const ms = (days: number) => Math.round(days * c.timeScale * DAY_MS);
  return {
    finetuneEveryMs: ms(c.finetuneEveryDays),
    refreshEveryMs: ms(c.refreshEveryDays),
    recentWindowMs: ms(c.recentWindowDays),
    finetuneWindowMs: ms(c.finetuneWindowDays),
    periodMs: Math.round(c.periodDays * DAY_MS),
  };
}

/**
 * Time scale for a dataset with less traffic than the paper's platform: stretch cadences so that each RAG
 * refresh sees about `targetPerRefresh` new transitions, never below 1 (the paper's own pace).
 */
export function scaleFor(transitionsPerDay: number, targetPerRefresh = 200): number {
  const perRefresh = transitionsPerDay * PAPER_REFRESH_DAYS;
  return Math.max(1, Math.round(targetPerRefresh / Math.max(perRefresh, 1e-9)));
}

/** Strategies that can also be served live (they read fresh RAG; the others' answers would not change). */
export const LIVE_STRATEGIES = ["rag", "hybrid", "adaptive"] as const satisfies readonly ModelStrategyName[];

/** Parses a --live value: "none" or a comma-separated list of strategies among LIVE_STRATEGIES. */
export function parseLive(value: string): ModelStrategyName[] {
  if (value === "none") return [];
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(LIVE_STRATEGIES as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0) throw new ReplayError(`--live: ${bad.join(", ") || "(empty)"} cannot be served live; expected none or a list of ${LIVE_STRATEGIES.join(", ")}`);
  return names as ModelStrategyName[];
}

/** Parses a --strategies value: "all", "none" (baselines only) or a comma-separated list of model strategy names. */
export function parseStrategies(value: string): ModelStrategyName[] {
  if (value === "all") return [...MODEL_STRATEGIES];
  if (value === "none") return [];
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(MODEL_STRATEGIES as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0)
    throw new ReplayError(`--strategies: unknown ${bad.join(", ") || "(empty)"}; expected all, none or a list of ${MODEL_STRATEGIES.join(", ")}`);
  return names as ModelStrategyName[];
}

/**
 * Model sizes for replays (the native trainer's n_embd, layers, heads, n_ff; n_embd a multiple of 32 so the
 * Q8_0 copy exists). "default" is the trainer's own default; the smaller ones keep CI and 2-core runs short.
 */
export const REPLAY_MODEL_SIZES = {
  tiny: { nEmbd: 32, nLayer: 1, nHead: 1, nFf: 64 },
  small: { nEmbd: 64, nLayer: 2, nHead: 2, nFf: 128 },
  default: { nEmbd: 128, nLayer: 4, nHead: 4, nFf: 320 },
} as const;
export type ReplayModelSize = keyof typeof REPLAY_MODEL_SIZES;

export interface ReplayModelOptions {
  size: ReplayModelSize;
  /** Most epochs; early stopping and the loop's example budget usually end training sooner. */
  pretrainEpochs: number;
  loraEpochs: number;
  /** Trainer threads (the machine has 2 cores). */
  threads: number;
}

/** What `freshrec replay` trains unless told otherwise: sized so the MovieLens replay of all strategies fits 15 minutes on 2 cores. */
export const DEFAULT_REPLAY_MODEL: ReplayModelOptions = { size: "small", pretrainEpochs: 20, loraEpochs: 10, threads: 2 };

/** Update-loop settings (pretrain / lora hyperparameters) for a model size and epoch budget. */
export function modelLoop(m: ReplayModelOptions): Record<string, unknown> {
  if (!(m.size in REPLAY_MODEL_SIZES)) throw new ReplayError(`--model ${m.size}: unknown size; expected ${Object.keys(REPLAY_MODEL_SIZES).join(", ")}`);
  return {
    pretrain: { size: REPLAY_MODEL_SIZES[m.size], epochs: m.pretrainEpochs, threads: m.threads },
    lora: { epochs: m.loraEpochs, threads: m.threads },
  };
}
