import { FreshrecError } from "@freshrec/core";

/** The store at `uri` was written by another schema version (or with another k) than this code reads. */
export class IncompatibleStoreError extends FreshrecError {
  constructor(readonly uri: string, detail: string) {
    super("store-incompatible", `store ${uri} is incompatible: ${detail}`);
  }
}

/** A request the store cannot satisfy as asked (e.g. vector-only items when clusters have no centroids). */
export class StoreUsageError extends FreshrecError {
  constructor(message: string) {
    super("store-usage", message);
  }
}

/**
 * Stable codes of store faults (API answers and `freshrec store check` name them):
 * - store-derived-missing: a table derived from events is missing or unreadable; `freshrec store repair` rebuilds it.
 * - store-derived-inconsistent: a derived table disagrees with events (counts per batch); repair rebuilds it.
 * - store-corrupt: a table that cannot be rebuilt (events, meta, items, clusters, prediction tables) is unreadable.
 * - disk-full: a write found no space; the store is intact and writes resume once space is freed.
 * - store-unavailable: the store could not be reached or read for another reason (permissions, network).
 */
export type StoreFaultCode = "store-derived-missing" | "store-derived-inconsistent" | "store-corrupt" | "disk-full" | "store-unavailable";

/** One problem of a store: what, where, and a remedy the user can run. */
export interface StoreProblem {
  code: StoreFaultCode;
  table: string;
  message: string;
  remedy: string;
}

/** A store table that cannot be used as it is. Subclasses carry the stable code; `remedy` says what to do. */
export class StoreTableError extends FreshrecError {
  declare readonly code: StoreFaultCode;
  constructor(
    code: StoreFaultCode,
    readonly uri: string,
    readonly table: string,
    readonly detail: string,
    readonly remedy: string,
    cause?: unknown,
  ) {
    super(code, `store ${uri}: table '${table}' ${detail}. ${remedy}`, { cause });
  }

  get problem(): StoreProblem {
    return { code: this.code, table: this.table, message: `table '${this.table}' ${this.detail}`, remedy: this.remedy };
  }
}

export class StoreDerivedMissingError extends StoreTableError {
  constructor(uri: string, table: string, detail: string, remedy: string, cause?: unknown) {
    super("store-derived-missing", uri, table, detail, remedy, cause);
  }
}

export class StoreCorruptError extends StoreTableError {
  constructor(uri: string, table: string, detail: string, remedy: string, cause?: unknown) {
    super("store-corrupt", uri, table, detail, remedy, cause);
  }
}

export class DiskFullError extends StoreTableError {
  constructor(uri: string, table: string, detail: string, remedy: string, cause?: unknown) {
    super("disk-full", uri, table, detail, remedy, cause);
  }
}

export class StoreUnavailableError extends StoreTableError {
  constructor(uri: string, table: string, detail: string, remedy: string, cause?: unknown) {
    super("store-unavailable", uri, table, detail, remedy, cause);
  }
}

/** The first line of an error's message (LanceDB's carry Rust source locations and a cause chain after it). */
export const firstLine = (err: unknown): string =>
  (err instanceof Error ? err.message : String(err))
    .split("\n")[0]!
    .split(/\s+Caused by:/)[0]!
    .replace(/, \/(rustc|usr\/local\/cargo)\/\S+/g, "")
    .trim();

/** The whole message with its cause chain (classification looks at every part). */
const fullText = (err: unknown): string => {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) parts.push(e instanceof Error ? e.message : String(e));
  return parts.join("\n");
};

export type FailureKind = "disk-full" | "missing" | "damaged" | "unavailable";

/**
 * What a failure of a store operation means, from LanceDB's and the OS's messages (measured: a deleted
 * table folder gives "was not found" / "Not found: .../_versions", a deleted data file "Object at location
 * ... not found", a truncated data file "failed to fill whole buffer", a truncated manifest "file size is
 * too small" or "does not have sufficient data", a full disk "No space left on device (os error 28)"). Undefined: not a storage failure (a bug).
 */
export function failureKind(err: unknown): FailureKind | undefined {
  const code = (err as { code?: unknown })?.code;
  const text = fullText(err);
  if (code === "ENOSPC" || code === "EDQUOT" || /No space left on device|os error 28\b|Disk quota exceeded|os error 122\b/.test(text)) return "disk-full";
  const storage = code === "GenericFailure" || (typeof code === "string" && /^E[A-Z]+$/.test(code)) || /lance error|LanceError|Lance error/.test(text);
  if (!storage) return undefined;
  // Damage first: its messages may name a path under _versions or data as well.
  if (/failed to fill whole buffer|file size is too small|does not have sufficient data|corrupt|unexpected end|Unexpected EOF|checksum|invalid (data|file|manifest|footer)|decode/i.test(text)) return "damaged";
  // Missing: the table or one of its files (a vanished temporary file is not store damage: "unavailable").
  if (/was not found|Not found: \S*_versions/.test(text) || (/not found/i.test(text) && /\.lance(\/|\s|"|$)/.test(text))) return "missing";
  return "unavailable";
}
