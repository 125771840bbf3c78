import type { Cluster, ClusterId, Event } from "@freshrec/core";
import type { Registry } from "@freshrec/registry";
import type { ServedAnswer } from "@freshrec/retriever";
import type { Disposable } from "./swap-slot.js";

/**
 * The parts of the retriever store, scorer and registry the server uses, written structurally so that
 * createApp(deps) takes the real components (their types satisfy these) and nothing else is assumed.
 * Registry records and table meta follow the registry package's lineage contract.
 */

export interface SuccessorItem {
  clusterId: ClusterId;
  count: number;
  score: number;
}

export interface StorePort {
  ingest(events: Event[]): Promise<{ accepted: number; duplicates: number }>;
  userState(userId: string): Promise<{ userId: string; clusters: ClusterId[]; lastTs: number } | null>;
  successors(
    history: ClusterId[],
    opts: { asOf: number; windowMs: number; n: number; method?: "frequency" | "trend" },
  ): Promise<{ items: SuccessorItem[]; source: string; key: string; support: number }>;
  clusters(): Promise<Cluster[]>;
  putClusters(clusters: Cluster[]): Promise<void>;
  putItems(items: Array<{ itemId: string; clusterId?: number }>): Promise<{ assigned: number }>;
  /** Positive engagements in [start, end): what online quality joins served answers with. */
  positiveEvents(opts: { start: number; end: number }): Promise<Array<{ userId: string; clusterId: ClusterId; ts: number }>>;
  /** The served-answers log (written by the writer only). */
  readonly servedAnswers: {
    append(rows: readonly ServedAnswer[]): Promise<void>;
    read(opts: { from: number; to: number }): Promise<ServedAnswer[]>;
    count(opts: { from: number; to: number }): Promise<number>;
    prune(before: number): Promise<void>;
  };
  predictionTable(id: string): Promise<{ id: string; meta: Record<string, unknown>; rows: Array<{ key: string; clusters: number[]; probs: number[] }> } | null>;
  close(): Promise<void>;
}

export interface ScorerPort extends Disposable {
  readonly baseId: string;
  readonly adapterId: string | null;
  scoreNext(prompts: Array<{ history: ClusterId[]; rag: ClusterId[] | null; ragCounts?: number[] }>): Promise<Array<Array<{ clusterId: ClusterId; p: number }>>>;
}

export interface ModelPort extends Disposable {
  readonly modelId: string;
  readonly layout: { k: number; ragSlots: number; nClusters: number };
  /** Distinct adapter files llama.cpp caches for this model (never freed until the model is disposed). */
  readonly adapterLoads: number;
  createScorer(opts: { adapterPath?: string; adapterId?: string; parallel?: number }): Promise<ScorerPort>;
  /** Text models: the closed set grows at run time (see scorer's ScoringModel.setClusters); absent on cluster-token models. */
  setClusters?(clusters: readonly Cluster[]): void;
}

/** Loads a base of either kind (scorer's loadScoringModel): a text model needs the clusters it scores over and its prompt's k and RAG lines. */
export type LoadModel = (opts: { path: string; threads?: number; clusters?: Cluster[]; text?: { k: number; ragLines: number } }) => Promise<ModelPort>;

/** A background job as the API shows it. */
export interface JobView {
  id: string;
  kind: string;
  state: "running" | "succeeded" | "rejected" | "failed";
  startedAt: number;
  endedAt?: number;
  error?: string;
  /** The running job's latest progress event. */
  progress?: { phase: string; done: number; total?: number };
}

/** Starts update jobs on the writer (admin routes); replicas have none. */
export interface JobsPort {
  list(): JobView[];
  /** Throws a FreshrecError with code "job-busy" while another job runs. */
  start(kind: "refresh" | "finetune", opts: { asOf: number; by: string }): JobView;
}

/** What the update loop says about itself: shown in /v1/model and, before the first model, in /readyz. */
export interface LoopPort {
  /** The latest scheduler decisions, oldest first, with the drift reading behind each (for the dashboard). */
  decisions?(limit: number): unknown[];
  status(): { phase: string; transitions?: { have: number; need: number }; failure?: { action: string; error: string; consecutive: number; nextAttemptAt: number } };
}

/** The registry as the server uses it: the real one (@freshrec/registry), read-only on replicas. */
export type RegistryPort = Pick<Registry, "list" | "active" | "promote" | "rollback" | "watch" | "promotions" | "startExperiment" | "stopExperiment">;
