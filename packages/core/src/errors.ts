import type { ZodError } from "zod";

/** Base class: every error freshrec raises on purpose is a FreshrecError with a stable code. */
export class FreshrecError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** One invalid field: where it is (dotted path, optionally prefixed by file:line) and why. */
export interface FieldIssue {
  path: string;
  message: string;
  value?: unknown;
}

export class ValidationError extends FreshrecError {
  constructor(
    readonly where: string,
    readonly issues: FieldIssue[],
  ) {
    super("validation", `${where}: ${issues.map((i) => `${i.path || "(root)"}: ${i.message}${i.value === undefined ? "" : ` (got ${JSON.stringify(i.value)})`}`).join("; ")}`);
  }
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let cur: unknown = input;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

/** Turns a zod error into field issues that carry the offending value. */
export function issuesFromZod(error: ZodError, input: unknown): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
    value: valueAt(input, issue.path),
  }));
}
