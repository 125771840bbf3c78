/**
 * The one place LanceDB and apache-arrow are loaded. LanceDB is CommonJS: loading arrow through the same
 * `require` keeps a single arrow copy (two copies make Arrow inserts fail with "schemas must be equivalent").
 */
import { createRequire } from "node:module";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { hostname, tmpdir } from "node:os";
import type * as ArrowNs from "apache-arrow";
import type * as LanceNs from "@lancedb/lancedb";

// LanceDB logs WARN lines for routine events; keep them quiet unless the user asks.
process.env.LANCEDB_LOG ??= "error";

const require = createRequire(import.meta.url);
export const arrow = require("apache-arrow") as typeof ArrowNs;
export const lancedb = require("@lancedb/lancedb") as typeof LanceNs;
export type Connection = LanceNs.Connection;
export type LanceTable = LanceNs.Table;
export type ArrowTable = ArrowNs.Table;

/** True for a plain directory path (no scheme such as s3:// or gs://). */
export const isLocalUri = (uri: string): boolean => !/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) || uri.startsWith("file://");

const lanceTmpRoot = (storeUri: string) => (isLocalUri(storeUri) ? join(storeUri.replace(/^file:\/\//, ""), ".lance-tmp") : join(tmpdir(), "freshrec-lance"));
const processTmpName = () => `${hostname()}-${process.pid}`;

/**
 * LanceDB leaves temporary folders behind: IVF index builds their shuffle files, and a large BTREE build
 * (~200k long ids and up) a spill folder that the process keeps reusing for later builds. Runs `fn` with
 * TMPDIR pointed at this process's folder under the store's `.lance-tmp`, so nothing piles up in the
 * system's temp folder. That folder is never emptied while the process lives: emptying it after each build
 * made every later large build fail (measured: "No such file or directory" in the deleted spill folder).
 * removeStaleLanceTmp() deletes the folders of processes that are gone.
 */
export async function withLanceTmp<T>(storeUri: string, fn: () => Promise<T>): Promise<T> {
  const dir = join(lanceTmpRoot(storeUri), processTmpName());
  mkdirSync(dir, { recursive: true });
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
  }
}

/** Removes the temporary folders of this host's processes that are no longer alive (and loose ones of older versions). */
export function removeStaleLanceTmp(storeUri: string): void {
  const root = lanceTmpRoot(storeUri);
  if (!existsSync(root)) return;
  const host = `${hostname()}-`;
  for (const entry of readdirSync(root)) {
    const pid = entry.startsWith(host) ? Number(entry.slice(host.length)) : NaN;
    const mine = Number.isInteger(pid) && isAlive(pid);
    if (!mine && (entry.startsWith(host) || entry.startsWith(".tmp"))) rmSync(join(root, entry), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
