import { z } from "zod";
import { FreshrecError } from "@freshrec/core";

/**
 * What each kind of artefact records about itself, and the lineage contract of a prediction table: written by the
 * update jobs, parsed on every read (registry records, the store's table meta), so no reader guesses at shapes.
 */

export const WindowSchema = z.object({ start: z.number(), end: z.number() });
export type Window = z.infer<typeof WindowSchema>;

export const LayoutSchema = z.object({ k: z.number().int().positive(), ragSlots: z.number().int().nonnegative(), nClusters: z.number().int().positive() });

/** Holdout figures a gate judges (share of valid outputs, recall@1, recall@5 over n examples). */
export const HoldoutMetricsSchema = z.object({ n: z.number().int().nonnegative(), exactMatch: z.number(), recallAt1: z.number(), recallAt5: z.number() });
export type HoldoutMetrics = z.infer<typeof HoldoutMetricsSchema>;

export const TrainingSetManifestSchema = z.object({
  id: z.string(),
  window: WindowSchema,
  holdoutStart: z.number(),
  counts: z.object({
    inWindow: z.number().int(),
    /** Transitions kept for training after the caps (train and val). */
    kept: z.number().int(),
    /** Examples trained on: kept transitions minus val, plus their no-RAG and relabelled copies. */
    train: z.number().int(),
    val: z.number().int(),
    holdout: z.number().int(),
    droppedByPairCap: z.number().int(),
    droppedByKeyCap: z.number().int(),
    /** No-RAG copies among train and val. */
    ragDropped: z.number().int(),
    relabelled: z.number().int(),
    ragEmpty: z.number().int(),
    keys: z.number().int(),
  }),
  caps: z.object({ perKey: z.number(), perPair: z.number() }),
  ragDropout: z.number(),
  relabelCopies: z.number().int(),
  ragWindowDays: z.number(),
  seed: z.number().int(),
  storeVersion: z.union([z.number(), z.string(), z.null()]),
  layout: LayoutSchema,
});
export type TrainingSetManifest = z.infer<typeof TrainingSetManifestSchema>;

/** The trainer's settings, echoed as given (the trainer validates them; they differ per trainer). */
const HyperparametersSchema = z.record(z.string(), z.unknown());

const CostSchema = { wallS: z.number(), cpuS: z.number(), asOf: z.number() };

/** A base freshrec pretrained (cluster-token model). */
export const PretrainedBaseManifestSchema = z.object({
  modelHash: z.string(),
  trainFile: z.string(),
  trainingSetId: z.string(),
  trainingSet: TrainingSetManifestSchema,
  trainer: z.string(),
  hyperparameters: HyperparametersSchema,
  layout: LayoutSchema,
  window: WindowSchema,
  holdout: HoldoutMetricsSchema,
  ...CostSchema,
});

/**
 * A text model a user brought: the registry links its file (never copies or changes it) and names it by its sha256,
 * which every adapter and table trained or scored on it carries in its lineage.
 */
export const UserBaseManifestSchema = z.object({
  modelKind: z.literal("text"),
  /** Where the file was when it was registered (the registry's folder holds a link to it). */
  sourcePath: z.string(),
  /** sha256 of the file. */
  modelHash: z.string().regex(/^[0-9a-f]{64}$/),
  /** Name of the link in the artefact's folder (fine-tunes train against it). */
  trainFile: z.string(),
  architecture: z.string(),
  promptStyle: z.enum(["chat", "completion"]),
  /** native: the C++ trainer fine-tunes it; external: only the external trainer can. */
  training: z.enum(["native", "external"]),
  /** k history clusters described, RAG lines shown (ragSlots), clusters at registration. */
  layout: LayoutSchema,
  /** The bare base on the bootstrap window's holdout: the bar its first adapter must clear. */
  holdout: HoldoutMetricsSchema,
  /**
   * Only for a model freshrec wrote itself (the demo's and the replay's small text model, config text.trainBase):
   * every weight was trained on this window first, so the file is a copy in the registry, not a link, and
   * modelHash is the trained file's. A model a team brings is never trained this way.
   */
  trainedWeights: z.object({ fromHash: z.string().regex(/^[0-9a-f]{64}$/), window: WindowSchema, examples: z.number().int().positive() }).optional(),
  ...CostSchema,
});

export const BaseManifestSchema = z.union([UserBaseManifestSchema, PretrainedBaseManifestSchema]);
export type BaseManifest = z.infer<typeof BaseManifestSchema>;
export type UserBaseManifest = z.infer<typeof UserBaseManifestSchema>;
/** Whether a base is a text model a user brought. */
export const isUserBase = (m: BaseManifest): m is UserBaseManifest => "modelKind" in m && m.modelKind === "text";

