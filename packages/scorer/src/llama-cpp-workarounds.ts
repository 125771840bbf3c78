/**
 * Workarounds for bugs of the llama.cpp (v0.4.0, inside node-llama-cpp 3.21.1) that the scorer runs on. They made
 * batched scoring (parallel > 1) return batch-dependent, uniform-looking or NaN distributions; test/batching.test.ts
 * scores the same prompts one at a time and in many batch compositions and fails without them.
 */
import { readFileSync } from "node:fs";
import { GgmlType } from "node-llama-cpp";
import type { ModelFileInfo } from "./metadata.js";

/**
 * Largest decode batch (tokens per llama_decode) that scores `info`'s model correctly, or undefined for no limit.
 * `amxKernels`: whether llama.cpp runs its AMX kernels on this machine (see amxKernelsActive).
 *
 * Why: on CPUs with AMX (Sapphire Rapids and later) llama.cpp v0.4.0 moves Q8_0 weights whose output width is a
 * multiple of 32 into its AMX buffer. Its AMX kernel (ggml-cpu/amx/mmq.cpp, tinygemm_kernel_amx) has a bug for an
 * input width of exactly 32 (one Q8_0 block): a full 32-row tile of the batch takes the double-buffered path,
 * whose K loop never runs for one block, and the final step then *adds* into the uninitialised output instead of
 * writing it. Any batch of 32 or more tokens therefore returns garbage, NaN or batch-dependent logits for every
 * prompt in it, while batches of 1-31 tokens take a correct path. Freshrec models with n_embd 32 (or a 32-wide
 * feed-forward) quantised to Q8_0 hit it; keeping every batch under 32 tokens avoids it at some bulk speed.
 * Without AMX (e.g. AMD EPYC, older Intel) that code never runs and batches stay unlimited.
 */
export function decodeBatchLimit(info: Pick<ModelFileInfo, "tensors" | "tensorTypes">, amxKernels: boolean): number | undefined {
  if (!amxKernels) return undefined;
  for (const [name, type] of info.tensorTypes) {
    const [nIn, nOut] = info.tensors.get(name) ?? [];
    if (type === GgmlType.Q8_0 && nIn === AMX_TILE_K && nOut !== undefined && nOut % AMX_TILE_K === 0) return AMX_TILE_K - 1;
  }
  return undefined;
}

/** TILE_K (and the row tile) of llama.cpp's AMX Q8_0 kernel; also the Q8_0 block size. */
const AMX_TILE_K = 32;

/**
 * Whether llama.cpp runs its AMX int8 kernels here, from the features actually present, never from a CPU name:
 *  - the CPU backend llama.cpp loaded was built with them: `systemInfo` (llama_print_system_info, node-llama-cpp's
 *    `llama.systemInfo`) lists `AMX_INT8 = 1`. ggml loads the best libggml-cpu-* variant whose required features
 *    cpuid reports, and only the AMX variant (sapphirerapids) lists it;
 *  - and the CPU advertises AMX to the OS: `amx_tile` and `amx_int8` among the /proc/cpuinfo flags (Linux; where
 *    there is no /proc/cpuinfo the backend's cpuid check above decides alone).
 */
export function amxKernelsActive(systemInfo: string, cpuFlags: ReadonlySet<string> | null = readCpuFlags()): boolean {
  if (!/\bAMX_INT8 = 1\b/.test(systemInfo)) return false;
  return cpuFlags === null || (cpuFlags.has("amx_tile") && cpuFlags.has("amx_int8"));
}

/** The CPU feature flags of /proc/cpuinfo (first processor; x86 Linux), or null where there is no such file. */
export function readCpuFlags(cpuinfo?: string): Set<string> | null {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return null;
    }
  }
  const line = text.split("\n").find((l) => /^flags\s*:/.test(l));
  return line === undefined ? null : new Set(line.replace(/^flags\s*:/, "").trim().split(/\s+/));
}
