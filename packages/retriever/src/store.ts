/**
 * The freshrec store on LanceDB. Write order per ingest batch (numbered `seq`):
 *   1. events (the durable log),  2. transitions + user_state + key_vectors rows tagged with seq,
 *   3. one `folds` row for seq (the commit marker; the highest is the watermark).
 * Readers only see derived rows with seq <= watermark. A writer's first write runs recovery: it deletes
 * derived rows above the watermark and re-folds events above it, so re-running any import after a crash
 * gives exactly what a clean import gives. One writer process; any number of readers.
 */
import { z } from "zod";
import {
  ClusterSchema,
  DAY_MS,
  DEFAULT_POSITIVE_THRESHOLD,
  ValidationError,
  compareEvents,
  historyKey,
  issuesFromZod,
  parseHistoryKey,
  type Cluster,
  type Transition,
} from "@freshrec/core";
import { existsSync, statfsSync } from "node:fs";
import { lancedb, type Connection, type LanceTable, type ArrowTable, isLocalUri, removeStaleLanceTmp, withLanceTmp } from "./lance.js";
import { float64, floatRows, int32, maxOf, minOf, numbers, sqlString, strings, table, utf8, vectors } from "./columns.js";
import { DiskFullError, IncompatibleStoreError, StoreCorruptError, StoreTableError, StoreUsageError, failureKind, type StoreProblem } from "./errors.js";
import { DEFAULT_MAX_BATCH, foldBatch, validateBatch, type EventRow, type TransitionRow, type UserState } from "./ingest.js";
import { TransitionIndex } from "./transition-index.js";
import { rankWindow, type Ranked, type RankedSuccessor, type SuccessorMethod } from "./ranking.js";
import { DERIVED, PROBE, SCHEMAS, SCHEMA_VERSION, TABLE, isDerived, remedy, storeFault, type TableName } from "./tables.js";
import { keyEmbedding } from "./key-embedding.js";
import { isObjectStoreUri, lanceStorageOptions, resolveObjectStorage, type ObjectStorage } from "./storage-options.js";
import { ServedAnswerLog, SERVED_ANSWERS_TABLE } from "./served-answers.js";
import { DEFAULT_MAX_UNINDEXED_IDS, StoredIdFilter, fillFilter, indexEventIds, indexedIds, unindexedRows } from "./event-ids.js";

export type ProgressFn = (e: { phase: string; done: number; total?: number; info?: Record<string, number | string> }) => void;

export interface StoreOptions {
  /** History length (clusters per key). Defaults to the store's, or 2 for a new store. */
  k?: number;
  /** How stale a reader may be: LanceDB read consistency and the refresh period of in-memory indexes. Default 1000. */
  readConsistencyMs?: number;
  /** Signal at or above which an event is positive engagement. Defaults to the store's, or core's default. */
  positiveThreshold?: number;
  /** Largest accepted ingest batch. Default 100,000. */
  maxBatch?: number;
  /** Event ids the writer holds until it rebuilds the eventId index (bounds its memory). Default 500,000 (~55 MB). */
  maxUnindexedIds?: number;
  /** false: refuse to create a store where there is none (check and repair open existing stores only). Default true. */
  create?: boolean;
  /** How to reach an s3:// store; default: the AWS environment variables (storage-options.ts). */
  storage?: ObjectStorage;
}

export interface SuccessorResult {
  items: RankedSuccessor[];
  /** exact: the history key itself; last-cluster: all keys ending in the last cluster; neighbour: the nearest key by centroid embedding. */
  source: "exact" | "last-cluster" | "neighbour";
  /** The key the statistic was counted for. */
  key: string;
  /** Transitions counted in the window. */
  support: number;
}

export interface SuccessorQuery {
  asOf: number;
  windowMs: number;
  n: number;
  method?: SuccessorMethod;
  minSupport?: number;
}

export interface Snapshot {
  /** Lineage id: store version and window bounds (plus method and n). */
  id: string;
  storeVersion: number;
  start: number;
  end: number;
  n: number;
  method: SuccessorMethod;
  /** Every history key with at least minSupport transitions in [start, end). */
  entries: Map<string, SuccessorResult>;
  /** Per last cluster, for backoff. */
  lastCluster: Map<string, SuccessorResult>;
  /** Exact key if present, else the last cluster's statistic. */
  lookup(history: readonly number[]): SuccessorResult | undefined;
}

export interface PredictionTable {
  id: string;
  meta: Record<string, string | number>;
  rows: Array<{ key: string; clusters: number[]; probs: number[] }>;
}

export interface UserStateView {
  userId: string;
  clusters: number[];
  lastTs: number;
}

export interface MaintenanceResult {
  compacted: string[];
  fragments: number;
  versions: number;
}

export interface MaintenanceScheduleOptions {
  /** Versions older than this are pruned (see maintain()). Default 60 s. */
  olderThanMs?: number;
  onResult?: (r: MaintenanceResult) => void;
  /** A failed run is reported here and the schedule goes on (the next run may succeed, e.g. once disk space is back). */
  onError?: (err: unknown) => void;
}

/** What `store.health()` says: ok when every table opens and reads and the last write did not find the disk full. */
export interface StoreHealth {
  ok: boolean;
  checkedAt: number;
  problems: StoreProblem[];
}

export interface StoreCheckReport {
  uri: string;
  ok: boolean;
  /** rows: null where the table could not be read; absent: a table the store creates later (clusters, key_vectors). */
  tables: Array<{ name: string; rows: number | null; ok: boolean; absent?: boolean }>;
  /** The last completely folded batch. */
  watermark: number;
  events: number;
  /** Batches stored but not yet folded (a writer stopped mid-batch): the next write folds them. */
  pendingBatches: number;
  problems: StoreProblem[];
}

export interface StoreRepairReport {
  ok: boolean;
  /** Derived tables dropped and rebuilt from events (empty when nothing needed it or it was not safe). */
  rebuilt: string[];
  /** Problems repair cannot fix, each with its remedy (store data is never dropped to make a check pass). */
  unrecoverable: StoreProblem[];
  before: StoreCheckReport;
  after: StoreCheckReport;
}

/**
 * LanceDB's caches, per store. Its defaults (6 GB of index, 1 GB of metadata) let a writer's RSS grow with
 * every version and index rebuild it makes (~100 MB per million events ingested, measured). 256 MiB holds
 * the eventId index of ~20 M events.
 */
const INDEX_CACHE_BYTES = 256 * 2 ** 20;
const METADATA_CACHE_BYTES = 128 * 2 ** 20;

/** How long health() answers from its last probe. */
const HEALTH_CACHE_MS = 5000;
/** After a full disk, free space must grow by this much before health calls it over (writes also clear it). */
const DISK_HEADROOM_BYTES = 1 << 20;
/** A full-disk report on a store without statfs (object storage) expires after this. */
const DISK_FAULT_TTL_MS = 30_000;
/** Events read per query when re-folding stored batches (bounded memory whatever the store's size). */
const REFOLD_CHUNK = 200_000;

const DEFAULT_MIN_SUPPORT = 3;
const NEIGHBOURS = 16;

