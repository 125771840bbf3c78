import type { Cluster, ClusterId, Event } from "@freshrec/core";
import type { Disposable } from "./swap-slot.js";

/**
 * The parts of the retriever store, scorer and registry the server uses, written structurally so that
 * createApp(deps) takes the real components (their types satisfy these) and nothing else is assumed.
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
  predictionTable(id: string): Promise<{ id: string; meta: Record<string, unknown>; rows: Array<{ key: string; clusters: number[]; probs: number[] }> } | null>;
  close(): Promise<void>;
}

export interface ScorerPort extends Disposable {
  readonly baseId: string;
  readonly adapterId: string | null;
  scoreNext(prompts: Array<{ history: ClusterId[]; rag: ClusterId[] | null }>): Promise<Array<Array<{ clusterId: ClusterId; p: number }>>>;
}

export interface ModelPort extends Disposable {
  readonly modelId: string;
  readonly layout: { k: number; ragSlots: number; nClusters: number };
  /** Distinct adapter files llama.cpp caches for this model (never freed until the model is disposed). */
  readonly adapterLoads: number;
  createScorer(opts: { adapterPath?: string; adapterId?: string; parallel?: number }): Promise<ScorerPort>;
}

export type LoadModel = (opts: { path: string; threads?: number }) => Promise<ModelPort>;

export type ArtefactKind = "base" | "adapter" | "table";

export interface ArtefactRecordPort {
  id: string;
  kind: ArtefactKind;
  path?: string;
  createdAt: number;
  manifest: Record<string, unknown>;
  gate: { passed: boolean; reasons: string[]; metrics: Record<string, number> };
  status: string;
}

export interface ActiveSetPort {
  base: string | null;
  adapter: string | null;
  table: string | null;
  since: number;
}

export interface RegistryPort {
  list(): ArtefactRecordPort[] | Promise<ArtefactRecordPort[]>;
  active(): ActiveSetPort | Promise<ActiveSetPort>;
  promote(id: string, by: string): unknown;
  rollback(kind: ArtefactKind, by: string): unknown;
  watch(onChange: () => void): () => void;
}
