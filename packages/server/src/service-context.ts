import type { Event } from "@freshrec/core";
import type { ModelManager } from "./model-manager.js";
import type { Predictor } from "./predictor.js";
import type { ServerMetrics } from "./metrics.js";
import type { JobsPort, LoopPort, RegistryPort, StorePort } from "./ports.js";
import type { OnlineQuality } from "./quality.js";
import type { ExperimentControl } from "./experiment.js";
import type { TableDiffs } from "./table-diff.js";

/** What route handlers work with. */
export interface ServiceContext {
  store: StorePort;
  registry: RegistryPort;
  manager: ModelManager;
  predictor: Predictor;
  /** writer: ingests, runs jobs, promotes; replica: answers reads from the store and registry the writer keeps. */
  role: "writer" | "replica";
  /** Where a replica sends writers' work (named in its refusals). */
  writerUrl?: string;
  /** Absent on replicas. */
  jobs?: JobsPort;
  /** Absent where no update loop runs in this process (replicas, embedded tests). */
  loop?: LoopPort;
  metrics: ServerMetrics;
  quality: OnlineQuality;
  experiments: ExperimentControl;
  tableDiffs: TableDiffs;
  clock: () => number;
  /** Called once events are durable: invalidates cached user state and updates the ingest lag. */
  afterIngest(events: Event[]): void;
  modelAnswer(): Promise<unknown>;
}
