/**
 * The single-writer lock of a store on object storage: a lease object `<store>/writer.lock` holding the same
 * holder record as a local lock (owner token, heartbeat), refreshed every heartbeat and taken over once stale.
 *
 * What is guaranteed depends on the store (probed once, ObjectStore.conditionalWrites):
 * - With conditional PUT (AWS S3, MinIO, R2): taking the lease is `PUT If-None-Match: *`, taking over a dead
 *   holder and every heartbeat are `PUT If-Match: <etag we read or wrote>`. Two takers cannot both win, and a
 *   holder that stalled past the staleness bound learns it lost at its next heartbeat (onLost) and must stop.
 * - Without (s3rver, old Ceph): write, wait SETTLE_MS, read back; the taker whose record is there holds it, the
 *   others meet it and are refused. Exclusion then holds only if no taker takes longer than SETTLE_MS between
 *   reading "free" and writing; a violation is found at the next heartbeat, which reads before it writes.
 *   That is enough to stop a second writer started by mistake; it is not a fence against a racing one.
 */
import { FreshrecError } from "@freshrec/core";
import { openObjectStore, type ObjectStore } from "./object-store.js";
import { isObjectStoreUri, resolveObjectStorage, type ObjectStorage } from "./storage-options.js";
import { StoreLockedError, WriterLockHolderSchema, acquireWriterLock, isDead, newHolder, type WriterLock, type WriterLockHolder, type WriterLockOptions } from "./writer-lock.js";

const LEASE_KEY = "writer.lock";
/** Without conditional writes: how long a taker waits before reading its write back. */
const SETTLE_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The store's writer lock wherever it lives: a lock file in a local store, a lease object on object storage. */
export async function acquireStoreWriterLock(storeUri: string, opts: WriterLockOptions & { storage?: ObjectStorage }): Promise<WriterLock> {
  if (!isObjectStoreUri(storeUri)) return acquireWriterLock(storeUri, opts);
  const objects = openObjectStore(storeUri, opts.storage ?? resolveObjectStorage(undefined));
  const staleMs = opts.staleMs ?? 60_000;
  const heartbeatMs = opts.heartbeatMs ?? Math.max(1000, Math.floor(staleMs / 4));
  const conditional = await objects.conditionalWrites();
  const mine = newHolder(opts.command);
  const body = (h: WriterLockHolder) => JSON.stringify(h);
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = await readLease(objects);
    if (current?.holder) {
      if (process.env.FRESHREC_WRITER_TOKEN === current.holder.token) return { holder: current.holder, owned: false, release() {} };
      if (!isDead(current.holder, staleMs)) throw new StoreLockedError(storeUri, current.holder);
    }
    // Free, dead, or not a lease record (an object store's PUT is atomic: unreadable means foreign debris).
    const put = await objects.put(LEASE_KEY, body(mine), conditional ? (current ? { ifMatch: current.etag } : { ifNoneMatch: true }) : undefined);
    if (put === "precondition-failed") continue;
    if (!conditional) {
      await sleep(SETTLE_MS);
      const back = await readLease(objects);
      if (back?.holder?.token !== mine.token) continue; // another taker wrote after us: the next round meets it
    }
    return heldLease(objects, mine, { conditional, heartbeatMs, ...(opts.onLost ? { onLost: opts.onLost } : {}) });
  }
  throw new FreshrecError("store-locked", `could not take the writer lease of ${storeUri}: it changed hands 20 times while trying`);
}

async function readLease(objects: ObjectStore): Promise<{ holder: WriterLockHolder | null; etag: string } | null> {
  const got = await objects.get(LEASE_KEY);
  if (!got) return null;
  let holder: WriterLockHolder | null = null;
  try {
    holder = WriterLockHolderSchema.parse(JSON.parse(got.body.toString("utf8")));
  } catch {
    holder = null;
  }
  return { holder, etag: got.etag };
}

function heldLease(
  objects: ObjectStore,
  holder: WriterLockHolder,
  o: { conditional: boolean; heartbeatMs: number; onLost?: WriterLockOptions["onLost"] },
): WriterLock {
  let released = false;
  let beating: Promise<void> = Promise.resolve();
  const lost = (by: WriterLockHolder | null) => {
    released = true;
    clearInterval(timer);
    o.onLost?.(by);
  };
  const beat = async () => {
    const current = await readLease(objects);
    if (released) return;
    if (current?.holder?.token !== holder.token) {
      lost(current?.holder ?? null);
      return;
    }
    const put = await objects.put(LEASE_KEY, JSON.stringify({ ...holder, heartbeatAt: Date.now() }), o.conditional ? { ifMatch: current.etag } : undefined);
    if (put === "precondition-failed") lost((await readLease(objects))?.holder ?? null);
  };
  const timer = setInterval(() => {
    // A failed heartbeat (the store unreachable for a moment) is retried at the next one; staleness decides.
    beating = beating.then(beat).catch(() => undefined);
  }, o.heartbeatMs);
  timer.unref();
  return {
    holder,
    owned: true,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await beating;
      const current = await readLease(objects);
      if (current?.holder?.token === holder.token) await objects.delete(LEASE_KEY);
    },
  };
}
