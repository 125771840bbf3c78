import { parseArgs } from "node:util";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, basename } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { openRegistry } from "@freshrec/registry";
import { runLoad, type LoadResult } from "@freshrec/server";

export const summary = "load-test the server from a separate process (table and live modes, adapter swapped every 2 s; table mode with answer recording on and off) against a bare express baseline";

const HELP = `usage: freshrec bench server [--json] [options]

Starts 'freshrec demo --no-simulate' in a child process (on a fresh tiny world unless --store/--models name
a bootstrapped one), waits until ready, then drives it from this process over loopback keep-alive connections:
node's http module alone returning the same JSON (what this load generator can drive at most), a bare express
handler returning it (baseline), table mode, then live mode, promoting the other adapter every 2 s throughout
the served phases. Served answers are recorded (the default config: repeats within a minute are one exposure); the
server is then restarted on the same store with recording off, then on again, then with every request stored as its
own row (recording.repeatWindowMs 0, the cost when every answer is new), and table mode measured each time with the
same swaps. The last stdout line is one JSON object.

  --store URI --models DIR   use an existing, bootstrapped store and registry
  --seconds S                seconds per phase (default 25: >= 20 swaps over the two served phases)
  --connections N            concurrent keep-alive connections (default 8: in a closed loop the mean latency is
                             connections / throughput, so 32 connections could not show a p99 under 6.4 ms at 5,000 req/s)
  --max-requests N           cap per phase (default 400000)
  --swap-ms MS               adapter swap period (default 2000)
  --cpu-prof DIR             write a V8 CPU profile of the server process into DIR (node --cpu-prof)
  --json                     only the JSON line on stdout`;

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const BARE = fileURLToPath(new URL("../../../../packages/server/src/bench/bare-server.ts", import.meta.url));

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on("error", rej);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`the server exited with code ${child.exitCode} before it was ready`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(500);
  }
  throw new Error(`${url} was not ready after ${timeoutMs / 1000} s`);
}

export const stop = (child: ChildProcess): Promise<number | null> =>
  new Promise((res) => {
    if (child.exitCode !== null) return res(child.exitCode);
    child.once("exit", (code) => res(code));
    child.kill("SIGTERM");
  });

