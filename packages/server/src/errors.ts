import { clip, FreshrecError, MAX_LISTED_ISSUES, ValidationError, type ErrorCode } from "@freshrec/core";
import { storeFaultAnswer } from "./store-health.js";

/** An error the API answers with a specific HTTP status; its message is safe to show to the client. */
export class HttpError extends FreshrecError {
  constructor(
    readonly status: number,
    code: ErrorCode,
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

/** Client errors raised by express's router and body parser that carry no `type` of their own, by what they mean. */
function untypedClientError(err: { name?: string; errno?: unknown }): { code: string; message: string } {
  // The router fails to decode a path parameter (a bad percent-escape) with a URIError.
  if (err.name === "URIError") return { code: "bad-path", message: "request path holds an invalid percent-escape" };
  // A decompression error (zlib's and brotli's carry an errno): the body is not encoded as its content-encoding says.
  if (typeof err.errno === "number") {
    return { code: "bad-content-encoding", message: "request body does not decode with its content-encoding" };
  }
  return { code: "bad-request", message: "request was rejected" };
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
    // The message is bounded by ValidationError; each issue is clipped here, so a huge bad field gets a small answer.
    const issues = err.issues.slice(0, MAX_LISTED_ISSUES).map((i) => ({ path: clip(i.path || "(root)"), message: clip(i.message) }));
    return { status: 400, headers: {}, body: { error: { code: "validation", message: err.message, requestId, issues } } };
  }
  // express's router and body parser raise http-errors style errors: a 4xx `status` (and for the parser a `type`).
  const clientError = err as { type?: string; status?: number; limit?: number; name?: string; errno?: unknown };
  if (clientError?.type === "entity.too.large") {
    return { status: 413, headers: {}, body: { error: { code: "too-large", message: `request body exceeds the limit of ${clientError.limit} bytes`, requestId } } };
  }
  if (clientError?.type === "entity.parse.failed") {
    return { status: 400, headers: {}, body: { error: { code: "malformed-json", message: "request body is not valid JSON", requestId } } };
  }
  if (typeof clientError?.status === "number" && clientError.status >= 400 && clientError.status < 500) {
    const { code, message } = clientError.type ? { code: clientError.type, message: "request body was rejected" } : untypedClientError(clientError);
    return { status: clientError.status, headers: {}, body: { error: { code, message, requestId } } };
  }
  if (err instanceof FreshrecError && err.code === "unknown-cluster") {
    return { status: 400, headers: {}, body: { error: { code: err.code, message: err.message, requestId } } };
  }
  // Store faults (disk full, a table to repair): 503, the details and remedy go to the log and /readyz.
  const storeFault = storeFaultAnswer(err);
  if (storeFault) return { status: storeFault.status, headers: storeFault.headers, body: { error: { code: storeFault.code, message: storeFault.message, requestId } } };
  return { status: 500, headers: {}, body: { error: { code: "internal", message: "internal error; see the server log for this request id", requestId } } };
}
