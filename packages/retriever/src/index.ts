export { openStore, Store } from "./store.js";
export type {
  StoreOptions,
  SuccessorResult,
  SuccessorQuery,
  Snapshot,
  PredictionTable,
  UserStateView,
  MaintenanceResult,
  MaintenanceScheduleOptions,
  StoreHealth,
  StoreCheckReport,
  StoreRepairReport,
  ProgressFn,
} from "./store.js";
export type { RankedSuccessor, SuccessorMethod } from "./ranking.js";
export { IngestEventSchema, DEFAULT_MAX_BATCH, type IngestEvent } from "./ingest.js";
export {
  IncompatibleStoreError,
  StoreTableError,
  StoreDerivedMissingError,
  StoreCorruptError,
  DiskFullError,
  StoreUnavailableError,
  StoreUsageError,
  type StoreFaultCode,
  type StoreProblem,
} from "./errors.js";
export { SCHEMA_VERSION, TABLE } from "./tables.js";
export { TransitionIndex } from "./transition-index.js";
export { ServedAnswerLog, ServedAnswerSchema, SERVED_ANSWERS_TABLE, type ServedAnswer } from "./served-answers.js";
// The LanceDB and apache-arrow modules the store uses (one arrow copy: build Arrow data for LanceDB with this one).
export { lancedb, arrow, type LanceTable, type Connection } from "./lance.js";
export { acquireWriterLock, StoreLockedError, WriterLockHolderSchema, type WriterLock, type WriterLockHolder, type WriterLockOptions } from "./writer-lock.js";
export { acquireStoreWriterLock } from "./writer-lease.js";
export { ObjectStorageSchema, isObjectStoreUri, parseObjectUri, resolveObjectStorage, objectStorageEnv, lanceStorageOptions, type ObjectStorage, type ObjectStorageInput } from "./storage-options.js";
export { openObjectStore, ObjectStoreError, type ObjectStore, type PutCondition } from "./object-store.js";
export { startLocalS3, type LocalS3 } from "./local-s3.js";
