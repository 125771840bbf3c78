import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ImportFailedError,
  ImportReport,
  InvalidOptionError,
  csvRecords,
  drain,
  loadGenericEvents,
  loadMovieLens,
  parseThresholdOption,
  sameTimestampEvents,
  streamTransitions,
  parseGenericEvents,
  parseGenericItems,
  parseMovieLensMovies,
  parseMovieLensRatings,
  parseMovieLensTags,
  parseTimestamp,
  readLines,
  type Event,
  type Item,
} from "../src/index.js";
import { SLOW_TEST_TIMEOUT_MS } from "./slow.js";

async function* linesOf(text: string): AsyncGenerator<string> {
  yield* text.split("\n");
}
async function collect<T>(gen: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

const ML_DIR = join(import.meta.dirname, "../../../../shared/datasets/movielens-latest-small");
const hasMovieLens = existsSync(join(ML_DIR, "ratings.csv"));
if (!hasMovieLens) console.warn(`skipping MovieLens import tests: ${ML_DIR} not found`);

describe("csvRecords", () => {
  it("parses quoted fields with commas, doubled quotes and line breaks, reporting the starting line", async () => {
    const recs = await collect(csvRecords(linesOf('a,b,c\n1,"Hello, world",x\n\n2,"say ""hi""",y\n3,"two\nlines",z'), { multiline: true }));
    expect(recs).toEqual([
      { line: 1, fields: ["a", "b", "c"] },
      { line: 2, fields: ["1", "Hello, world", "x"] },
      { line: 4, fields: ["2", 'say "hi"', "y"] },
      { line: 5, fields: ["3", "two\nlines", "z"] },
    ]);
  });
  it("reports junk after a closing quote and an unterminated quote without stopping", async () => {
    const recs = await collect(csvRecords(linesOf('1,"a"b,c\n2,ok,d\n3,"never closed\n4,x,y'), { multiline: true }));
    expect(recs[0]).toMatchObject({ line: 1, error: expect.stringContaining("after closing quote") });
    expect(recs[1]).toEqual({ line: 2, fields: ["2", "ok", "d"] });
    expect(recs[2]).toMatchObject({ line: 3, error: expect.stringContaining("unterminated") });
  });
  it("keeps a stray quote to its own line unless multiline is asked for", async () => {
    const recs = await collect(csvRecords(linesOf('1,"open\n2,b')));
    expect(recs).toEqual([{ line: 1, error: "unterminated quoted field" }, { line: 2, fields: ["2", "b"] }]);
  });
  it("gives up on a record longer than the limit and resynchronises", async () => {
    const recs = await collect(csvRecords(linesOf('1,"xxxxxxxxxx\nyyyyyyyyyy\n2,b'), { multiline: true, maxRecordChars: 15 }));
    expect(recs[0]).toMatchObject({ line: 1, error: expect.stringContaining("longer than 15") });
    expect(recs.at(-1)).toEqual({ line: 3, fields: ["2", "b"] });
  });
});

describe("MovieLens parsers", () => {
  it("turns ratings into events with ms timestamps and rejects bad rows by line and field", async () => {
    const report = new ImportReport("ratings.csv");
    const events = await collect(
      parseMovieLensRatings(linesOf("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,x,4,1\n2,10,7,5\n3,4,4\n4,5,4.5,12"), report),
    );
    expect(events).toEqual<Event[]>([
      { eventId: "ml-1-31-1260759144", userId: "1", itemId: "31", ts: 1260759144000, signal: 2.5 },
      { eventId: "ml-4-5-12", userId: "4", itemId: "5", ts: 12000, signal: 4.5 },
    ]);
    const s = report.summary();
    expect(s).toMatchObject({ rowsRead: 5, accepted: 2, skipped: 3 });
    expect(s.skipReasons).toEqual({ "invalid movieId": 1, "invalid rating": 1, "wrong column count": 1 });
    expect(s.rejected[0]).toBe('ratings.csv:3: movieId: expected a positive integer (got "x")');
    expect(s.rejected[1]).toContain("ratings.csv:4: rating:");
    expect(s.rejected[2]).toContain("ratings.csv:5:");
    expect(report.failed(false)).toBe(false);
    expect(report.failed(true)).toBe(true);
    expect(() => report.assertOk(true)).toThrow(ImportFailedError);
  });
  it("treats a wrong header as a fatal file error and yields nothing", async () => {
    const report = new ImportReport("ratings.csv");
    expect(await collect(parseMovieLensRatings(linesOf("user,movie,stars\n1,2,3"), report))).toEqual([]);
    expect(report.fatal).toContain("lacks column(s) userId, movieId, rating, timestamp");
    expect(report.failed(false)).toBe(true);
  });
  it("parses movies with quoted titles, genres, year bucket and tags", async () => {
    const tagsReport = new ImportReport("tags.csv");
    const tags = await parseMovieLensTags(linesOf("userId,movieId,tag,timestamp\n15,11,Pixar,1\n16,11,pixar,2\n17,11, funny ,3"), tagsReport);
    const report = new ImportReport("movies.csv");
    const items = await collect(
      parseMovieLensMovies(
        linesOf('movieId,title,genres\n11,"American President, The (1995)",Comedy|Drama|Romance\n12,Untitled,(no genres listed)'),
        report,
        tags,
      ),
    );
    expect(items).toEqual<Item[]>([
      {
        itemId: "11",
        title: "American President, The (1995)",
        features: { categorical: { genres: ["Comedy", "Drama", "Romance"], year_bucket: "1990s" }, tags: ["pixar", "funny"] },
      },
      { itemId: "12", title: "Untitled", features: { categorical: { genres: [] }, tags: [] } },
    ]);
  });
  it.skipIf(!hasMovieLens)("accepts every row of ml-latest-small", async () => {
    const data = await loadMovieLens(ML_DIR);
    expect(data.events.length).toBe(100_004);
    expect(data.items.length).toBe(9_125);
    expect(data.reports.ratings.skipped + data.reports.movies.skipped + (data.reports.tags?.skipped ?? 0)).toBe(0);
    expect(data.items.find((i) => i.itemId === "11")?.title).toBe("American President, The (1995)");
  }, SLOW_TEST_TIMEOUT_MS);
  it.skipIf(!hasMovieLens)("names each corrupted row of a damaged copy by line, in one validation pass", async () => {
    const lines = readFileSync(join(ML_DIR, "ratings.csv"), "utf8").split("\n");
    lines[10] = "1,abc,4,1260759144";
    lines[500] = '7,10,"4,1';
    lines[2000] = "8,20,9.5,1260759144";
    const dir = mkdtempSync(join(tmpdir(), "freshrec-ml-"));
    const path = join(dir, "ratings.csv");
    writeFileSync(path, lines.join("\n"));
    const report = new ImportReport(path);
    const accepted = await drain(parseMovieLensRatings(readLines(path), report));
    expect(accepted).toBe(100_001);
    expect(report.rejected.map((r) => r.slice(path.length + 1).split(":")[0])).toEqual(["11", "501", "2001"]);
    expect(report.skipReasons).toEqual({ "invalid movieId": 1, "malformed CSV": 1, "invalid rating": 1 });
  }, SLOW_TEST_TIMEOUT_MS);
});

describe("generic format", () => {
  it("reads events from CSV with ms or ISO timestamps and a derived eventId", async () => {
    const report = new ImportReport("events.csv");
    const events = await collect(
      parseGenericEvents(linesOf("userId,itemId,ts,signal,extra\nu1,i1,1000,1,z\nu1,i2,2024-01-02T00:00:00Z,-1,z\nu2,i3,yesterday,1,z"), report, "csv"),
    );
    expect(events).toEqual([
      { eventId: "u1-i1-1000", userId: "u1", itemId: "i1", ts: 1000, signal: 1 },
      { eventId: "u1-i2-1704153600000", userId: "u1", itemId: "i2", ts: 1704153600000, signal: -1 },
    ]);
    expect(report.rejected).toEqual(['events.csv:4: ts: expected integer epoch milliseconds or an ISO-8601 date (got "yesterday")']);
  });
  it("reads events from JSONL and rejects malformed lines", async () => {
    const report = new ImportReport("e.jsonl");
    const events = await collect(
      parseGenericEvents(linesOf('{"eventId":"e1","userId":7,"itemId":"a","ts":5,"signal":2}\n{oops\n\n{"userId":"u","itemId":"b","ts":1,"signal":"x"}'), report, "jsonl"),
    );
    expect(events).toEqual([{ eventId: "e1", userId: "7", itemId: "a", ts: 5, signal: 2 }]);
    expect(report.summary()).toMatchObject({ rowsRead: 3, skipped: 2, skipReasons: { "malformed JSON": 1, "invalid signal": 1 } });
    expect(report.rejected[0]).toMatch(/^e\.jsonl:2: /);
    expect(report.rejected[1]).toMatch(/^e\.jsonl:4: signal/);
  });
  it("reads items from CSV as clusterId or categorical features plus tags", async () => {
    const report = new ImportReport("items.csv");
    const items = await collect(parseGenericItems(linesOf("itemId,clusterId,genre,tags\na,3,,\nb,,rock|pop,loud|live\nc,,,"), report, "csv"));
    expect(items).toEqual([
      { itemId: "a", clusterId: 3 },
      { itemId: "b", features: { categorical: { genre: ["rock", "pop"] }, tags: ["loud", "live"] } },
    ]);
    expect(report.rejected[0]).toContain("items.csv:4: clusterId: an item needs a clusterId or features");
  });
  it("reads items from JSONL", async () => {
    const report = new ImportReport("items.jsonl");
    const items = await collect(parseGenericItems(linesOf('{"itemId":"a","features":{"categorical":{"genre":"jazz"}}}\n{"itemId":"b","clusterId":-1}'), report, "jsonl"));
    expect(items).toEqual([{ itemId: "a", features: { categorical: { genre: "jazz" }, tags: [] } }]);
    expect(report.rejected[0]).toContain("items.jsonl:2: clusterId:");
  });
  it("parses timestamps strictly", () => {
    expect(parseTimestamp("2020-01-01")).toBe(Date.UTC(2020, 0, 1));
    expect(parseTimestamp("2020-01-01T01:00:00+01:00")).toBe(Date.UTC(2020, 0, 1));
    expect(parseTimestamp(-5)).toBeUndefined();
    expect(parseTimestamp("12.5")).toBeUndefined();
  });
});

describe("event order (IMPORT-FORMAT.md)", () => {
  it("orders a user's same-day events by itemId, then eventId, whatever the file order, and so fixes the transitions", async () => {
    const dir = mkdtempSync(join(tmpdir(), "freshrec-order-"));
    const rows = ["e3,u1,b,2024-05-01,5", "e1,u1,c,2024-05-01,5", "e2,u1,a,2024-05-01,5", "e0,u1,a,2024-05-01,5", "e9,u1,z,2024-04-30,5", "e5,u2,c,2024-05-01,5"];
    const cluster: Record<string, number> = { z: 0, a: 1, b: 2, c: 3 };
    const outcomes = [];
    for (const [name, order] of [["file.csv", rows], ["reversed.csv", [...rows].reverse()]] as const) {
      const path = join(dir, name);
      writeFileSync(path, `eventId,userId,itemId,ts,signal\n${order.join("\n")}\n`);
      const { events } = await loadGenericEvents(path);
      const transitions = [...streamTransitions(events, (id) => cluster[id], { k: 2 })];
      outcomes.push({ order: events.map((e) => e.eventId), transitions: transitions.map((t) => `${t.history.join(",")}->${t.next}`), tied: sameTimestampEvents(events) });
    }
    expect(outcomes[0]).toEqual({ order: ["e9", "e0", "e2", "e3", "e1", "e5"], transitions: ["0,1->2", "1,2->3"], tied: 4 });
    expect(outcomes[1]).toEqual(outcomes[0]);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("--threshold", () => {
  it("takes any finite number and names a bad value", () => {
    expect(parseThresholdOption("3.5")).toBe(3.5);
    expect(parseThresholdOption("-1")).toBe(-1);
    for (const bad of ["", "four", "1e999", "NaN", "4x"]) expect(() => parseThresholdOption(bad)).toThrow(InvalidOptionError);
    expect(() => parseThresholdOption("four")).toThrow('--threshold "four": expected a finite number (positive engagement is signal >= X)');
  });
});

describe("readLines", () => {
  it("names the missing path", async () => {
    await expect(drain(readLines("/nonexistent/file.csv"))).rejects.toThrow("cannot read /nonexistent/file.csv");
  });
});