const PredictionTableSchema = z.object({
  id: z.string().min(1).max(256),
  meta: z.record(z.string(), z.union([z.string(), z.number()])),
  rows: z.array(
    z
      .object({ key: z.string(), clusters: z.array(z.number().int().nonnegative()), probs: z.array(z.number().finite()) })
      .refine((r) => r.clusters.length === r.probs.length, { message: "clusters and probs differ in length", path: ["probs"] }),
  ),
});

const PutItemSchema = z
  .object({ itemId: z.string().min(1).max(256), clusterId: z.number().int().nonnegative().optional(), vector: z.array(z.number().finite()).min(1).optional() })
  .refine((i) => i.clusterId !== undefined || i.vector !== undefined, { message: "an item needs a clusterId or a vector", path: ["clusterId"] });

/** What the writer keeps in memory between batches (built lazily, after recovery). */
interface WriterState {
  seq: number;
  /** Every stored id (a Bloom filter: a miss needs no lookup). */
  stored: StoredIdFilter;
  /** Ids appended since the eventId index was built (the index answers for the others); cleared by each rebuild. */
  unindexed: Set<string>;
  /** Whether the events table has its eventId index (built after the first batch of a new store). */
  indexed: boolean;
  users: Map<string, UserState>;
  items: Map<string, number>;
  vectorKeys: Set<string>;
}

interface ClusterCache {
  version: string;
  ids: Set<number>;
  centroids: Map<number, number[]>;
  dim: number;
}

export async function openStore(uri: string, opts: StoreOptions = {}): Promise<Store> {
  const readConsistencyMs = opts.readConsistencyMs ?? 1000;
  // connect() creates a missing folder: an existing-only open must look first.
  if (opts.create === false && isLocalUri(uri) && !existsSync(localPath(uri))) throw new StoreUsageError(`no store at ${uri}`);
  const storageOptions = isObjectStoreUri(uri) ? { storageOptions: lanceStorageOptions(opts.storage ?? resolveObjectStorage(undefined)) } : {};
  const db = await lancedb.connect(uri, { readConsistencyInterval: readConsistencyMs / 1000, ...storageOptions }, new lancedb.Session(BigInt(INDEX_CACHE_BYTES), BigInt(METADATA_CACHE_BYTES)));
  removeStaleLanceTmp(uri);
  const meta = await readMeta(uri, db);
  if (!meta) {
    // Events without settings: making up a k would silently misread them.
    const missing = (await storedEvents(uri, db)) > 0 ? new StoreCorruptError(uri, TABLE.meta, "is missing", remedy(uri, TABLE.meta)) : opts.create === false ? new StoreUsageError(`no store at ${uri}`) : undefined;
    if (missing) {
      db.close();
      throw missing;
    }
  }
  const settings = meta ?? (await createTables(uri, db, opts));
  const version = Number(settings.get("schema_version"));
  if (version !== SCHEMA_VERSION)
    throw new IncompatibleStoreError(uri, `it was written with schema version ${settings.get("schema_version")} and this freshrec reads version ${SCHEMA_VERSION}; re-import into a new store`);
  const k = Number(settings.get("k"));
  if (opts.k !== undefined && opts.k !== k) throw new IncompatibleStoreError(uri, `it was built with history length k=${k}, not k=${opts.k}; open it without k or use another store`);
  const threshold = Number(settings.get("positive_threshold"));
  if (opts.positiveThreshold !== undefined && opts.positiveThreshold !== threshold)
    throw new IncompatibleStoreError(uri, `it was built with positive threshold ${threshold}, not ${opts.positiveThreshold}`);
  return new Store(uri, db, { k, threshold, readConsistencyMs, maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH, maxUnindexedIds: opts.maxUnindexedIds ?? DEFAULT_MAX_UNINDEXED_IDS });
}

