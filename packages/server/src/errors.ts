import { FreshrecError, ValidationError } from "@freshrec/core";

/** An error the API answers with a specific HTTP status; its message is safe to show to the client. */
export class HttpError extends FreshrecError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
  }
}

export const unauthorized = (message: string) =>
  new HttpError(401, "unauthorized", message, { "www-authenticate": 'Bearer realm="freshrec"' });
export const forbidden = (message: string) => new HttpError(403, "forbidden", message);
export const notFound = (message: string) => new HttpError(404, "not-found", message);
export const conflict = (message: string) => new HttpError(409, "conflict", message);
export const tooLarge = (message: string) => new HttpError(413, "too-large", message);
export const rateLimited = (retryAfterS: number) =>
  new HttpError(429, "rate-limited", `rate limit exceeded; retry in ${retryAfterS} s`, { "retry-after": String(retryAfterS) });
export const notReady = (message: string) => new HttpError(503, "not-ready", message);

/** The JSON body of every error answer: a stable code, a message, and for 400 every invalid field. */
export interface ErrorBody {
  error: { code: string; message: string; requestId: string; issues?: Array<{ path: string; message: string }> };
}

/**
 * Maps anything thrown in a handler to (status, body). Only errors raised on purpose carry their message
 * to the client; anything else becomes a 500 with a generic message (details go to the log only).
 */
export function toErrorAnswer(err: unknown, requestId: string): { status: number; headers: Record<string, string>; body: ErrorBody } {
  if (err instanceof HttpError) {
    return { status: err.status, headers: err.headers, body: { error: { code: err.code, message: err.message, requestId } } };
  }
  if (err instanceof ValidationError) {
    const issues = err.issues.map((i) => ({ path: i.path || "(root)", message: i.message }));
    return { status: 400, headers: {}, body: { error: { code: "validation", message: err.message, requestId, issues } } };
  }
  // body-parser's errors carry `type` and `status` (malformed JSON -> 400, oversize -> 413).
  const parserError = err as { type?: string; status?: number; limit?: number };
  if (parserError?.type === "entity.too.large") {
    return { status: 413, headers: {}, body: { error: { code: "too-large", message: `request body exceeds the limit of ${parserError.limit} bytes`, requestId } } };
  }
  if (parserError?.type === "entity.parse.failed") {
    return { status: 400, headers: {}, body: { error: { code: "malformed-json", message: "request body is not valid JSON", requestId } } };
  }
  if (typeof parserError?.status === "number" && parserError.status >= 400 && parserError.status < 500 && parserError.type) {
    return { status: parserError.status, headers: {}, body: { error: { code: parserError.type, message: "request body was rejected", requestId } } };
  }
  if (err instanceof FreshrecError && err.code === "unknown-cluster") {
    return { status: 400, headers: {}, body: { error: { code: err.code, message: err.message, requestId } } };
  }
  return { status: 500, headers: {}, body: { error: { code: "internal", message: "internal error; see the server log for this request id", requestId } } };
}
