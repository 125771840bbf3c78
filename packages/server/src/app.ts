import { createServer, type RequestListener, type Server } from "node:http";
import express, { type NextFunction, type Request, type Response } from "express";
import pino, { type Logger } from "pino";
import type { Event } from "@freshrec/core";
import { Authenticator } from "./auth.js";
import type { ServerConfig } from "./config.js";
import { notFound } from "./errors.js";
import { createFastLane } from "./fast-lane.js";
import { withoutPaths } from "./log-safety.js";
import { ServerMetrics } from "./metrics.js";
import { ModelManager } from "./model-manager.js";
import { openApiDocument } from "./openapi.js";
import type { JobsPort, LoadModel, LoopPort, RegistryPort, StorePort } from "./ports.js";
import { Predictor } from "./predictor.js";
import { RateLimiter } from "./rate-limit.js";
import { rawQuery, RequestPipeline, type RequestState } from "./pipeline.js";
import { routeSpecs } from "./routes.js";
import type { ServiceContext } from "./service-context.js";
import { ServedAnswerRecorder } from "./served-recorder.js";
import { OnlineQuality } from "./quality.js";
import { TableDiffs } from "./table-diff.js";
import { dashboardAssets } from "./dashboard-assets.js";
import { ExperimentControl } from "./experiment.js";

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
  /** The writer's job starter (admin routes); absent on replicas. */
  jobs?: JobsPort;
  /** The update loop running beside this server, if any. */
  loop?: LoopPort;
}

export interface FreshrecApp {
  /** Every route; on its own it serves without the fast lane (slower, same answers). */
  app: express.Express;
  /** The request listener to serve with: the fast lane for plain GETs, express for the rest. */
  handler: RequestListener;
  /** An HTTP server on `handler`, listening. */
  listen(port: number, host: string): Server;
  context: ServiceContext;
  log: Logger;
  /** Loads the active artefacts and starts following the registry; resolves when the first sync ends. */
  start(): Promise<void>;
  /** Disposes scorers, tables and models (after in-flight requests), closes the store. Jobs and the loop belong to whoever composed the service. */
  close(): Promise<void>;
}

/** `o` with the failure text at `key` stripped of absolute paths: where the server keeps its files is no reader's business. */
function withoutPathsAt<T extends object | null>(o: T, key: string): T {
  const text = (o as Record<string, unknown> | null)?.[key];
  return typeof text === "string" ? { ...o, [key]: withoutPaths(text) } : o;
}

const loopWithoutPaths = <T extends { failure?: object } | null>(status: T): T =>
  status?.failure ? { ...status, failure: withoutPathsAt(status.failure, "error") } : status;

