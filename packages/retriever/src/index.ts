export { openStore, Store } from "./store.js";
export type { StoreOptions, SuccessorResult, SuccessorQuery, Snapshot, PredictionTable, UserStateView, MaintenanceResult, ProgressFn } from "./store.js";
export type { RankedSuccessor, SuccessorMethod } from "./ranking.js";
export { IngestEventSchema, DEFAULT_MAX_BATCH, type IngestEvent } from "./ingest.js";
export { IncompatibleStoreError, StoreTableError, StoreUsageError } from "./errors.js";
export { SCHEMA_VERSION, TABLE } from "./tables.js";
export { TransitionIndex } from "./transition-index.js";
// The LanceDB and apache-arrow modules the store uses (one arrow copy: build Arrow data for LanceDB with this one).
export { lancedb, arrow, type LanceTable, type Connection } from "./lance.js";
