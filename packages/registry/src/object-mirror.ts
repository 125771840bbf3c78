/**
 * The model registry on object storage. Every process keeps working on a local registry folder (openRegistry:
 * synchronous, what jobs, the loop and llama.cpp need: llama.cpp loads local files), and this mirror keeps that
 * folder and a bucket in step: the writer pushes, every other process (replicas, a writer restarted elsewhere)
 * pulls into its own cache. Layout under the registry URI (e.g. s3://bucket/models):
 *
 *   artefacts/<id>/<file>        an artefact's files; immutable, uploaded first
 *   artefacts/<id>/record.json   its record with the sha256 of every file; uploaded after them: present = complete
 *   promotions/<n>.json          entry n of the promotion log; immutable, n zero-padded
 *   active.json                  the pointer {active, promotions}: written last, naming only what is uploaded
 *
 * What the store must guarantee: read-after-write consistency of single objects and atomic PUT (readers see the
 * old or the new object, never half), which S3, MinIO, R2 and s3rver all give. No rename is needed: everything but
 * the pointer is immutable, and the pointer is one object. There is one writer per registry: the one holding the
 * store's writer lease. Where the store supports conditional PUT the pointer is written If-Match the version this
 * writer last wrote, so a second writer is detected instead of silently overwriting (see writer-lease.ts for what
 * holds without it).
 *
 * A pull downloads to a private staging folder, checks every file's sha256 against the record, and only then
 * moves the artefact into the cache and switches the local pointer: a corrupt or partial download never goes live.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { FreshrecError, parseOrThrow } from "@freshrec/core";
import { openObjectStore, type ObjectStorage, type ObjectStore } from "@freshrec/retriever";
import { RegistryError, sha256File, writeFileAtomic } from "./atomic.js";
import { EMPTY_ACTIVE, registryPaths } from "./registry.js";
import { scoredWith } from "./manifests.js";
import { ActiveSetSchema, PromotionEntrySchema, StoredRecordSchema, type ActiveSet, type StoredRecord } from "./schemas.js";

export const RegistryPointerSchema = z.strictObject({
  active: ActiveSetSchema,
  /** Promotion-log entries that exist in the bucket when this pointer is written (entries 0..n-1). */
  promotions: z.number().int().nonnegative(),
});
export type RegistryPointer = z.infer<typeof RegistryPointerSchema>;

/** A downloaded file does not match the hash its record holds (corrupt, truncated or replaced): it does not go live. */
export class ArtefactIntegrityError extends FreshrecError {
  constructor(
    readonly artefactId: string,
    readonly file: string,
    detail: string,
  ) {
    super("artefact-integrity", `artefact '${artefactId}', file '${file}': ${detail}; the download was discarded and the cache keeps serving what it had`);
  }
}

export interface PushResult {
  uploaded: string[];
  promotions: number;
  pointerWritten: boolean;
  deleted: string[];
}

export interface PullResult {
  /** Artefacts downloaded (and verified) into the cache. */
  downloaded: string[];
  /** Whether the local pointer moved. */
  switched: boolean;
  active: ActiveSet;
}

export interface RegistryMirror {
  readonly uri: string;
  /** Writer: uploads what the local registry holds and the bucket lacks, then the pointer (only if it changed). */
  push(): Promise<PushResult>;
  /**
   * Everyone else: brings the local cache to the bucket's pointer (with `everything`, every artefact in the bucket,
   * not only the active ones); throws ArtefactIntegrityError, leaving the cache as it was, on a bad download.
   */
  pull(opts?: { everything?: boolean }): Promise<PullResult>;
  /**
   * A writer's start: restore everything when the bucket is ahead of the local folder (a fresh host, a lost disk), else push.
   * The promotion log only grows and has one writer, so its length orders the two.
   */
  reconcile(): Promise<"pulled" | "pushed">;
  /**
   * push or pull every intervalMs until stopped; errors go to onError and the next round tries again; onSwitched
   * runs after a pull moved the local pointer (a server reloads at once rather than at its next registry poll).
   * stop() ends with a last round.
   */
  follow(mode: "push" | "pull", opts: FollowOptions): { stop(): Promise<void> };
}

export interface FollowOptions {
  intervalMs?: number;
  onError?: (err: unknown) => void;
  onSwitched?: (active: ActiveSet) => void;
}

const POINTER = "active.json";
const logKey = (n: number) => `promotions/${String(n).padStart(10, "0")}.json`;
const recordKey = (id: string) => `artefacts/${id}/record.json`;