/** Builds the express app around injected components (the real store, registry and model loader). */
export function createApp(deps: AppDeps): FreshrecApp {
  const { config } = deps;
  const log = deps.log ?? pino({ level: config.logLevel });
  const metrics = deps.metrics ?? new ServerMetrics();
  const clock = deps.clock ?? Date.now;
  const manager: ModelManager = new ModelManager({
    registry: deps.registry,
    store: deps.store,
    loadModel: deps.loadModel,
    metrics,
    log,
    reloadEvery: config.serving.reloadEvery,
    threads: config.serving.threads,
    parallel: config.serving.parallel,
    swapTimeoutMs: config.serving.swapTimeoutMs,
    onSynced: (active): Promise<void> => experiments.follow(active.experiment),
  });
  const experiments: ExperimentControl = new ExperimentControl(
    {
      table: (id) => manager.loadTable(id),
      scorer: (baseId, adapterId) => manager.loadScorer(baseId, adapterId),
      adapterBase: (id) => manager.adapterBase(id),
      active: () => manager.scorers.value,
    },
    log,
  );
  // Replicas open the store read-only: their recorded answers stay in memory (see ServedAnswerRecorder).
  const recorder = new ServedAnswerRecorder({ settings: config.recording, ...(config.role === "writer" ? { sink: deps.store } : {}), metrics, log });
  const predictor = new Predictor({
    manager,
    store: deps.store,
    metrics,
    clock,
    liveWindowMs: config.serving.liveWindowMs,
    ragMethod: config.serving.ragMethod,
    userCacheMs: config.serving.userCacheMs,
    userCacheSize: config.serving.userCacheSize,
    experiments,
    ...(config.recording.enabled ? { onServed: (answer: Parameters<ServedAnswerRecorder["record"]>[0]) => recorder.record(answer) } : {}),
  });
  const quality = new OnlineQuality({ store: deps.store, recorder, experiments, settings: config.quality, repeatWindowMs: config.recording.repeatWindowMs, clock, metrics });
  let newestIngested = 0;
  let received = 0;
  let lagAtIngestS: number | null = null;
  const context: ServiceContext = {
    store: deps.store,
    registry: deps.registry,
    manager,
    predictor,
    role: config.role,
    ...(config.writerUrl ? { writerUrl: config.writerUrl } : {}),
    ...(deps.jobs ? { jobs: deps.jobs } : {}),
    ...(deps.loop ? { loop: deps.loop } : {}),
    metrics,
    quality,
    experiments,
    tableDiffs: new TableDiffs({ store: deps.store, registry: deps.registry }),
    clock,
    afterIngest(events: Event[]) {
      received += events.length;
      predictor.invalidateUsers(new Set(events.map((e) => e.userId)));
      for (const e of events) if (e.ts > newestIngested) newestIngested = e.ts;
      lagAtIngestS = Math.max(0, (clock() - newestIngested) / 1000);
      metrics.ingestLagSeconds.set(lagAtIngestS);
    },
    async modelAnswer() {
      const active = await deps.registry.active();
      const scorer = manager.scorers.value;
      const table = manager.tables.value;
      return {
        ready: manager.ready,
        lineage: { baseId: scorer?.baseId ?? null, adapterId: scorer?.adapterId ?? null, tableId: table?.id ?? null, snapshotId: table?.snapshotId ?? null, ragBlend: table?.blend.weights.rag ?? 0, popularityBlend: table?.blend.weights.popularity ?? 0 },
        since: manager.since,
        registryActive: active,
        serving: {
          scorerGeneration: manager.scorers.generation,
          tableGeneration: manager.tables.generation,
          tableKeys: table?.rows.size ?? 0,
          adaptersCachedByModel: manager.models.value?.adapterLoads ?? 0,
          modelsDraining: manager.models.draining,
        },
        lastSwap: withoutPathsAt(manager.lastSwap, "reason"),
        lastFailure: withoutPathsAt(manager.lastFailure, "reason"),
        degraded: manager.degraded,
        registry: (await deps.registry.list()).map((r) => ({ id: r.id, kind: r.kind, status: r.status, createdAt: r.createdAt, gate: r.gate, manifest: r.manifest })),
        role: config.role,
        ingest: { received, newestEventTs: newestIngested || null, lagS: lagAtIngestS },
        loop: loopWithoutPaths(deps.loop?.status() ?? null),
        jobs: (deps.jobs?.list() ?? []).map((job) => withoutPathsAt(job, "error")),
      };
    },
  };

  const specs = routeSpecs(config.limits.maxBatch, { clock, maxFutureSkewMs: config.limits.maxFutureSkewMs });
  const openapi = openApiDocument(specs, { version: SERVER_VERSION });
  const pipeline = new RequestPipeline({
    auth: new Authenticator(config.auth.keys, config.auth.enabled),
    limiter: new RateLimiter(config.limits.ratePerS, config.limits.burst),
    authFailures: new RateLimiter(config.limits.authFailuresPerS, config.limits.authFailureBurst),
    metrics,
    log,
    context,
    maxBatch: config.limits.maxBatch,
  });
  const routes = specs.map((spec) => pipeline.compile(spec));

  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");

  const state = (res: Response) => (res.locals as { state: RequestState }).state;
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.locals.state = pipeline.begin(req, res);
    next();
  });

  const jsonBody = express.json({ limit: config.limits.bodyBytes });
  for (const route of routes) {
    // Auth and rate limit come before the body is read, so anonymous clients cannot make the server parse bodies.
    const gate: express.RequestHandler = (req, res, next) => {
      pipeline.authorize(route, req, state(res));
      next();
    };
    const handle: express.RequestHandler = (req, res) => pipeline.run(route, state(res), { params: req.params, query: rawQuery(req.originalUrl), body: req.body }, res);
    const handlers = route.spec.body ? [gate, jsonBody, handle] : [gate, handle];
    app[route.spec.method](route.spec.path, ...handlers);
  }

  app.get("/metrics", async (_req, res) => {
    state(res).route = "/metrics";
    // Refreshes the online-quality gauges (a cached report when one is fresh); a failure leaves them as they were.
    await quality.report().catch((err: unknown) => log.warn({ err }, "online quality for /metrics failed"));
    res.setHeader("content-type", metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  });
  app.get("/openapi.json", (_req, res) => {
    state(res).route = "/openapi.json";
    pipeline.reply(res, state(res), 200, openapi);
  });

  // The dashboard's static files hold no data (every figure comes from the read-scoped API), so they are open.
  app.use("/dashboard", (_req: Request, res: Response, next: NextFunction) => {
    state(res).route = "/dashboard";
    next();
  }, dashboardAssets());

  app.use((req: Request, _res: Response, next: NextFunction) => next(notFound(`no route ${req.method} ${req.path}`)));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => pipeline.fail(res, state(res), err));

  const fastLane = createFastLane(routes, pipeline);
  const handler: RequestListener = (req, res) => {
    if (!fastLane(req, res)) app(req, res);
  };

  return {
    app,
    handler,
    listen: (port, host) => createServer(handler).listen(port, host),
    context,
    log,
    async start() {
      manager.watch();
      recorder.start(clock);
      await manager.sync("startup");
    },
    async close() {
      await recorder.close();
      await experiments.close();
      await manager.close();
      await deps.store.close();
    },
  };
}

