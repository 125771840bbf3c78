import type { ControlledEvaluateInputItem, LlamaContext, LlamaContextSequence, Token } from "node-llama-cpp";
import { promptTokens, vocabSize, type ClusterId, type LayoutParams } from "@freshrec/core";
import { clusterDistribution, type ClusterScore } from "./distribution.js";
import { ScorerDisposedError } from "./errors.js";

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
  resolve(probs: Map<number, number>): void;
  reject(err: unknown): void;
}

const NEXT_TOKEN = { generateNext: { probabilities: true } } as const;

/**
 * Evaluates one prompt on a sequence, keeping what the sequence already holds: every prompt starts with
 * `<s> <hist>` and prompts that share a history share more, so only the differing suffix is decoded.
 * The last token (`<next>`) is always re-evaluated, since its logits are the answer.
 */
async function evaluateOn(seq: LlamaContextSequence, tokens: number[]): Promise<Map<number, number>> {
  const resident = seq.contextTokens;
  const keep = Math.min(resident.length, tokens.length - 1);
  let p = 0;
  while (p < keep && resident[p] === tokens[p]) p++;
  if (p < seq.nextTokenIndex) await seq.eraseContextTokenRanges([{ start: p, end: seq.nextTokenIndex }]);
  const input: ControlledEvaluateInputItem[] = tokens.slice(p, -1) as Token[];
  input.push([tokens[tokens.length - 1] as Token, NEXT_TOKEN]);
  const out = await seq.controlledEvaluate(input);
  const probs = out[out.length - 1]?.next.probabilities;
  if (!probs) throw new Error("llama.cpp returned no next-token probabilities");
  return probs;
}

export class PooledScorer implements Scorer {
  private readonly idle: LlamaContextSequence[];
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
    this.idle = contexts.flatMap((c) => Array.from({ length: c.totalSequences }, () => c.getSequence()));
  }

  /** Runs one prompt through every sequence so the first real request pays no warm-up and finds `<s> <hist>` resident. */
  async warm(): Promise<void> {
    const empty = { history: [], rag: null };
    await this.run(Array.from({ length: this.idle.length }, () => empty));
  }

  async scoreNext(prompts: Prompt[]): Promise<ClusterScore[][]> {
    const probs = await this.run(prompts);
    return probs.map((m, i) => clusterDistribution(m, prompts[i]!.history, this.layout.nClusters));
  }

  async tokenLogProbs(prompts: Prompt[]): Promise<Float64Array[]> {
    const n = vocabSize(this.layout);
    return (await this.run(prompts)).map((m) => {
      const lp = new Float64Array(n).fill(-Infinity);
      for (const [t, p] of m) lp[t] = Math.log(p);
      return lp;
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (this.inFlight > 0 || this.queueHead < this.queue.length) await new Promise<void>((r) => (this.drained = r));
    await Promise.all(this.contexts.map((c) => c.dispose()));
  }

  private run(prompts: Prompt[]): Promise<Map<number, number>[]> {
    if (this.disposed) return Promise.reject(new ScorerDisposedError(`scorer for ${this.baseId}`));
    // Build (and validate) every prompt before queueing any, so a bad cluster id fails the call as a whole.
    const tokens = prompts.map((p) => promptTokens(p.history, p.rag, this.layout));
    const results = Promise.all(tokens.map((t) => new Promise<Map<number, number>>((resolve, reject) => this.queue.push({ tokens: t, resolve, reject }))));
    this.pump();
    return results;
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queueHead < this.queue.length) {
      const job = this.queue[this.queueHead++]!;
      const seq = this.idle.pop()!;
      this.inFlight++;
      evaluateOn(seq, job.tokens)
        .then(job.resolve, async (err: unknown) => {
          job.reject(err);
          await seq.clearHistory().catch(() => undefined); // unknown state after a failure: start clean
        })
        .finally(() => {
          this.inFlight--;
          this.idle.push(seq);
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
