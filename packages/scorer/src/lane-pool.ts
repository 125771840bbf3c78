import type { LlamaContext, LlamaModel } from "node-llama-cpp";
import { ModelFileError, ScorerDisposedError } from "./errors.js";

/** A reader bound to one context sequence. */
export interface Lane {
  /** Forgets what the sequence holds (after a failure its state is unknown). */
  clear(): Promise<void>;
  dispose(): void;
}

interface Job<L> {
  work(lane: L): Promise<unknown>;
  resolve(v: unknown): void;
  reject(err: unknown): void;
}

/**
 * Hands queued work to idle lanes, one job per lane at a time, first come first served. Lanes of one context that
 * evaluate at the same time go into one llama_decode (node-llama-cpp batches them), so a full pool is a batched one.
 */
export class LanePool<L extends Lane> {
  private readonly queue: Job<L>[] = [];
  private queueHead = 0;
  private inFlight = 0;
  private disposed = false;
  private drained: (() => void) | null = null;

  constructor(
    private readonly idle: L[],
    /** Names the owner in ScorerDisposedError. */
    private readonly owner: string,
  ) {}

  get size(): number {
    return this.idle.length + this.inFlight;
  }

  /** Runs `work` on the next idle lane; a failure clears that lane and rejects. */
  run<T>(work: (lane: L) => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new ScorerDisposedError(this.owner));
    const result = new Promise<T>((resolve, reject) => this.queue.push({ work, resolve: resolve as (v: unknown) => void, reject }));
    this.pump();
    return result;
  }

  /** Refuses new work, waits for queued and in-flight work, then disposes every lane. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (this.inFlight > 0 || this.queueHead < this.queue.length) await new Promise<void>((r) => (this.drained = r));
    for (const lane of this.idle) lane.dispose();
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queueHead < this.queue.length) {
      const job = this.queue[this.queueHead++]!;
      const lane = this.idle.pop()!;
      this.inFlight++;
      job
        .work(lane)
        .then(job.resolve, async (err: unknown) => {
          job.reject(err);
          await lane.clear();
        })
        .finally(() => {
          this.inFlight--;
          this.idle.push(lane);
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

/** What scoring contexts are made of: both scorers (cluster-token and text) create theirs through createScoringContexts. */
export interface ScoringContextSpec {
  count: number;
  sequences: number;
  contextSize: number;
  batchSize: number;
  threads: number;
  /** F32 KV cache and no flash attention: the parity path (the default F16 cache is faster). */
  exact: boolean;
  lora?: { adapters: Array<{ filePath: string; scale: number }> };
}

/**
 * Creates `count` contexts on `model`; if one fails, those made are disposed and an adapter that llama.cpp refused is
 * reported as a ModelFileError naming the file (a malformed adapter must not take the process down).
 */
export async function createScoringContexts(model: LlamaModel, s: ScoringContextSpec): Promise<LlamaContext[]> {
  const kv = s.exact ? "F32" : "F16";
  const created: LlamaContext[] = [];
  try {
    for (let i = 0; i < s.count; i++)
      created.push(
        await model.createContext({
          sequences: s.sequences,
          contextSize: s.contextSize,
          batchSize: s.batchSize,
          threads: s.threads,
          flashAttention: !s.exact,
          experimentalKvCacheKeyType: kv,
          experimentalKvCacheValueType: kv,
          ...(s.lora ? { lora: s.lora } : {}),
        }),
      );
  } catch (err) {
    await Promise.all(created.map((c) => c.dispose()));
    if (s.lora) throw new ModelFileError(s.lora.adapters[0]!.filePath, "adapter", `llama.cpp could not load it (${(err as Error).message})`, { cause: err });
    throw err;
  }
  return created;
}
