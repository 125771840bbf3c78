import { connect, type Socket } from "node:net";

export interface LoadResult {
  requests: number;
  errors: number;
  /** Non-2xx answers by status, plus `dropped` (connection lost or answer unreadable mid-request). */
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

const HEADER_END = Buffer.from("\r\n\r\n");
const CONTENT_LENGTH = /\r\ncontent-length:\s*(\d+)/i;
const CONNECTION_CLOSE = /\r\nconnection:\s*close/i;

/** What one finished HTTP/1.1 answer looked like; `null` while more bytes are needed. */
interface Parsed {
  status: number;
  close: boolean;
  /** Bytes of the buffer this answer used (the rest belongs to nothing: requests are not pipelined). */
  used: number;
}

/** Reads one answer from `buf`; throws on an answer it cannot frame (the server always sends Content-Length). */
function parseAnswer(buf: Buffer): Parsed | null {
  const end = buf.indexOf(HEADER_END);
  if (end < 0) return null;
  const head = buf.toString("latin1", 0, end);
  const length = CONTENT_LENGTH.exec(head);
  if (!head.startsWith("HTTP/1.1 ") || !length) throw new Error(`unframed answer: ${head.slice(0, 80)}`);
  const used = end + 4 + Number(length[1]);
  if (buf.length < used) return null;
  return { status: Number(head.slice(9, 12)), close: CONNECTION_CLOSE.test(head), used };
}

/**
 * Closed-loop HTTP load: `connections` keep-alive connections, each sending its next GET as soon as the
 * previous answer arrived. Requests are pre-encoded and answers framed by Content-Length straight off the
 * socket (no http.Agent, no header objects), so one load process can drive a server well beyond what it
 * can serve itself. Latency is measured per request from write to the last byte of the body.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const target = new URL(o.url);
  const port = Number(target.port || 80);
  const extra = Object.entries(o.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  const encoded = o.paths.map((p) => Buffer.from(`GET ${p} HTTP/1.1\r\nhost: ${target.host}\r\n${extra}\r\n`, "latin1"));
  const latencies = new Float64Array(o.maxRequests);
  const statuses: Record<string, number> = {};
  let sent = 0;
  let done = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + o.seconds * 1000;
  const fail = (why: string) => {
    errors++;
    statuses[why] = (statuses[why] ?? 0) + 1;
  };

  const connection = () =>
    new Promise<void>((resolveConnection) => {
      let socket: Socket;
      let pending: Buffer = Buffer.alloc(0);
      let t0 = 0;
      let inFlight = false;
      let connected = false;

      const next = () => {
        if (sent >= o.maxRequests || performance.now() >= deadline) {
          socket.destroy();
          return resolveConnection();
        }
        const req = encoded[sent++ % encoded.length]!;
        inFlight = true;
        t0 = performance.now();
        socket.write(req);
      };
      const finish = (status: number | "dropped") => {
        latencies[done++] = performance.now() - t0;
        inFlight = false;
        if (status === "dropped") fail("dropped");
        else if (status < 200 || status >= 300) fail(String(status));
      };
      const open = () => {
        pending = Buffer.alloc(0);
        socket = connect({ host: target.hostname, port, noDelay: true });
        connected = false;
        socket.on("connect", () => {
          connected = true;
          next();
        });
        socket.on("data", (chunk: Buffer) => {
          pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
          let parsed: Parsed | null;
          try {
            parsed = parseAnswer(pending);
          } catch {
            socket.destroy(); // "close" counts the request as dropped and reconnects
            return;
          }
          if (!parsed) return;
          pending = pending.subarray(parsed.used);
          finish(parsed.status);
          if (parsed.close) socket.end();
          else next();
        });
        socket.on("error", () => {});
        socket.on("close", () => {
          if (inFlight) finish("dropped");
          if (!connected) fail("connect-failed");
          if (sent >= o.maxRequests || performance.now() >= deadline) resolveConnection();
          else setTimeout(open, connected ? 0 : 10); // a refused connection is retried without spinning
        });
      };
      open();
    });

  await Promise.all(Array.from({ length: o.connections }, connection));
  const seconds = (performance.now() - started) / 1000;
  const sorted = latencies.slice(0, done).sort();
  return { requests: done, errors, statuses, seconds, rps: done / seconds, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99) };
}
