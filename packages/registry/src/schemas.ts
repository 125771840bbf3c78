import { z } from "zod";
import { AdapterManifestSchema, BaseManifestSchema, TableManifestSchema, type AdapterManifest, type BaseManifest, type TableManifest } from "./manifests.js";

export const ArtefactKindSchema = z.enum(["base", "adapter", "table"]);
export type ArtefactKind = z.infer<typeof ArtefactKindSchema>;

export const GateResultSchema = z.object({
  passed: z.boolean(),
  reasons: z.array(z.string()),
  metrics: z.record(z.string(), z.number()),
});
export type GateResult = z.infer<typeof GateResultSchema>;

const StoredCommon = {
  id: z.string().regex(/^[a-z]+-[0-9A-Za-z-]+$/),
  /** File name (inside the artefact's folder) of the file serving loads; absent for tables (they live in LanceDB). */
  main: z.string().optional(),
  files: z.array(z.string()),
  /** sha256 (hex) of every file, taken at publish: a copy fetched from object storage is checked against it. Absent in records published before it existed. */
  sha256: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)).optional(),
  createdAt: z.number().int(),
  gate: GateResultSchema,
};

/** What is stored in <models>/artefacts/<id>/record.json, with the manifest of its kind; `status` is derived, never stored (see registry.ts). */
export const StoredRecordSchema = z.discriminatedUnion("kind", [
  z.object({ ...StoredCommon, kind: z.literal("base"), manifest: BaseManifestSchema }),
  z.object({ ...StoredCommon, kind: z.literal("adapter"), manifest: AdapterManifestSchema }),
  z.object({ ...StoredCommon, kind: z.literal("table"), manifest: TableManifestSchema }),
]);
export type StoredRecord = z.infer<typeof StoredRecordSchema>;

export type ArtefactStatus = "active" | "candidate" | "rejected" | "retired";

interface RecordOf<K extends ArtefactKind, M> {
  id: string;
  kind: K;
  /** Absolute path of the file to load (unique per version: node-llama-cpp caches adapters by path). */
  path?: string;
  /** Absolute paths of every file of this version. */
  files: string[];
  createdAt: number;
  manifest: M;
  gate: GateResult;
  status: ArtefactStatus;
}
export type BaseRecord = RecordOf<"base", BaseManifest>;
export type AdapterRecord = RecordOf<"adapter", AdapterManifest>;
export type TableRecord = RecordOf<"table", TableManifest>;
export type ArtefactRecord = BaseRecord | AdapterRecord | TableRecord;
/** The record type of a kind. */
export type RecordOfKind<K extends ArtefactKind> = Extract<ArtefactRecord, { kind: K }>;

/**
 * A traffic split between the active artefacts and a candidate, kept in the pointer so that every process serving
 * the registry (replicas too, through the object-store mirror) runs the same split, and a restart keeps it.
 */
export const ExperimentSchema = z
  .object({
    /** Table the candidate arm answers table-mode requests from (the active table when null). */
    candidateTable: z.string().nullable(),
    /** Adapter the candidate arm scores live answers with; null: the candidate table's own adapter (its lineage). */
    candidateAdapter: z.string().nullable(),
    /** Share of users, by a salted hash of their id, in the candidate arm. */
    share: z.number().gt(0).lt(1),
    salt: z.string().min(1).max(64),
    /** Wall-clock ms it started. */
    since: z.number().int(),
    by: z.string().min(1),
  })
  .refine((e) => e.candidateTable !== null || e.candidateAdapter !== null, { message: "an experiment needs a candidate table or a candidate adapter" });
export type Experiment = z.infer<typeof ExperimentSchema>;

export const ActiveSetSchema = z.object({
  base: z.string().nullable(),
  adapter: z.string().nullable(),
  table: z.string().nullable(),
  /** Wall-clock ms of the last change. */
  since: z.number().int(),
  /** The running experiment; absent (pointers written before experiments) or null: none. */
  experiment: ExperimentSchema.nullable().optional(),
});
export type ActiveSet = z.infer<typeof ActiveSetSchema>;

export const PromotionEntrySchema = z.object({
  at: z.number().int(),
  /** experiment-start / experiment-stop: `kind` and `candidate` name the candidate (its table, else its adapter); `from` and `to` are null, nothing became active. */
  action: z.enum(["promote", "rollback", "experiment-start", "experiment-stop"]),
  kind: ArtefactKindSchema,
  from: z.string().nullable(),
  to: z.string().nullable(),
  /** Who or what triggered it: "user:<name>", "scheduler:adaptive", "job:bootstrap", ... */
  by: z.string().min(1),
  /** Gate outcome of the artefact switched to, copied so the log reads on its own. */
  gate: GateResultSchema.optional(),
  note: z.string().optional(),
  /** The experiment's candidate (experiment entries only). */
  candidate: z.string().optional(),
});
export type PromotionEntry = z.infer<typeof PromotionEntrySchema>;