export function openRegistryMirror(uri: string, localDir: string, storage: ObjectStorage): RegistryMirror {
  const objects: ObjectStore = openObjectStore(uri, storage);
  const paths = registryPaths(localDir);
  mkdirSync(paths.artefactsDir, { recursive: true });
  mkdirSync(paths.stagingDir, { recursive: true });
  /** Ids whose record is in the bucket (listed once, then kept up to date by this process's uploads). */
  let remoteIds: Set<string> | undefined;
  /** Ids this process saw in the local folder: one that disappears from it was retired and is deleted remotely. */
  const seenLocally = new Set<string>();
  let pushedPointer: string | undefined;
  let pointerEtag: string | undefined;
  /** Cached artefacts whose files this process checked against their hashes. */
  const verified = new Set<string>();

  const localLog = (): string[] => (existsSync(paths.logPath) ? readFileSync(paths.logPath, "utf8").split("\n").filter((l) => l.trim() !== "") : []);
  const localActive = (): ActiveSet => (existsSync(paths.activePath) ? parseOrThrow(ActiveSetSchema, JSON.parse(readFileSync(paths.activePath, "utf8")), paths.activePath) : EMPTY_ACTIVE);
  const localIds = () => readdirSync(paths.artefactsDir).filter((id) => existsSync(join(paths.artefactsDir, id, "record.json")));
  const readLocalRecord = (id: string) => parseOrThrow(StoredRecordSchema, JSON.parse(readFileSync(join(paths.artefactsDir, id, "record.json"), "utf8")), `${localDir}: ${id}`);

  async function remotePointer(): Promise<{ pointer: RegistryPointer; etag: string } | null> {
    const got = await objects.get(POINTER);
    if (!got) return null;
    return { pointer: parseOrThrow(RegistryPointerSchema, JSON.parse(got.body.toString("utf8")), `${uri}/${POINTER}`), etag: got.etag };
  }

  async function push(): Promise<PushResult> {
    remoteIds ??= new Set((await objects.list("artefacts/")).filter((k) => k.endsWith("/record.json")).map((k) => k.split("/")[1]!));
    // The pointer and log first: whatever they name was published before, so the listing below holds it.
    const active = localActive();
    const log = localLog();
    const uploaded: string[] = [];
    const ids = localIds();
    for (const id of ids) {
      seenLocally.add(id);
      if (remoteIds.has(id)) continue;
      const record = readLocalRecord(id);
      const folder = join(paths.artefactsDir, id);
      // Records published before hashes existed get them now, from the files as they are.
      const withHashes: StoredRecord = record.sha256 ? record : { ...record, sha256: Object.fromEntries(record.files.map((f) => [f, sha256File(join(folder, f))])) };
      for (const f of record.files) await objects.upload(`artefacts/${id}/${f}`, join(folder, f));
      await objects.put(recordKey(id), JSON.stringify(withHashes));
      remoteIds.add(id);
      uploaded.push(id);
    }
    const remote = pointerEtag === undefined ? await remotePointer() : undefined;
    if (remote) {
      pointerEtag = remote.etag;
      pushedPointer = JSON.stringify(remote.pointer);
    }
    const pushedEntries = pushedPointer ? RegistryPointerSchema.parse(JSON.parse(pushedPointer)).promotions : 0;
    for (let n = pushedEntries; n < log.length; n++) await objects.put(logKey(n), log[n]!);
    const next = JSON.stringify({ active, promotions: log.length } satisfies RegistryPointer);
    let pointerWritten = false;
    if (next !== pushedPointer) {
      const conditional = await objects.conditionalWrites();
      const put = await objects.put(POINTER, next, conditional ? (pointerEtag ? { ifMatch: pointerEtag } : { ifNoneMatch: true }) : undefined);
      if (put === "precondition-failed") throw new RegistryError(`${uri}/${POINTER} was changed by another writer: a registry has one writer, the holder of its store's writer lease`);
      pointerEtag = put.etag;
      pushedPointer = next;
      pointerWritten = true;
    }
    // Retired here (retention) and named by no pointer: delete the bucket's copy too.
    const deleted: string[] = [];
    const keep = new Set<unknown>([...ids, active.base, active.adapter, active.table, active.experiment?.candidateTable, active.experiment?.candidateAdapter]);
    for (const id of [...seenLocally]) {
      if (keep.has(id)) continue;
      for (const key of await objects.list(`artefacts/${id}/`)) await objects.delete(key);
      seenLocally.delete(id);
      remoteIds.delete(id);
      deleted.push(id);
    }
    return { uploaded, promotions: log.length - pushedEntries, pointerWritten, deleted };
  }

  /** The artefact in the cache with every file matching its hash, downloading it if need be. */
  async function ensureCached(id: string): Promise<boolean> {
    const folder = join(paths.artefactsDir, id);
    if (existsSync(join(folder, "record.json"))) {
      if (verified.has(id)) return false;
      const record = readLocalRecord(id);
      if (record.files.every((f) => existsSync(join(folder, f)) && (!record.sha256 || record.sha256[f] === sha256File(join(folder, f))))) {
        verified.add(id);
        return false;
      }
      rmSync(folder, { recursive: true, force: true }); // damaged in the cache: fetch it again
    }
    const got = await objects.get(recordKey(id));
    if (!got) throw new RegistryError(`${uri}: the pointer names artefact '${id}' but the bucket has no ${recordKey(id)}`);
    const record = parseOrThrow(StoredRecordSchema, JSON.parse(got.body.toString("utf8")), `${uri}/${recordKey(id)}`);
    const staging = join(paths.stagingDir, `${id}.${process.pid}`);
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    try {
      for (const f of record.files) {
        const expected = record.sha256?.[f];
        if (!expected) throw new ArtefactIntegrityError(id, f, "its record holds no sha256 to check a download against");
        if (!(await objects.download(`artefacts/${id}/${f}`, join(staging, f)))) throw new ArtefactIntegrityError(id, f, "missing in the bucket");
        const actual = sha256File(join(staging, f));
        if (actual !== expected) throw new ArtefactIntegrityError(id, f, `sha256 ${actual} does not match the record's ${expected}`);
      }
      writeFileSync(join(staging, "record.json"), `${JSON.stringify(record, null, 2)}\n`);
      renameSync(staging, folder);
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      throw err;
    }
    verified.add(id);
    return true;
  }

  async function pull(opts: { everything?: boolean } = {}): Promise<PullResult> {
    const remote = await remotePointer();
    if (!remote) return { downloaded: [], switched: false, active: localActive() };
    const { active, promotions } = remote.pointer;
    const downloaded: string[] = [];
    const named = [active.base, active.adapter, active.table].filter((id): id is string => id !== null);
    // A writer's restore takes earlier versions too (it may promote or roll back to them); a replica needs the active ones.
    const wanted = opts.everything ? [...new Set([...named, ...(await objects.list("artefacts/")).filter((k) => k.endsWith("/record.json")).map((k) => k.split("/")[1]!)])] : named;
    for (const id of wanted) if (await ensureCached(id)) downloaded.push(id);
    // The experiment's candidates, and what scores them: an adapter's base, a table's base and adapter (its lineage).
    const e = active.experiment;
    for (const id of [e?.candidateTable, e?.candidateAdapter]) {
      if (!id) continue;
      if (await ensureCached(id)) downloaded.push(id);
      for (const dep of scoredWith(readLocalRecord(id).manifest)) if (await ensureCached(dep)) downloaded.push(dep);
    }
    const log = localLog();
    for (let n = log.length; n < promotions; n++) {
      const entry = await objects.get(logKey(n));
      if (!entry) throw new RegistryError(`${uri}: the pointer counts ${promotions} promotions but ${logKey(n)} is missing`);
      const parsed = parseOrThrow(PromotionEntrySchema, JSON.parse(entry.body.toString("utf8")), `${uri}/${logKey(n)}`);
      appendFileSync(paths.logPath, `${JSON.stringify(parsed)}\n`);
    }
    // Last: the local pointer moves only once everything it names is in the cache and checked.
    const switched = JSON.stringify(localActive()) !== JSON.stringify(active);
    if (switched) writeFileAtomic(paths.activePath, `${JSON.stringify(active)}\n`);
    return { downloaded, switched, active };
  }

  async function reconcile(): Promise<"pulled" | "pushed"> {
    const remote = await remotePointer();
    if (remote && remote.pointer.promotions > localLog().length) {
      await pull({ everything: true });
      return "pulled";
    }
    await push();
    return "pushed";
  }

  function follow(mode: "push" | "pull", opts: FollowOptions): { stop(): Promise<void> } {
    let running: Promise<void> | undefined;
    const step = async () => {
      if (mode === "push") await push();
      else {
        const r = await pull();
        if (r.switched) opts.onSwitched?.(r.active);
      }
    };
    // One round at a time: a tick that finds one still running is skipped, so slow rounds never pile up.
    const round = () =>
      (running ??= step()
        .catch((err) => opts.onError?.(err))
        .finally(() => {
          running = undefined;
        }));
    const timer = setInterval(round, opts.intervalMs ?? 500);
    timer.unref();
    return {
      async stop() {
        clearInterval(timer);
        await running;
        await round();
      },
    };
  }

  return { uri, push, pull, reconcile, follow };
}
