import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openObjectStore, startLocalS3, type LocalS3 } from "@freshrec/retriever";
import { ArtefactIntegrityError, openRegistry, openRegistryMirror, type ArtefactKind, type GateResult, type PublishInput, type RecordOfKind, type Registry } from "../src/index.js";
import { sampleManifest } from "./sample-manifests.js";

const pass: GateResult = { passed: true, reasons: [], metrics: {} };

function publishOne<K extends ArtefactKind>(reg: Registry, kind: K, manifest: Partial<RecordOfKind<K>["manifest"]> = {}) {
  const { id, dir } = reg.stage(kind);
  if (kind !== "table") writeFileSync(join(dir, `${kind}.gguf`), `weights of ${id} `.repeat(1000));
  return reg.publish({ id, kind, ...(kind !== "table" ? { main: `${kind}.gguf` } : {}), manifest: sampleManifest(kind, manifest), gate: pass } as PublishInput);
}

/** The registry's mirror on a real S3-compatible server (s3rver on 127.0.0.1): a writer's folder pushed, caches pulled. */
describe("the registry on object storage", () => {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-reg-s3-"));
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startLocalS3({ directory: join(dir, "s3"), buckets: ["models"] });
  });
  afterAll(async () => {
    await s3?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a writer's promotions reach a reader's cache with their files, hashes and log; a restarted writer on a new host continues", async () => {
    const uri = "s3://models/reg/one";
    const writerDir = join(dir, "writer");
    const writer = openRegistry(writerDir);
    const base = publishOne(writer, "base");
    const adapter = publishOne(writer, "adapter", { baseId: base.id });
    writer.promote(adapter.id, "job:test");
    const pushed = await openRegistryMirror(uri, writerDir, s3.storage).push();
    expect(pushed).toMatchObject({ uploaded: [base.id, adapter.id].sort(), pointerWritten: true });

    const readerDir = join(dir, "reader");
    const mirror = openRegistryMirror(uri, readerDir, s3.storage);
    const pulled = await mirror.pull();
    expect(pulled.switched).toBe(true);
    expect(pulled.downloaded.sort()).toEqual([base.id, adapter.id].sort());
    const reader = openRegistry(readerDir);
    expect(reader.active()).toEqual(writer.active());
    const cached = reader.getOf("adapter", adapter.id);
    expect(readFileSync(cached.path!, "utf8")).toBe(readFileSync(adapter.path!, "utf8"));
    expect(cached.path!.startsWith(readerDir)).toBe(true);
    expect(reader.promotions()).toEqual(writer.promotions());
    expect((await mirror.pull()).switched).toBe(false);

    // A table promoted later; the reader follows on its next pull.
    const table = publishOne(writer, "table");
    writer.promote(table.id, "job:refresh");
    await openRegistryMirror(uri, writerDir, s3.storage).push();
    expect((await mirror.pull()).switched).toBe(true);
    expect(reader.active().table).toBe(table.id);
    // So does an experiment: replicas run the writer's split.
    const candidate = publishOne(writer, "table", { lineage: { baseId: base.id, adapterId: adapter.id, snapshotId: null, createdAt: 0 } });
    writer.startExperiment({ candidateTable: candidate.id, candidateAdapter: null, share: 0.3, salt: "s" }, "user:ops");
    await openRegistryMirror(uri, writerDir, s3.storage).push();
    expect((await mirror.pull()).switched).toBe(true);
    expect(reader.active().experiment).toEqual(writer.active().experiment);
    expect(reader.getOf("table", candidate.id).id).toBe(candidate.id);

    // A writer on a fresh host (empty folder) restores from the bucket, then promotes on from there.
    const movedDir = join(dir, "writer-moved");
    const moved = openRegistryMirror(uri, movedDir, s3.storage);
    expect(await moved.reconcile()).toBe("pulled");
    const restored = openRegistry(movedDir);
    expect(restored.active()).toEqual(writer.active());
    // Earlier versions too: a writer may promote or roll back to them.
    expect(restored.list().map((r) => r.id)).toEqual(writer.list().map((r) => r.id));
    const adapter2 = publishOne(restored, "adapter", { baseId: base.id });
    restored.promote(adapter2.id, "user:ops");
    expect(await moved.reconcile()).toBe("pushed");
    await mirror.pull();
    expect(reader.active().adapter).toBe(adapter2.id);
    expect(reader.promotions().map((e) => e.to)).toEqual(restored.promotions().map((e) => e.to));
  }, 60_000);

  it("a corrupt or truncated download is refused with a typed error and never goes live; the cache keeps what it served", async () => {
    const uri = "s3://models/reg/two";
    const writerDir = join(dir, "w2");
    const writer = openRegistry(writerDir);
    const base = publishOne(writer, "base");
    const good = publishOne(writer, "adapter", { baseId: base.id });
    writer.promote(good.id, "job:test");
    const push = openRegistryMirror(uri, writerDir, s3.storage);
    await push.push();
    const readerDir = join(dir, "r2");
    const mirror = openRegistryMirror(uri, readerDir, s3.storage);
    await mirror.pull();

    const objects = openObjectStore(uri, s3.storage);
    for (const damage of ["flipped", "truncated"] as const) {
      const bad = publishOne(writer, "adapter", { baseId: base.id });
      writer.promote(bad.id, "job:test");
      await push.push();
      const key = `artefacts/${bad.id}/adapter.gguf`;
      const bytes = (await objects.get(key))!.body;
      await objects.put(key, damage === "flipped" ? Buffer.from(bytes.toString("utf8").replace("weights", "WEIGHTS")) : bytes.subarray(0, bytes.length >> 1));
      const refused = await mirror.pull().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ArtefactIntegrityError);
      expect((refused as Error).message).toMatch(new RegExp(`artefact '${bad.id}', file 'adapter.gguf': sha256 [0-9a-f]{64} does not match`));
      const reader = openRegistry(readerDir);
      expect(reader.active().adapter).toBe(good.id);
      expect(existsSync(join(readerDir, "artefacts", bad.id))).toBe(false);
      expect(existsSync(join(readerDir, ".staging", `${bad.id}.${process.pid}`))).toBe(false);
    }
  }, 60_000);
});
