import { randomUUID } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import pino, { type Logger } from "pino";
import type { Event } from "@freshrec/core";
import { Authenticator, type Principal } from "./auth.js";
import { REPO_ROOT, type ServerConfig } from "./config.js";
import { HttpError, notFound, rateLimited, toErrorAnswer } from "./errors.js";
import { JobRunner } from "./jobs.js";
import { ServerMetrics } from "./metrics.js";
import { ModelManager } from "./model-manager.js";
import { openApiDocument } from "./openapi.js";
import type { LoadModel, RegistryPort, StorePort } from "./ports.js";
import { Predictor } from "./predictor.js";
import { RateLimiter } from "./rate-limit.js";
import { checkBatchSize, routeSpecs, validate, type RouteSpec } from "./routes.js";
import type { ServiceContext } from "./service-context.js";

export const SERVER_VERSION = "0.1.0";

export interface AppDeps {
  config: ServerConfig;
  store: StorePort;
  registry: RegistryPort;
  loadModel: LoadModel;
  log?: Logger;
  /** Serving clock (ms); defaults to wall time. `freshrec serve` passes the simulated clock. */
  clock?: () => number;
  metrics?: ServerMetrics;
}

export interface FreshrecApp {
  app: express.Express;
  context: ServiceContext;
  log: Logger;
  /** Loads the active artefacts and starts following the registry; resolves when the first sync ends. */
  start(): Promise<void>;
  /** Stops jobs, disposes scorers, tables and models (after in-flight requests), closes the store. */
  close(): Promise<void>;
}

const REQUEST_ID = /^[\w.:-]{1,64}$/;

interface Locals {
  requestId: string;
  startedAt: number;
  route: string;
  mode: string;
  principal?: Principal;
}

