import { resolve } from "node:path";
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from "node-llama-cpp";
import { promptLength, type LayoutParams } from "@freshrec/core";
import { amxKernelsActive, decodeBatchLimit } from "./llama-cpp-workarounds.js";
import { AdapterCache } from "./adapter-cache.js";
import { createScoringContexts } from "./lane-pool.js";
import { ModelFileError, ScorerDisposedError } from "./errors.js";
import { readAdapterMetadata, readGgufMetadata, type ModelFileInfo } from "./metadata.js";
import { PooledScorer, type Scorer } from "./scorer.js";

export interface ScorerOptions {
  adapterPath?: string;
  /** llama.cpp adapter scale (effective scale = scale * alpha / rank). Default 1. */
  adapterScale?: number;
  /** Id reported as Scorer.adapterId; defaults to the adapter's freshrec.adapter_id, else its file name. */
  adapterId?: string;
  /**
   * Sequences per context, decoded together in one batch. Default 16. On CPUs where llama.cpp runs its AMX
   * kernels, models that hit its AMX Q8_0 bug (see llama-cpp-workarounds.ts) get fewer, so no batch reaches 32 tokens.
   */
  parallel?: number;
  /** Contexts, each decoding on its own `threads` threads; use one per core for bulk scoring. Default 1. */
  contexts?: number;
  /**
   * true: F32 KV cache and plain attention, numerically faithful to the trainer's forward pass (parity tests).
   * false (default): F16 KV cache with flash attention, about twice as fast; differs from exact by f16 rounding of
   * K, V, Q and the attention sums: up to ~1e-2 in log-prob on the test models (test/error-bound.ts bounds it).
   */
  exact?: boolean;
}

export interface ClusterModel {
  readonly kind: "cluster-token";
  readonly modelId: string;
  readonly path: string;
  readonly layout: LayoutParams;
  readonly trainedWindow?: { start: number; end: number };
  /**
   * Distinct adapter files llama.cpp holds for this model. node-llama-cpp caches adapters by path until the
   * model is disposed (each costs its size in memory and a rewritten file keeps serving the old copy), so a
   * long-running server should write each adapter to a new path and reload the model once this grows.
   */
  readonly adapterLoads: number;
  /** A scorer with `contexts` x `parallel` sequences (+ adapter), warmed before it resolves. */
  createScorer(opts?: ScorerOptions): Promise<Scorer>;
  /** Disposes every scorer created from this model (waiting for their in-flight prompts), then the model. */
  dispose(): Promise<void>;
}

let llamaPromise: Promise<Llama> | null = null;
/** One llama.cpp instance per process, prebuilt binaries only; maxThreads 0 makes each context use exactly the threads it asks for. */
export function llama(): Promise<Llama> {
  llamaPromise ??= getLlama({ build: "never", gpu: false, maxThreads: 0, logLevel: LlamaLogLevel.error });
  return llamaPromise;
}

class LoadedClusterModel implements ClusterModel {
  readonly kind = "cluster-token" as const;
  private readonly adapters = new AdapterCache();
  private readonly scorers = new Set<Scorer>();
  private disposed = false;

  constructor(
    private readonly info: ModelFileInfo,
    private readonly model: LlamaModel,
    private readonly threads: number,
    /** Whether llama.cpp runs its AMX kernels on this machine (amxKernelsActive). */
    private readonly amxKernels: boolean,
  ) {}

  get modelId() {
    return this.info.modelId;
  }
  get path() {
    return this.info.path;
  }
  get layout() {
    return this.info.layout;
  }
  get trainedWindow() {
    return this.info.trainedWindow;
  }
  get adapterLoads() {
    return this.adapters.size;
  }

  async createScorer(opts: ScorerOptions = {}): Promise<Scorer> {
    if (this.disposed) throw new ScorerDisposedError(`model ${this.info.modelId}`);
    const { parallel = 16, contexts = 1, exact = false } = opts;
    let adapterId: string | null = null;
    let lora: { adapters: Array<{ filePath: string; scale: number }> } | undefined;
    if (opts.adapterPath !== undefined) {
      const path = resolve(opts.adapterPath);
      const adapter = await readAdapterMetadata(path, this.info);
      await this.adapters.admit(path);
      adapterId = opts.adapterId ?? adapter.adapterId;
      lora = { adapters: [{ filePath: path, scale: opts.adapterScale ?? 1 }] };
    }
    // node-llama-cpp keeps one cell free per sequence; a prompt that fills the context would trigger a context shift.
    const cells = promptLength(this.info.layout) + 1;
    // node-llama-cpp sizes a batch at least one token per sequence, so a batch limit caps the sequences too.
    const limit = decodeBatchLimit(this.info, this.amxKernels) ?? Infinity;
    const sequences = Math.min(parallel, limit);
    const created = await createScoringContexts(this.model, {
      count: contexts,
      sequences,
      contextSize: cells,
      batchSize: Math.min(sequences * cells, limit),
      threads: this.threads,
      exact,
      ...(lora ? { lora } : {}),
    });
    const scorer = new PooledScorer(this.info.modelId, adapterId, this.info.layout, created);
    await scorer.warm();
    this.scorers.add(scorer);
    return {
      baseId: scorer.baseId,
      adapterId: scorer.adapterId,
      scoreNext: (p) => scorer.scoreNext(p),
      tokenLogProbs: (p) => scorer.tokenLogProbs(p),
      dispose: async () => {
        this.scorers.delete(scorer);
        await scorer.dispose();
      },
    };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...this.scorers].map((s) => s.dispose()));
    this.scorers.clear();
    await this.model.dispose();
  }
}

/** Loads a freshrec base model (validated header first, so a wrong file fails with a typed error, not a llama.cpp abort). */
export async function loadClusterModel(opts: { path: string; threads?: number }): Promise<ClusterModel> {
  const path = resolve(opts.path);
  const info = await readGgufMetadata(path);
  let model: LlamaModel;
  const lib = await llama();
  try {
    model = await lib.loadModel({ modelPath: path });
  } catch (err) {
    throw new ModelFileError(path, "model", `llama.cpp could not load it (${(err as Error).message})`, { cause: err });
  }
  return new LoadedClusterModel(info, model, opts.threads ?? 1, amxKernelsActive(lib.systemInfo));
}
