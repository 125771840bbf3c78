import { z } from "zod";
import { ClusterIdSchema, EventSchema } from "@freshrec/core";

/**
 * Request and response shapes of the HTTP API. The same schemas validate requests (routes.ts) and
 * generate /openapi.json (openapi.ts), so the documentation cannot drift from the validation.
 */

export const ModeSchema = z.enum(["table", "live"]).describe("table: precomputed transition table; live: fresh RAG retrieval + model scoring");
export type Mode = z.infer<typeof ModeSchema>;

export const eventsBatchSchema = (maxBatch: number) =>
  z.strictObject({ events: z.array(EventSchema).min(1).max(maxBatch) }).describe(`A batch of at most ${maxBatch} engagement events; idempotent by eventId`);

export const IngestAckSchema = z.object({
  accepted: z.number().int().describe("events made durable by this call"),
  duplicates: z.number().int().describe("events whose eventId was already stored (ignored)"),
  received: z.number().int(),
});

export const UserIdSchema = z.string().min(1).max(256);
export const UserParamsSchema = z.object({ userId: UserIdSchema });

export const NextInterestsQuerySchema = z.strictObject({
  k: z.coerce.number().int().min(1).max(100).default(10).describe("how many clusters to return"),
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
  job: z.object({ id: z.string(), kind: z.string(), state: z.enum(["running", "succeeded", "rejected", "failed"]), startedAt: z.number(), endedAt: z.number().optional(), error: z.string().optional() }),
});

const SwapOutcomeSchema = z.object({ at: z.number(), ok: z.boolean(), what: z.string(), reason: z.string().optional() });

export const ModelAnswerSchema = z.object({
  ready: z.boolean(),
  lineage: LineageSchema.omit({ mode: true }),
  since: z.number().nullable(),
  registryActive: z.object({ base: z.string().nullable(), adapter: z.string().nullable(), table: z.string().nullable(), since: z.number() }),
  serving: z.object({ scorerGeneration: z.number(), tableGeneration: z.number(), tableKeys: z.number(), adaptersCachedByModel: z.number(), modelsDraining: z.number() }),
  lastSwap: SwapOutcomeSchema.nullable(),
  lastFailure: SwapOutcomeSchema.nullable().describe("the most recent failed swap, with its reason"),
  registry: z.array(z.record(z.string(), z.unknown())).describe("artefact records with their gate results"),
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
