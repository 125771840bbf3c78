import type { Event } from "@freshrec/core";
import type { ModelManager } from "./model-manager.js";
import type { Predictor } from "./predictor.js";
import type { JobRunner } from "./jobs.js";
import type { ServerMetrics } from "./metrics.js";
import type { RegistryPort, StorePort } from "./ports.js";

/** What route handlers work with. */
export interface ServiceContext {
  store: StorePort;
  registry: RegistryPort;
  manager: ModelManager;
  predictor: Predictor;
  jobs: JobRunner;
  metrics: ServerMetrics;
  clock: () => number;
  /** Called once events are durable: invalidates cached user state and updates the ingest lag. */
  afterIngest(events: Event[]): void;
  modelAnswer(): Promise<unknown>;
}
