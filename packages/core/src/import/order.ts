import type { Event } from "../schemas.js";

/**
 * Events sharing their user's timestamp with another event of that user. Their relative order is the documented
 * tie-break of compareEvents (itemId, then eventId; IMPORT-FORMAT.md "Event order"), not the file's: importers
 * print this count so that day-resolution data is noticed.
 */
export function sameTimestampEvents(events: Iterable<Pick<Event, "userId" | "ts">>): number {
  const counts = new Map<string, number>();
  for (const e of events) {
    const key = `${e.ts}\u0000${e.userId}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let tied = 0;
  for (const c of counts.values()) if (c > 1) tied += c;
  return tied;
}
