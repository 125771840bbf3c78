import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { FreshrecError, pidAlive } from "@freshrec/core";

/** Who holds a store's writer lock: written to `<store>/writer.lock`, read back by anyone who wants to write. */
export const WriterLockHolderSchema = z.strictObject({
  pid: z.number().int().positive(),
  host: z.string(),
  command: z.string(),
  startedAt: z.number().int(),
  /** Refreshed while the holder lives; a lock whose heartbeat is older than its staleness bound is dead. */
  heartbeatAt: z.number().int(),
  /** Handed to the holder's own job processes (FRESHREC_WRITER_TOKEN) so they may write the store it holds. */
  token: z.string().min(16),
});
export type WriterLockHolder = z.infer<typeof WriterLockHolderSchema>;

export class StoreLockedError extends FreshrecError {
  constructor(
    readonly storeUri: string,
    readonly holder: WriterLockHolder,
  ) {
    super(
      "store-locked",
      `store ${storeUri} is being written by '${holder.command}' (pid ${holder.pid} on ${holder.host}, since ${new Date(holder.startedAt).toISOString()}): ` +
        "a store has one writer. Stop that process first, or serve reads from it with 'freshrec serve --role replica'.",
    );
  }
}

export interface WriterLock {
  readonly holder: WriterLockHolder;
  /** Whether this process took the lock (false: it writes on behalf of its parent, which holds it). */
  readonly owned: boolean;
  /** Gives the lock up (a lease on an object store: resolves once the lock object is deleted). */
  release(): void | Promise<void>;
}

export interface WriterLockOptions {
  /** What is writing, named to anyone refused (e.g. "freshrec serve"). */
  command: string;
  /** A holder whose heartbeat is older than this is dead, whatever host it ran on (default 60 s). */
  staleMs?: number;
  heartbeatMs?: number;
  /** Called when another process took the lock from us (we stalled past staleMs): stop writing. */
  onLost?: (by: WriterLockHolder | null) => void;
}

const LOCK_FILE = "writer.lock";

/** Local stores only: object stores need a conditional write to lock with, which this does not attempt. */
const isLocal = (uri: string) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(uri);

function readHolder(path: string): WriterLockHolder | "unreadable" | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  try {
    return WriterLockHolderSchema.parse(JSON.parse(text));
  } catch {
    return "unreadable";
  }
}

/** Dead: a process of this host that is gone, or any holder whose heartbeat stopped. */
export function isDead(h: WriterLockHolder, staleMs: number): boolean {
  if (h.host === hostname() && !pidAlive(h.pid)) return true;
  return Date.now() - h.heartbeatAt > staleMs;
}

/** A holder record for this process, with a fresh token. */
export function newHolder(command: string): WriterLockHolder {
  const now = Date.now();
  return { pid: process.pid, host: hostname(), command, startedAt: now, heartbeatAt: now, token: randomBytes(16).toString("hex") };
}

function writeNew(path: string, holder: WriterLockHolder): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, JSON.stringify(holder));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Takes the single-writer lock of a local store, or throws StoreLockedError naming the holder. A lock left by
 * a dead holder (crash, kill -9, a host whose heartbeat stopped) is taken over: the stale file is renamed
 * away under a name only one taker can claim, so two processes racing for a dead lock cannot both win.
 * A process started by the holder with its token (FRESHREC_WRITER_TOKEN) writes under the holder's lock.
 */
export function acquireWriterLock(storeUri: string, opts: WriterLockOptions): WriterLock {
  const staleMs = opts.staleMs ?? 60_000;
  const heartbeatMs = opts.heartbeatMs ?? Math.max(1000, Math.floor(staleMs / 4));
  const mine = newHolder(opts.command);
  if (!isLocal(storeUri)) throw new FreshrecError("usage", `${storeUri} is on object storage: take its writer lock with acquireStoreWriterLock`);
  mkdirSync(storeUri, { recursive: true });
  const path = join(storeUri, LOCK_FILE);
  for (let attempt = 0; attempt < 20; attempt++) {
    if (writeNew(path, mine)) return heldLock(path, mine, heartbeatMs, opts.onLost);
    const holder = readHolder(path);
    if (holder === null) continue; // released between our tries
    if (holder === "unreadable") {
      // A holder still writing its file is a few microseconds old; an unreadable file older than a second is debris.
      if (Date.now() - statSync(path, { throwIfNoEntry: false })!.mtimeMs < 1000) continue;
      takeOver(path, null);
      continue;
    }
    if (process.env.FRESHREC_WRITER_TOKEN === holder.token) return { holder, owned: false, release() {} };
    if (!isDead(holder, staleMs)) throw new StoreLockedError(storeUri, holder);
    takeOver(path, holder);
  }
  throw new FreshrecError("store-locked", `could not take the writer lock of ${storeUri}: it changed hands 20 times while trying`);
}

/** Moves a dead holder's file aside; the rename succeeds for one taker only, the others retry and meet the winner's lock. */
function takeOver(path: string, dead: WriterLockHolder | null): void {
  const aside = `${path}.dead-${dead?.token ?? "unreadable"}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  // Between our read and the rename a winner may have replaced the dead file: if what we moved is not the dead one, put it back.
  const moved = readHolder(aside);
  if (dead && moved !== "unreadable" && moved !== null && moved.token !== dead.token) {
    try {
      linkSync(aside, path); // never over a lock a third process took meanwhile
    } catch {
      /* that one wins; the one we moved learns it lost at its next heartbeat */
    }
    unlinkSync(aside);
    return;
  }
  unlinkSync(aside);
}

function heldLock(path: string, holder: WriterLockHolder, heartbeatMs: number, onLost?: WriterLockOptions["onLost"]): WriterLock {
  let released = false;
  const timer = setInterval(() => {
    const current = readHolder(path);
    if (current === null || current === "unreadable" || current.token !== holder.token) {
      clearInterval(timer);
      released = true;
      onLost?.(current === "unreadable" ? null : current);
      return;
    }
    const beat = { ...holder, heartbeatAt: Date.now() };
    const tmp = `${path}.${holder.token}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, JSON.stringify(beat));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  }, heartbeatMs);
  timer.unref();
  const release = () => {
    if (released) return;
    released = true;
    clearInterval(timer);
    const current = readHolder(path);
    if (current !== null && current !== "unreadable" && current.token === holder.token) unlinkSync(path);
  };
  process.once("exit", release);
  return { holder, owned: true, release };
}