/** Builds the express app around injected components (the real store, registry and model loader). */
export function createApp(deps: AppDeps): FreshrecApp {
  const { config } = deps;
  const log = deps.log ?? pino({ level: config.logLevel });
  const metrics = deps.metrics ?? new ServerMetrics();
  const clock = deps.clock ?? Date.now;
  const manager = new ModelManager({
    registry: deps.registry,
    store: deps.store,
    loadModel: deps.loadModel,
    metrics,
    log,
    reloadEvery: config.serving.reloadEvery,
    threads: config.serving.threads,
    parallel: config.serving.parallel,
    swapTimeoutMs: config.serving.swapTimeoutMs,
  });
  const predictor = new Predictor({
    manager,
    store: deps.store,
    metrics,
    clock,
    liveWindowMs: config.serving.liveWindowMs,
    ragMethod: config.serving.ragMethod,
    userCacheMs: config.serving.userCacheMs,
    userCacheSize: config.serving.userCacheSize,
  });
  const jobs = new JobRunner({
    command: config.jobCommand,
    storeUri: config.storeUri,
    modelsDir: config.modelsDir,
    cwd: REPO_ROOT,
    jobArgs: config.jobArgs,
    log,
    metrics,
  });
  let newestIngested = 0;
  const context: ServiceContext = {
    store: deps.store,
    registry: deps.registry,
    manager,
    predictor,
    jobs,
    metrics,
    clock,
    afterIngest(events: Event[]) {
      predictor.invalidateUsers(new Set(events.map((e) => e.userId)));
      for (const e of events) if (e.ts > newestIngested) newestIngested = e.ts;
      metrics.ingestLagSeconds.set(Math.max(0, (clock() - newestIngested) / 1000));
    },
    async modelAnswer() {
      const active = await deps.registry.active();
      const scorer = manager.scorers.value;
      const table = manager.tables.value;
      return {
        ready: manager.ready,
        lineage: { baseId: scorer?.baseId ?? null, adapterId: scorer?.adapterId ?? null, tableId: table?.id ?? null, snapshotId: table?.snapshotId ?? null },
        since: manager.since,
        registryActive: active,
        serving: {
          scorerGeneration: manager.scorers.generation,
          tableGeneration: manager.tables.generation,
          tableKeys: table?.rows.size ?? 0,
          adaptersCachedByModel: manager.models.value?.adapterLoads ?? 0,
          modelsDraining: manager.models.draining,
        },
        lastSwap: manager.lastSwap,
        lastFailure: manager.lastFailure,
        registry: (await deps.registry.list()).map((r) => ({ id: r.id, kind: r.kind, status: r.status, createdAt: r.createdAt, gate: r.gate, manifest: r.manifest })),
        jobs: jobs.list(),
      };
    },
  };

  const auth = new Authenticator(config.auth.keys, config.auth.enabled);
  const limiter = new RateLimiter(config.limits.ratePerS, config.limits.burst);
  const specs = routeSpecs(config.limits.maxBatch);
  const openapi = openApiDocument(specs, { version: SERVER_VERSION });

  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.set("query parser", "simple");

  const locals = (res: Response) => res.locals as Locals;
  const send = (res: Response, status: number, body: unknown) => {
    const l = locals(res);
    res.status(status).json(body);
    metrics.requestSeconds.observe({ method: res.req.method, route: l.route, mode: l.mode, status }, (performance.now() - l.startedAt) / 1000);
    // 503 (not ready) is an expected state, not a failure; other 5xx are logged with their cause by the error handler.
    if (status >= 500 && status !== 503) log.error({ reqId: l.requestId, route: l.route, status }, "request failed");
    else log.debug({ reqId: l.requestId, method: res.req.method, route: l.route, mode: l.mode, status, key: l.principal?.name, ms: performance.now() - l.startedAt }, "request");
  };

  app.use((req: Request, res: Response, next: NextFunction) => {
    const given = req.headers["x-request-id"];
    const requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader("x-request-id", requestId);
    Object.assign(res.locals, { requestId, startedAt: performance.now(), route: "unmatched", mode: "" } satisfies Locals);
    next();
  });

  const jsonBody = express.json({ limit: config.limits.bodyBytes });
  for (const spec of specs) {
    const where = `${spec.method.toUpperCase()} ${spec.path}`;
    // Auth and rate limit come before the body is read, so anonymous clients cannot make the server parse bodies.
    const gate: express.RequestHandler = (req, res, next) => {
      const l = locals(res);
      l.route = spec.path;
      if (spec.scope) {
        const principal = auth.identify(req.headers.authorization ?? (req.headers["x-api-key"] as string | undefined));
        l.principal = principal;
        Authenticator.require(principal, spec.scope);
        const wait = limiter.take(config.auth.enabled ? principal.name : (req.socket.remoteAddress ?? "local"));
        if (wait > 0) throw rateLimited(wait);
      }
      next();
    };
    const handle: express.RequestHandler = async (req, res) => {
      const l = locals(res);
      if (spec.path === "/v1/events") checkBatchSize(req.body, config.limits.maxBatch);
      const input = {
        params: validate(spec.params, req.params, where),
        query: validate(spec.query, req.query, where),
        body: validate(spec.body, req.body, where),
        principal: l.principal ?? ANONYMOUS,
        req,
      };
      const answer = await spec.handler(input, context);
      if (answer.mode) l.mode = answer.mode;
      send(res, answer.status ?? 200, answer.body);
    };
    const handlers = spec.body ? [gate, jsonBody, handle] : [gate, handle];
    app[spec.method](spec.path, ...handlers);
  }

  app.get("/metrics", async (_req, res) => {
    locals(res).route = "/metrics";
    res.setHeader("content-type", metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  });
  app.get("/openapi.json", (_req, res) => {
    locals(res).route = "/openapi.json";
    send(res, 200, openapi);
  });

  app.use((req: Request, _res: Response, next: NextFunction) => next(notFound(`no route ${req.method} ${req.path}`)));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const l = locals(res);
    const answer = toErrorAnswer(err, l.requestId);
    if (answer.status >= 500 && !(err instanceof HttpError)) log.error({ err, reqId: l.requestId, route: l.route }, "unhandled error");
    else log.debug({ reqId: l.requestId, route: l.route, code: answer.body.error.code }, "rejected request");
    for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
    send(res, answer.status, answer.body);
  });

  return {
    app,
    context,
    log,
    async start() {
      manager.watch();
      await manager.sync("startup");
    },
    async close() {
      await jobs.stop();
      await manager.close();
      await deps.store.close();
    },
  };
}

const ANONYMOUS: Principal = { name: "anonymous", scopes: new Set() };
