import { DEFAULT_K, DEFAULT_RAG_LINES, type Cluster, type ModelKind, type TextTemplate } from "@freshrec/core";
import { loadClusterModel, type ClusterModel, type ScorerOptions } from "./cluster-model.js";
import { UnusableModelError } from "./errors.js";
import type { Prompt, Scorer } from "./scorer.js";
import { inspectModelFile } from "./text/inspect.js";
import { loadTextModel, type TextModel, type TextScorer, type TextScoring } from "./text/text-model.js";

/** Either kind of model behind the interface jobs and the server score with. */
export interface ScoringModel extends Omit<ClusterModel, "kind" | "createScorer"> {
  readonly kind: ModelKind;
  createScorer(opts?: ScorerOptions): Promise<Scorer>;
  /**
   * Text models only: replaces the closed set for this model and every scorer it made (a new cluster is ranked from
   * its keywords, no retraining); refuses descriptions that tokenise alike, changing nothing. Cluster-token models
   * have one vocabulary token per cluster and no such method.
   */
  setClusters?(clusters: readonly Pick<Cluster, "id" | "keywords">[]): void;
}

export interface LoadScoringModelOptions {
  path: string;
  threads?: number;
  /** Text models: the closed set to score over (cluster-token models carry theirs in the vocabulary). */
  clusters?: readonly Pick<Cluster, "id" | "keywords">[];
  /** Text models: history clusters described, RAG lines shown, the template, the scoring (defaults: core's and "constrained"). */
  text?: { k?: number; ragLines?: number; template?: TextTemplate; scoring?: TextScoring };
}

/**
 * Loads a GGUF of either kind, told apart by its header: freshrec's own cluster-token model, or a text model a user
 * brings, wrapped so that the update jobs (holdout scoring, table refresh, blend fit) and the server run it unchanged.
 */
export async function loadScoringModel(opts: LoadScoringModelOptions): Promise<ScoringModel> {
  const assessment = await inspectModelFile(opts.path);
  if (assessment.kind === "cluster-token") return loadClusterModel(opts);
  if (!opts.clusters || opts.clusters.length === 0) throw new UnusableModelError(opts.path, "a text model scores over the store's clusters, and none were given");
  const k = opts.text?.k ?? DEFAULT_K;
  const ragLines = opts.text?.ragLines ?? DEFAULT_RAG_LINES;
  const model = await loadTextModel({ path: opts.path, ...(opts.threads ? { threads: opts.threads } : {}), params: { k, ragLines }, ...(opts.text?.template ? { template: opts.text.template } : {}) });
  return new TextScoringModel(model, opts.clusters, { k, ragSlots: ragLines, nClusters: Math.max(...opts.clusters.map((c) => c.id)) + 1 }, opts.text?.scoring ?? "constrained");
}

class TextScoringModel implements ScoringModel {
  readonly kind = "text" as const;
  private readonly scorers = new Set<TextScorer>();

  constructor(
    private readonly model: TextModel,
    private clusters: readonly Pick<Cluster, "id" | "keywords">[],
    /** Grows with setClusters (nClusters: the highest id + 1). */
    readonly layout: { k: number; ragSlots: number; nClusters: number },
    private readonly scoring: TextScoring,
  ) {}

  setClusters(clusters: readonly Pick<Cluster, "id" | "keywords">[]): void {
    this.model.encoder.answers(clusters); // refuses ambiguous descriptions before anything changes
    for (const s of this.scorers) s.setClusters(clusters);
    this.clusters = clusters;
    this.layout.nClusters = Math.max(...clusters.map((c) => c.id)) + 1;
  }

  get modelId() {
    return this.model.modelId;
  }
  get path() {
    return this.model.path;
  }
  get adapterLoads() {
    return this.model.adapterLoads;
  }

  async createScorer(opts: ScorerOptions = {}): Promise<Scorer> {
    const scorer = await this.model.createScorer({
      clusters: this.clusters,
      scoring: this.scoring,
      ...(opts.adapterPath !== undefined ? { adapterPath: opts.adapterPath } : {}),
      ...(opts.adapterId !== undefined ? { adapterId: opts.adapterId } : {}),
      ...(opts.adapterScale !== undefined ? { adapterScale: opts.adapterScale } : {}),
      ...(opts.parallel !== undefined ? { parallel: opts.parallel } : {}),
      ...(opts.contexts !== undefined ? { contexts: opts.contexts } : {}),
      ...(opts.exact !== undefined ? { exact: opts.exact } : {}),
    });
    this.scorers.add(scorer);
    return {
      baseId: scorer.baseId,
      adapterId: scorer.adapterId,
      scoreNext: (prompts: Prompt[]) => scorer.scoreNext(prompts.map(toTextPrompt)),
      tokenLogProbs: () => Promise.reject(new UnusableModelError(this.model.path, "next-token log-probabilities over the vocabulary are for cluster-token models; a text model scores whole answers")),
      dispose: () => {
        this.scorers.delete(scorer);
        return scorer.dispose();
      },
    };
  }

  dispose(): Promise<void> {
    return this.model.dispose();
  }
}

/** The text prompt of a scoring prompt: its RAG successors become lines with their counts. */
function toTextPrompt(p: Prompt) {
  return { history: p.history, rag: p.rag === null ? null : p.rag.map((clusterId, i) => ({ clusterId, count: p.ragCounts?.[i] ?? 0 })) };
}