const localPath = (uri: string) => uri.replace(/^file:\/\//, "");

/** The store's settings, or null for a new store. Opened by name: listing tables is unreliable on object storage. */
async function readMeta(uri: string, db: Connection): Promise<Map<string, string> | null> {
  let metaTable: LanceTable;
  try {
    metaTable = await db.openTable(TABLE.meta);
  } catch (err) {
    if (failureKind(err) === "missing") return null;
    throw storeFault(uri, TABLE.meta, err);
  }
  try {
    const t = await metaTable.query().toArrow();
    const keys = strings(t, "key");
    const values = strings(t, "value");
    return new Map(keys.map((k, i) => [k, values[i]!]));
  } catch (err) {
    throw storeFault(uri, TABLE.meta, err);
  } finally {
    metaTable.close();
  }
}

/** Rows of the events table (0 when it does not exist: a store created up to, not including, its meta table). */
async function storedEvents(uri: string, db: Connection): Promise<number> {
  try {
    const events = await db.openTable(TABLE.events);
    try {
      return await events.countRows();
    } finally {
      events.close();
    }
  } catch (err) {
    if (failureKind(err) === "missing") return 0;
    throw storeFault(uri, TABLE.events, err);
  }
}

/** New store: the fixed tables, then meta last, so a half-created store is simply created again. */
async function createTables(uri: string, db: Connection, opts: StoreOptions): Promise<Map<string, string>> {
  const meta = new Map([
    ["schema_version", String(SCHEMA_VERSION)],
    ["k", String(opts.k ?? 2)],
    ["positive_threshold", String(opts.positiveThreshold ?? DEFAULT_POSITIVE_THRESHOLD)],
  ]);
  let name: string = TABLE.meta;
  try {
    for (const [n, s] of Object.entries(SCHEMAS)) {
      name = n;
      if (n !== TABLE.meta) await db.createEmptyTable(n, s, { mode: "create", existOk: true });
    }
    name = TABLE.meta;
    await db.createTable(TABLE.meta, table({ key: utf8([...meta.keys()]), value: utf8([...meta.values()]) }), { mode: "create", existOk: true });
  } catch (err) {
    throw storeFault(uri, name, err);
  }
  return meta;
}

export class Store {
  readonly k: number;
  /** Signal at or above which an event counts as positive engagement (fixed per store). */
  readonly positiveThreshold: number;
  private readonly readConsistencyMs: number;
  private readonly maxBatch: number;
  private readonly maxUnindexedIds: number;
  private readonly handles = new Map<string, Promise<LanceTable>>();
  private queue: Promise<unknown> = Promise.resolve();
  private writer?: WriterState;
  private index?: TransitionIndex;
  private indexSeq = 0;
  private indexCheckedAt = 0;
  private indexLoading?: Promise<TransitionIndex>;
  private clusterCache?: ClusterCache;
  private neighbourCache = new Map<string, string[]>();
  private neighbourVersion = -1;
  private maintenanceTimer?: NodeJS.Timeout;
  private healthProbe?: { at: number; result: Promise<StoreHealth>; settled: boolean };
  /** The last write that found the disk full, and the free space then (health reports it until space grows). */
  private diskFault?: { problem: StoreProblem; at: number; freeBytes?: number };
  /** What the server answered (online quality); written by the writer in batches. */
  readonly servedAnswers: ServedAnswerLog;

  constructor(
    readonly uri: string,
    private readonly db: Connection,
    cfg: { k: number; threshold: number; readConsistencyMs: number; maxBatch: number; maxUnindexedIds: number },
  ) {
    this.k = cfg.k;
    this.positiveThreshold = cfg.threshold;
    this.readConsistencyMs = cfg.readConsistencyMs;
    this.maxBatch = cfg.maxBatch;
    this.maxUnindexedIds = cfg.maxUnindexedIds;
    this.servedAnswers = new ServedAnswerLog(uri, db);
  }

  // ---------------------------------------------------------------- tables

  /** Runs `fn` on a table; a storage failure becomes a typed StoreTableError naming the table and its remedy. */
  private async on<T>(name: TableName, fn: (t: LanceTable) => Promise<T>): Promise<T> {
    let handle = this.handles.get(name);
    if (!handle) {
      handle = this.db.openTable(name);
      this.handles.set(name, handle);
    }
    try {
      return await fn(await handle);
    } catch (err) {
      const fault = storeFault(this.uri, name, err);
      if (fault instanceof StoreTableError) {
        this.handles.delete(name);
        this.noteFault(fault);
      }
      throw fault;
    }
  }

  /** A failure makes the next health() probe afresh (not the probe's own); a full disk is remembered until space grows or a write succeeds. */
  private noteFault(fault: StoreTableError): void {
    if (this.healthProbe?.settled) this.healthProbe = undefined;
    if (fault instanceof DiskFullError) this.diskFault = { problem: fault.problem, at: Date.now(), freeBytes: this.freeBytes() };
  }

  private freeBytes(): number | undefined {
    if (!isLocalUri(this.uri)) return undefined;
    try {
      const fs = statfsSync(localPath(this.uri));
      return fs.bavail * fs.bsize;
    } catch {
      return undefined;
    }
  }

  /** The store's tables that exist now. */
  private async tableNames(): Promise<string[]> {
    if (isLocalUri(this.uri)) return this.db.tableNames();
    const present: string[] = [];
    for (const name of [...Object.values(TABLE), SERVED_ANSWERS_TABLE]) if (await this.exists(name)) present.push(name);
    return present;
  }

  private async exists(name: string): Promise<boolean> {
    if (isLocalUri(this.uri)) return (await this.db.tableNames()).includes(name);
    // Listing tables is unreliable on object storage (s3rver lists none): open by name instead.
    try {
      (await this.db.openTable(name)).close();
      return true;
    } catch (err) {
      if (failureKind(err) === "missing") return false;
      throw storeFault(this.uri, name, err);
    }
  }

  /**
   * For tables that come and go (clusters and key_vectors are created once their vector size is known):
   * absent, or not yet committed while the writer creates it, gives `absent` instead of an error.
   */
  private async optional<T>(name: TableName, absent: T, fn: (t: LanceTable) => Promise<T>): Promise<T> {
    if (!(await this.exists(name))) return absent;
    try {
      return await this.on(name, fn);
    } catch (err) {
      if (err instanceof StoreTableError && failureKind(err.cause) === "missing") return absent;
      throw err;
    }
  }

  private async rows(name: TableName, filter?: string, columns?: string[]): Promise<ArrowTable> {
    return this.on(name, (t) => {
      let q = t.query();
      if (filter) q = q.where(filter);
      if (columns) q = q.select(columns);
      return q.toArrow();
    });
  }

  /** Writes run one at a time (one writer per process; one writer process per store). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // ---------------------------------------------------------------- watermark, version

  /** The highest completely folded batch (0 for an empty store). */
  private async watermark(after = 0): Promise<number> {
    const seqs = numbers(await this.rows(TABLE.folds, after > 0 ? `seq > ${after}` : undefined, ["seq"]), "seq");
    return maxOf(seqs, after);
  }

  /** A monotone version for lineage: the number of the last completely folded batch. */
  async version(): Promise<number> {
    return this.watermark();
  }

  // ---------------------------------------------------------------- clusters and items

  private async clusterInfo(): Promise<ClusterCache> {
    const none: ClusterCache = { version: "none", ids: new Set(), centroids: new Map(), dim: 0 };
    const version = await this.optional(TABLE.clusters, "none", async (t) => String(await t.version()));
    if (version === "none") return none;
    if (this.clusterCache?.version === version) return this.clusterCache;
    const t = await this.rows(TABLE.clusters);
    const ids = numbers(t, "id");
    const vecs = t.getChild("vector") ? floatRows(t, "vector") : [];
    const centroids = new Map(vecs.map((v, i) => [ids[i]!, v]));
    this.clusterCache = { version, ids: new Set(ids), centroids, dim: vecs[0]?.length ?? 0 };
    return this.clusterCache;
  }

  async clusters(): Promise<Cluster[]> {
    if (!(await this.exists(TABLE.clusters))) return [];
    const t = await this.rows(TABLE.clusters);
    const ids = numbers(t, "id");
    const keywords = strings(t, "keywords");
    const vecs = t.getChild("vector") ? floatRows(t, "vector") : [];
    return ids
      .map((id, i) => ({ id, keywords: JSON.parse(keywords[i]!) as string[], ...(vecs[i] ? { centroid: vecs[i]! } : {}) }))
      .sort((a, b) => a.id - b.id);
  }

  /** Upserts clusters by id. Centroids are all-or-none and of one size; changing them re-embeds history keys. */
  putClusters(input: Cluster[]): Promise<void> {
    return this.serial(async () => {
      const parsed = input.map((c, i) => {
        const r = ClusterSchema.safeParse(c);
        if (!r.success) throw new ValidationError(`putClusters [${i}]`, issuesFromZod(r.error, c));
        return r.data;
      });
      const merged = new Map((await this.clusters()).map((c) => [c.id, c]));
      for (const c of parsed) merged.set(c.id, c);
      const all = [...merged.values()].sort((a, b) => a.id - b.id);
      const dims = new Set(all.map((c) => c.centroid?.length ?? 0));
      if (dims.size > 1) throw new ValidationError("putClusters", [{ path: "centroid", message: `centroids must all be present and of one size; got sizes ${[...dims].join(", ")}` }]);
      const dim = [...dims][0] ?? 0;
      const columns = { id: int32(all.map((c) => c.id)), keywords: utf8(all.map((c) => JSON.stringify(c.keywords))) };
      const data = table(dim > 0 ? { ...columns, vector: vectors(all.map((c) => c.centroid!), dim) } : columns);
      this.handles.delete(TABLE.clusters);
      await this.db.createTable(TABLE.clusters, data, { mode: "overwrite" });
      this.clusterCache = undefined;
      await this.rebuildKeyVectors();
    });
  }

  /** Upserts items; an item with a vector and no cluster gets the nearest centroid. */
  putItems(input: Array<{ itemId: string; clusterId?: number; vector?: number[] }>): Promise<{ assigned: number }> {
    return this.serial(async () => {
      const info = await this.clusterInfo();
      const issues = input.flatMap((item, i) => {
        const r = PutItemSchema.safeParse(item);
        if (!r.success) return issuesFromZod(r.error, item).map((f) => ({ ...f, path: `[${i}].${f.path}` }));
        if (item.clusterId !== undefined && !info.ids.has(item.clusterId)) return [{ path: `[${i}].clusterId`, message: "unknown cluster", value: item.clusterId }];
        if (item.clusterId === undefined && item.vector!.length !== info.dim)
          return [{ path: `[${i}].vector`, message: info.dim ? `expected ${info.dim} numbers (the centroid size)` : "clusters have no centroids to match against", value: item.vector!.length }];
        return [];
      });
      if (issues.length) throw new ValidationError("putItems", issues.slice(0, 20));
      const byId = new Map(input.map((i) => [i.itemId, i]));
      const items = [...byId.values()];
      const clusterIds: number[] = [];
      let assigned = 0;
      const CONCURRENT = 16;
      for (let i = 0; i < items.length; i += CONCURRENT) {
        const part = items.slice(i, i + CONCURRENT);
        const ids = await Promise.all(
          part.map(async (item) => {
            if (item.clusterId !== undefined) return item.clusterId;
            assigned++;
            return this.nearestCluster(item.vector!);
          }),
        );
        clusterIds.push(...ids);
      }
      const data = table({
        itemId: utf8(items.map((i) => i.itemId)),
        clusterId: int32(clusterIds),
        vector: utf8(items.map((i) => (i.vector ? JSON.stringify(i.vector) : null))),
      });
      await this.on(TABLE.items, async (t) => {
        await t.checkoutLatest(); // a stale handle can insert duplicates in mergeInsert (lancedb#3377)
        await t.mergeInsert("itemId").whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(data);
      });
      items.forEach((item, i) => this.writer?.items.set(item.itemId, clusterIds[i]!));
      return { assigned };
    });
  }

  private async nearestCluster(vector: number[]): Promise<number> {
    const hit = await this.on(TABLE.clusters, (t) => t.vectorSearch(vector).column("vector").select(["id"]).limit(1).toArray());
    return Number(hit[0]!.id);
  }

  async itemClusters(itemIds: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const CHUNK = 1000;
    for (let i = 0; i < itemIds.length; i += CHUNK) {
      const list = itemIds.slice(i, i + CHUNK).map(sqlString).join(",");
      const t = await this.rows(TABLE.items, `itemId IN (${list})`, ["itemId", "clusterId"]);
      const ids = strings(t, "itemId");
      numbers(t, "clusterId").forEach((c, j) => out.set(ids[j]!, c));
    }
    return out;
  }

  // ---------------------------------------------------------------- ingest and recovery

  /**
   * Appends a batch: validated as a whole first (nothing stored if any event is bad), idempotent by
   * eventId, resolved only once the events and everything derived from them are committed.
   */
  ingest(events: unknown[], opts: { onProgress?: ProgressFn } = {}): Promise<{ accepted: number; duplicates: number }> {
    return this.serial(async () => {
      const w = await this.writerState();
      const info = await this.clusterInfo();
      const rows = validateBatch(events, { itemClusters: w.items, clusterIds: info.ids, maxBatch: this.maxBatch, where: "ingest" });
      const fresh = await this.unstored(w, rows);
      const duplicates = rows.length - fresh.length;
      if (fresh.length === 0) return { accepted: 0, duplicates };
      const seq = w.seq + 1;
      try {
        await this.on(TABLE.events, (t) => t.add(eventTable(fresh, seq)));
        w.seq = seq;
        for (const r of fresh) {
          w.stored.add(r.eventId);
          w.unindexed.add(r.eventId);
        }
        opts.onProgress?.({ phase: "ingest", done: 1, total: 2, info: { events: fresh.length } });
        await this.foldAndCommit(w, fresh, seq);
        opts.onProgress?.({ phase: "ingest", done: 2, total: 2, info: { events: fresh.length } });
        this.diskFault = undefined;
        if (!w.indexed || w.unindexed.size >= this.maxUnindexedIds) {
          await this.on(TABLE.events, (t) => indexEventIds(this.uri, t));
          w.unindexed.clear();
          w.indexed = true;
        }
      } catch (err) {
        this.writer = undefined; // the next write starts over with recovery
        throw err;
      }
      return { accepted: fresh.length, duplicates };
    });
  }

  /** The rows of a batch not stored yet, first occurrence of each id (see event-ids.ts for the three layers asked). */
  private async unstored(w: WriterState, rows: EventRow[]): Promise<EventRow[]> {
    const seen = new Set<string>();
    const candidates = rows.filter((r) => !seen.has(r.eventId) && seen.add(r.eventId) && !w.unindexed.has(r.eventId));
    const ids = candidates.filter((r) => w.stored.mightHave(r.eventId)).map((r) => r.eventId);
    const stored = ids.length ? await this.on(TABLE.events, (t) => indexedIds(t, ids)) : new Set<string>();
    return candidates.filter((r) => !stored.has(r.eventId));
  }

  /** Writes the derived rows of batch `seq`, then its commit marker. */
  private async foldAndCommit(w: WriterState, rows: EventRow[], seq: number): Promise<void> {
    const { transitions, changed } = foldBatch(rows, w.users, { k: this.k, threshold: this.positiveThreshold });
    const newKeys = [...new Set(transitions.map((t) => t.key))].filter((key) => !w.vectorKeys.has(key));
    const keyRows = await this.keyVectorTable(newKeys, seq);
    const writes: Promise<unknown>[] = [];
    if (transitions.length) writes.push(this.on(TABLE.transitions, (t) => t.add(transitionTable(transitions, seq))));
    if (changed.size) writes.push(this.on(TABLE.userState, (t) => t.add(userStateTable(changed, seq))));
    if (keyRows) writes.push(this.writeKeyVectors(keyRows, "append"));
    await Promise.all(writes);
    let minTs = Infinity;
    let maxTs = -Infinity;
    for (const r of rows) {
      if (r.ts < minTs) minTs = r.ts;
      if (r.ts > maxTs) maxTs = r.ts;
    }
    const fold = table({ seq: int32([seq]), events: int32([rows.length]), transitions: int32([transitions.length]), minTs: float64([minTs]), maxTs: float64([maxTs]) });
    await this.on(TABLE.folds, (t) => t.add(fold));
    for (const [user, state] of changed) w.users.set(user, state);
    if (keyRows) for (const key of newKeys) w.vectorKeys.add(key);
    if (this.index && this.indexSeq === seq - 1) {
      for (const t of transitions) this.index.add(t.key, t.next, t.ts);
      this.indexSeq = seq;
    }
  }

  private async writerState(): Promise<WriterState> {
    if (!this.writer) this.writer = await this.recover();
    return this.writer;
  }

  /** Re-folds every batch above the watermark after removing its partial derived rows; loads the writer's state. */
  private async recover(onProgress?: ProgressFn): Promise<WriterState> {
    const watermark = await this.watermark();
    for (const name of [TABLE.transitions, TABLE.userState, TABLE.keyVectors] as const) {
      if (name === TABLE.keyVectors && !(await this.exists(name))) continue;
      await this.on(name, async (t) => {
        if ((await t.countRows(`seq > ${watermark}`)) > 0) await t.delete(`seq > ${watermark}`);
      });
    }
    const users = new Map<string, UserState & { seq: number }>();
    const us = await this.rows(TABLE.userState);
    const uIds = strings(us, "userId");
    const uKeys = strings(us, "key");
    const uTs = numbers(us, "lastTs");
    numbers(us, "seq").forEach((seq, i) => {
      const prev = users.get(uIds[i]!);
      if (!prev || prev.seq < seq) users.set(uIds[i]!, { clusters: parseHistoryKey(uKeys[i]!), lastTs: uTs[i]!, seq });
    });
    const stored = new StoredIdFilter();
    await this.on(TABLE.events, (t) => fillFilter(stored, t));
    // Every stored id must be indexed or held in memory: index what an earlier process left unindexed.
    const indexed = await this.on(TABLE.events, async (t) => {
      const unindexed = await unindexedRows(t);
      if (unindexed === 0) return true;
      if (unindexed === null && (await t.countRows()) === 0) return false;
      await indexEventIds(this.uri, t);
      return true;
    });
    const pending = batchSizes(await this.rows(TABLE.events, `seq > ${watermark}`, ["seq"]));
    const it = await this.rows(TABLE.items, undefined, ["itemId", "clusterId"]);
    const itemIds = strings(it, "itemId");
    const items = new Map(numbers(it, "clusterId").map((c, i) => [itemIds[i]!, c]));
    const vectorKeys = (await this.exists(TABLE.keyVectors)) ? new Set(strings(await this.rows(TABLE.keyVectors, undefined, ["key"]), "key")) : new Set<string>();
    const state: WriterState = { seq: maxOf([...pending.keys()], watermark), stored, unindexed: new Set(), indexed, users, items, vectorKeys };
    await this.refold(state, pending, onProgress);
    return state;
  }

  /** Folds stored batches (seq -> event count) in order, reading at most REFOLD_CHUNK events at a time. */
  private async refold(state: WriterState, pending: Map<number, number>, onProgress?: ProgressFn): Promise<void> {
    const seqs = [...pending.keys()].sort((a, b) => a - b);
    let done = 0;
    for (let i = 0; i < seqs.length; ) {
      let j = i;
      for (let n = 0; j < seqs.length && (j === i || n + pending.get(seqs[j]!)! <= REFOLD_CHUNK); j++) n += pending.get(seqs[j]!)!;
      const bySeq = new Map<number, EventRow[]>();
      for (const { row, seq } of eventRows(await this.rows(TABLE.events, `seq >= ${seqs[i]} AND seq <= ${seqs[j - 1]}`))) {
        let list = bySeq.get(seq);
        if (!list) bySeq.set(seq, (list = []));
        list.push(row);
      }
      for (const seq of seqs.slice(i, j)) {
        await this.foldAndCommit(state, bySeq.get(seq)!, seq);
        onProgress?.({ phase: "fold batches", done: ++done, total: seqs.length });
      }
      i = j;
    }
  }

  /** Drops and rebuilds every table derived from events (after one was lost or corrupted). */
  private rebuildDerived(onProgress?: ProgressFn): Promise<void> {
    return this.serial(async () => {
      for (const name of DERIVED) {
        this.handles.delete(name);
        if (await this.exists(name)) await this.db.dropTable(name);
        if (name !== TABLE.keyVectors) await this.db.createEmptyTable(name, SCHEMAS[name], { mode: "create", existOk: true });
      }
      this.index = undefined;
      this.indexSeq = 0;
      this.writer = undefined;
      this.writer = await this.recover(onProgress);
    });
  }

  // ---------------------------------------------------------------- health, check and repair

  /**
   * A cheap probe of whether the store can serve and ingest: every table opens and each of its data files
   * reads (one small column, filtered to nothing), and the last write did not find the disk full. Answers
   * from the last probe for `maxAgeMs` (default 5 s); a failure of any store operation forces a new probe.
   */
  health(opts: { maxAgeMs?: number } = {}): Promise<StoreHealth> {
    const now = Date.now();
    if (this.healthProbe && now - this.healthProbe.at <= (opts.maxAgeMs ?? HEALTH_CACHE_MS)) return this.healthProbe.result;
    const probe = { at: now, result: this.probe(), settled: false };
    void probe.result.finally(() => (probe.settled = true)).catch(() => undefined);
    this.healthProbe = probe;
    return probe.result;
  }

  private async probe(): Promise<StoreHealth> {
    const problems: StoreProblem[] = [];
    for (const name of Object.values(TABLE)) {
      const { column, where } = PROBE[name];
      try {
        await this.on(name, (t) => (where ? t.query().where(where) : t.query()).select([column]).toArrow());
      } catch (err) {
        if (!(err instanceof StoreTableError)) throw err;
        // clusters and key_vectors are created later in a store's life: absent is fine
        if ((name === TABLE.clusters || name === TABLE.keyVectors) && failureKind(err.cause) === "missing") continue;
        problems.push(err.problem);
      }
    }
    const disk = this.diskFault;
    if (disk) {
      const free = this.freeBytes();
      const over = free !== undefined && disk.freeBytes !== undefined ? free >= disk.freeBytes + DISK_HEADROOM_BYTES : Date.now() - disk.at > DISK_FAULT_TTL_MS;
      if (over) this.diskFault = undefined;
      else problems.push(disk.problem);
    }
    return { ok: problems.length === 0, checkedAt: Date.now(), problems };
  }

  /**
   * Reads every row of every table and checks the derived tables against events: per folded batch, the
   * events and transitions its commit marker counts. Problems carry their remedy; nothing is changed.
   */
  async check(opts: { onProgress?: ProgressFn } = {}): Promise<StoreCheckReport> {
    const problems: StoreProblem[] = [];
    const tables: StoreCheckReport["tables"] = [];
    const perSeq = { events: new Map<number, number>(), transitions: new Map<number, number>() };
    const folds = new Map<number, { events: number; transitions: number }>();
    let centroids = false;
    for (const name of Object.values(TABLE)) {
      try {
        const rows = await this.on(name, async (t) => {
          const total = await t.countRows();
          let done = 0;
          for await (const batch of t.query()) {
            done += batch.numRows;
            if (name === TABLE.events || name === TABLE.transitions) countInto(perSeq[name], batch.getChild("seq")!.toArray() as Int32Array);
            if (name === TABLE.folds) {
              const [seq, ev, tr] = ["seq", "events", "transitions"].map((c) => batch.getChild(c)!.toArray() as Int32Array);
              seq!.forEach((s, i) => folds.set(s, { events: ev![i]!, transitions: tr![i]! }));
            }
            if (name === TABLE.clusters && batch.getChild("vector")) centroids = true;
            opts.onProgress?.({ phase: `check ${name}`, done, total });
          }
          return done;
        });
        tables.push({ name, rows, ok: true });
      } catch (err) {
        if (!(err instanceof StoreTableError)) throw err;
        if ((name === TABLE.clusters || name === TABLE.keyVectors) && failureKind(err.cause) === "missing") {
          tables.push({ name, rows: null, ok: true, absent: true });
          continue;
        }
        tables.push({ name, rows: null, ok: false });
        problems.push(err.problem);
      }
    }
    const readable = (name: string) => tables.some((t) => t.name === name && t.ok);
    const watermark = maxOf([...folds.keys()], 0);
    const mismatch = (code: StoreProblem["code"], name: string, what: string, bad: number[]) => {
      if (!bad.length) return;
      const first = bad.slice(0, 5).join(", ");
      const message = `table '${name}' ${what} in ${bad.length} folded batch${bad.length > 1 ? "es" : ""} (seq ${first}${bad.length > 5 ? ", ..." : ""})`;
      problems.push({ code, table: name, message, remedy: remedy(this.uri, name) });
    };
    if (readable(TABLE.events) && readable(TABLE.folds)) {
      const seqs = [...folds.keys()];
      mismatch("store-corrupt", TABLE.events, "holds fewer events than their commit markers count: events were lost", seqs.filter((s) => (perSeq.events.get(s) ?? 0) < folds.get(s)!.events));
      const extra = seqs.filter((s) => (perSeq.events.get(s) ?? 0) > folds.get(s)!.events);
      const unmarked = [...perSeq.events.keys()].filter((s) => s <= watermark && !folds.has(s));
      mismatch("store-derived-inconsistent", TABLE.folds, "disagrees with events (missing or wrong commit markers)", [...extra, ...unmarked].sort((a, b) => a - b));
    }
    if (readable(TABLE.transitions) && readable(TABLE.folds))
      mismatch("store-derived-inconsistent", TABLE.transitions, "does not hold the transitions its batches' commit markers count", [...folds.keys()].filter((s) => (perSeq.transitions.get(s) ?? 0) !== folds.get(s)!.transitions));
    // Centroids make every folded history key get a key vector: their table must exist once there are transitions.
    if (centroids && tables.some((t) => t.name === TABLE.keyVectors && t.absent) && [...perSeq.transitions.keys()].some((s) => s <= watermark))
      problems.push({ code: "store-derived-missing", table: TABLE.keyVectors, message: `table '${TABLE.keyVectors}' is missing`, remedy: remedy(this.uri, TABLE.keyVectors) });
    if (this.diskFault) problems.push(this.diskFault.problem);
    const pendingBatches = [...perSeq.events.keys()].filter((s) => s > watermark).length;
    const events = tables.find((t) => t.name === TABLE.events)?.rows ?? 0;
    return { uri: this.uri, ok: problems.length === 0, tables, watermark, events, pendingBatches, problems };
  }

  /**
   * Rebuilds the derived tables from events when check() finds them missing, unreadable or inconsistent,
   * then compacts. It never drops stored data to make a check pass: when the events, meta or clusters
   * table is damaged it rebuilds nothing (derived rows are then the only trace of lost events) and says so.
   * Run with the store's writers stopped (one writer per store).
   */
  async repair(opts: { onProgress?: ProgressFn } = {}): Promise<StoreRepairReport> {
    const before = await this.check(opts);
    const fixable = before.problems.filter((p) => isDerived(p.table) && (p.code === "store-derived-missing" || p.code === "store-derived-inconsistent"));
    const blocking = before.problems.filter((p) => !fixable.includes(p) && (p.table === TABLE.events || p.table === TABLE.meta || p.table === TABLE.clusters || p.code === "disk-full" || p.code === "store-unavailable"));
    let rebuilt: string[] = [];
    if (fixable.length && !blocking.length) {
      await this.rebuildDerived(opts.onProgress);
      await this.maintain();
      rebuilt = [...DERIVED];
    }
    this.healthProbe = undefined;
    const after = rebuilt.length ? await this.check(opts) : before;
    const first = blocking.map((p) => `'${p.table}' (${p.code})`).join(", ");
    const unrecoverable = after.problems.map((p) =>
      rebuilt.length === 0 && fixable.includes(p) ? { ...p, remedy: `Not rebuilt while ${first} is not fixed: rebuilding from damaged events would drop what was derived from the lost ones. ${p.remedy}` } : p,
    );
    return { ok: after.ok, rebuilt, unrecoverable, before, after };
  }

  // ---------------------------------------------------------------- key embeddings (neighbour backoff)

  private async keyVectorTable(keys: string[], seq: number): Promise<ArrowTable | undefined> {
    const info = await this.clusterInfo();
    if (!keys.length || info.dim === 0) return undefined;
    const embedded = keys.map((key) => keyEmbedding(parseHistoryKey(key), info.centroids, this.k, info.dim));
    return table({ key: utf8(keys), seq: int32(keys.map(() => seq)), vector: vectors(embedded, this.k * info.dim) });
  }

  private async writeKeyVectors(data: ArrowTable, mode: "append" | "overwrite"): Promise<void> {
    if (mode === "append" && (await this.exists(TABLE.keyVectors))) {
      await this.on(TABLE.keyVectors, (t) => t.add(data));
      return;
    }
    this.handles.delete(TABLE.keyVectors);
    await this.db.createTable(TABLE.keyVectors, data, { mode: "overwrite" });
  }

  /** Re-embeds every folded history key (after centroids changed). */
  private async rebuildKeyVectors(): Promise<void> {
    const watermark = await this.watermark();
    const keys = [...new Set(strings(await this.rows(TABLE.transitions, `seq <= ${watermark}`, ["key"]), "key"))];
    const data = await this.keyVectorTable(keys, watermark);
    if (data) await this.writeKeyVectors(data, "overwrite");
    else if (await this.exists(TABLE.keyVectors)) {
      this.handles.delete(TABLE.keyVectors);
      await this.db.dropTable(TABLE.keyVectors);
    }
    if (this.writer) this.writer.vectorKeys = new Set(data ? keys : []);
    this.neighbourCache.clear();
  }

  /** Folded history keys nearest to `history` by key embedding (LanceDB vector search), cached per key. */
  private async nearestKeys(history: readonly number[], watermark: number): Promise<string[]> {
    const info = await this.clusterInfo();
    const tableVersion = info.dim === 0 ? -1 : await this.optional(TABLE.keyVectors, -1, (t) => t.version());
    if (tableVersion < 0) return [];
    if (tableVersion !== this.neighbourVersion) {
      this.neighbourCache.clear();
      this.neighbourVersion = tableVersion;
    }
    const key = historyKey(history);
    const cached = this.neighbourCache.get(key);
    if (cached) return cached;
    const query = keyEmbedding(history, info.centroids, this.k, info.dim);
    const hits = await this.optional(TABLE.keyVectors, [], (t) =>
      t.vectorSearch(query).column("vector").where(`seq <= ${watermark}`).select(["key"]).limit(NEIGHBOURS + 1).toArray(),
    );
    const keys = hits.map((h) => String(h.key)).filter((k) => k !== key);
    this.neighbourCache.set(key, keys);
    return keys;
  }

  // ---------------------------------------------------------------- retrieval

  /** The transitions index, loaded once and refreshed from committed batches at most every readConsistencyMs. */
  private async freshIndex(): Promise<TransitionIndex> {
    if (this.indexLoading) return this.indexLoading;
    const now = Date.now();
    if (this.index && now - this.indexCheckedAt < this.readConsistencyMs) return this.index;
    this.indexLoading = (async () => {
      const index = this.index ?? new TransitionIndex();
      const from = this.indexSeq;
      const watermark = await this.watermark(from);
      if (watermark > from) {
        const t = await this.rows(TABLE.transitions, `seq > ${from} AND seq <= ${watermark}`, ["key", "next", "ts", "seq"]);
        const keys = strings(t, "key");
        const next = numbers(t, "next");
        const ts = numbers(t, "ts");
        // The writer may have added its own batches to the index meanwhile: skip those.
        numbers(t, "seq").forEach((seq, i) => seq > this.indexSeq && index.add(keys[i]!, next[i]!, ts[i]!));
        this.indexSeq = Math.max(this.indexSeq, watermark);
      }
      this.index = index;
      this.indexCheckedAt = now;
      return index;
    })();
    try {
      return await this.indexLoading;
    } finally {
      this.indexLoading = undefined;
    }
  }

  /**
   * Top-n next clusters after `history` (its last k clusters), from transitions with asOf - windowMs <= ts < asOf.
   * Below minSupport it backs off to the last cluster alone, then to the nearest history keys.
   */
  async successors(history: readonly number[], opts: SuccessorQuery): Promise<SuccessorResult> {
    const index = await this.freshIndex();
    const q = { asOf: opts.asOf, windowMs: opts.windowMs, n: opts.n, method: opts.method ?? "frequency" };
    const minSupport = opts.minSupport ?? DEFAULT_MIN_SUPPORT;
    const recent = history.slice(-this.k);
    const key = historyKey(recent);
    const tried: SuccessorResult[] = [];
    const accept = (r: Ranked, source: SuccessorResult["source"], at: string): SuccessorResult | undefined => {
      const result = { items: r.items, source, key: at, support: r.support };
      tried.push(result);
      return r.support >= minSupport ? result : undefined;
    };
    const exact = accept(rankWindow(index, key, q), "exact", key);
    if (exact) return exact;
    if (recent.length) {
      const last = String(recent[recent.length - 1]);
      const backoff = accept(rankWindow(index, last, q, "last"), "last-cluster", last);
      if (backoff) return backoff;
      for (const near of await this.nearestKeys(recent, this.indexSeq)) {
        const neighbour = accept(rankWindow(index, near, q), "neighbour", near);
        if (neighbour) return neighbour;
      }
    }
    // Nothing reached minSupport: the best-supported statistic, still labelled with where it came from.
    return tried.reduce((best, r) => (r.support > best.support ? r : best));
  }

  /** Top-n successors of every key with support in [start, end), in one pass over the index. */
  async snapshot(opts: { start: number; end: number; n: number; method?: SuccessorMethod; minSupport?: number }): Promise<Snapshot> {
    const index = await this.freshIndex();
    const storeVersion = this.indexSeq;
    const method = opts.method ?? "frequency";
    const minSupport = opts.minSupport ?? 1;
    const q = { asOf: opts.end, windowMs: opts.end - opts.start, n: opts.n, method };
    const collect = (scope: "key" | "last", source: SuccessorResult["source"]) => {
      const out = new Map<string, SuccessorResult>();
      for (const key of index.keys(scope)) {
        const r = rankWindow(index, key, q, scope);
        if (r.support >= minSupport && r.support > 0) out.set(key, { items: r.items, source, key, support: r.support });
      }
      return out;
    };
    const entries = collect("key", "exact");
    const lastCluster = collect("last", "last-cluster");
    const k = this.k;
    return {
      id: `v${storeVersion}:${opts.start}-${opts.end}:${method}:n${opts.n}`,
      storeVersion,
      start: opts.start,
      end: opts.end,
      n: opts.n,
      method,
      entries,
      lastCluster,
      lookup: (history) => entries.get(historyKey(history.slice(-k))) ?? (history.length ? lastCluster.get(String(history[history.length - 1])) : undefined),
    };
  }

  /** Positive novel transitions with start <= ts < end, ordered by (ts, userId): training data. */
  async transitions(opts: { start: number; end: number }): Promise<Transition[]> {
    const watermark = await this.watermark();
    const t = await this.rows(TABLE.transitions, `ts >= ${opts.start} AND ts < ${opts.end} AND seq <= ${watermark}`, ["userId", "key", "next", "ts"]);
    const users = strings(t, "userId");
    const keys = strings(t, "key");
    const next = numbers(t, "next");
    return numbers(t, "ts")
      .map((ts, i) => ({ userId: users[i]!, history: parseHistoryKey(keys[i]!), next: next[i]!, ts }))
      .sort((a, b) => a.ts - b.ts || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : a.next - b.next));
  }

  async userState(userId: string): Promise<UserStateView | null> {
    const watermark = await this.watermark();
    const t = await this.rows(TABLE.userState, `userId = ${sqlString(userId)} AND seq <= ${watermark}`);
    const seqs = numbers(t, "seq");
    if (!seqs.length) return null;
    const at = seqs.indexOf(maxOf(seqs));
    return { userId, clusters: parseHistoryKey(strings(t, "key")[at]!), lastTs: numbers(t, "lastTs")[at]! };
  }

  /** Positive engagements (signal >= the store's threshold) with ts in [start, end), committed batches only: what online quality joins answers with. */
  async positiveEvents(opts: { start: number; end: number }): Promise<Array<{ userId: string; clusterId: number; ts: number }>> {
    const watermark = await this.watermark();
    const t = await this.rows(TABLE.events, `ts >= ${opts.start} AND ts < ${opts.end} AND signal >= ${this.positiveThreshold} AND seq <= ${watermark}`, ["userId", "clusterId", "ts"]);
    const users = strings(t, "userId");
    const clusters = numbers(t, "clusterId");
    return numbers(t, "ts").map((ts, i) => ({ userId: users[i]!, clusterId: clusters[i]!, ts }));
  }

  /** Event time range over committed batches. */
  async timeRange(): Promise<{ min: number; max: number } | null> {
    const t = await this.rows(TABLE.folds, undefined, ["minTs", "maxTs"]);
    if (!t.numRows) return null;
    return { min: minOf(numbers(t, "minTs")), max: maxOf(numbers(t, "maxTs")) };
  }

  // ---------------------------------------------------------------- prediction tables

  /** Stores a prediction table in one append (atomic); a later put with the same id replaces it. */
  putPredictionTable(input: PredictionTable): Promise<void> {
    return this.serial(async () => {
      const r = PredictionTableSchema.safeParse(input);
      if (!r.success) throw new ValidationError(`putPredictionTable ${input?.id ?? ""}`.trim(), issuesFromZod(r.error, input));
      const { id, meta, rows } = r.data;
      const previous = await this.rows(TABLE.predictions, `tableId = ${sqlString(id)}`, ["rev"]);
      const rev = Math.max(Date.now(), maxOf(numbers(previous, "rev")) + 1);
      const n = rows.length + 1;
      await this.on(TABLE.predictions, (t) =>
        t.add(
          table({
            tableId: utf8(Array(n).fill(id)),
            rev: float64(Array(n).fill(rev)),
            kind: utf8(["meta", ...rows.map(() => "row")]),
            key: utf8(["", ...rows.map((x) => x.key)]),
            payload: utf8([JSON.stringify(meta), ...rows.map((x) => JSON.stringify({ clusters: x.clusters, probs: x.probs }))]),
          }),
        ),
      );
      // Older revisions are garbage now; removing them is not needed for correctness.
      await this.on(TABLE.predictions, (t) => t.delete(`tableId = ${sqlString(id)} AND rev < ${rev}`));
    });
  }

  async predictionTable(id: string): Promise<PredictionTable | null> {
    const filter = `tableId = ${sqlString(id)}`;
    let t = await this.rows(TABLE.predictions, filter);
    // A table asked for by id was usually promoted just now by another process: before calling it missing,
    // look past the read-consistency interval at the latest committed version.
    if (!t.numRows)
      t = await this.on(TABLE.predictions, async (h) => {
        await h.checkoutLatest();
        return h.query().where(filter).toArrow();
      });
    const revs = numbers(t, "rev");
    if (!revs.length) return null;
    const rev = maxOf(revs);
    const kinds = strings(t, "kind");
    const keys = strings(t, "key");
    const payloads = strings(t, "payload");
    let meta: Record<string, string | number> = {};
    const rows: PredictionTable["rows"] = [];
    revs.forEach((r, i) => {
      if (r !== rev) return;
      if (kinds[i] === "meta") meta = JSON.parse(payloads[i]!);
      else rows.push({ key: keys[i]!, ...(JSON.parse(payloads[i]!) as { clusters: number[]; probs: number[] }) });
    });
    return { id, meta, rows };
  }

  /** Deletes these prediction tables (ids of retired registry records); unknown ids are ignored. */
  dropPredictionTables(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    return this.serial(async () => {
      await this.on(TABLE.predictions, (t) => t.delete(`tableId IN (${ids.map(sqlString).join(",")})`));
    });
  }

  async predictionTableIds(): Promise<string[]> {
    return [...new Set(strings(await this.rows(TABLE.predictions, `kind = 'meta'`, ["tableId"]), "tableId"))].sort();
  }

  // ---------------------------------------------------------------- maintenance

  /**
   * Compacts every table, prunes versions older than olderThanMs (default 60 s, so readers on a recent
   * version keep working) and drops superseded user-state rows. Returns fragment and version totals.
   */
  maintain(opts: { olderThanMs?: number } = {}): Promise<MaintenanceResult> {
    return this.serial(async () => {
      const cleanupOlderThan = new Date(Date.now() - (opts.olderThanMs ?? 60_000));
      await this.compactUserState();
      const compacted: string[] = [];
      let fragments = 0;
      let versions = 0;
      for (const name of await this.tableNames()) {
        const t = name as TableName;
        const stats = await withLanceTmp(this.uri, () => this.on(t, (h) => h.optimize({ cleanupOlderThan })));
        if (stats.compaction.fragmentsRemoved > 0) compacted.push(name);
        fragments += (await this.on(t, (h) => h.stats())).fragmentStats.numFragments;
        versions += (await this.on(t, (h) => h.listVersions())).length;
      }
      // optimize() folded new rows into the eventId index: the writer need not hold their ids any more.
      if (this.writer && (await this.on(TABLE.events, unindexedRows)) === 0) this.writer.unindexed.clear();
      return { compacted, fragments, versions };
    });
  }

  /** user_state is append-only; keep only each user's latest committed row once superseded rows dominate. */
  private async compactUserState(): Promise<void> {
    const watermark = await this.watermark();
    const total = await this.on(TABLE.userState, (t) => t.countRows());
    // Cheap test first (the writer knows its users): most runs have nothing to drop.
    if (this.writer && total < 2 * this.writer.users.size + 1000) return;
    const t = await this.rows(TABLE.userState, `seq <= ${watermark}`);
    const ids = strings(t, "userId");
    const seqs = numbers(t, "seq");
    const latest = new Map<string, number>();
    seqs.forEach((s, i) => {
      if ((latest.get(ids[i]!) ?? -1) < s) latest.set(ids[i]!, i);
    });
    if (total < 2 * latest.size + 1000) return;
    const keep = [...latest.values()];
    const keys = strings(t, "key");
    const lastTs = numbers(t, "lastTs");
    const data = table({ userId: utf8(keep.map((i) => ids[i]!)), key: utf8(keep.map((i) => keys[i]!)), lastTs: float64(keep.map((i) => lastTs[i]!)), seq: int32(keep.map((i) => seqs[i]!)) });
    // One overwrite commit: readers see either the old rows or the compacted ones.
    await this.on(TABLE.userState, (h) => h.add(data, { mode: "overwrite" }));
  }

  /**
   * Scheduled maintenance for long-running writers (serve, update loops): runs maintain() every
   * `intervalMs` counted from the end of the previous run, so runs never pile up, until stop() or close(). Without it every write leaves a version and a fragment behind (folds.lance grew to
   * 3.2 MB for 177 rows). A failed run goes to onError and the schedule continues. Starting again replaces the schedule.
   */
  startMaintenance(intervalMs: number, opts: MaintenanceScheduleOptions = {}): { stop(): void } {
    this.stopMaintenance();
    const schedule = () => {
      const timer = setTimeout(() => {
        this.maintain({ olderThanMs: opts.olderThanMs })
          .then((r) => opts.onResult?.(r))
          .catch((err: unknown) => opts.onError?.(err))
          .finally(() => this.maintenanceTimer === timer && schedule());
      }, intervalMs);
      timer.unref();
      this.maintenanceTimer = timer;
    };
    schedule();
    return { stop: () => this.stopMaintenance() };
  }

  private stopMaintenance(): void {
    if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
    this.maintenanceTimer = undefined;
  }

  async close(): Promise<void> {
    this.stopMaintenance();
    await this.queue;
    for (const h of this.handles.values()) (await h.catch(() => undefined))?.close();
    this.handles.clear();
    this.servedAnswers.close();
    this.db.close();
  }
}

