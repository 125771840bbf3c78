import { EventSchema, ItemSchema, type Event, type Item } from "../schemas.js";
import type { FieldIssue } from "../errors.js";
import { headedRows } from "./csv.js";
import { reasonOf, type ImportReport } from "./report.js";

/** MovieLens ml-latest-small files, as found in a dataset directory. */
export const MOVIELENS_FILES = { ratings: "ratings.csv", movies: "movies.csv", tags: "tags.csv" } as const;

const POSITIVE_INT = /^[1-9]\d*$/;
const NON_NEGATIVE_INT = /^\d+$/;

/**
 * ratings.csv (userId,movieId,rating,timestamp in Unix seconds) -> Events.
 * eventId is `ml-<userId>-<movieId>-<timestamp>`, ts is milliseconds, signal is the star rating.
 */
export async function* parseMovieLensRatings(lines: AsyncIterable<string>, report: ImportReport): AsyncGenerator<Event> {
  for await (const row of headedRows(lines, report, { required: ["userId", "movieId", "rating", "timestamp"] as const })) {
    const userId = row.get("userId").trim();
    const movieId = row.get("movieId").trim();
    const rating = row.get("rating").trim();
    const timestamp = row.get("timestamp").trim();
    const issues: FieldIssue[] = [];
    if (!POSITIVE_INT.test(userId)) issues.push({ path: "userId", message: "expected a positive integer", value: userId });
    if (!POSITIVE_INT.test(movieId)) issues.push({ path: "movieId", message: "expected a positive integer", value: movieId });
    const stars = Number(rating);
    if (rating === "" || !Number.isFinite(stars) || stars < 0.5 || stars > 5)
      issues.push({ path: "rating", message: "expected a number from 0.5 to 5", value: rating });
    if (!NON_NEGATIVE_INT.test(timestamp)) issues.push({ path: "timestamp", message: "expected integer Unix seconds", value: timestamp });
    if (issues.length > 0) {
      report.reject(row.line, reasonOf(issues), issues);
      continue;
    }
    const candidate = { eventId: `ml-${userId}-${movieId}-${timestamp}`, userId, itemId: movieId, ts: Number(timestamp) * 1000, signal: stars };
    const event = report.admit(EventSchema, candidate, row.line);
    if (event) yield event;
  }
}

/** tags.csv -> movieId -> distinct lower-cased tags (in first-seen order). Small file, so the map is the result. */
export async function parseMovieLensTags(lines: AsyncIterable<string>, report: ImportReport): Promise<Map<string, string[]>> {
  const byMovie = new Map<string, string[]>();
  for await (const row of headedRows(lines, report, { required: ["userId", "movieId", "tag", "timestamp"] as const })) {
    const movieId = row.get("movieId").trim();
    const tag = row.get("tag").trim().toLowerCase();
    const issues: FieldIssue[] = [];
    if (!POSITIVE_INT.test(movieId)) issues.push({ path: "movieId", message: "expected a positive integer", value: movieId });
    if (tag === "") issues.push({ path: "tag", message: "empty tag", value: row.get("tag") });
    if (issues.length > 0) {
      report.reject(row.line, reasonOf(issues), issues);
      continue;
    }
    let list = byMovie.get(movieId);
    if (!list) byMovie.set(movieId, (list = []));
    if (!list.includes(tag)) list.push(tag);
    report.accept();
  }
  return byMovie;
}

const TITLE_YEAR = /\((\d{4})\)\s*$/;
const NO_GENRES = "(no genres listed)";

/** Decade label of a release year, e.g. 1994 -> "1990s". */
export const yearBucket = (year: number): string => `${Math.floor(year / 10) * 10}s`;

/**
 * movies.csv (movieId,title,genres with `|` separators; titles are quoted when they hold commas) -> Items
 * with features { categorical: { genres, year_bucket? }, tags } — tags from parseMovieLensTags.
 */
export async function* parseMovieLensMovies(
  lines: AsyncIterable<string>,
  report: ImportReport,
  tagsByMovie: ReadonlyMap<string, string[]> = new Map(),
): AsyncGenerator<Item> {
  for await (const row of headedRows(lines, report, { required: ["movieId", "title", "genres"] as const })) {
    const movieId = row.get("movieId").trim();
    const title = row.get("title").trim();
    const genresText = row.get("genres").trim();
    const issues: FieldIssue[] = [];
    if (!POSITIVE_INT.test(movieId)) issues.push({ path: "movieId", message: "expected a positive integer", value: movieId });
    if (title === "") issues.push({ path: "title", message: "empty title", value: title });
    if (genresText === "") issues.push({ path: "genres", message: `empty (use "${NO_GENRES}")`, value: genresText });
    if (issues.length > 0) {
      report.reject(row.line, reasonOf(issues), issues);
      continue;
    }
    const genres = genresText === NO_GENRES ? [] : genresText.split("|").map((g) => g.trim()).filter(Boolean);
    const year = TITLE_YEAR.exec(title)?.[1];
    const categorical: Record<string, string | string[]> = { genres };
    if (year) categorical.year_bucket = yearBucket(Number(year));
    const candidate = { itemId: movieId, title, features: { categorical, tags: tagsByMovie.get(movieId) ?? [] } };
    const item = report.admit(ItemSchema, candidate, row.line);
    if (item) yield item;
  }
}
