import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { resolve } from "node:path";
import { readGgufFileInfo, type LlamaContext, type LlamaModel, type Token } from "node-llama-cpp";
import {
  DEFAULT_K,
  DEFAULT_RAG_LINES,
  defaultTextTemplate,
  type Cluster,
  type ClusterId,
  type TextPromptInput,
  type TextPromptParams,
  type TextTemplate,
} from "@freshrec/core";
import { llama } from "../cluster-model.js";
import type { ClusterScore } from "../distribution.js";
import { AdapterCache } from "../adapter-cache.js";
import { ModelFileError, ScorerDisposedError, ScoringError, StaleAdapterError, UnusableModelError } from "../errors.js";
import { createScoringContexts, LanePool } from "../lane-pool.js";
import { LogitsReadQueue } from "../next-token-reader.js";
import { buildAnswerTrie } from "./answer-trie.js";
import { BranchReader, type AnswerScore, type ReadMode } from "./branch-reader.js";
import { inspectModelFile, type ModelFileAssessment } from "./inspect.js";
import { TextPromptEncoder } from "./prompt-encoder.js";

/**
 * How candidate answers become a distribution over clusters (scorer/README.md, "Text models", compares them).
 * - constrained (default): the probability that decoding restricted to the cluster descriptions answers c, i.e. the
 *   product over the answer's tokens of p(token) renormalised over the tokens some description allows there. Sums to
 *   1 over the candidates by construction; needs logits only where descriptions fork.
 * - sum: softmax over candidates of the answer's summed token log-probs over the whole vocabulary.
 * - mean: the same with log-probs averaged over the answer's tokens (length-normalised).
 */
export const TEXT_SCORINGS = ["constrained", "sum", "mean"] as const;
export type TextScoring = (typeof TEXT_SCORINGS)[number];

export interface TextScorerOptions {
  /** The closed set: every cluster with its keywords (setClusters replaces it later). */
  clusters: readonly Pick<Cluster, "id" | "keywords">[];
  adapterPath?: string;
  /** Reported as TextScorer.adapterId; defaults to the adapter's file name. */
  adapterId?: string;
  /** llama.cpp adapter scale. Default 1. */
  adapterScale?: number;
  /** Sequences per context; each scores one prompt at a time, concurrent ones decode in one batch. Default 4. */
  parallel?: number;
  /** Contexts, each on its own threads. Default 1. */
  contexts?: number;
  /** true: F32 KV cache and plain attention (parity); false (default): F16 KV cache with flash attention. */
  exact?: boolean;
  scoring?: TextScoring;
  /** Token cells per sequence: the longest prompt plus the longest answer must fit. Default min(1024, the model's training context). */
  contextSize?: number;
}

export interface TextScorer {
  readonly baseId: string;
  readonly adapterId: string | null;
  readonly scoring: TextScoring;
  /** Replaces the closed set (a cluster added at run time is scored from its keywords alone); refuses ambiguous descriptions. */
  setClusters(clusters: readonly Pick<Cluster, "id" | "keywords">[]): void;
  /**
   * Per prompt: P(next cluster) over the closed set, history clusters excluded, sorted by p descending.
   * `reuse: false` evaluates every candidate with its whole prompt (the baseline the benchmark compares with).
   */
  scoreNext(prompts: readonly TextPromptInput[], opts?: { reuse?: boolean }): Promise<ClusterScore[][]>;
  /** Per prompt: each candidate's summed answer log-prob and token count under `mode` (for tests and measurements). */
  answerScores(prompts: readonly TextPromptInput[], mode: ReadMode, opts?: { reuse?: boolean }): Promise<Map<ClusterId, AnswerScore>[]>;
  dispose(): Promise<void>;
}

export interface TextModel {
  readonly path: string;
  /** sha256 of the model file: the base's identity in manifests and lineage. */
  readonly sha256: string;
  /** "text-" + the first 16 hex digits of sha256. */
  readonly modelId: string;
  readonly assessment: ModelFileAssessment;
  readonly encoder: TextPromptEncoder;
  /** Distinct adapter files llama.cpp holds for this model (see ClusterModel.adapterLoads: reload the model as it grows). */
  readonly adapterLoads: number;
  createScorer(opts: TextScorerOptions): Promise<TextScorer>;
  dispose(): Promise<void>;
}

