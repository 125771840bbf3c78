/**
 * `freshrec bench hosts`: the figures docs/SCALE.md derives its sizing from, measured on the real multi-host
 * setup: a local S3-compatible server (s3rver, in this process) holding the store and the registry, a writer
 * process that bootstraps on the tiny world, and a read-only replica process with its own cache. The replica
 * starts before any model exists: its RSS then (the runtime alone) is the baseline for its RSS once it serves the
 * model and the table under load, in the same run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { createSyntheticWorld } from "@freshrec/core";
import { lanceStorageOptions, lancedb, objectStorageEnv, openObjectStore, openStore, startLocalS3 } from "@freshrec/retriever";
import { runLoad } from "@freshrec/server";
import { loopPresetFor } from "@freshrec/trainer-bridge";
import { freePort, stop, waitFor } from "./bench-server.js";

export const summary = "measure what SCALE.md sizes from: bytes per event in the bucket, table rows per key, refresh cost per key, replica memory (idle baseline vs serving), on s3";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const MB = 1024 * 1024;
const KEY = "bench-hosts-admin-key";

/** Resident and peak resident memory of a live process (Linux /proc). */
function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: (kb("VmRSS") * 1024) / MB, peak: (kb("VmHWM") * 1024) / MB };
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: "boolean", default: false }, seconds: { type: "string", default: "10" }, help: { type: "boolean", default: false } } });
  if (values.help) {
    console.log(`usage: freshrec bench hosts [--seconds S] [--json]

Starts s3rver on 127.0.0.1, stores the synthetic tiny world in s3://bench/store, starts a replica (no model
yet: its RSS is the baseline), then a writer that bootstraps (base, adapter, RAG table) with the registry on
s3://bench/models; once the replica serves, loads it in table mode for S seconds (default 10) and reads its
RSS again. Prints bytes per event in the bucket, table rows per key, refresh cost per key with the cores it
ran on, and the replica's memory. About 2-4 minutes on 2 cores. The last stdout line is one JSON object.`);
    return 0;
  }
  const dir = mkdtempSync(join(tmpdir(), "freshrec-bench-hosts-"));
  const s3 = await startLocalS3({ directory: join(dir, "s3"), buckets: ["bench"] });
  const children: ChildProcess[] = [];
  try {
    const storeUri = "s3://bench/store";
    const world = createSyntheticWorld("tiny");
    const events = [...world.events()];
    const store = await openStore(storeUri, { storage: s3.storage, k: world.config.k });
    await store.putClusters(world.clusters);
    await store.putItems(world.items.map((i) => ({ itemId: i.itemId, clusterId: i.clusterId! })));
    await store.ingest(events);
    await store.close();

    const config = join(dir, "freshrec.json");
    writeFileSync(config, JSON.stringify({ jobs: loopPresetFor("tiny"), scheduler: { refreshEveryDays: 365, finetuneEveryDays: 365 }, updateLoop: { tickSeconds: 1, minTransitions: 100 }, storage: s3.storage }));
    const env = { ...process.env, ...objectStorageEnv(s3.storage), FRESHREC_API_KEYS: `bench=${KEY}:read,ingest,admin`, FRESHREC_LOG_LEVEL: "warn" };
    const serve = async (role: "writer" | "replica") => {
      const port = await freePort();
      const argv = ["--import", "tsx", MAIN, "serve", "--role", role, "--store", storeUri, "--models", "s3://bench/models", "--models-cache", join(dir, `cache-${role}`), "--config", config, "--port", String(port)];
      const child = spawn(process.execPath, argv, { env, stdio: ["ignore", "ignore", "inherit"] });
      children.push(child);
      return { child, url: `http://127.0.0.1:${port}` };
    };
    const replica = await serve("replica");
    await waitFor(`${replica.url}/healthz`, replica.child, 60_000);
    const idle = rssMb(replica.child.pid!);
    const writer = await serve("writer");
    await waitFor(`${replica.url}/readyz`, replica.child, 10 * 60_000);

    const headers = { authorization: `Bearer ${KEY}` };
    const model = (await (await fetch(`${writer.url}/v1/model`, { headers })).json()) as {
      lineage: { tableId: string };
      registry: Array<{ id: string; kind: string; manifest: { keys?: number; wallS?: number; cpuS?: number } }>;
    };
    const table = model.registry.find((r) => r.id === model.lineage.tableId)!;
    const users = [...new Set(events.slice(-200).map((e) => e.userId))].slice(0, 50);
    const load = await runLoad({ url: replica.url, paths: users.map((u) => `/v1/users/${u}/next-interests?k=5`), headers, connections: 4, seconds: Number(values.seconds), maxRequests: 2_000_000 });
    const serving = rssMb(replica.child.pid!);
    const writerMem = rssMb(writer.child.pid!);

    const db = await lancedb.connect(storeUri, { storageOptions: lanceStorageOptions(s3.storage) });
    const predictions = await db.openTable("prediction_tables");
    const tableRows = await predictions.countRows(`tableId = '${model.lineage.tableId}'`);
    predictions.close();
    db.close();
    const storeBytes = await openObjectStore(storeUri, s3.storage).bytes("");
    const registryBytes = await openObjectStore("s3://bench/models", s3.storage).bytes("");
    const keys = table.manifest.keys!;

    const result = {
      events: events.length,
      store_bytes: storeBytes,
      store_bytes_per_event: Number((storeBytes / events.length).toFixed(1)),
      registry_bytes: registryBytes,
      table_keys: keys,
      table_rows: tableRows,
      table_rows_per_key: Number((tableRows / keys).toFixed(4)),
      refresh_wall_s: table.manifest.wallS!,
      refresh_ms_per_key: Number(((table.manifest.wallS! * 1000) / keys).toFixed(3)),
      refresh_cores: availableParallelism(),
      replica_rss_idle_mb: Math.round(idle.rss),
      replica_rss_serving_mb: Math.round(serving.rss),
      replica_peak_rss_mb: Math.round(serving.peak),
      writer_rss_mb: Math.round(writerMem.rss),
      replica_table_rps: Math.round(load.rps),
      replica_table_p99_ms: Number(load.p99Ms.toFixed(2)),
      replica_errors: load.errors,
    };
    if (!values.json) {
      console.log(`store: ${result.store_bytes_per_event} bytes/event in the bucket (${events.length} events); registry ${(registryBytes / MB).toFixed(1)} MB`);
      console.log(`table: ${tableRows} rows for ${keys} keys (${result.table_rows_per_key} per key); refresh ${result.refresh_ms_per_key} ms per key on ${result.refresh_cores} cores`);
      console.log(`replica RSS: idle ${result.replica_rss_idle_mb} MB (baseline), serving ${result.replica_rss_serving_mb} MB (peak ${result.replica_peak_rss_mb} MB); writer ${result.writer_rss_mb} MB`);
      console.log(`replica table mode under load: ${result.replica_table_rps} req/s, p99 ${result.replica_table_p99_ms} ms, ${load.errors} errors`);
    }
    console.log(JSON.stringify(result));
    return 0;
  } finally {
    for (const c of children.reverse()) await stop(c);
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
