/**
 * The one place LanceDB and apache-arrow are loaded. LanceDB is CommonJS: loading arrow through the same
 * `require` keeps a single arrow copy (two copies make Arrow inserts fail with "schemas must be equivalent").
 */
import { createRequire } from "node:module";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
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

/**
 * LanceDB index builds leave `$TMPDIR/.tmpXXXX` shuffle folders behind. Runs `fn` with TMPDIR pointed at a
 * folder owned by the store and removes what it left.
 */
export async function withLanceTmp<T>(storeUri: string, fn: () => Promise<T>): Promise<T> {
  const dir = isLocalUri(storeUri) ? join(storeUri.replace(/^file:\/\//, ""), ".lance-tmp") : join(tmpdir(), `freshrec-lance-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
  }
}
