/**
 * Workarounds for bugs of the llama.cpp (v0.4.0, inside node-llama-cpp 3.21.1) that the scorer runs on. They made
 * batched scoring (parallel > 1) return batch-dependent, uniform-looking or NaN distributions; test/batching.test.ts
 * scores the same prompts one at a time and in many batch compositions and fails without them.
 */
import { GgmlType } from "node-llama-cpp";
import type { ModelFileInfo } from "./metadata.js";

/**
 * Largest decode batch (tokens per llama_decode) that scores `info`'s model correctly, or undefined for no limit.
 *
 * Why: on CPUs with AMX (Sapphire Rapids and later) llama.cpp v0.4.0 moves Q8_0 weights whose output width is a
 * multiple of 32 into its AMX buffer. Its AMX kernel (ggml-cpu/amx/mmq.cpp, tinygemm_kernel_amx) has a bug for an
 * input width of exactly 32 (one Q8_0 block): a full 32-row tile of the batch takes the double-buffered path,
 * whose K loop never runs for one block, and the final step then *adds* into the uninitialised output instead of
 * writing it. Any batch of 32 or more tokens therefore returns garbage, NaN or batch-dependent logits for every
 * prompt in it, while batches of 1-31 tokens take a correct path. Freshrec models with n_embd 32 (or a 32-wide
 * feed-forward) quantised to Q8_0 hit it; keeping every batch under 32 tokens avoids it at some bulk speed.
 */
export function decodeBatchLimit(info: Pick<ModelFileInfo, "tensors" | "tensorTypes">): number | undefined {
  for (const [name, type] of info.tensorTypes) {
    const [nIn, nOut] = info.tensors.get(name) ?? [];
    if (type === GgmlType.Q8_0 && nIn === AMX_TILE_K && nOut !== undefined && nOut % AMX_TILE_K === 0) return AMX_TILE_K - 1;
  }
  return undefined;
}

/** TILE_K (and the row tile) of llama.cpp's AMX Q8_0 kernel; also the Q8_0 block size. */
const AMX_TILE_K = 32;
