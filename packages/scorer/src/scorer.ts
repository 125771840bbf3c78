import type { LlamaContext } from "node-llama-cpp";
import { promptTokens, vocabSize, type ClusterId, type LayoutParams } from "@freshrec/core";
import { clusterDistribution, type ClusterScore } from "./distribution.js";
import { ScorerDisposedError, ScoringError } from "./errors.js";
import { LogitsReadQueue, NextTokenReader } from "./next-token-reader.js";

export interface Prompt {
  /** The user's clusters, oldest first; the last k fill the prompt, all of them are excluded from the answer. */
  history: ClusterId[];
  /** Retrieved successors, best first, or null when retrieval had nothing. */
  rag: ClusterId[] | null;
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

interface Job {
  tokens: number[];
  resolve(probs: number[]): void;
  reject(err: unknown): void;
}

export class PooledScorer implements Scorer {
  private readonly idle: NextTokenReader[];
  private readonly queue: Job[] = [];
  private queueHead = 0;
  private inFlight = 0;
  private disposed = false;
  private drained: (() => void) | null = null;

  constructor(
    readonly baseId: string,
    readonly adapterId: string | null,
    private readonly layout: LayoutParams,
    private readonly contexts: LlamaContext[],
  ) {
    this.idle = contexts.flatMap((c) => {
      const reads = new LogitsReadQueue();
      return Array.from({ length: c.totalSequences }, () => NextTokenReader.open(c.getSequence(), reads));
    });
  }

  /** Runs one prompt through every sequence so the first real request pays no warm-up and finds `<s> <hist>` resident. */
  async warm(): Promise<void> {
    const empty = { history: [], rag: null };
    await this.run(Array.from({ length: this.idle.length }, () => empty));
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
    if (this.disposed) return;
    this.disposed = true;
    if (this.inFlight > 0 || this.queueHead < this.queue.length) await new Promise<void>((r) => (this.drained = r));
    for (const r of this.idle) r.dispose();
    await Promise.all(this.contexts.map((c) => c.dispose()));
  }

  private run(prompts: Prompt[]): Promise<number[][]> {
    if (this.disposed) return Promise.reject(new ScorerDisposedError(`scorer for ${this.baseId}`));
    // Build (and validate) every prompt before queueing any, so a bad cluster id fails the call as a whole.
    const tokens = prompts.map((p) => promptTokens(p.history, p.rag, this.layout));
    const results = Promise.all(tokens.map((t) => new Promise<number[]>((resolve, reject) => this.queue.push({ tokens: t, resolve, reject }))));
    this.pump();
    return results;
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queueHead < this.queue.length) {
      const job = this.queue[this.queueHead++]!;
      const reader = this.idle.pop()!;
      this.inFlight++;
      reader
        .read(job.tokens)
        .then(job.resolve, async (err: unknown) => {
          job.reject(err);
          await reader.clear(); // unknown state after a failure: start clean
        })
        .finally(() => {
          this.inFlight--;
          this.idle.push(reader);
          this.pump();
        });
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
      if (this.inFlight === 0) this.drained?.();
    }
  }
}
