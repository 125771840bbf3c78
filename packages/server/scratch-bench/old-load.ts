import { Agent, request } from "node:http";

export interface LoadResult {
  requests: number;
  errors: number;
  /** Non-2xx answers by status (errors also counts dropped connections). */
  statuses: Record<string, number>;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadOptions {
  url: string;
  /** Paths to request, used round-robin. */
  paths: string[];
  headers?: Record<string, string>;
  connections: number;
  /** Stop after this many seconds or this many requests, whichever comes first. */
  seconds: number;
  maxRequests: number;
}

const quantile = (sorted: Float64Array, q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);

/**
 * Closed-loop HTTP load: `connections` keep-alive connections, each sending its next GET as soon as the
 * previous answer arrived. Latency is measured per request from send to the end of the body.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections });
  const target = new URL(o.url);
  const latencies = new Float64Array(o.maxRequests);
  const statuses: Record<string, number> = {};
  let sent = 0;
  let done = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + o.seconds * 1000;

  const one = (path: string) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = request({ host: target.hostname, port: target.port, path, method: "GET", agent, headers: o.headers }, (res) => {
        res.on("data", () => {});
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            errors++;
            statuses[status] = (statuses[status] ?? 0) + 1;
          }
          latencies[done++] = performance.now() - t0;
          resolve();
        });
      });
      req.on("error", () => {
        errors++;
        statuses.dropped = (statuses.dropped ?? 0) + 1;
        latencies[done++] = performance.now() - t0;
        resolve();
      });
      req.end();
    });

  const worker = async () => {
    while (sent < o.maxRequests && performance.now() < deadline) {
      const path = o.paths[sent++ % o.paths.length]!;
      await one(path);
    }
  };
  await Promise.all(Array.from({ length: o.connections }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const sorted = latencies.slice(0, done).sort();
  return { requests: done, errors, statuses, seconds, rps: done / seconds, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99) };
}
