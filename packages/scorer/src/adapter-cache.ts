import { stat } from "node:fs/promises";
import { StaleAdapterError } from "./errors.js";

/**
 * The adapter files llama.cpp holds for one model. node-llama-cpp caches adapters by path until the model is
 * disposed, so a file rewritten at a path it already loaded would keep serving the old weights: refused instead.
 */
export class AdapterCache {
  /** Resolved adapter path -> the file's identity when llama.cpp first loaded it. */
  private readonly seen = new Map<string, string>();

  get size(): number {
    return this.seen.size;
  }

  /** Records `path` (resolved) or throws StaleAdapterError when it changed since it was first loaded. */
  async admit(path: string): Promise<void> {
    const s = await stat(path);
    const identity = `${s.size}:${s.mtimeMs}:${s.ino}`;
    const before = this.seen.get(path);
    if (before !== undefined && before !== identity) throw new StaleAdapterError(path);
    this.seen.set(path, identity);
  }
}
