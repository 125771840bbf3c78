import type { ZodError } from "zod";

/**
 * Every code a FreshrecError carries: a closed set, so what switches on codes (the CLI's exit statuses, the HTTP
 * API's error bodies, the store's fault answers, tests) can rely on it. Add a code here before raising it.
 */
export const ERROR_CODES = [
  "adapter-file",
  "adapter-mismatch",
  "adapter-stale",
  "ambiguous-descriptions",
  "artefact-integrity",
  "bad-model",
  "bad-table",
  "bad-table-meta",
  "bench",
  "config",
  "conflict",
  "dashboard-not-built",
  "data-too-thin",
  "disk-full",
  "empty-table",
  "external-trainer",
  "forbidden",
  "import-failed",
  "invalid-argument",
  "io",
  "job",
  "job-busy",
  "job-failed",
  "model-file",
  "no-file",
  "no-jobs",
  "not-found",
  "not-freshrec-model",
  "not-ready",
  "object-store",
  "out-of-order",
  "rate-limited",
  "read-only-replica",
  "registry",
  "replay",
  "report",
  "scorer-disposed",
  "scoring-failed",
  "store-corrupt",
  "store-derived-missing",
  "store-derived-inconsistent",
  "store-incompatible",
  "store-locked",
  "store-unavailable",
  "store-usage",
  "swap-timeout",
  "too-large",
  "trainer",
  "trainer-build",
  "training-set",
  "unauthorized",
  "unknown-cluster",
  "unusable-model",
  "usage",
  "validation",
  "wrong-kind",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base class: every error freshrec raises on purpose is a FreshrecError with a stable code. */
export class FreshrecError extends Error {
  constructor(
    readonly code: ErrorCode,
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

/** Longest echo of one value, path or message in an error text: a huge bad field must not make a huge error. */
export const MAX_ECHO_CHARS = 200;
/** Issues spelled out in a ValidationError's message (and an API answer); the rest are counted. */
export const MAX_LISTED_ISSUES = 50;
/** Nesting shown in a value's preview; deeper parts become "…" (a deeply nested value must not overflow the stack). */
const MAX_PREVIEW_DEPTH = 6;

/** `text`, cut to `max` characters with an ellipsis and its original length. */
export function clip(text: string, max = MAX_ECHO_CHARS): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}

/**
 * A JSON-like preview of a value of any size or depth, at most about `max` characters: the walk stops once
 * the budget is spent, so its cost is bounded too. A cut preview ends in an ellipsis and the value's size.
 */
export function previewValue(value: unknown, max = MAX_ECHO_CHARS): string {
  let out = "";
  let cut = false;
  const walk = (v: unknown, depth: number): void => {
    if (typeof v === "string") {
      cut ||= v.length > max;
      out += JSON.stringify(v.slice(0, max));
    } else if (typeof v !== "object" || v === null) out += typeof v === "bigint" ? `${v}n` : String(v);
    else if (depth >= MAX_PREVIEW_DEPTH) out += Array.isArray(v) ? "[…]" : "{…}";
    else if (Array.isArray(v)) {
      out += "[";
      for (let i = 0; i < v.length; i++) {
        if (out.length > max) {
          cut = true;
          return;
        }
        if (i > 0) out += ",";
        walk(v[i], depth + 1);
      }
      out += "]";
    } else {
      out += "{";
      let first = true;
      for (const key in v) {
        if (out.length > max) {
          cut = true;
          return;
        }
        out += `${first ? "" : ","}${JSON.stringify(key.slice(0, max))}:`;
        first = false;
        walk((v as Record<string, unknown>)[key], depth + 1);
      }
      out += "}";
    }
  };
  walk(value, 0);
  if (!cut && out.length <= max) return out;
  const size = typeof value === "string" ? `${value.length} chars` : Array.isArray(value) ? `${value.length} items` : `${Object.keys(value as object).length} keys`;
  return `${out.slice(0, max)}… (${size})`;
}

export class ValidationError extends FreshrecError {
  constructor(
    readonly where: string,
    readonly issues: FieldIssue[],
  ) {
    const listed = issues.slice(0, MAX_LISTED_ISSUES).map((i) => `${clip(i.path || "(root)")}: ${clip(i.message)}${i.value === undefined ? "" : ` (got ${previewValue(i.value)})`}`);
    const more = issues.length - listed.length;
    super("validation", `${where}: ${listed.join("; ")}${more > 0 ? `; and ${more} more issue${more === 1 ? "" : "s"}` : ""}`);
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
