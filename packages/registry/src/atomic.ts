import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync, readFileSync, unlinkSync } from "node:fs";
import { dirname, join, basename } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { FreshrecError, pidAlive } from "@freshrec/core";

export class RegistryError extends FreshrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("registry", message, options);
  }
}

/** sha256 (hex) of a file's bytes. */
export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** fsync a file or folder by path (folders: makes a rename inside it durable). */
export function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Write to a temporary sibling, fsync, rename over the target, fsync the folder: readers see the old or the new file, never half. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncPath(dirname(path));
}

/**
 * Runs `fn` holding an exclusive lock file (O_EXCL). A lock left by a dead process (a killed job) is taken over,
 * so the next run starts clean. Short critical sections only: the wait is a bounded spin.
 */
export function withLock<T>(lockPath: string, fn: () => T, timeoutMs = 10_000): T {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let holder = NaN;
      try {
        holder = Number(readFileSync(lockPath, "utf8"));
      } catch {
        continue; // released between our open and read
      }
      // A lock file still being written holds no pid yet: only a parsed pid of a dead process is stale.
      if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) {
        rmSync(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new RegistryError(`lock ${lockPath} is held by process ${holder} for over ${timeoutMs} ms`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
  try {
    return fn();
  } finally {
    try {
      unlinkSync(lockPath);
    } catch {
      /* already gone: taken over as stale */
    }
  }
}
