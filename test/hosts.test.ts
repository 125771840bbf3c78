import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DAY_MS, type Event } from "@freshrec/core";
import { objectStorageEnv, openObjectStore, type ObjectStorage } from "@freshrec/retriever";
import { ADMIN_KEY, E2E_KEYS, INGEST_KEY, READ_KEY, promotionsUnderLoad, servesWritersTable, startFreshrec, type ServeProcess, within } from "./server-process.js";
import { writeOwnData, writeServiceConfig } from "./own-data.js";

const ROOT = join(import.meta.dirname, "..");
const MAIN = join(ROOT, "apps/cli/src/main.ts");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The object store as a host of its own: s3rver in a separate process (the test's own event loop runs the load). */
async function startS3Process(directory: string): Promise<{ child: ChildProcess; storage: ObjectStorage }> {
  const script = `
    import { startLocalS3 } from ${JSON.stringify(join(ROOT, "packages/retriever/src/local-s3.ts"))};
    const s3 = await startLocalS3({ directory: ${JSON.stringify(directory)}, buckets: ["fresh"] });
    console.log(JSON.stringify(s3.storage));`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.split("\n")[0]!);
    });
    child.once("exit", (code) => reject(new Error(`s3rver process exited with ${code}`)));
  });
  return { child, storage: JSON.parse(line) as ObjectStorage };
}

/** A freshrec CLI command to its end, without blocking this process. */
function cli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once("exit", (status) => resolve({ status, stderr })));
}

/**
 * Several hosts sharing nothing but an object store: a real S3-compatible server (s3rver, started by this test
 * on 127.0.0.1) holds the LanceDB store and the model registry; the writer and each replica are separate
 * processes with caches of their own. Covers import, serve, refresh, promotion, hot swap and replicas following on
 * s3://, a late replica catching up from the bucket alone, and a writer killed mid-ingest and mid-job.
 */
