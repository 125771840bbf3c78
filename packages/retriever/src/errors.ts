import { FreshrecError } from "@freshrec/core";

/** The store at `uri` was written by another schema version (or with another k) than this code reads. */
export class IncompatibleStoreError extends FreshrecError {
  constructor(readonly uri: string, detail: string) {
    super("store_incompatible", `store ${uri} is incompatible: ${detail}`);
  }
}

/** One table of the store is missing or unreadable; the message says what to do. The other tables stay usable. */
export class StoreTableError extends FreshrecError {
  constructor(readonly uri: string, readonly table: string, remedy: string, cause: unknown) {
    super("store_table", `store ${uri}: table '${table}' is missing or unreadable (${cause instanceof Error ? cause.message.split("\n")[0] : String(cause)}). ${remedy}`, { cause });
  }
}

/** A request the store cannot satisfy as asked (e.g. vector-only items when clusters have no centroids). */
export class StoreUsageError extends FreshrecError {
  constructor(message: string) {
    super("store_usage", message);
  }
}