export const AdapterManifestSchema = z.object({
  baseId: z.string(),
  /** sha256 of the base's training file: the adapter only fits that base. */
  baseHash: z.string(),
  trainingSetId: z.string(),
  trainingSet: TrainingSetManifestSchema,
  trainer: z.string(),
  hyperparameters: HyperparametersSchema,
  warmStartFrom: z.string().nullable(),
  /** Absent when the adapter was refused before scoring (it does not fit its base). */
  holdout: HoldoutMetricsSchema.optional(),
  incumbent: z.object({ id: z.string().nullable(), holdout: HoldoutMetricsSchema.optional() }).optional(),
  /** Set when the artefact is a copy of another version (benchmarks, tests). */
  copiedFrom: z.string().optional(),
  ...CostSchema,
});
export type AdapterManifest = z.infer<typeof AdapterManifestSchema>;

/** Which artefacts a table was scored with. */
export const TableLineageSchema = z.object({
  baseId: z.string(),
  adapterId: z.string().nullable(),
  snapshotId: z.string().nullable(),
  createdAt: z.number(),
});
export type TableLineage = z.infer<typeof TableLineageSchema>;

export const BlendWeightsSchema = z.object({ rag: z.number().min(0).max(1), popularity: z.number().min(0).max(1) });

/** The RAG blend of a table: the weights used, why, and (when fitted) the grid they were chosen from. */
const BlendFitRecordSchema = z.object({
  cases: z.number().int(),
  grid: z.array(BlendWeightsSchema.extend({ hit1: z.number(), mrr: z.number() })),
});
export const TableBlendRecordSchema = z.object({
  weights: BlendWeightsSchema,
  reason: z.string(),
  fit: BlendFitRecordSchema.optional(),
  /** The weights live answers blend with (fresh retrieval): fitted on their own (rag-blend-fit.ts fitLiveBlend). */
  live: z.object({ weights: BlendWeightsSchema, fit: BlendFitRecordSchema.optional() }).optional(),
});

export const TableManifestSchema = z.object({
  /** Name of the table in the store. */
  tableId: z.string(),
  lineage: TableLineageSchema,
  rag: z.boolean(),
  ragBlend: TableBlendRecordSchema,
  keys: z.number().int().nonnegative(),
  allKeys: z.boolean(),
  holdout: HoldoutMetricsSchema,
  incumbent: z.object({ id: z.string().nullable(), holdout: HoldoutMetricsSchema.nullable() }),
  ...CostSchema,
});
export type TableManifest = z.infer<typeof TableManifestSchema>;

/**
 * The lineage a prediction table carries in the store, beside its rows, so that a reader of the store alone
 * (a replica, the replay) serves it right: what scored it and the blend its answers mix in. The store keeps
 * meta values as strings or numbers; this schema is its one reader and writer.
 */
export const TableMetaSchema = z.object({
  baseId: z.string(),
  /** "" for a table scored by the base alone. */
  adapterId: z.string(),
  /** "" for a table without RAG. */
  snapshotId: z.string(),
  createdAt: z.coerce.number(),
  rag: z.coerce.number().pipe(z.union([z.literal(0), z.literal(1)])),
  ragBlend: z.coerce.number().min(0).max(1).default(0),
  popularityBlend: z.coerce.number().min(0).max(1).default(0),
  /** The weights live answers use (fitted with fresh retrieval); absent: the table's own (tables written before them). */
  liveRagBlend: z.coerce.number().min(0).max(1).optional(),
  livePopularityBlend: z.coerce.number().min(0).max(1).optional(),
  /** JSON array of recent next-cluster shares, present when popularityBlend or livePopularityBlend > 0. */
  popularity: z.string().optional(),
});
export type TableMeta = z.infer<typeof TableMetaSchema>;

/** Parses a stored table's meta; a table written by anything else is refused, naming it and the field. */
export function parseTableMeta(tableId: string, meta: Record<string, unknown>): TableMeta & { popularityShares?: number[] } {
  const parsed = TableMetaSchema.safeParse(meta);
  if (!parsed.success) throw new TableMetaError(tableId, parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  const m = parsed.data;
  const popularityWeight = Math.max(m.popularityBlend, m.livePopularityBlend ?? 0);
  if (popularityWeight === 0) return m;
  if (m.popularity === undefined) throw new TableMetaError(tableId, `a popularity weight of ${popularityWeight} but no popularity vector is stored`);
  let shares: unknown;
  try {
    shares = JSON.parse(m.popularity);
  } catch {
    shares = undefined;
  }
  if (!Array.isArray(shares) || !shares.every((p) => typeof p === "number")) throw new TableMetaError(tableId, "popularity: not a JSON array of numbers");
  return { ...m, popularityShares: shares };
}

export class TableMetaError extends FreshrecError {
  constructor(tableId: string, detail: string) {
    super("bad-table-meta", `prediction table '${tableId}' has meta freshrec did not write: ${detail}`);
  }
}

/** The artefacts that score with this one: a table's base and adapter (its lineage), an adapter's base, nothing for a base. */
export function scoredWith(manifest: BaseManifest | AdapterManifest | TableManifest): string[] {
  if ("lineage" in manifest) return [manifest.lineage.baseId, manifest.lineage.adapterId].filter((id): id is string => id !== null);
  return "baseId" in manifest ? [manifest.baseId] : [];
}
