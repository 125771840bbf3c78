/** The store's tables: names, Arrow schemas, and what to do when one is missing or unreadable. */
import { schema, vectorField } from "./columns.js";

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

/** Tables derived from events (rebuildable with `rebuildDerived()`). */
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

export const clustersSchema = (dim: number) => schema({ id: "int32", keywords: "utf8" }, dim > 0 ? [vectorField("vector", dim)] : []);
export const keyVectorsSchema = (dim: number) => schema({ key: "utf8", seq: "int32" }, [vectorField("vector", dim)]);

export function remedy(name: string): string {
  if ((DERIVED as readonly string[]).includes(name))
    return "It is derived from the events table: call store.rebuildDerived() (or run `freshrec import` again) to rebuild it.";
  if (name === TABLE.events) return "The events table is the store's log: restore the store from a backup or re-import into a new store.";
  if (name === TABLE.meta) return "Without it the store's schema version is unknown: re-import into a new store.";
  if (name === TABLE.predictions) return "Re-run the table refresh that writes prediction tables.";
  return "Re-run the import that writes items and clusters (they are upserted).";
}