/** sha256 of a file, streamed. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

interface TextModelFileOptions {
  path: string;
  template?: TextTemplate;
  params?: Partial<TextPromptParams>;
}

/** Inspects the file (refusing what freshrec cannot use, with the reason), loads it and prepares its prompt encoder. */
async function openTextModelFile(opts: TextModelFileOptions, vocabOnly: boolean) {
  const path = resolve(opts.path);
  const assessment = await inspectModelFile(path);
  if (assessment.kind !== "text") throw new UnusableModelError(path, "it is a freshrec cluster-token model; load it with loadClusterModel");
  const [fileInfo, lib] = await Promise.all([readGgufFileInfo(path, { logWarnings: false }), llama()]);
  let model: LlamaModel;
  try {
    model = await lib.loadModel({ modelPath: path, vocabOnly });
  } catch (err) {
    throw new ModelFileError(path, "model", `llama.cpp could not load it (${(err as Error).message})`, { cause: err });
  }
  const params: TextPromptParams = { k: opts.params?.k ?? DEFAULT_K, ragLines: opts.params?.ragLines ?? DEFAULT_RAG_LINES };
  const encoder = TextPromptEncoder.create(model, fileInfo, path, assessment.promptStyle, opts.template ?? defaultTextTemplate(), params);
  return { path, assessment, model, encoder };
}

/**
 * Loads a text model: inspects the file (refusing what freshrec cannot use, with the reason), loads it into llama.cpp
 * and prepares its prompt encoder (chat template for instruct models, completion text for base models).
 */
export async function loadTextModel(opts: TextModelFileOptions & { threads?: number }): Promise<TextModel> {
  const [{ path, assessment, model, encoder }, sha256] = await Promise.all([openTextModelFile(opts, false), fileSha256(resolve(opts.path))]);
  return new LoadedTextModel(path, sha256, assessment, encoder, model, opts.threads ?? 1);
}

/** The prompt encoder of a text model file, its vocabulary loaded without weights (training sets need only this). */
export async function loadTextEncoder(opts: TextModelFileOptions): Promise<{ encoder: TextPromptEncoder; assessment: ModelFileAssessment; dispose(): Promise<void> }> {
  const { assessment, model, encoder } = await openTextModelFile(opts, true);
  return { encoder, assessment, dispose: () => model.dispose() };
}

class LoadedTextModel implements TextModel {
  private readonly scorers = new Set<TextScorer>();
  private readonly adapters = new AdapterCache();
  private disposed = false;

  constructor(
    readonly path: string,
    readonly sha256: string,
    readonly assessment: ModelFileAssessment,
    readonly encoder: TextPromptEncoder,
    private readonly model: LlamaModel,
    private readonly threads: number,
  ) {}

  get modelId(): string {
    return `text-${this.sha256.slice(0, 16)}`;
  }

  get adapterLoads(): number {
    return this.adapters.size;
  }

  async createScorer(opts: TextScorerOptions): Promise<TextScorer> {
    if (this.disposed) throw new ScorerDisposedError(`text model ${this.path}`);
    const { parallel = 4, contexts = 1, exact = false } = opts;
    const contextSize = opts.contextSize ?? Math.min(1024, this.model.trainContextSize);
    const lora = opts.adapterPath === undefined ? undefined : { adapters: [{ filePath: resolve(opts.adapterPath), scale: opts.adapterScale ?? 1 }] };
    if (lora) await this.adapters.admit(lora.adapters[0]!.filePath).catch((err: unknown) => {
      if (err instanceof StaleAdapterError) throw err;
      throw new ModelFileError(lora.adapters[0]!.filePath, "adapter", "file not found or unreadable", { cause: err });
    });
    const created = await createScoringContexts(this.model, {
      count: contexts,
      sequences: parallel,
      contextSize,
      batchSize: Math.min(parallel * contextSize, 2048),
      threads: this.threads,
      exact,
      ...(lora ? { lora } : {}),
    });
    const adapterId = opts.adapterPath === undefined ? null : (opts.adapterId ?? (opts.adapterPath.split("/").pop() ?? opts.adapterPath).replace(/\.gguf$/, ""));
    const scorer = new PooledTextScorer(this.modelId, adapterId, opts.scoring ?? "constrained", this.encoder, created, contextSize, opts.clusters);
    this.scorers.add(scorer);
    const dispose = scorer.dispose.bind(scorer);
    scorer.dispose = async () => {
      this.scorers.delete(scorer);
      await dispose();
    };
    return scorer;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...this.scorers].map((s) => s.dispose()));
    await this.model.dispose();
  }
}

