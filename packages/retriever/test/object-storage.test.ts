import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "@freshrec/core";
import {
  ObjectStoreError,
  StoreLockedError,
  acquireStoreWriterLock,
  objectStorageEnv,
  openObjectStore,
  openStore,
  resolveObjectStorage,
  startLocalS3,
  type LocalS3,
} from "../src/index.js";
import { T0, circleClusters, itemsFor, randomEvents } from "./helpers.js";

const LEASE_MODULE = join(import.meta.dirname, "../src/writer-lease.ts");

/** The store, its lease and plain objects on a real S3-compatible server (s3rver on 127.0.0.1, started here). */
describe("a store on object storage", () => {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-s3-"));
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startLocalS3({ directory: join(dir, "s3"), buckets: ["fresh"] });
  });
  afterAll(async () => {
    await s3?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("ingests, answers and reopens on s3:// exactly as on disk; a replica handle follows the writer", async () => {
    const events = randomEvents({ seed: 3, users: 30, events: 1200, clusters: 6, days: 20 });
    const uri = "s3://fresh/stores/one";
    const local = await openStore(join(dir, "local"));
    const remote = await openStore(uri, { storage: s3.storage, readConsistencyMs: 0 });
    for (const store of [local, remote]) {
      await store.putClusters(circleClusters(6));
      await store.putItems(itemsFor(6, 3));
      await store.ingest(events.slice(0, 800));
    }
    // A second handle, as a replica process would open it: no create, same settings.
    const reader = await openStore(uri, { storage: s3.storage, create: false, readConsistencyMs: 0 });
    const query = { asOf: T0 + 20 * DAY_MS, windowMs: 20 * DAY_MS, n: 5 };
    expect(await reader.successors([1, 2], query)).toEqual(await local.successors([1, 2], query));
    for (const store of [local, remote]) expect(await store.ingest(events)).toMatchObject({ accepted: 400, duplicates: 800 });
    expect(await reader.successors([2, 3], query)).toEqual(await local.successors([2, 3], query));
    expect(await reader.timeRange()).toEqual(await local.timeRange());
    const snapshotRemote = await reader.snapshot({ start: T0, end: T0 + 20 * DAY_MS, n: 5 });
    const snapshotLocal = await local.snapshot({ start: T0, end: T0 + 20 * DAY_MS, n: 5 });
    expect([...snapshotRemote.entries.keys()].sort()).toEqual([...snapshotLocal.entries.keys()].sort());
    // Maintenance finds every table by name (listing tables on s3rver returns none).
    const kept = await remote.maintain({ olderThanMs: 0 });
    expect(kept.fragments).toBeGreaterThan(0);
    expect((await remote.check()).ok).toBe(true);
    await Promise.all([local.close(), remote.close(), reader.close()]);
    await expect(openStore("s3://fresh/stores/none", { storage: s3.storage, create: false })).rejects.toThrow(/no store at s3:\/\/fresh\/stores\/none/);
  }, 90_000);

  it("reads settings from the environment, the config's values first, and refuses bad ones naming the field", () => {
    const env = { AWS_ENDPOINT_URL: "http://127.0.0.1:1", AWS_REGION: "eu-west-3", AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "secret", FRESHREC_S3_PATH_STYLE: "1" };
    expect(resolveObjectStorage(undefined, env)).toEqual({ endpoint: "http://127.0.0.1:1", region: "eu-west-3", accessKeyId: "id", secretAccessKey: "secret", pathStyle: true });
    expect(resolveObjectStorage({ region: "us-east-2" }, env).region).toBe("us-east-2");
    expect(resolveObjectStorage(undefined, objectStorageEnv(s3.storage))).toEqual(s3.storage);
    expect(() => resolveObjectStorage({ endpoint: "not a url" }, {}, "freshrec.json: storage")).toThrow(/freshrec\.json: storage.*endpoint/s);
  });

  it("plain objects: conditional writes are probed, and a store that cannot be reached fails with a typed error", async () => {
    const objects = openObjectStore("s3://fresh/plain", s3.storage);
    expect(await objects.get("nothing")).toBeNull();
    await objects.put("a/1", "one");
    await objects.put("a/2", "two");
    expect(await objects.list("a/")).toEqual(["a/1", "a/2"]);
    expect((await objects.get("a/2"))!.body.toString()).toBe("two");
    // s3rver ignores If-None-Match on PUT: the probe must say so (the lease then reads back instead).
    expect(await objects.conditionalWrites()).toBe(false);
    const down = openObjectStore("s3://fresh/plain", { ...s3.storage, endpoint: "http://127.0.0.1:9" });
    await expect(down.get("a/1")).rejects.toBeInstanceOf(ObjectStoreError);
  });

  it("the writer lease: one holder, named to anyone refused; a killed holder's lease is taken over; the holder's jobs write under it", async () => {
    const uri = "s3://fresh/stores/leased";
    const env = { ...process.env, ...objectStorageEnv(s3.storage) };
    const lease = await acquireStoreWriterLock(uri, { command: "freshrec serve --role writer", storage: s3.storage });
    expect(lease.owned).toBe(true);
    const refused = await acquireStoreWriterLock(uri, { command: "freshrec import events", storage: s3.storage }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StoreLockedError);
    expect((refused as Error).message).toMatch(new RegExp(`being written by 'freshrec serve --role writer' \\(pid ${process.pid} on `));
    // A job process started by the holder, with its token, writes under the holder's lease.
    const job = await runLeaseProcess(uri, { ...env, FRESHREC_WRITER_TOKEN: lease.holder.token }, "exit");
    expect(job).toMatchObject({ ok: true, owned: false });
    await lease.release();

    // A holder killed with SIGKILL leaves its lease behind; on this host its dead pid frees it at once.
    const killed = await runLeaseProcess(uri, env, "sigkill");
    expect(killed).toMatchObject({ ok: true, owned: true });
    const after = await acquireStoreWriterLock(uri, { command: "after a crash", storage: s3.storage });
    expect(after.owned).toBe(true);
    await after.release();
    expect(await openObjectStore(uri, s3.storage).get("writer.lock")).toBeNull();
  }, 60_000);
});

/** A separate process that takes the lease, prints what it got, then exits or kills itself. */
async function runLeaseProcess(uri: string, env: NodeJS.ProcessEnv, after: "exit" | "sigkill"): Promise<{ ok: boolean; owned?: boolean; message?: string }> {
  const script = `
    import { acquireStoreWriterLock } from ${JSON.stringify(LEASE_MODULE)};
    try {
      const lock = await acquireStoreWriterLock(${JSON.stringify(uri)}, { command: "child" });
      console.log(JSON.stringify({ ok: true, owned: lock.owned }));
      ${after === "sigkill" ? 'process.kill(process.pid, "SIGKILL");' : "process.exit(0);"}
    } catch (err) {
      console.log(JSON.stringify({ ok: false, message: err.message }));
      process.exit(0);
    }`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"], env });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise((r) => child.once("exit", r));
  return JSON.parse(out.trim().split("\n")[0]!);
}