const round = (x: number, d = 2) => Number(x.toFixed(d));

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      store: { type: "string" },
      models: { type: "string" },
      seconds: { type: "string", default: "25" },
      connections: { type: "string", default: "8" },
      "max-requests": { type: "string", default: "400000" },
      "swap-ms": { type: "string", default: "2000" },
      "cpu-prof": { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const say = (msg: string) => (values.json ? console.error(msg) : console.log(msg));
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const maxRequests = Number(values["max-requests"]);
  const swapMs = Number(values["swap-ms"]);
  const scratch = mkdtempSync(join(tmpdir(), "freshrec-bench-server-"));
  const storeUri = resolve(values.store ?? join(scratch, "store"));
  const modelsDir = resolve(values.models ?? join(scratch, "models"));
  const key = randomBytes(16).toString("hex");
  const headers = { authorization: `Bearer ${key}` };
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const children: ChildProcess[] = [];
  try {
    const serve = async (extra: string[]) => {
      const child = spawn(
        process.execPath,
        [...(values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${resolve(values["cpu-prof"])}`] : []), "--import", "tsx", MAIN, "demo", "--no-simulate", "--size", "tiny", "--store", storeUri, "--models", modelsDir, "--port", String(port), "--log-level", "warn", ...extra],
        { env: { ...process.env, FRESHREC_API_KEYS: `bench=${key}:admin` }, stdio: ["ignore", "ignore", values.json ? "ignore" : "inherit"] },
      );
      children.push(child);
      await waitFor(`${url}/readyz`, child, 15 * 60_000);
      return child;
    };
    say(`starting the server on ${url} (store ${storeUri})`);
    const server = await serve([]);

    // Two adapters on the active base to alternate between (a copy of the active one when there is only one).
    const registry = openRegistry(modelsDir);
    const active = registry.active();
    let adapters = registry.list("adapter").filter((a) => a.manifest.baseId === active.base && a.status !== "rejected" && a.path);
    if (adapters.length < 2) {
      const src = registry.getOf("adapter", active.adapter!);
      const { id, dir } = registry.stage("adapter");
      copyFileSync(src.path!, join(dir, basename(src.path!)));
      registry.publish({ id, kind: "adapter", main: basename(src.path!), manifest: { ...src.manifest, copiedFrom: src.id }, gate: src.gate });
      adapters = [src, registry.getOf("adapter", id)];
    }
    const swapIds = [active.adapter!, ...adapters.map((a) => a.id).filter((id) => id !== active.adapter)].slice(0, 2);

    // Users the table answers directly, and users the server knows at all (live mode).
    const candidates = Array.from({ length: 400 }, (_, i) => `u${i}`);
    const tableUsers: string[] = [];
    const liveUsers: string[] = [];
    let sample: unknown;
    for (const u of candidates) {
      const res = await fetch(`${url}/v1/users/${u}/next-interests?k=10`, { headers });
      if (res.status !== 200) continue;
      const body = (await res.json()) as { fallback?: string };
      liveUsers.push(u);
      if (!body.fallback) {
        tableUsers.push(u);
        sample ??= body;
      }
    }
    if (tableUsers.length === 0) throw new Error("no user is answered from the table; is the store bootstrapped?");
    say(`${tableUsers.length} table users, ${liveUsers.length} live users; swapping between ${swapIds.join(" and ")}`);

    const bodyFile = join(scratch, "sample.json");
    writeFileSync(bodyFile, JSON.stringify(sample));
    const reference = async (kind: "express" | "node") => {
      const port = await freePort();
      const child = spawn(process.execPath, ["--import", "tsx", BARE, String(port), bodyFile, kind], { stdio: ["ignore", "pipe", "inherit"] });
      children.push(child);
      await new Promise<void>((res) => child.stdout!.once("data", () => res()));
      return { url: `http://127.0.0.1:${port}`, child };
    };
    const load = (base: string, paths: string[], phaseSeconds = seconds) => runLoad({ url: base, paths, headers, connections, seconds: phaseSeconds, maxRequests });
    const samplePath = ["/v1/users/u1/next-interests?k=10"];

    // Warm-up (not counted): JIT and the server's user cache, in both modes.
    await runLoad({ url, paths: [...tableUsers.map((u) => `/v1/users/${u}/next-interests?k=10`), ...liveUsers.map((u) => `/v1/users/${u}/next-interests?k=10&mode=live`)], headers, connections, seconds: 2, maxRequests });

    say("load generator ceiling: node's http module alone");
    const plain = await reference("node");
    await load(plain.url, samplePath, 1);
    const ceiling = await load(plain.url, samplePath, Math.min(seconds, 10));
    await stop(plain.child);

    say("baseline: bare express handler");
    const bare = await reference("express");
    await load(bare.url, samplePath, 1);
    const baseline = await load(bare.url, samplePath);
    await stop(bare.child);

    let swaps = 0;
    let swapErrors = 0;
    let next = 1;
    /** Runs `phases` while promoting the other adapter every swapMs. */
    const swapping = async <T>(phases: () => Promise<T>): Promise<T> => {
      let on = true;
      const swapper = (async () => {
        while (on) {
          await sleep(swapMs);
          if (!on) break;
          const id = swapIds[next++ % swapIds.length]!;
          try {
            const res = await fetch(`${url}/v1/admin/promote`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify({ id }) });
            const body = (await res.json()) as { swaps?: Array<{ ok: boolean }> };
            if (res.status === 200 && body.swaps?.length && body.swaps.every((s) => s.ok)) swaps++;
            else swapErrors++;
          } catch {
            swapErrors++;
          }
        }
      })();
      try {
        return await phases();
      } finally {
        on = false;
        await swapper;
      }
    };
    const tablePaths = tableUsers.map((u) => `/v1/users/${u}/next-interests?k=10&mode=table`);
    const { table, live } = await swapping(async () => {
      say("table mode (answers recorded)");
      const table = await load(url, tablePaths);
      say("live mode (answers recorded)");
      const live = await load(url, liveUsers.map((u) => `/v1/users/${u}/next-interests?k=10&mode=live`));
      return { table, live };
    });
    const recorded = await servedAnswerCounts(url);
    const exitCode = await stop(server);

    // On, off, on again (each a restart on the same store): machine load that drifts during the run shows as a
    // gap between the two "on" figures instead of passing for the cost of recording.
    const tableAfterRestart = async (label: string, extra: string[]) => {
      say(`table mode, ${label} (same store, restarted)`);
      const child = await serve(extra);
      await runLoad({ url, paths: tablePaths, headers, connections, seconds: 2, maxRequests });
      const result = await swapping(() => load(url, tablePaths));
      await stop(child);
      return result;
    };
    const offConfig = join(scratch, "recording-off.json");
    writeFileSync(offConfig, JSON.stringify({ recording: { enabled: false } }));
    const tableOff = await tableAfterRestart("answer recording off", ["--config", offConfig]);
    const tableOnAgain = await tableAfterRestart("answer recording on again", []);
    // The load repeats each user's answer thousands of times a minute, which the default merges into one exposure;
    // with the repeat window at 0 every request is a stored row: the cost when every answer is new.
    const everyConfig = join(scratch, "recording-every-request.json");
    writeFileSync(everyConfig, JSON.stringify({ recording: { repeatWindowMs: 0 } }));
    const tableEvery = await tableAfterRestart("every request recorded as its own row", ["--config", everyConfig]);

    const summary = (r: LoadResult) => `${round(r.rps, 0)} req/s, p50 ${round(r.p50Ms)} ms, p99 ${round(r.p99Ms)} ms, ${r.errors} errors ${JSON.stringify(r.statuses)}`;
    say(
      `ceiling:  ${summary(ceiling)}\nbaseline: ${summary(baseline)}\ntable:    ${summary(table)}\nlive:     ${summary(live)}\ntable, recording off: ${summary(tableOff)}\ntable, recording on again: ${summary(tableOnAgain)}\ntable, every request a row: ${summary(tableEvery)}\nanswers recorded ${recorded.recorded} exposures (${recorded.repeated} repeats merged), stored ${recorded.stored}, dropped ${recorded.dropped}\nswaps: ${swaps} ok, ${swapErrors} failed; server exit code on SIGTERM: ${exitCode}`,
    );
    console.log(
      JSON.stringify({
        table_rps: round(table.rps, 0),
        table_p50_ms: round(table.p50Ms, 3),
        table_p99_ms: round(table.p99Ms, 3),
        live_rps: round(live.rps, 0),
        live_p50_ms: round(live.p50Ms, 3),
        live_p99_ms: round(live.p99Ms, 3),
        swaps,
        swap_errors: swapErrors,
        errors: table.errors + live.errors + tableOff.errors + tableOnAgain.errors + tableEvery.errors,
        table_recording_off_rps: round(tableOff.rps, 0),
        table_recording_off_p50_ms: round(tableOff.p50Ms, 3),
        table_recording_off_p99_ms: round(tableOff.p99Ms, 3),
        table_recording_on_again_rps: round(tableOnAgain.rps, 0),
        table_recording_on_again_p99_ms: round(tableOnAgain.p99Ms, 3),
        table_recording_every_request_rps: round(tableEvery.rps, 0),
        table_recording_every_request_p99_ms: round(tableEvery.p99Ms, 3),
        answers_recorded: recorded.recorded,
        answers_repeated: recorded.repeated,
        answers_stored: recorded.stored,
        answers_dropped: recorded.dropped,
        baseline_rps: round(baseline.rps, 0),
        baseline_p50_ms: round(baseline.p50Ms, 3),
        baseline_p99_ms: round(baseline.p99Ms, 3),
        loader_ceiling_rps: round(ceiling.rps, 0),
        loader_ceiling_p99_ms: round(ceiling.p99Ms, 3),
        connections,
        seconds_per_phase: seconds,
        table_users: tableUsers.length,
        live_users: liveUsers.length,
        shutdown_exit_code: exitCode,
      }),
    );
    return 0;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    rmSync(scratch, { recursive: true, force: true }); // holds the store and registry only when none was given
  }
}

/** The server's served-answer counters (freshrec_served_answers_total by outcome) from /metrics. */
async function servedAnswerCounts(url: string): Promise<{ recorded: number; repeated: number; stored: number; dropped: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const count = (outcome: string) => Number(new RegExp(`^freshrec_served_answers_total\\{outcome="${outcome}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
  return { recorded: count("recorded"), repeated: count("repeated"), stored: count("stored"), dropped: count("dropped") };
}
