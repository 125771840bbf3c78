import { EventSchema, ItemSchema, type Event, type Item } from "../schemas.js";
import { issuesFromZod, type FieldIssue } from "../errors.js";
import { headedRows } from "./csv.js";
import { reasonOf, type ImportReport } from "./report.js";

/** The two encodings of the generic format (see packages/core/IMPORT-FORMAT.md). */
export type RecordFormat = "csv" | "jsonl";

/** Format from a file name: .jsonl/.ndjson -> jsonl, .csv -> csv, otherwise undefined. */
export function formatOfPath(path: string): RecordFormat | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl";
  if (lower.endsWith(".csv")) return "csv";
  return undefined;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** A timestamp as integer epoch milliseconds or an ISO-8601 date/time (no zone = UTC); undefined if neither. */
export function parseTimestamp(raw: unknown): number | undefined {
  if (typeof raw === "number") return Number.isSafeInteger(raw) && raw >= 0 ? raw : undefined;
  if (typeof raw !== "string") return undefined;
  const s = raw.trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  if (!ISO_DATE.test(s)) return undefined;
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/.test(s) && s.length > 10;
  const ms = Date.parse(hasZone ? s : s.length === 10 ? `${s}T00:00:00Z` : `${s.replace(" ", "T")}Z`);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** Ids may come as strings or integers; both become trimmed strings. */
function idOf(raw: unknown): string | undefined {
  if (typeof raw === "string") return raw.trim();
  if (typeof raw === "number" && Number.isInteger(raw)) return String(raw);
  return undefined;
}

/** Builds and validates an Event from loosely typed fields; returns the issues instead when invalid. */
function toEvent(raw: Record<string, unknown>): { event: Event } | { issues: FieldIssue[] } {
  const issues: FieldIssue[] = [];
  const userId = idOf(raw.userId);
  const itemId = idOf(raw.itemId);
  const ts = parseTimestamp(raw.ts);
  const signal = typeof raw.signal === "string" && raw.signal.trim() !== "" ? Number(raw.signal) : raw.signal;
  if (!userId) issues.push({ path: "userId", message: "expected a non-empty string or integer", value: raw.userId });
  if (!itemId) issues.push({ path: "itemId", message: "expected a non-empty string or integer", value: raw.itemId });
  if (ts === undefined) issues.push({ path: "ts", message: "expected integer epoch milliseconds or an ISO-8601 date", value: raw.ts });
  if (typeof signal !== "number" || !Number.isFinite(signal)) issues.push({ path: "signal", message: "expected a finite number", value: raw.signal });
  if (issues.length > 0) return { issues };
  const eventId = raw.eventId === undefined || raw.eventId === "" ? `${userId}-${itemId}-${ts}` : idOf(raw.eventId);
  const candidate = { eventId, userId, itemId, ts, signal };
  const parsed = EventSchema.safeParse(candidate);
  return parsed.success ? { event: parsed.data } : { issues: issuesFromZod(parsed.error, candidate) };
}

/** JSON objects of a JSONL stream with their line numbers; blank lines skipped, bad JSON rejected into `report`. */
async function* jsonObjects(lines: AsyncIterable<string>, report: ImportReport): AsyncGenerator<{ line: number; obj: Record<string, unknown> }> {
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === "") continue;
    report.rowsRead++;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      report.reject(line, "malformed JSON", [{ path: "", message: (err as Error).message }]);
      continue;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      report.reject(line, "malformed JSON", [{ path: "", message: "expected a JSON object", value: text }]);
      continue;
    }
    yield { line, obj: value as Record<string, unknown> };
  }
}

/** Generic events (CSV with header userId,itemId,ts,signal[,eventId], or JSONL objects with the same fields) -> Events. */
export async function* parseGenericEvents(lines: AsyncIterable<string>, report: ImportReport, format: RecordFormat): AsyncGenerator<Event> {
  const rows =
    format === "jsonl"
      ? jsonObjects(lines, report)
      : mapRows(headedRows(lines, report, { required: ["userId", "itemId", "ts", "signal"] as const, optional: ["eventId"] as const }), (r) => ({
          userId: r.get("userId"),
          itemId: r.get("itemId"),
          ts: r.get("ts"),
          signal: r.get("signal"),
          eventId: r.opt("eventId")?.trim(),
        }));
  for await (const { line, obj } of rows) {
    const result = toEvent(obj);
    if ("issues" in result) {
      report.reject(line, reasonOf(result.issues), result.issues);
      continue;
    }
    report.accept();
    yield result.event;
  }
}

async function* mapRows<T extends { line: number }>(
  rows: AsyncIterable<T>,
  f: (row: T) => Record<string, unknown>,
): AsyncGenerator<{ line: number; obj: Record<string, unknown> }> {
  for await (const row of rows) yield { line: row.line, obj: f(row) };
}

/** Separator of several values in one CSV cell (tags, multi-valued categorical features). */
export const MULTI_VALUE_SEPARATOR = "|";
const RESERVED_ITEM_COLUMNS = new Set(["itemId", "clusterId", "title", "tags"]);

const splitCell = (cell: string): string[] =>
  cell
    .split(MULTI_VALUE_SEPARATOR)
    .map((v) => v.trim())
    .filter(Boolean);

/** An item CSV row as the loose object shape the JSONL form uses. */
function itemObjectFromCsv(header: readonly string[], fields: readonly string[]): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  const categorical: Record<string, string | string[]> = {};
  let tags: string[] = [];
  header.forEach((name, i) => {
    const cell = (fields[i] ?? "").trim();
    if (cell === "") return;
    if (name === "itemId" || name === "title") obj[name] = cell;
    else if (name === "clusterId") obj.clusterId = /^\d+$/.test(cell) ? Number(cell) : cell;
    else if (name === "tags") tags = splitCell(cell);
    else if (!RESERVED_ITEM_COLUMNS.has(name)) {
      const values = splitCell(cell);
      categorical[name] = values.length === 1 ? values[0]! : values;
    }
  });
  if (Object.keys(categorical).length > 0 || tags.length > 0) obj.features = { categorical, tags };
  return obj;
}

/**
 * Generic items -> Items. CSV (quoted cells may span lines): header with itemId and any of clusterId, title, tags (`|`-separated); every
 * other column is a categorical feature (`|` separates several values). JSONL: objects shaped like Item.
 */
export async function* parseGenericItems(lines: AsyncIterable<string>, report: ImportReport, format: RecordFormat): AsyncGenerator<Item> {
  const rows =
    format === "jsonl"
      ? jsonObjects(lines, report)
      : mapRows(headedRows(lines, report, { required: ["itemId"] as const, csv: { multiline: true } }), (r) => itemObjectFromCsv(r.header, r.fields));
  for await (const { line, obj } of rows) {
    const candidate = { ...obj, itemId: idOf(obj.itemId) ?? obj.itemId };
    const item = report.admit(ItemSchema, candidate, line);
    if (item) yield item;
  }
}
