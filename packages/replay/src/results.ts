import { z } from "zod";

const Interval = z.tuple([z.number(), z.number()]);

/** hit@1 (the paper's hit rate) and the rest of the quality figures, each with a bootstrap 95 % CI. */
export const QualitySchema = z.object({
  n: z.number().int(),
  "hit@1": z.number(),
  "hit@5": z.number(),
  "hit@10": z.number(),
  "ndcg@10": z.number(),
  coverage: z.number(),
  novelty: z.number(),
  ci: z.object({ "hit@1": Interval, "hit@5": Interval, "hit@10": Interval, "ndcg@10": Interval }),
});
export type Quality = z.infer<typeof QualitySchema>;

export const CurvePointSchema = z.object({ start: z.number(), n: z.number().int(), "hit@1": z.number(), "hit@10": z.number() });
export type CurvePoint = z.infer<typeof CurvePointSchema>;

/** One update of a model strategy: the candidate the job produced, whether it was promoted, and the lineage served afterwards. */
export const UpdateEntrySchema = z.object({
  at: z.number(),
  action: z.enum(["finetune", "refresh"]),
  candidate: z.string(),
  promoted: z.boolean(),
  table: z.string(),
  base: z.string(),
  adapter: z.string(),
  snapshot: z.string(),
  /** Blend weights of the served table: key's retrieved successor shares and recent popularity mixed into the model's scores (both 0: the model alone). */
  ragBlend: z.number(),
  popularityBlend: z.number(),
  /** Why the update loop decided it (its decision log's reason, with the drift figures behind it): the loop `serve` runs. */
  reason: z.string(),
  drift: z.object({ adapterJaccard: z.number().optional(), recentJaccard: z.number().optional() }),
});
export type UpdateEntry = z.infer<typeof UpdateEntrySchema>;

export const StrategyResultSchema = QualitySchema.extend({
  /** oracle: a ceiling, not a strategy (the Bayes-optimal predictor of a synthetic world, or the best last-k table in hindsight). */
  kind: z.enum(["model", "baseline", "oracle"]),
  /** Measured, so not reproducible bit for bit: see TIMING_KEYS. */
  train_cpu_s: z.number(),
  refresh_s: z.number(),
  examples_trained: z.number().int(),
  finetunes: z.number().int(),
  refreshes: z.number().int(),
  curve: z.array(CurvePointSchema),
  /** Model strategies: every update on the simulated clock, in order. */
  updates: z.array(UpdateEntrySchema).optional(),
});
export type StrategyResult = z.infer<typeof StrategyResultSchema>;

/** A paired figure on the same test transitions with its bootstrap 95 % CI (a share of a ceiling, or a difference). */
const PairedSchema = z.object({ value: z.number(), ci: Interval });
const PairedFiguresSchema = z.object({ "hit@1": PairedSchema, "hit@10": PairedSchema });

export const DriftPointSchema = z.object({ start: z.number(), mean: z.number(), variance: z.number(), keys: z.number().int() });

export const AbArmSchema = z.object({ arm: z.string(), served: z.number().int(), accepted: z.number().int(), rate: z.number(), ci: Interval });
export const AbResultSchema = z.object({
  arms: z.array(AbArmSchema),
  /** rate(treatment) - rate(control) with its bootstrap 95 % CI. */
  difference: z.object({ treatment: z.string(), control: z.string(), value: z.number(), ci: Interval }),
  users: z.number().int(),
  requests: z.number().int(),
  via: z.string(),
  /** Requests that found their arm's server still swapping to the strategy's table and waited: depends on timing. */
  hotSwapWaits: z.number().int(),
});
export type AbResult = z.infer<typeof AbResultSchema>;

export const ResultsSchema = z.object({
  runId: z.string(),
  seed: z.number().int(),
  dataset: z.object({ name: z.string(), source: z.string(), events: z.number().int(), transitions: z.number().int(), clusters: z.number().int() }),
  /** Replay period, cadences and scaling: everything needed to rerun it. */
  config: z.record(z.string(), z.unknown()),
  strategies: z.record(z.string(), StrategyResultSchema),
  analyses: z.object({
    drift: z.object({ windowDays: z.number(), topN: z.number().int(), mean: z.number(), series: z.array(DriftPointSchema) }).optional(),
    /** Each strategy's hit@1 / hit@10 as a share of the reference ceiling's (strategy `reference`). */
    ceiling: z.object({ reference: z.string(), note: z.string(), shares: z.record(z.string(), PairedFiguresSchema) }).optional(),
    /** model strategy -> baseline -> hit rate difference (model - baseline). */
    versusBaselines: z.record(z.string(), z.record(z.string(), PairedFiguresSchema)).optional(),
    /** Per model strategy: hit rates on transitions into clusters born after its served model's training data (cold-start.ts). */
    coldStart: z
      .object({
        note: z.string(),
        strategies: z.record(
          z.string(),
          z.object({
            transitions: z.number().int(),
            clusters: z.number().int(),
            "hit@1": z.number(),
            "hit@10": z.number(),
            /** Baselines and ceilings on the same transitions; difference = strategy - them, paired. */
            versus: z.record(z.string(), z.object({ "hit@10": z.number(), difference: PairedFiguresSchema.optional() })),
          }),
        ),
      })
      .optional(),
    ragAgreement: z
      .object({
        keys: z.number().int(),
        ragEqualsNoRag: z.number(),
        repeatedNoRag: z.number(),
        seededFinetunes: z.number().optional(),
        note: z.string(),
      })
      .optional(),
  }),
  ab: AbResultSchema.optional(),
  /** Plain-language findings, e.g. "baseline markov beats every model strategy on hit@1". */
  findings: z.array(z.string()),
  /** Wall-clock figures of this run; excluded from the reproducible part. */
  timings: z.record(z.string(), z.number()),
});
export type Results = z.infer<typeof ResultsSchema>;

/** Keys that hold measured times or timing-dependent counts; everything else in results.json is a pure function of data, options and seed. */
export const TIMING_KEYS = ["train_cpu_s", "refresh_s", "timings", "hotSwapWaits"] as const;

/** Fields of an update entry that hold artefact ids (made of the wall clock and random bytes by the registry). */
const ID_KEYS = ["candidate", "table", "base", "adapter", "snapshot"] as const;

/**
 * results.json without its measured times, and with artefact ids replaced by their order of first
 * appearance (so "the lineage changed here" survives): two runs with the same seed must give equal views.
 */
export function reproducibleView(r: Results): unknown {
  const ids = new Map<string, string>();
  const canon = (id: string): string => {
    if (id === "") return id;
    if (!ids.has(id)) ids.set(id, `#${ids.size + 1}`);
    return ids.get(id)!;
  };
  const strategies = Object.fromEntries(
    Object.entries(r.strategies).map(([n, s]) => [n, { ...s, updates: s.updates?.map((u) => ({ ...u, ...Object.fromEntries(ID_KEYS.map((k) => [k, canon(u[k])])) })) }]),
  );
  return JSON.parse(JSON.stringify({ ...r, strategies }, (k, v) => ((TIMING_KEYS as readonly string[]).includes(k) || k === "runId" ? undefined : v)));
}
