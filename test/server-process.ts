/** Starts real `freshrec demo` / `freshrec serve` processes for end-to-end tests and talks to them over HTTP. */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { httpCaller, type Call } from "../packages/server/test/http-call.js";

const ROOT = join(import.meta.dirname, "..");
const MAIN = join(ROOT, "apps/cli/src/main.ts");

export const READ_KEY = "e2e-reader-key-1";
export const INGEST_KEY = "e2e-ingest-key-1";
export const ADMIN_KEY = "e2e-admin-key-01";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process printed so far (JSON logs and the banner), for failure messages. */
  output(): string;
  call: Call;
  waitFor(path: string, status: number, timeoutMs: number): Promise<void>;
  /** SIGTERM, resolves with the exit code (rejects with the output after timeoutMs). */
  stop(timeoutMs?: number): Promise<number | null>;
}

export const E2E_KEYS = `reader=${READ_KEY}:read;ingester=${INGEST_KEY}:ingest;ops=${ADMIN_KEY}:admin`;

/** The demo on the tiny world with its clock stopped, in `dir`. */
export function startServe(dir: string, extra: string[] = []): Promise<ServeProcess> {
  return startFreshrec(["demo", "--size", "tiny", "--no-simulate", "--store", join(dir, "store"), "--models", join(dir, "models"), ...extra]);
}

/** Any long-running freshrec command (`serve ...`, `demo ...`) on a free port, with the e2e keys unless `env` says otherwise. */
export async function startFreshrec(argv: string[], env: Record<string, string> = { FRESHREC_API_KEYS: E2E_KEYS }): Promise<ServeProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...argv, "--port", String(port)], {
    cwd: ROOT,
    env: { ...process.env, FRESHREC_API_KEYS: "", FRESHREC_AUTH: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const call = httpCaller(url);
  return {
    url,
    child,
    output: () => out,
    call,
    async waitFor(path, status, timeoutMs) {
      const until = Date.now() + timeoutMs;
      let last = "";
      while (Date.now() < until) {
        if (child.exitCode !== null) throw new Error(`freshrec ${argv[0]} exited with ${child.exitCode}:\n${out}`);
        try {
          const res = await call("GET", path);
          if (res.status === status) return;
          last = `${res.status} ${res.text}`;
        } catch (err) {
          last = String(err);
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      throw new Error(`${path} did not answer ${status} within ${timeoutMs} ms (last: ${last})\n${out}`);
    },
    stop(timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`freshrec ${argv[0]} did not exit within ${timeoutMs} ms of SIGTERM:\n${out}`));
        }, timeoutMs);
        child.once("exit", (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        child.kill("SIGTERM");
      });
    },
  };
}

/**
 * Reads `path` from every server on two connections each until `stop()`: the load under which promotions must
 * drop nothing. `stop()` waits for the requests in flight and returns what they got.
 */
export function steadyLoad(servers: readonly ServeProcess[], path: string): { stop(): Promise<{ answered: number; failures: string[] }> } {
  let stopped = false;
  const failures: string[] = [];
  let answered = 0;
  const loops = servers.flatMap((s) =>
    [0, 1].map(async () => {
      while (!stopped) {
        try {
          const res = await s.call("GET", path, { key: READ_KEY });
          if (res.status === 200) answered++;
          else failures.push(`${res.status} ${res.text.slice(0, 200)}`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    }),
  );
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { answered, failures };
    },
  };
}

/** Waits until `check` holds, polling every 50 ms; returns the milliseconds it took (Infinity: it never did). */
export async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await check().catch(() => false)) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 50));
  }
  return Infinity;
}

/**
 * Promotes `tables` in turn, ten times, on the writer while the replicas answer `user` under steady load; after each
 * promotion waits (up to 5 s) until every replica serves it. Returns the lags (ms) and what the load got. A replica
 * that misses a promotion is handed to `missed`, which should throw with whatever explains it.
 */
export async function promotionsUnderLoad(
  writer: ServeProcess,
  replicas: readonly ServeProcess[],
  tables: readonly string[],
  user: string,
  missed: (replica: ServeProcess, table: string) => Promise<never> = async (r, table) => {
    throw new Error(`a replica did not serve ${table} within 5 s\n${r.output().slice(-3000)}`);
  },
): Promise<{ lags: number[]; answered: number; failures: string[] }> {
  const load = steadyLoad(replicas, `/v1/users/${user}/next-interests?k=5`);
  const lags: number[] = [];
  for (let i = 0; i < 10; i++) {
    const target = tables[i % tables.length]!;
    const promoted = await writer.call("POST", "/v1/admin/promote", { key: ADMIN_KEY, body: { id: target } });
    if (promoted.status !== 200) throw new Error(`promoting ${target} answered ${promoted.status}: ${promoted.text.slice(0, 300)}`);
    for (const r of replicas) {
      const lag = await within(5_000, async () => (await r.call("GET", "/v1/model", { key: READ_KEY })).json.lineage.tableId === target);
      if (lag === Infinity) await missed(r, target);
      lags.push(lag);
    }
  }
  return { lags, ...(await load.stop()) };
}

/** A replica started late comes up on what the writer serves now. */
export async function servesWritersTable(late: ServeProcess, writer: ServeProcess): Promise<{ writers: string; late: string }> {
  await late.waitFor("/readyz", 200, 60_000);
  const writers = (await writer.call("GET", "/v1/model", { key: READ_KEY })).json.lineage.tableId as string;
  return { writers, late: (await late.call("GET", "/v1/model", { key: READ_KEY })).json.lineage.tableId as string };
}
