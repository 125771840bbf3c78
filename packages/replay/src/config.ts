import { z } from "zod";
import { DAY_MS, parseOrThrow } from "@freshrec/core";
import { ReplayError } from "./errors.js";

/** The update strategies the replay compares (the paper's four, its rag-frozen variant and our drift-adaptive one). */
export const MODEL_STRATEGIES = ["static", "finetune", "rag", "hybrid", "adaptive", "rag-frozen"] as const;
export type ModelStrategyName = (typeof MODEL_STRATEGIES)[number];

/**
 * What each strategy refreshes. Tables are always rebuilt after a fine-tune (a new adapter needs a new table).
 * static: first adapter, table without RAG, never updated (the paper's "no RAG" table).
 * finetune: new adapter every F days, table without RAG rebuilt only after fine-tunes.
 * rag: first adapter kept, RAG table rebuilt every R days.
 * hybrid: both cadences (the paper's proposal).
 * adaptive: the update loop's drift-adaptive scheduler chooses when to fine-tune and refresh.
 * rag-frozen: first adapter, RAG table built once at the start and never refreshed (the paper's "RAG frozen at day 1").
 */
export const STRATEGY_PLAN: Record<ModelStrategyName, { finetune: boolean; rag: boolean; refresh: boolean; adaptive: boolean }> = {
  static: { finetune: false, rag: false, refresh: false, adaptive: false },
  finetune: { finetune: true, rag: false, refresh: false, adaptive: false },
  rag: { finetune: false, rag: true, refresh: true, adaptive: false },
  hybrid: { finetune: true, rag: true, refresh: true, adaptive: false },
  adaptive: { finetune: true, rag: true, refresh: true, adaptive: true },
  "rag-frozen": { finetune: false, rag: true, refresh: false, adaptive: false },
};

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

/** Parses a --strategies value: "all" or a comma-separated list of model strategy names. */
export function parseStrategies(value: string): ModelStrategyName[] {
  if (value === "all") return [...MODEL_STRATEGIES];
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(MODEL_STRATEGIES as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0)
    throw new ReplayError(`--strategies: unknown ${bad.join(", ") || "(empty)"}; expected all or a list of ${MODEL_STRATEGIES.join(", ")}`);
  return names as ModelStrategyName[];
}