class PooledTextScorer implements TextScorer {
  private readonly pool: LanePool<BranchReader>;
  private answers!: Map<ClusterId, Token[]>;
  private descriptions!: Map<ClusterId, string>;
  private longestAnswer = 0;

  constructor(
    readonly baseId: string,
    readonly adapterId: string | null,
    readonly scoring: TextScoring,
    private readonly encoder: TextPromptEncoder,
    private readonly contexts: LlamaContext[],
    private readonly contextSize: number,
    clusters: readonly Pick<Cluster, "id" | "keywords">[],
  ) {
    this.setClusters(clusters);
    const lanes = contexts.flatMap((c) => {
      const reads = new LogitsReadQueue();
      return Array.from({ length: c.totalSequences }, () => new BranchReader(c.getSequence(), reads));
    });
    this.pool = new LanePool(lanes, `text scorer for ${baseId}`);
  }

  setClusters(clusters: readonly Pick<Cluster, "id" | "keywords">[]): void {
    const { descriptions, tokens } = this.encoder.answers(clusters);
    this.descriptions = descriptions;
    this.answers = tokens;
    this.longestAnswer = Math.max(0, ...[...tokens.values()].map((t) => t.length));
  }

  async scoreNext(prompts: readonly TextPromptInput[], opts: { reuse?: boolean } = {}): Promise<ClusterScore[][]> {
    const mode: ReadMode = this.scoring === "constrained" ? "relative" : "absolute";
    const scores = await this.answerScores(prompts, mode, opts);
    return scores.map((s, i) => {
      const d = toDistribution(s, this.scoring);
      if (!d) throw new ScoringError(`llama.cpp returned non-finite log-probabilities for prompt ${i} (${JSON.stringify(prompts[i])}) on model ${this.baseId}`);
      return d;
    });
  }

  answerScores(prompts: readonly TextPromptInput[], mode: ReadMode, opts: { reuse?: boolean } = {}): Promise<Map<ClusterId, AnswerScore>[]> {
    // Render (and validate) every prompt before queueing any, so a bad cluster id fails the call as a whole.
    const answers = this.answers;
    let jobs: Array<{ tokens: Token[]; trie: ReturnType<typeof buildAnswerTrie> }>;
    try {
      jobs = prompts.map((p, i) => {
        const tokens = this.encoder.promptTokens(p, this.descriptions);
        if (tokens.length + this.longestAnswer + 1 > this.contextSize)
          throw new ScoringError(`prompt ${i} has ${tokens.length} tokens; with the longest answer (${this.longestAnswer}) it does not fit the scorer's ${this.contextSize} cells (contextSize)`);
        const history = new Set(p.history);
        const candidates = [...answers].filter(([c]) => !history.has(c));
        if (candidates.length === 0) throw new ScoringError(`prompt ${i}: every cluster is in the history, nothing to rank`);
        return { tokens, trie: buildAnswerTrie(candidates) };
      });
    } catch (err) {
      return Promise.reject(err);
    }
    const reuse = opts.reuse ?? true;
    return Promise.all(jobs.map((j) => this.pool.run((r) => (reuse ? r.score(j.tokens, j.trie, mode) : r.scoreNaive(j.tokens, j.trie, mode)))));
  }

  async dispose(): Promise<void> {
    await this.pool.dispose();
    await Promise.all(this.contexts.map((c) => c.dispose()));
  }
}

/** Candidate scores -> a distribution sorted by p descending; null when a score is not a number. */
export function toDistribution(scores: ReadonlyMap<ClusterId, AnswerScore>, scoring: TextScoring): ClusterScore[] | null {
  const entries = [...scores];
  const logits = entries.map(([, s]) => (scoring === "mean" ? s.logp / s.tokens : s.logp));
  if (logits.some((l) => Number.isNaN(l) || l === Infinity)) return null;
  const max = Math.max(...logits);
  if (max === -Infinity) return null;
  const weights = logits.map((l) => Math.exp(l - max));
  const total = weights.reduce((a, b) => a + b, 0);
  return entries.map(([clusterId], i) => ({ clusterId, p: weights[i]! / total })).sort((a, b) => b.p - a.p || a.clusterId - b.clusterId);
}
