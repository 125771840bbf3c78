import type { LlamaContext } from "node-llama-cpp";
import { promptTokens, vocabSize, type ClusterId, type LayoutParams } from "@freshrec/core";
import { clusterDistribution, type ClusterScore } from "./distribution.js";
import { ScoringError } from "./errors.js";
import { LanePool } from "./lane-pool.js";
import { LogitsReadQueue, NextTokenReader } from "./next-token-reader.js";

export interface Prompt {
  /** The user's clusters, oldest first; the last k fill the prompt, all of them are excluded from the answer. */
  history: ClusterId[];
  /** Retrieved successors, best first, or null when retrieval had nothing. */
  rag: ClusterId[] | null;
  /** How often each retrieved successor followed (text prompts show them; cluster-token prompts have no slot for them). */
  ragCounts?: number[];
}

/** Scores prompts against one base model (+ optional adapter) over a pool of parallel sequences. */
export interface Scorer {
  readonly baseId: string;
  readonly adapterId: string | null;
  /** Per prompt: P(next cluster) over clusters only, history clusters excluded, renormalised, sorted by p descending. */
  scoreNext(prompts: Prompt[]): Promise<ClusterScore[][]>;
  /** Per prompt: natural-log next-token probabilities over the whole vocabulary (indexed by token id); for parity checks. */
  tokenLogProbs(prompts: Prompt[]): Promise<Float64Array[]>;
  /** Waits for queued and in-flight prompts, then frees the contexts. */
  dispose(): Promise<void>;
}

export class PooledScorer implements Scorer {
  private readonly pool: LanePool<NextTokenReader>;

  constructor(
    readonly baseId: string,
    readonly adapterId: string | null,
    private readonly layout: LayoutParams,
    private readonly contexts: LlamaContext[],
  ) {
    const readers = contexts.flatMap((c) => {
      const reads = new LogitsReadQueue();
      return Array.from({ length: c.totalSequences }, () => NextTokenReader.open(c.getSequence(), reads));
    });
    this.pool = new LanePool(readers, `scorer for ${baseId}`);
  }

  /** Runs one prompt through every sequence so the first real request pays no warm-up and finds `<s> <hist>` resident. */
  async warm(): Promise<void> {
    const empty = { history: [], rag: null };
    await this.run(Array.from({ length: this.pool.size }, () => empty));
  }

  async scoreNext(prompts: Prompt[]): Promise<ClusterScore[][]> {
    const probs = await this.run(prompts);
    return probs.map((flat, i) => {
      const d = clusterDistribution(flat, prompts[i]!.history, this.layout.nClusters);
      if (!d) throw new ScoringError(`llama.cpp returned non-finite probabilities for prompt ${i} (${JSON.stringify(prompts[i])}) on model ${this.baseId}`);
      return d;
    });
  }

  async tokenLogProbs(prompts: Prompt[]): Promise<Float64Array[]> {
    const n = vocabSize(this.layout);
    return (await this.run(prompts)).map((flat) => {
      const lp = new Float64Array(n).fill(-Infinity);
      for (let i = 0; i < flat.length; i += 2) lp[flat[i]!] = Math.log(flat[i + 1]!);
      return lp;
    });
  }

  async dispose(): Promise<void> {
    await this.pool.dispose();
    await Promise.all(this.contexts.map((c) => c.dispose()));
  }

  private run(prompts: Prompt[]): Promise<number[][]> {
    // Build (and validate) every prompt before queueing any, so a bad cluster id fails the call as a whole.
    let tokens: number[][];
    try {
      tokens = prompts.map((p) => promptTokens(p.history, p.rag, this.layout));
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.all(tokens.map((t) => this.pool.run((reader) => reader.read(t))));
  }
}
