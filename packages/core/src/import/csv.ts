import type { ImportReport } from "./report.js";

/** One CSV record and the (1-based) line it starts on. */
export type CsvRecord = { line: number; fields: string[] } | { line: number; error: string };

/** Upper bound on one record's size, so a stray quote cannot make the parser swallow a whole file. */
export const MAX_RECORD_CHARS = 1 << 20;

export interface CsvOptions {
  /**
   * Let quoted fields span lines (RFC 4180). Off by default: with one record per line, a stray quote
   * costs one row instead of swallowing the rows after it.
   */
  multiline?: boolean;
  /** Upper bound on one multi-line record's size. */
  maxRecordChars?: number;
}

/**
 * RFC 4180 records from a stream of lines: quoted fields may hold commas, doubled quotes and (with
 * `multiline`) line breaks. Blank lines are skipped. Malformed records come back as `{ line, error }`
 * and parsing goes on.
 */
export async function* csvRecords(lines: AsyncIterable<string>, opts: CsvOptions = {}): AsyncGenerator<CsvRecord> {
  const maxRecordChars = opts.maxRecordChars ?? MAX_RECORD_CHARS;
  let lineNo = 0;
  let startLine = 0;
  let fields: string[] = [];
  let cur = "";
  let inQuotes = false;
  let error: string | undefined;
  let size = 0;

  for await (let text of lines) {
    lineNo++;
    if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (!inQuotes) {
      if (text === "") continue;
      startLine = lineNo;
      fields = [];
      cur = "";
      error = undefined;
      size = 0;
      if (!text.includes('"')) {
        yield { line: lineNo, fields: text.split(",") };
        continue;
      }
    } else {
      cur += "\n";
    }
    size += text.length;
    if (size > maxRecordChars) {
      // Give up on this record and resynchronise at the next line.
      yield { line: startLine, error: `record longer than ${maxRecordChars} characters (unterminated quote?)` };
      inQuotes = false;
      continue;
    }
    let atFieldStart = cur === "" && !inQuotes;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (inQuotes) {
        if (ch === '"') {
          if (text[i + 1] === '"') {
            cur += '"';
            i++;
          } else {
            inQuotes = false;
            const after = text[i + 1];
            if (after !== undefined && after !== ",") error ??= `unexpected character ${JSON.stringify(after)} after closing quote`;
          }
        } else cur += ch;
      } else if (ch === ",") {
        fields.push(cur);
        cur = "";
        atFieldStart = true;
        continue;
      } else if (ch === '"' && atFieldStart) {
        inQuotes = true;
      } else {
        cur += ch;
      }
      atFieldStart = false;
    }
    if (inQuotes) {
      if (opts.multiline) continue;
      inQuotes = false;
      error ??= "unterminated quoted field";
    }
    fields.push(cur);
    yield error ? { line: startLine, error } : { line: startLine, fields };
  }
  if (inQuotes) yield { line: startLine, error: "unterminated quoted field at end of file" };
}

/**
 * Maps required (and optional) column names to their positions in a header row.
 * Returns the missing required names instead of throwing, so the caller can report a fatal file error.
 */
export function columnIndex<R extends string, O extends string = never>(
  header: string[],
  required: readonly R[],
  optional: readonly O[] = [],
): { index: Record<R, number> & Partial<Record<O, number>>; missing: R[] } {
  const names = header.map((h) => h.trim());
  const index = {} as Record<string, number>;
  const missing: R[] = [];
  for (const name of required) {
    const at = names.indexOf(name);
    if (at < 0) missing.push(name);
    else index[name] = at;
  }
  for (const name of optional) {
    const at = names.indexOf(name);
    if (at >= 0) index[name] = at;
  }
  return { index: index as Record<R, number> & Partial<Record<O, number>>, missing };
}

/** A data row of a CSV file with a header: fields by column name. */
export interface HeadedRow<R extends string, O extends string> {
  line: number;
  header: readonly string[];
  fields: readonly string[];
  get(column: R): string;
  /** An optional column's value, undefined when the file has no such column. */
  opt(column: O): string | undefined;
}

/**
 * Data rows of a CSV file whose first record is a header naming at least the `required` columns (any order).
 * Records with a different column count than the header, and malformed records, are rejected into `report`;
 * a missing header column is a fatal file error. Counts every data record in `report.rowsRead`.
 */
export async function* headedRows<R extends string, O extends string = never>(
  lines: AsyncIterable<string>,
  report: ImportReport,
  spec: { required: readonly R[]; optional?: readonly O[]; csv?: CsvOptions },
): AsyncGenerator<HeadedRow<R, O>> {
  let header: string[] | undefined;
  let index: Record<R, number> & Partial<Record<O, number>> = {} as never;
  for await (const rec of csvRecords(lines, spec.csv)) {
    if (!header) {
      if ("error" in rec) {
        report.fail(`header line ${rec.line}: ${rec.error}`);
        return;
      }
      const found = columnIndex(rec.fields, spec.required, spec.optional ?? []);
      if (found.missing.length > 0) {
        report.fail(`header line ${rec.line} lacks column(s) ${found.missing.join(", ")} (got ${JSON.stringify(rec.fields.join(","))})`);
        return;
      }
      header = rec.fields.map((h) => h.trim());
      index = found.index;
      continue;
    }
    report.rowsRead++;
    if ("error" in rec) {
      report.reject(rec.line, "malformed CSV", [{ path: "", message: rec.error }]);
      continue;
    }
    if (rec.fields.length !== header.length) {
      report.reject(rec.line, "wrong column count", [
        { path: "", message: `expected ${header.length} columns, found ${rec.fields.length}`, value: rec.fields.join(",") },
      ]);
      continue;
    }
    const fields = rec.fields;
    const at = index;
    yield {
      line: rec.line,
      header,
      fields,
      get: (c: R) => fields[at[c]]!,
      opt: (c: O) => {
        const i = (at as Partial<Record<O, number>>)[c];
        return i === undefined ? undefined : fields[i];
      },
    };
  }
  if (!header) report.fail("empty file: no header line");
}
