/**
 * Idempotency by eventId with bounded memory. Three layers, each exact about what it answers:
 * - a fixed-size Bloom filter of every stored id (16 MiB, filled at recovery by one scan of the eventId
 *   column): "not stored" is certain, so a batch of new events costs no lookup;
 * - the ids the writer appended since the eventId index was last built (at most `maxUnindexedIds`, then it
 *   rebuilds the index), so retried recent batches are answered from memory;
 * - the events table's BTREE index on eventId for the rest, one `eventId IN (...)` query per 2000 ids.
 * Every stored id is in the index or in that set, across restarts too: recovery rebuilds the index when
 * rows are unindexed. (The previous design kept every id in a Set: ~120 MB of heap per million events.)
 *
 * Why not let the query scan unindexed rows: a filter with a long IN list is evaluated per data fragment,
 * so 10k ids against 100 small unindexed fragments took 1.4 s, against the index alone 59 ms.
 */
import { lancedb, withLanceTmp, type LanceTable } from "./lance.js";
import { sqlString, strings } from "./columns.js";

export const EVENT_ID_INDEX = "eventId_idx";

/**
 * Default bound of the writer's unindexed ids (~55 MB of heap). Reaching it costs an index rebuild, ~0.5 µs
 * per stored event (2 s at 3.25 M, measured; folding the new rows in with optimize() took twice as long),
 * so larger bounds trade memory for ingest speed on big stores.
 */
export const DEFAULT_MAX_UNINDEXED_IDS = 500_000;

/**
 * Ids per lookup query. Planning a long IN list grows faster than its length (10k ids: ~55 ms of planning
 * alone) and short lists pay per-query overhead: 10k ids took ~37 ms in chunks of 2000, ~48 ms in one
 * query, ~135 ms in chunks of 100.
 */
const LOOKUP_CHUNK = 2000;

/** Which of `ids` the eventId index holds (rows appended since it was built are not searched: the writer holds those). */
export async function indexedIds(events: LanceTable, ids: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += LOOKUP_CHUNK) {
    const list = ids.slice(i, i + LOOKUP_CHUNK).map(sqlString).join(",");
    const hits = await events.query().where(`eventId IN (${list})`).select(["eventId"]).fastSearch().toArrow();
    for (const id of strings(hits, "eventId")) found.add(id);
  }
  return found;
}

/** Rows the eventId index does not cover yet; null when there is no index. */
export async function unindexedRows(events: LanceTable): Promise<number | null> {
  const stats = await events.indexStats(EVENT_ID_INDEX);
  return stats ? stats.numUnindexedRows : null;
}

/**
 * (Re)builds the index over every stored row. The writer builds it once the table has rows: an index that
 * covers none makes fast searches scan every row (measured), which would defeat its purpose.
 */
export async function indexEventIds(storeUri: string, events: LanceTable): Promise<void> {
  await withLanceTmp(storeUri, () => events.createIndex("eventId", { config: lancedb.Index.btree(), replace: true, name: EVENT_ID_INDEX }));
}

/**
 * 2^27 bits (16 MiB) and 4 hashes: false positives ~0.04 % at 5 M stored ids, ~36 % at 50 M. A false
 * positive costs an index lookup, never a wrong answer, so a store past its size degrades to lookups.
 */
const FILTER_BITS = 2 ** 27;
const FILTER_HASHES = 4;

/** A Bloom filter of stored event ids: mightHave() is false only for ids never added. */
export class StoredIdFilter {
  private readonly words: Uint32Array;
  private readonly mask: number;

  constructor(bits = FILTER_BITS) {
    this.words = new Uint32Array(bits >>> 5);
    this.mask = bits - 1;
  }

  add(id: string): void {
    const [a, b] = hashPair(id);
    for (let i = 0; i < FILTER_HASHES; i++) {
      const bit = (a + i * b) & this.mask;
      this.words[bit >>> 5]! |= 1 << (bit & 31);
    }
  }

  mightHave(id: string): boolean {
    const [a, b] = hashPair(id);
    for (let i = 0; i < FILTER_HASHES; i++) {
      const bit = (a + i * b) & this.mask;
      if ((this.words[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/** Two independent 32-bit string hashes (FNV-1a and a multiply-xorshift one) for double hashing; the second is odd. */
function hashPair(id: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 16777619);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [a >>> 0, (b | 1) >>> 0];
}

/** Adds every id stored in the events table to the filter (one streaming scan of the eventId column). */
export async function fillFilter(filter: StoredIdFilter, events: LanceTable): Promise<void> {
  for await (const batch of events.query().select(["eventId"])) {
    const ids = batch.getChild("eventId");
    if (ids) for (let i = 0; i < ids.length; i++) filter.add(ids.get(i) as string);
  }
}