describe("one writer and replicas on object storage, sharing only the bucket", () => {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-hosts-"));
  const procs: ServeProcess[] = [];
  let s3: { child: ChildProcess; storage: ObjectStorage } | undefined;
  afterAll(async () => {
    for (const p of procs.reverse()) await p.stop().catch(() => undefined);
    s3?.child.kill();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it("replicas follow ten promotions within 2 s without a failed request; a killed writer loses nothing acknowledged and continues", async () => {
    s3 = await startS3Process(join(dir, "bucket"));
    const store = "s3://fresh/store";
    const models = "s3://fresh/models";
    const data = writeOwnData(dir, DAY_MS);
    // Serving processes read the bucket's settings from the config file; the import from the environment.
    const config = writeServiceConfig(dir, { refreshSeconds: 3600, minTransitions: 300, extra: { storage: s3.storage } });
    const env = { ...process.env, ...objectStorageEnv(s3.storage) };
    const imported = await cli(env, "import", "events", data.eventsCsv, "--items", data.itemsCsv, "--store", store);
    expect(imported.status, imported.stderr).toBe(0);

    const serve = (role: "writer" | "replica", cache: string) =>
      startFreshrec(["serve", "--role", role, "--store", store, "--models", models, "--models-cache", join(dir, cache), "--config", config], { FRESHREC_API_KEYS: E2E_KEYS });
    let writer = await serve("writer", "host-w");
    procs.push(writer);
    await writer.waitFor("/readyz", 200, 5 * 60_000);

    // One writer per store on object storage too: the lease names its holder to an import.
    const intruder = await cli(env, "import", "events", data.eventsCsv, "--items", data.itemsCsv, "--store", store);
    expect(intruder.status).toBe(4);
    expect(intruder.stderr).toMatch(/is being written by 'freshrec serve --role writer' \(pid \d+/);

    const refresh = async (w: ServeProcess) => {
      const started = await w.call("POST", "/v1/admin/refresh-table", { key: ADMIN_KEY, body: {} });
      expect(started.status).toBe(202);
      return started.json.job.id as string;
    };
    const jobState = async (w: ServeProcess, id: string) => (await w.call("GET", "/v1/model", { key: READ_KEY })).json.jobs.find((j: { id: string }) => j.id === id)?.state as string | undefined;
    // Two more tables to promote between (admin jobs on the writer).
    for (let i = 0; i < 2; i++) {
      const id = await refresh(writer);
      expect(await within(120_000, async () => (await jobState(writer, id)) !== "running")).toBeLessThan(Infinity);
    }
    const tables = (await writer.call("GET", "/v1/model", { key: READ_KEY })).json.registry.filter((r: { kind: string }) => r.kind === "table").map((r: { id: string }) => r.id) as string[];
    expect(tables.length).toBeGreaterThanOrEqual(3);

    const replicas = [await serve("replica", "host-r1"), await serve("replica", "host-r2")];
    procs.push(...replicas);
    for (const r of replicas) await r.waitFor("/readyz", 200, 60_000);

    const user = data.events[data.events.length - 1]!.userId;
    const { lags, answered, failures } = await promotionsUnderLoad(writer, replicas, tables, user, async (r, target) => {
      const pointer = await Promise.race([openObjectStore(models, s3!.storage).get("active.json").then((g) => g?.body.toString()), sleep(3000).then(() => "no answer from the bucket in 3 s")]);
      throw new Error(`a replica did not serve ${target} within 5 s; the bucket's pointer: ${pointer}\n${r.output().slice(-3000)}`);
    });
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThan(100);
    expect(Math.max(...lags)).toBeLessThan(2000);

    // A replica on a new host (an empty cache) comes up on what is active, from the bucket alone.
    const late = await serve("replica", "host-late");
    procs.push(late);
    const { writers: active, late: lateTable } = await servesWritersTable(late, writer);
    expect(lateTable).toBe(active);

    // Kill -9 the writer while a refresh job runs and events are being posted.
    const fresh = (n: number): Event[] =>
      Array.from({ length: 20 }, (_, i) => ({ ...data.events[(n * 20 + i) % data.events.length]!, eventId: `live-${n}-${i}`, ts: Date.now() - 60_000 + i }));
    const acknowledged: Event[] = [];
    let posting = true;
    const poster = (async () => {
      for (let n = 0; posting; n++) {
        const batch = fresh(n);
        const res = await writer.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: batch } }).catch(() => undefined);
        if (res?.status === 200) acknowledged.push(...batch);
        else if (!res) return; // the writer is gone
      }
    })();
    const job = await refresh(writer);
    expect(await within(30_000, async () => (await jobState(writer, job)) === "running" && acknowledged.length >= 100)).toBeLessThan(Infinity);
    writer.child.kill("SIGKILL");
    posting = false;
    await poster;
    expect(acknowledged.length).toBeGreaterThanOrEqual(100);
    // Replicas keep serving what they had: nothing half-written went live.
    for (const r of replicas) {
      const res = await r.call("GET", `/v1/users/${user}/next-interests?k=5`, { key: READ_KEY });
      expect(res.status).toBe(200);
      expect(res.json.lineage.tableId).toBe(active);
    }

    // A writer restarted on another host (an empty cache) takes the dead lease over and continues.
    writer = await serve("writer", "host-w2");
    procs.push(writer);
    await writer.waitFor("/readyz", 200, 120_000);
    const reposted = await writer.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: acknowledged.slice(0, 1000) } });
    expect(reposted.json).toMatchObject({ accepted: 0, duplicates: Math.min(1000, acknowledged.length) });
    // It promotes and hot-swaps on from the restored registry; every replica follows.
    const other = tables.find((t) => t !== active)!;
    expect((await writer.call("POST", "/v1/admin/promote", { key: ADMIN_KEY, body: { id: other } })).status).toBe(200);
    for (const r of [writer, ...replicas, late]) expect(await within(5_000, async () => (await r.call("GET", "/v1/model", { key: READ_KEY })).json.lineage.tableId === other)).toBeLessThan(2000);
  }, 10 * 60_000);
});
