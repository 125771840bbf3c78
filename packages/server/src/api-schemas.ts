import { z } from "zod";
import { ClusterIdSchema, EventSchema, TimestampSchema } from "@freshrec/core";

/**
 * Request and response shapes of the HTTP API. The same schemas validate requests (routes.ts) and
 * generate /openapi.json (openapi.ts), so the documentation cannot drift from the validation.
 */

export const ModeSchema = z.enum(["table", "live"]).describe("table: precomputed transition table; live: fresh RAG retrieval + model scoring");
export type Mode = z.infer<typeof ModeSchema>;

/** How far ahead of the server clock an ingested event may be: further, and it would pin the ingest lag at 0. */
export interface FutureBound {
  clock: () => number;
  maxFutureSkewMs: number;
}

export const eventsBatchSchema = (maxBatch: number, future: FutureBound) => {
  const ts = TimestampSchema.superRefine((value, ctx) => {
    const latest = future.clock() + future.maxFutureSkewMs;
    if (value > latest) ctx.addIssue({ code: "custom", message: `must be at most ${latest}: the server clock + limits.maxFutureSkewMs (${future.maxFutureSkewMs} ms)` });
  });
  return z
    .strictObject({ events: z.array(EventSchema.extend({ ts })).min(1).max(maxBatch) })
    .describe(`A batch of at most ${maxBatch} engagement events; idempotent by eventId`);
};

export const IngestAckSchema = z.object({
  accepted: z.number().int().describe("events made durable by this call"),
  duplicates: z.number().int().describe("events whose eventId was already stored (ignored)"),
  received: z.number().int(),
});

export const UserIdSchema = z.string().min(1).max(256);
export const UserParamsSchema = z.object({ userId: UserIdSchema });

/**
 * An integer in a path or query string: canonical decimal digits only (Number() would also take "0x10", "1e1",
 * " " or "" as 16, 10, 0, 0; 15 digits at most stay a safe integer), then checked against `range`. /openapi.json
 * shows it as the integer it stands for.
 */
const decimalInt = (range: z.ZodNumber) =>
  z
    .string()
    .regex(/^(0|[1-9][0-9]{0,14})$/, "must be a decimal integer (digits only, no sign, leading zeros or spaces)")
    .transform(Number)
    .pipe(range)
    .meta({ type: "integer", pattern: undefined, minimum: range.minValue ?? undefined, maximum: range.maxValue ?? undefined });

export const ClusterParamsSchema = z.object({ clusterId: decimalInt(ClusterIdSchema) });

export const NextInterestsQuerySchema = z.strictObject({
  k: decimalInt(z.number().int().min(1).max(100)).default(10).describe("how many clusters to return (default 10)"),
  mode: ModeSchema.default("table"),
});

export const ExplicitHistorySchema = z.strictObject({
  history: z.array(ClusterIdSchema).min(1).max(64).describe("positive-engagement clusters, oldest first"),
  k: z.number().int().min(1).max(100).default(10),
  mode: ModeSchema.default("table"),
});

export const LineageSchema = z.object({
  baseId: z.string().nullable(),
  adapterId: z.string().nullable(),
  tableId: z.string().nullable(),
  snapshotId: z.string().nullable().describe("RAG snapshot the table was built from, or 'live@<ms>' for live retrieval"),
  ragBlend: z.number().min(0).max(1).describe("weight of the key's retrieved successor shares mixed into the model's probabilities"),
  popularityBlend: z.number().min(0).max(1).describe("weight of recent next-cluster popularity mixed in (both 0: the model alone)"),
  mode: ModeSchema,
  arm: z.enum(["active", "candidate"]).optional().describe("while an experiment runs: the arm that answered (its candidate table, or the active artefacts)"),
});
export type Lineage = z.infer<typeof LineageSchema>;

export const InterestSchema = z.object({
  clusterId: ClusterIdSchema,
  p: z.number().describe("probability of this cluster being the next novel interest"),
  keywords: z.array(z.string()),
});

export const NextInterestsAnswerSchema = z.object({
  userId: z.string().optional(),
  history: z.array(ClusterIdSchema).describe("the history key used: the last k distinct clusters, oldest first"),
  interests: z.array(InterestSchema),
  fallback: z.string().optional().describe("set when table mode fell back to live scoring, with the reason"),
  lineage: LineageSchema,
});
export type NextInterestsAnswer = z.infer<typeof NextInterestsAnswerSchema>;

export const ClustersAnswerSchema = z.object({
  clusters: z.array(z.object({ id: ClusterIdSchema, keywords: z.array(z.string()) })),
});

export const ArtefactIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "an artefact id holds letters, digits, '.', '_' and '-' only")
  .describe("an id from GET /v1/model; resolved through the registry, never used as a path");

export const PromoteBodySchema = z.strictObject({ id: ArtefactIdSchema });
export const RollbackBodySchema = z.strictObject({ kind: z.enum(["base", "adapter", "table"]) });
export const JobBodySchema = z.strictObject({
  asOf: z.number().int().nonnegative().optional().describe("point in time (ms) the job treats as now; default: the server clock"),
});

export const JobAnswerSchema = z.object({
  job: z.object({ id: z.string(), kind: z.string(), state: z.enum(["running", "succeeded", "rejected", "failed"]), startedAt: z.number(), endedAt: z.number().optional(), error: z.string().optional(), progress: z.object({ phase: z.string(), done: z.number(), total: z.number().optional() }).optional() }),
});

const SwapOutcomeSchema = z.object({ at: z.number(), ok: z.boolean(), what: z.string(), reason: z.string().optional() });

export const ModelAnswerSchema = z.object({
  ready: z.boolean(),
  lineage: LineageSchema.omit({ mode: true, arm: true }),
  since: z.number().nullable(),
  registryActive: z.object({ base: z.string().nullable(), adapter: z.string().nullable(), table: z.string().nullable(), since: z.number() }),
  serving: z.object({ scorerGeneration: z.number(), tableGeneration: z.number(), tableKeys: z.number(), adaptersCachedByModel: z.number(), modelsDraining: z.number() }),
  lastSwap: SwapOutcomeSchema.nullable(),
  lastFailure: SwapOutcomeSchema.nullable().describe("the most recent failed swap, with its reason"),
  registry: z.array(z.record(z.string(), z.unknown())).describe("artefact records with their gate results"),
  role: z.enum(["writer", "replica"]),
  ingest: z
    .object({ received: z.number().int(), newestEventTs: z.number().nullable(), lagS: z.number().nullable() })
    .describe("events posted to this process since it started, the newest event time among them and how far it trailed the serving clock at the last ingest"),
  loop: z
    .object({
      phase: z.string().describe("waiting-for-data | bootstrapping | running | idle"),
      transitions: z.object({ have: z.number(), need: z.number() }).optional().describe("before the first bootstrap: positive transitions stored and needed"),
      failure: z.object({ action: z.string(), error: z.string(), consecutive: z.number(), nextAttemptAt: z.number() }).optional(),
    })
    .passthrough()
    .nullable()
    .describe("the update loop in this process: schedule, anchor of its windows, drift, last decision, failures; null on replicas"),
  jobs: z.array(JobAnswerSchema.shape.job),
});

export const ErrorAnswerSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    requestId: z.string(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});
