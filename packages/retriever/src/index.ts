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
// The LanceDB and apache-arrow modules the store uses (one arrow copy: build Arrow data for LanceDB with this one).
export { lancedb, arrow, type LanceTable, type Connection } from "./lance.js";
export { acquireWriterLock, StoreLockedError, WriterLockHolderSchema, type WriterLock, type WriterLockHolder, type WriterLockOptions } from "./writer-lock.js";
