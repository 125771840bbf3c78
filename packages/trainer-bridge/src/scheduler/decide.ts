import { z } from "zod";
import { DAY_MS } from "@freshrec/core";

/**
 * Update strategies (names shared with the replay harness):
 *   static      bootstrap once (adapter + table without RAG), never update
 *   finetune    fine-tune on the calendar, rebuild the table without RAG after each fine-tune
 *   rag         never fine-tune again; refresh the table with fresh RAG on the calendar
 *   hybrid      the paper: fine-tune on the calendar and refresh the RAG table often
 *   adaptive    hybrid whose cadences follow measured drift (fine-tune early, refresh faster or slower)
 *   rag-frozen  one RAG table at bootstrap, then frozen (the paper's "RAG frozen at day 1")
 */
export const STRATEGIES = ["static", "finetune", "rag", "hybrid", "adaptive", "rag-frozen"] as const;
export const StrategySchema = z.enum(STRATEGIES);
export type Strategy = z.infer<typeof StrategySchema>;

export const SchedulerConfigSchema = z.object({
  strategy: StrategySchema.default("hybrid"),
  finetuneEveryDays: z.number().positive().default(30),
  refreshEveryDays: z.number().positive().default(2),
  adaptive: z
    .object({
      /** Fine-tune early once the Jaccard of top-5 successors (recent window vs the adapter's window) falls below this. */
      finetuneBelowJaccard: z.number().min(0).max(1).default(0.35),
      /** ...but not sooner than this after the last fine-tune. */
      minFinetuneGapDays: z.number().nonnegative().default(5),
      /** Recent short-term Jaccard below this counts as high drift: refresh every minRefreshDays. */
      highDriftJaccard: z.number().min(0).max(1).default(0.5),
      /** Above this counts as flat: refresh every maxRefreshDays. */
      flatJaccard: z.number().min(0).max(1).default(0.85),
      minRefreshDays: z.number().positive().default(1),
      maxRefreshDays: z.number().positive().default(6),
    })
    .prefault({}),
});
export type SchedulerConfig = z.infer<typeof SchedulerConfigSchema>;

export interface SchedulerState {
  bootstrappedAt: number | null;
  lastFinetune: number | null;
  lastRefresh: number | null;
}
export const initialSchedulerState = (): SchedulerState => ({ bootstrappedAt: null, lastFinetune: null, lastRefresh: null });

/** Drift figures measured at `now`; Jaccard similarity of top-5 successors, so lower means more drift. */
export interface DriftReading {
  /** Recent window vs the window the active adapter was trained on. */
  adapterJaccard?: number;
  /** Recent window vs the window just before it (short-term drift). */
  recentJaccard?: number;
}

export type Action = { kind: "bootstrap"; rag: boolean } | { kind: "finetune" } | { kind: "refresh"; rag: boolean };

export interface Decision {
  at: number;
  action: Action["kind"];
  reason: string;
  drift: DriftReading;
  /** Refresh cadence in force when deciding. */
  refreshEveryMs: number;
}

const usesRag = (s: Strategy) => s !== "static" && s !== "finetune";

/** Refresh cadence: the calendar one, or for the adaptive strategy one chosen from short-term drift. */
export function refreshInterval(config: SchedulerConfig, drift: DriftReading): number {
  const base = config.refreshEveryDays * DAY_MS;
  if (config.strategy !== "adaptive" || drift.recentJaccard === undefined) return base;
  const a = config.adaptive;
  if (drift.recentJaccard < a.highDriftJaccard) return a.minRefreshDays * DAY_MS;
  if (drift.recentJaccard > a.flatJaccard) return a.maxRefreshDays * DAY_MS;
  return base;
}

/**
 * The scheduler's whole policy, pure: state + time (+ drift) in, actions + logged decisions + next state out.
 * The wall-clock loop and the replay harness's simulated clock both drive it.
 */
export function decide(
  config: SchedulerConfig,
  state: SchedulerState,
  now: number,
  drift: DriftReading = {},
): { actions: Action[]; decisions: Decision[]; state: SchedulerState } {
  const refreshEveryMs = refreshInterval(config, drift);
  const log = (action: Action["kind"], reason: string): Decision => ({ at: now, action, reason, drift, refreshEveryMs });
  const rag = usesRag(config.strategy);
  if (state.bootstrappedAt === null) {
    return {
      actions: [{ kind: "bootstrap", rag }],
      decisions: [log("bootstrap", "no model yet")],
      state: { bootstrappedAt: now, lastFinetune: now, lastRefresh: now },
    };
  }
  const s = config.strategy;
  if (s === "static" || s === "rag-frozen") return { actions: [], decisions: [], state };

  const sinceFinetune = now - (state.lastFinetune ?? state.bootstrappedAt);
  const sinceRefresh = now - (state.lastRefresh ?? state.bootstrappedAt);
  const calendarFinetune = s !== "rag" && sinceFinetune >= config.finetuneEveryDays * DAY_MS;
  const a = config.adaptive;
  const driftFinetune =
    s === "adaptive" &&
    drift.adapterJaccard !== undefined &&
    drift.adapterJaccard < a.finetuneBelowJaccard &&
    sinceFinetune >= a.minFinetuneGapDays * DAY_MS;
  if (calendarFinetune || driftFinetune) {
    const reason = calendarFinetune
      ? `calendar: ${(sinceFinetune / DAY_MS).toFixed(1)} d since the last fine-tune (every ${config.finetuneEveryDays} d)`
      : `drift: Jaccard ${drift.adapterJaccard!.toFixed(3)} vs the adapter's window < ${a.finetuneBelowJaccard}`;
    // A new adapter makes the table stale: rebuild it right away.
    return {
      actions: [{ kind: "finetune" }, { kind: "refresh", rag }],
      decisions: [log("finetune", reason), log("refresh", `after fine-tune`)],
      state: { ...state, lastFinetune: now, lastRefresh: now },
    };
  }
  if (s !== "finetune" && sinceRefresh >= refreshEveryMs) {
    const why =
      refreshEveryMs === config.refreshEveryDays * DAY_MS
        ? `calendar: every ${config.refreshEveryDays} d`
        : `drift: short-term Jaccard ${drift.recentJaccard!.toFixed(3)} sets the cadence to ${(refreshEveryMs / DAY_MS).toFixed(1)} d`;
    return {
      actions: [{ kind: "refresh", rag }],
      decisions: [log("refresh", `${why}; ${(sinceRefresh / DAY_MS).toFixed(1)} d since the last refresh`)],
      state: { ...state, lastRefresh: now },
    };
  }
  return { actions: [], decisions: [], state };
}
