/** One CSV record and the (1-based) line it starts on. */
export type CsvRecord = { line: number; fields: string[] } | { line: number; error: string };

/** Upper bound on one record's size, so a stray quote cannot make the parser swallow a whole file. */
export const MAX_RECORD_CHARS = 1 << 20;

/**
 * RFC 4180 records from a stream of lines: quoted fields may hold commas, doubled quotes and line
 * breaks. Blank lines are skipped. Malformed records come back as `{ line, error }` and parsing goes on.
 */
export async function* csvRecords(lines: AsyncIterable<string>, maxRecordChars = MAX_RECORD_CHARS): AsyncGenerator<CsvRecord> {
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
    if (inQuotes) continue;
    fields.push(cur);
    yield error ? { line: startLine, error } : { line: startLine, fields };
  }
  if (inQuotes) yield { line: startLine, error: "unterminated quoted field at end of file" };
}
