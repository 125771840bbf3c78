/** JSON-over-HTTP calls for tests against a running server (the in-process harness and the e2e `serve` process alike). */
export interface CallOptions {
  key?: string;
  body?: unknown;
  /** Sent as is (for malformed bodies); `body` wins when both are given. */
  raw?: string;
  headers?: Record<string, string>;
}
export interface CallResult {
  status: number;
  headers: Headers;
  json: any;
  text: string;
}
export type Call = (method: string, path: string, opts?: CallOptions) => Promise<CallResult>;

/** A caller for the server at `url`: bearer key, JSON body, and the answer parsed when it is JSON. */
export function httpCaller(url: string): Call {
  return async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    const body = opts.body !== undefined ? JSON.stringify(opts.body) : opts.raw;
    if (body !== undefined) headers["content-type"] ??= "application/json";
    const res = await fetch(url + path, { method, headers, body });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json, text };
  };
}