// ---------------------------------------------------------------- row <-> Arrow

function eventTable(rows: EventRow[], seq: number): ArrowTable {
  return table({
    eventId: utf8(rows.map((r) => r.eventId)),
    userId: utf8(rows.map((r) => r.userId)),
    itemId: utf8(rows.map((r) => r.itemId)),
    clusterId: int32(rows.map((r) => r.clusterId)),
    ts: float64(rows.map((r) => r.ts)),
    signal: float64(rows.map((r) => r.signal)),
    seq: int32(new Int32Array(rows.length).fill(seq)),
  });
}

/** Events per batch (seq -> count) from a result holding the seq column. */
function batchSizes(t: ArrowTable): Map<number, number> {
  const sizes = new Map<number, number>();
  const col = t.getChild("seq");
  if (col) countInto(sizes, col.toArray() as Int32Array);
  return sizes;
}

function countInto(counts: Map<number, number>, values: Int32Array): void {
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
}

function eventRows(t: ArrowTable): Array<{ row: EventRow; seq: number }> {
  const [eventId, userId, itemId] = [strings(t, "eventId"), strings(t, "userId"), strings(t, "itemId")];
  const [clusterId, ts, signal] = [numbers(t, "clusterId"), numbers(t, "ts"), numbers(t, "signal")];
  return numbers(t, "seq")
    .map((seq, i) => ({ row: { eventId: eventId[i]!, userId: userId[i]!, itemId: itemId[i]!, clusterId: clusterId[i]!, ts: ts[i]!, signal: signal[i]! }, seq }))
    .sort((a, b) => a.seq - b.seq || compareEvents(a.row, b.row));
}

function transitionTable(rows: TransitionRow[], seq: number): ArrowTable {
  return table({
    userId: utf8(rows.map((r) => r.userId)),
    key: utf8(rows.map((r) => r.key)),
    next: int32(rows.map((r) => r.next)),
    ts: float64(rows.map((r) => r.ts)),
    day: int32(rows.map((r) => Math.floor(r.ts / DAY_MS))),
    seq: int32(new Int32Array(rows.length).fill(seq)),
  });
}

function userStateTable(states: Map<string, UserState>, seq: number): ArrowTable {
  const entries = [...states];
  return table({
    userId: utf8(entries.map(([u]) => u)),
    key: utf8(entries.map(([, s]) => historyKey(s.clusters))),
    lastTs: float64(entries.map(([, s]) => s.lastTs)),
    seq: int32(new Int32Array(entries.length).fill(seq)),
  });
}
