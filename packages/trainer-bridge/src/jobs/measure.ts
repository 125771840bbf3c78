import { createReadStream, readFileSync } from "node:fs";
import { createHash } from "node:crypto";

/** sha256 of a file, streamed (lineage: which exact base an adapter was trained on). */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * CPU seconds of this process plus its waited-for children (the native trainer runs as a child process).
 * Children's time comes from /proc (Linux; clock ticks assumed 100/s); elsewhere only this process counts.
 */
function cpuSeconds(): number {
  const own = process.cpuUsage();
  let children = 0;
  try {
    const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
    children = (Number(fields[13]) + Number(fields[14])) / 100; // cutime, cstime (fields 16, 17 of stat)
  } catch {
    /* not Linux */
  }
  return (own.user + own.system) / 1e6 + children;
}

/** Wall and CPU seconds of an async step. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; wallS: number; cpuS: number }> {
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const value = await fn();
  return { value, wallS: (performance.now() - t0) / 1000, cpuS: cpuSeconds() - cpu0 };
}
