import type { Event, Item } from "../schemas.js";
import { compareEvents } from "../sequences.js";
import { FreshrecError } from "../errors.js";
import { formatOfPath, parseGenericEvents, parseGenericItems, type RecordFormat } from "./generic.js";
import { readLines } from "./lines.js";
import { ImportReport } from "./report.js";

function formatOrThrow(path: string): RecordFormat {
  const format = formatOfPath(path);
  if (!format) throw new FreshrecError("invalid-argument", `${path}: unknown format; name the file .csv, .jsonl or .ndjson`);
  return format;
}

/** Loads a generic items file into memory (catalogues are small next to event logs). Bad rows land in `report`. */
export async function loadGenericItems(path: string): Promise<{ items: Item[]; report: ImportReport }> {
  const report = new ImportReport(path);
  const items: Item[] = [];
  for await (const item of parseGenericItems(readLines(path), report, formatOrThrow(path))) items.push(item);
  return { items, report };
}

/** Loads a generic events file into memory, sorted in compareEvents order (for analysis commands; imports stream instead). */
export async function loadGenericEvents(path: string): Promise<{ events: Event[]; report: ImportReport }> {
  const report = new ImportReport(path);
  const events: Event[] = [];
  for await (const e of parseGenericEvents(readLines(path), report, formatOrThrow(path))) events.push(e);
  events.sort(compareEvents);
  return { events, report };
}
