import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Event, Item } from "../schemas.js";
import { readLines } from "./lines.js";
import { MOVIELENS_FILES, parseMovieLensMovies, parseMovieLensRatings, parseMovieLensTags } from "./movielens.js";
import { ImportReport } from "./report.js";

export interface MovieLensData {
  events: Event[];
  items: Item[];
  reports: { ratings: ImportReport; movies: ImportReport; tags?: ImportReport };
}

/**
 * Loads an ml-latest-small directory into memory (about 100k events; fine for analysis commands).
 * tags.csv is optional. Never throws for bad rows: check `reports` (e.g. `report.assertOk(strict)`).
 */
export async function loadMovieLens(dir: string): Promise<MovieLensData> {
  const tagsPath = join(dir, MOVIELENS_FILES.tags);
  let tags: ImportReport | undefined;
  let tagsByMovie = new Map<string, string[]>();
  if (existsSync(tagsPath)) {
    tags = new ImportReport(tagsPath);
    tagsByMovie = await parseMovieLensTags(readLines(tagsPath), tags);
  }
  const moviesPath = join(dir, MOVIELENS_FILES.movies);
  const movies = new ImportReport(moviesPath);
  const items: Item[] = [];
  for await (const item of parseMovieLensMovies(readLines(moviesPath), movies, tagsByMovie)) items.push(item);
  const ratingsPath = join(dir, MOVIELENS_FILES.ratings);
  const ratings = new ImportReport(ratingsPath);
  const events: Event[] = [];
  for await (const e of parseMovieLensRatings(readLines(ratingsPath), ratings)) events.push(e);
  return { events, items, reports: tags ? { ratings, movies, tags } : { ratings, movies } };
}
