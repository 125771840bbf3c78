// The model registry and the lineage contract: artefacts with typed manifests, the active pointer, the promotion log.
export { openRegistry, type Registry, type RegistryOptions, type PublishInput } from "./registry.js";
export { RegistryError, writeFileAtomic } from "./atomic.js";
export {
  ArtefactKindSchema,
  GateResultSchema,
  StoredRecordSchema,
  ActiveSetSchema,
  ExperimentSchema,
  PromotionEntrySchema,
  type ArtefactKind,
  type GateResult,
  type StoredRecord,
  type ArtefactStatus,
  type ArtefactRecord,
  type BaseRecord,
  type AdapterRecord,
  type TableRecord,
  type RecordOfKind,
  type ActiveSet,
  type Experiment,
  type PromotionEntry,
} from "./schemas.js";
export {
  HoldoutMetricsSchema,
  TrainingSetManifestSchema,
  BaseManifestSchema,
  AdapterManifestSchema,
  TableManifestSchema,
  TableLineageSchema,
  TableMetaSchema,
  TableMetaError,
  parseTableMeta,
  type HoldoutMetrics,
  type TrainingSetManifest,
  type BaseManifest,
  type AdapterManifest,
  type TableManifest,
  type TableLineage,
  type TableMeta,
  type Window,
} from "./manifests.js";
export { openRegistryMirror, ArtefactIntegrityError, RegistryPointerSchema, type RegistryMirror, type FollowOptions, type RegistryPointer, type PushResult, type PullResult } from "./object-mirror.js";
