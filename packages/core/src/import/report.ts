import type { z } from "zod";
import { FreshrecError, issuesFromZod, type FieldIssue } from "../errors.js";

/** Plain-data summary of one parsed file, safe to print or serialise. */
export interface ImportSummary {
  file: string;
  rowsRead: number;
  accepted: number;
  skipped: number;
  /** Skipped rows per reason class, e.g. { "invalid rating": 3, "wrong column count": 1 }. */
  skipReasons: Record<string, number>;
  /** One line per rejected row: `file:line: field: message (got value)`; at most `maxListed`. */
  rejected: string[];
  /** Rejected rows beyond `maxListed` that are counted but not listed. */
  rejectedUnlisted: number;
  /** Set when the whole file is unusable (missing header columns, unreadable): no rows were accepted. */
  fatal?: string;
}

export class ImportFailedError extends FreshrecError {
  constructor(readonly summary: ImportSummary) {
    super(
      "import-failed",
      summary.fatal
        ? `${summary.file}: ${summary.fatal}`
        : `${summary.file}: ${summary.skipped} of ${summary.rowsRead} rows rejected (first: ${summary.rejected[0] ?? "?"})`,
    );
  }
}

const formatValue = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/**
 * Collects what a streaming parser accepted and rejected. Parsers never throw for bad rows; they record
 * them here, so a caller can run a validation pass over a whole file before it writes anything.
 */
export class ImportReport {
  rowsRead = 0;
  accepted = 0;
  skipped = 0;
  readonly skipReasons: Record<string, number> = {};
  readonly rejected: string[] = [];
  rejectedUnlisted = 0;
  fatal: string | undefined;

  constructor(
    readonly file: string,
    readonly maxListed = 10_000,
  ) {}

  accept(): void {
    this.accepted++;
  }

  /** Validates one row's record: accepted and returned, or rejected with its field issues (undefined). */
  admit<T extends z.ZodType>(schema: T, candidate: unknown, line: number): z.infer<T> | undefined {
    const parsed = schema.safeParse(candidate);
    if (parsed.success) {
      this.accept();
      return parsed.data;
    }
    const issues = issuesFromZod(parsed.error, candidate);
    this.reject(line, reasonOf(issues), issues);
    return undefined;
  }

  /** Records a skipped row under a reason class, naming file, line, field and offending value. */
  reject(line: number, reason: string, issues: FieldIssue[]): void {
    this.skipped++;
    this.skipReasons[reason] = (this.skipReasons[reason] ?? 0) + 1;
    if (this.rejected.length >= this.maxListed) {
      this.rejectedUnlisted++;
      return;
    }
    const detail = issues
      .map((i) => `${i.path || "(row)"}: ${i.message}${i.value === undefined ? "" : ` (got ${formatValue(i.value)})`}`)
      .join("; ");
    this.rejected.push(`${this.file}:${line}: ${detail}`);
  }

  fail(message: string): void {
    this.fatal ??= message;
  }

  /** Whether the import must stop: the file is unusable, or (strict) any row was rejected. */
  failed(strict: boolean): boolean {
    return this.fatal !== undefined || (strict && this.skipped > 0);
  }

  summary(): ImportSummary {
    const s: ImportSummary = {
      file: this.file,
      rowsRead: this.rowsRead,
      accepted: this.accepted,
      skipped: this.skipped,
      skipReasons: { ...this.skipReasons },
      rejected: [...this.rejected],
      rejectedUnlisted: this.rejectedUnlisted,
    };
    if (this.fatal !== undefined) s.fatal = this.fatal;
    return s;
  }

  /** Throws ImportFailedError when `failed(strict)`. */
  assertOk(strict: boolean): void {
    if (this.failed(strict)) throw new ImportFailedError(this.summary());
  }
}

/** The reason class of a row rejected for its fields: "invalid <first bad field>". */
export const reasonOf = (issues: FieldIssue[]): string => `invalid ${issues[0]?.path || "row"}`;

/** Consumes a parser without keeping its records: the validation pass of a validate-then-write import. */
export async function drain(records: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of records) n++;
  return n;
}
