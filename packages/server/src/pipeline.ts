import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseQueryString } from "node:querystring";
import type { Logger } from "pino";
import { Authenticator, type Principal } from "./auth.js";
import { HttpError, rateLimited, toErrorAnswer } from "./errors.js";
import { JsonText } from "./json-text.js";
import { errorForLog } from "./log-safety.js";
import type { ServerMetrics } from "./metrics.js";
import type { RateLimiter } from "./rate-limit.js";
import { checkBatchSize, validate, type RouteSpec } from "./routes.js";
import type { ServiceContext } from "./service-context.js";

/** What the server tracks about one request while answering it. */
export interface RequestState {
  requestId: string;
  method: string;
  startedAt: number;
  /** The route template (bounded metrics label), or "unmatched". */
  route: string;
  mode: string;
  principal?: Principal;
}

/** A route ready to serve: its spec plus the parts of request handling that can be prepared once. */
export interface CompiledRoute {
  spec: RouteSpec;
  /** "GET /v1/..." : named in validation errors. */
  where: string;
  /** Validates a raw query string (the part after '?'). */
  query(raw: string): unknown;
}

export interface PipelineOptions {
  auth: Authenticator;
  limiter: RateLimiter;
  /** Failed authentications (401/403) per client address. */
  authFailures: RateLimiter;
  metrics: ServerMetrics;
  log: Logger;
  context: ServiceContext;
  maxBatch: number;
}

const REQUEST_ID = /^[\w.:-]{1,64}$/;
const ANONYMOUS: Principal = { name: "anonymous", scopes: new Set() };
/** Distinct query strings whose validated form is kept per route; clients send few, a flood only churns the memo. */
const QUERY_MEMO_SIZE = 256;

/**
 * Request handling shared by the express routes and the fast lane, so both answer alike: request ids,
 * auth and rate limit, validation, the route handler, the JSON answer, latency metrics and logs.
 */
export class RequestPipeline {
  constructor(private readonly o: PipelineOptions) {}

  compile(spec: RouteSpec): CompiledRoute {
    const where = `${spec.method.toUpperCase()} ${spec.path}`;
    // Query strings repeat ("k=10&mode=table"): parse and validate each distinct one once. Only valid ones are
    // kept (frozen, as handlers share them); an invalid one is re-validated so its 400 names every issue.
    const memo = new Map<string, unknown>();
    const query = (raw: string) => {
      if (!spec.query) return undefined;
      const hit = memo.get(raw);
      if (hit !== undefined) return hit;
      const parsed = validate(spec.query, parseQueryString(raw), where);
      if (memo.size >= QUERY_MEMO_SIZE) memo.clear();
      memo.set(raw, Object.freeze(parsed));
      return parsed;
    };
    return { spec, where, query };
  }

  /** Starts a request: its id (a well-formed x-request-id is kept, else a new one) is echoed at once. */
  begin(req: IncomingMessage, res: ServerResponse): RequestState {
    const given = req.headers["x-request-id"];
    const requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader("x-request-id", requestId);
    return { requestId, method: req.method ?? "", startedAt: performance.now(), route: "unmatched", mode: "" };
  }

  /**
   * Identifies the caller and takes a rate-limit token; throws 401/403/429. Done before any body is read.
   * Failures are limited per client address, so guessing keys gets 429s once its bucket is spent.
   */
  authorize(route: CompiledRoute, req: IncomingMessage, state: RequestState): void {
    const { spec } = route;
    state.route = spec.path;
    if (!spec.scope) return;
    const address = req.socket.remoteAddress ?? "local";
    const blocked = this.o.authFailures.wait(address);
    if (blocked > 0) throw rateLimited(blocked);
    const header = req.headers.authorization ?? req.headers["x-api-key"];
    let principal: Principal;
    try {
      principal = this.o.auth.identify(typeof header === "string" ? header : undefined);
      state.principal = principal;
      Authenticator.require(principal, spec.scope);
    } catch (err) {
      this.o.authFailures.take(address);
      throw err;
    }
    const wait = this.o.limiter.take(this.o.auth.enabled ? principal.name : address);
    if (wait > 0) throw rateLimited(wait);
  }

  /** Validates the request's parts, runs the handler and answers. */
  async run(route: CompiledRoute, state: RequestState, raw: { params: unknown; query: string; body: unknown }, res: ServerResponse): Promise<void> {
    const { spec, where } = route;
    if (spec.path === "/v1/events") checkBatchSize(raw.body, this.o.maxBatch);
    const input = {
      params: validate(spec.params, raw.params, where),
      query: route.query(raw.query),
      body: validate(spec.body, raw.body, where),
      principal: state.principal ?? ANONYMOUS,
    };
    const answer = await spec.handler(input, this.o.context);
    if (answer.mode) state.mode = answer.mode;
    this.reply(res, state, answer.status ?? 200, answer.body);
  }

  /** The fast lane's whole request: authorize, run, and answer errors as the express error handler does. */
  async serve(route: CompiledRoute, req: IncomingMessage, res: ServerResponse, params: Record<string, string>, query: string): Promise<void> {
    const state = this.begin(req, res);
    try {
      this.authorize(route, req, state);
      await this.run(route, state, { params, query, body: undefined }, res);
    } catch (err) {
      this.fail(res, state, err);
    }
  }

  /** Answers with JSON, records the latency and logs the request. */
  reply(res: ServerResponse, state: RequestState, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const json = body instanceof JsonText ? body.text : JSON.stringify(body);
    res.writeHead(status, { ...headers, "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(json) });
    res.end(json);
    const ms = performance.now() - state.startedAt;
    this.o.metrics.requestSeconds.observe({ method: state.method, route: state.route, mode: state.mode, status }, ms / 1000);
    // 503 (not ready) is an expected state, not a failure; other 5xx are logged with their cause by fail().
    if (status >= 500 && status !== 503) this.o.log.error({ reqId: state.requestId, route: state.route, status }, "request failed");
    else if (this.o.log.isLevelEnabled("debug")) this.o.log.debug({ reqId: state.requestId, method: state.method, route: state.route, mode: state.mode, status, key: state.principal?.name, ms }, "request");
  }

  /** Answers anything thrown; only errors raised on purpose reach the client, with the request id. */
  fail(res: ServerResponse, state: RequestState, err: unknown): void {
    const answer = toErrorAnswer(err, state.requestId);
    if (answer.status >= 500 && !(err instanceof HttpError)) this.o.log.error({ err: errorForLog(err), reqId: state.requestId, route: state.route }, "unhandled error");
    else this.o.log.debug({ reqId: state.requestId, route: state.route, code: answer.body.error.code }, "rejected request");
    if (res.headersSent) {
      res.destroy(); // failed mid-answer: the client sees a cut connection rather than a wrong body
      return;
    }
    this.reply(res, state, answer.status, answer.body, answer.headers);
  }
}

/** The query string of a request target, as express's parser sees it (no fragment). */
export function rawQuery(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return "";
  const hash = url.indexOf("#", q);
  return hash < 0 ? url.slice(q + 1) : url.slice(q + 1, hash);
}
