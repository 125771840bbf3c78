/** The store's tables: names, Arrow schemas, and what to do when one is missing or unreadable. */
import { schema, vectorField } from "./columns.js";
import { DiskFullError, StoreCorruptError, StoreDerivedMissingError, StoreTableError, StoreUnavailableError, failureKind, firstLine } from "./errors.js";

/** Bump when a table's layout changes; stores written with another version refuse to open. */
export const SCHEMA_VERSION = 1;

export const TABLE = {
  meta: "meta",
  events: "events",
  items: "items",
  clusters: "clusters",
  transitions: "transitions",
  userState: "user_state",
  folds: "folds",
  keyVectors: "key_vectors",
  predictions: "prediction_tables",
} as const;
export type TableName = (typeof TABLE)[keyof typeof TABLE];

/** Tables derived from events (rebuilt by `store.repair()` / `freshrec store repair`). */
export const DERIVED = [TABLE.transitions, TABLE.userState, TABLE.folds, TABLE.keyVectors] as const;

/** Schemas of the tables created with the store (clusters and key_vectors are created once the vector size is known). */
export const SCHEMAS = {
  [TABLE.meta]: schema({ key: "utf8", value: "utf8" }),
  /** The durable log. `seq` is the ingest batch that wrote the row. */
  [TABLE.events]: schema({ eventId: "utf8", userId: "utf8", itemId: "utf8", clusterId: "int32", ts: "float64", signal: "float64", seq: "int32" }),
  /** `vector`: the item's feature vector as JSON, when it came with one. */
  [TABLE.items]: schema({ itemId: "utf8", clusterId: "int32", vector: "utf8?" }),
  /** One row per novel positive transition, at millisecond resolution; `day` is the UTC day bucket. */
  [TABLE.transitions]: schema({ userId: "utf8", key: "utf8", next: "int32", ts: "float64", day: "int32", seq: "int32" }),
  /** Append-only: a user's state after batch `seq`; the latest folded row per user is current. */
  [TABLE.userState]: schema({ userId: "utf8", key: "utf8", lastTs: "float64", seq: "int32" }),
  /** Commit marker per batch, written last: batches with a fold row are complete (the watermark). */
  [TABLE.folds]: schema({ seq: "int32", events: "int32", transitions: "int32", minTs: "float64", maxTs: "float64" }),
  /** A prediction table: one `meta` row plus one row per key, all in one append; the highest `rev` per id wins. */
  [TABLE.predictions]: schema({ tableId: "utf8", rev: "float64", kind: "utf8", key: "utf8", payload: "utf8" }),
};

/**
 * The health probe's read per table: one small column with a filter no row passes, so every data file is
 * opened (a deleted or truncated file fails it) while nearly nothing is returned (~20 ms per million rows).
 */
export const PROBE: Record<TableName, { column: string; where?: string }> = {
  [TABLE.meta]: { column: "key" },
  [TABLE.events]: { column: "seq", where: "seq < 0" },
  [TABLE.items]: { column: "clusterId", where: "clusterId < 0" },
  [TABLE.clusters]: { column: "id", where: "id < 0" },
  [TABLE.transitions]: { column: "seq", where: "seq < 0" },
  [TABLE.userState]: { column: "seq", where: "seq < 0" },
  [TABLE.folds]: { column: "seq", where: "seq < 0" },
  [TABLE.keyVectors]: { column: "seq", where: "seq < 0" },
  [TABLE.predictions]: { column: "rev", where: "rev < 0" },
};

export const clustersSchema = (dim: number) => schema({ id: "int32", keywords: "utf8" }, dim > 0 ? [vectorField("vector", dim)] : []);
export const keyVectorsSchema = (dim: number) => schema({ key: "utf8", seq: "int32" }, [vectorField("vector", dim)]);

const repairCommand = (uri: string) => `\`freshrec store repair --store ${uri}\``;

/** What the user can run when table `name` of the store at `uri` is missing or unreadable. */
export function remedy(uri: string, name: string): string {
  if (isDerived(name)) return `It is derived from the events table: run ${repairCommand(uri)} (stop the store's writer first) to rebuild it.`;
  const lost = "restore the store folder from a backup, or re-import the source data into a new store (`freshrec import ... --store NEW_URI`)";
  if (name === TABLE.events) return `The events table is the store's log and cannot be rebuilt: \`freshrec store check --store ${uri}\` shows what is unreadable; ${lost}.`;
  if (name === TABLE.meta) return `Without it the store's settings (schema version, k, threshold) are unknown: ${lost}.`;
  if (name === TABLE.predictions) return `Prediction tables are model output: ${lost}, then run a table refresh.`;
  if (name === "served_answers") return `Served answers only feed the online quality figures: move the table's folder (${name}.lance) aside to start recording afresh, or ${lost}.`;
  return `Items and clusters come from the import: ${lost}.`;
}

export const isDerived = (name: string): boolean => (DERIVED as readonly string[]).includes(name);

/** The remedy of a full disk: the store is fine, only space is missing. */
const diskFullRemedy = (uri: string) => `The disk holding ${uri} is full; the store itself is intact (nothing to restore). Free disk space: writes resume by themselves.`;

/** A failure of an operation on table `name` as a typed store error (or `err` itself when it is not a storage failure). */
export function storeFault(uri: string, name: string, err: unknown): unknown {
  if (err instanceof StoreTableError) return err;
  const kind = failureKind(err);
  if (!kind) return err;
  const cause = firstLine(err);
  if (kind === "disk-full") return new DiskFullError(uri, name, `could not be written: the disk is full (${cause})`, diskFullRemedy(uri), err);
  if (kind === "unavailable")
    return new StoreUnavailableError(uri, name, `could not be read or written (${cause})`, `Check that ${uri} is reachable and readable by this process (mount, permissions, network), then retry.`, err);
  const detail = `is ${kind === "missing" ? "missing" : "unreadable"} (${cause})`;
  return isDerived(name) ? new StoreDerivedMissingError(uri, name, detail, remedy(uri, name), err) : new StoreCorruptError(uri, name, detail, remedy(uri, name), err);
}
