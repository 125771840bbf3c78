import { z } from "zod";
import { FreshrecError, parseOrThrow, type Event } from "@freshrec/core";
import {
  ClusterParamsSchema,
  ClustersAnswerSchema,
  ErrorAnswerSchema,
  ExplicitHistorySchema,
  IngestAckSchema,
  JobAnswerSchema,
  JobBodySchema,
  ModelAnswerSchema,
  NextInterestsAnswerSchema,
  NextInterestsQuerySchema,
  PromoteBodySchema,
  RollbackBodySchema,
  UserParamsSchema,
  eventsBatchSchema,
  type FutureBound,
  type Mode,
  type NextInterestsAnswer,
} from "./api-schemas.js";
import type { Principal, Scope } from "./auth.js";
import { conflict, HttpError, notFound, tooLarge } from "./errors.js";
import { JsonText } from "./json-text.js";
import { withoutPaths } from "./log-safety.js";
import { storeUnreadyReason } from "./store-health.js";
import type { ServiceContext } from "./service-context.js";
import { ExperimentRunningSchema, QualityAnswerSchema } from "./quality.js";
import { Experiment, ExperimentRequestSchema, type ExperimentRequest } from "./experiment.js";
import { TableDiffAnswerSchema, TableDiffQuerySchema } from "./table-diff.js";
import { PromotionEntrySchema, type ActiveSet } from "@freshrec/registry";

export interface RouteAnswer {
  status?: number;
  /** An object to serialise, or JsonText rendered ahead of time. */
  body: unknown;
  /** Serving mode for the latency histogram label. */
  mode?: string;
}

/** One API route: its contract (for validation and /openapi.json) and its handler. */
export interface RouteSpec {
  method: "get" | "post";
  /** Express-style path; also the metrics label, so cardinality stays bounded. */
  path: string;
  summary: string;
  /** null: open endpoint (health, readiness, metrics, docs). */
  scope: Scope | null;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  response: z.ZodType;
  /** Status of a successful answer (default 200). */
  okStatus?: number;
  // biome-ignore lint/suspicious/noExplicitAny: each handler receives what its own route's schemas parsed (specs are heterogeneous)
  handler(input: { params: any; query: any; body: any; principal: Principal }, ctx: ServiceContext): Promise<RouteAnswer>;
}

const AddClustersBodySchema = z.strictObject({
  clusters: z.array(z.strictObject({ id: z.number().int().nonnegative(), keywords: z.array(z.string().min(1).max(200)).min(1).max(32) })).min(1).max(1_000),
  items: z.array(z.strictObject({ itemId: z.string().min(1).max(200), clusterId: z.number().int().nonnegative() })).max(100_000).default([]),
});
const AddClustersAnswerSchema = z.object({ added: z.array(z.number().int()), clusters: z.number().int().describe("clusters now stored"), items: z.number().int() });
const ReadyAnswerSchema = z.object({ ready: z.boolean(), reason: z.string().optional() });
const ExperimentAnswerSchema = z.object({ experiment: ExperimentRunningSchema.nullable(), ended: ExperimentRunningSchema.optional() });
const HISTORY_LIMIT = 200;
const HistoryAnswerSchema = z.object({
  promotions: z.array(PromotionEntrySchema).describe(`the latest ${HISTORY_LIMIT} promotions and rollbacks, oldest first`),
  decisions: z.array(z.record(z.string(), z.unknown())).describe(`the update loop's latest ${HISTORY_LIMIT} decisions (scheduler.jsonl lines); empty where no loop runs`),
});
const AdminAnswerSchema = z.object({ swaps: z.array(z.object({ ok: z.boolean(), what: z.string(), reason: z.string().optional() })), model: ModelAnswerSchema });

export function routeSpecs(maxBatch: number, future: FutureBound): RouteSpec[] {
  const EventsBatch = eventsBatchSchema(maxBatch, future);
  return [
    {
      method: "post",
      path: "/v1/events",
      summary: "Ingest a batch of engagement events; answers once they are durable. Idempotent by eventId.",
      scope: "ingest",
      body: EventsBatch,
      response: IngestAckSchema,
      async handler({ body }, ctx) {
        writerOnly(ctx, "ingest events");
        const events = body.events as Event[];
        const { accepted, duplicates } = await ctx.store.ingest(events);
        ctx.afterIngest(events);
        ctx.metrics.ingested.inc({ outcome: "accepted" }, accepted);
        if (duplicates > 0) ctx.metrics.ingested.inc({ outcome: "duplicate" }, duplicates);
        return { body: { accepted, duplicates, received: body.events.length } };
      },
    },
    {
      method: "get",
      path: "/v1/users/:userId/next-interests",
      summary: "The user's next novel interest clusters, from the table or scored live.",
      scope: "read",
      params: UserParamsSchema,
      query: NextInterestsQuerySchema,
      response: NextInterestsAnswerSchema,
      async handler({ params, query }, ctx) {
        const answer = await ctx.predictor.forUser(params.userId, query.k, query.mode);
        return { body: answer, mode: servedMode(answer, query.mode) };
      },
    },
    {
      method: "post",
      path: "/v1/next-interests",
      summary: "Next novel interest clusters for an explicit history (no stored user needed).",
      scope: "read",
      body: ExplicitHistorySchema,
      response: NextInterestsAnswerSchema,
      async handler({ body }, ctx) {
        const answer = await ctx.predictor.forHistory(body.history, body.k, body.mode);
        return { body: answer, mode: servedMode(answer, body.mode) };
      },
    },
    {
      method: "get",
      path: "/v1/clusters",
      summary: "All interest clusters with their keywords.",
      scope: "read",
      response: ClustersAnswerSchema,
      async handler(_input, ctx) {
        const clusters = await ctx.store.clusters();
        return { body: { clusters: clusters.map((c) => ({ id: c.id, keywords: c.keywords })) } };
      },
    },
    {
      method: "post",
      path: "/v1/admin/clusters",
      summary:
        "Add interest clusters (and items in them) to a running system. A text model ranks a new cluster from its keywords at once, without retraining; a cluster-token model cannot (409 says what it needs) and nothing is stored.",
      scope: "admin",
      body: AddClustersBodySchema,
      response: AddClustersAnswerSchema,
      async handler({ body }, ctx) {
        writerOnly(ctx, "add clusters");
        const { clusters: added, items } = body as z.infer<typeof AddClustersBodySchema>;
        const existing = await ctx.store.clusters();
        const taken = new Set(existing.map((c) => c.id));
        const clash = added.filter((c) => taken.has(c.id)).map((c) => c.id);
        if (clash.length > 0) throw conflict(`cluster ids ${clash.join(", ")} exist already: new clusters need new ids (the next free one is ${Math.max(-1, ...taken) + 1})`);
        const unknown = items.filter((i) => !added.some((c) => c.id === i.clusterId) && !taken.has(i.clusterId));
        if (unknown.length > 0) throw notFound(`items name unknown clusters: ${unknown.slice(0, 5).map((i) => `${i.itemId} -> ${i.clusterId}`).join(", ")}`);
        const all = [...existing, ...added].sort((a, b) => a.id - b.id);
        // The model first: it refuses (cluster-token, or descriptions a text model cannot tell apart) before anything is stored.
        try {
          ctx.manager.addClusters(all, added, [ctx.experiments.current?.candidateTable]);
        } catch (err) {
          if (err instanceof FreshrecError && (err.code === "conflict" || err.code === "ambiguous-descriptions")) throw conflict(err.message);
          throw err;
        }
        await ctx.store.putClusters(added);
        if (items.length > 0) await ctx.store.putItems(items);
        return { body: { added: added.map((c) => c.id), clusters: all.length, items: items.length } };
      },
    },
    {
      method: "get",
      path: "/v1/clusters/:clusterId",
      summary: "One interest cluster.",
      scope: "read",
      params: ClusterParamsSchema,
      response: ClustersAnswerSchema.shape.clusters.element,
      async handler({ params }, ctx) {
        const cluster = (await ctx.store.clusters()).find((c) => c.id === params.clusterId);
        if (!cluster) throw notFound(`unknown cluster ${params.clusterId}`);
        return { body: { id: cluster.id, keywords: cluster.keywords } };
      },
    },
    {
      method: "get",
      path: "/v1/model",
      summary: "Active base, adapter, table and RAG snapshot, since when, gate results, last swap, jobs.",
      scope: "read",
      response: ModelAnswerSchema,
      async handler(_input, ctx) {
        return { body: await ctx.modelAnswer() };
      },
    },
    {
      method: "get",
      path: "/v1/quality",
      summary: "Online quality: the share of served answers whose top-1 / top-k clusters the user engaged with within the horizon, per table, adapter, mode and arm, with 95 % intervals.",
      scope: "read",
      response: QualityAnswerSchema,
      async handler(_input, ctx) {
        return { body: await ctx.quality.report() };
      },
    },
    {
      method: "get",
      path: "/v1/tables/diff",
      summary: "History keys whose top-1 changed between two tables (default: the active table against the one before it), and whether RAG or the model changed.",
      scope: "read",
      query: TableDiffQuerySchema,
      response: TableDiffAnswerSchema,
      async handler({ query }, ctx) {
        return { body: await ctx.tableDiffs.diff(query) };
      },
    },
    {
      method: "get",
      path: "/v1/history",
      summary: "The registry's promotions and rollbacks, and the update loop's latest decisions with their drift readings.",
      scope: "read",
      response: HistoryAnswerSchema,
      async handler(_input, ctx) {
        const promotions = (await ctx.registry.promotions()).slice(-HISTORY_LIMIT);
        return { body: { promotions, decisions: ctx.loop?.decisions?.(HISTORY_LIMIT) ?? [] } };
      },
    },
    {
      method: "post",
      path: "/v1/admin/promote",
      summary: "Make a registered artefact (base, adapter or table) active and swap it in.",
      scope: "admin",
      body: PromoteBodySchema,
      response: AdminAnswerSchema,
      async handler({ body, principal }, ctx) {
        writerOnly(ctx, "promote");
        const record = (await ctx.registry.list()).find((r) => r.id === body.id);
        if (!record) throw notFound(`the registry has no artefact '${body.id}'`);
        const before = await ctx.registry.active();
        await registryCall(() => ctx.registry.promote(body.id, `api:${principal.name}`));
        const swaps = await ctx.manager.sync(`promote by ${principal.name}`, { retryFailed: true });
        const failed = swaps.find((s) => !s.ok);
        if (failed) {
          // It does not load: the pointer goes back, so that a restart comes up on what serves now.
          const previous = before[record.kind];
          if (previous) await registryCall(() => ctx.registry.rollback(record.kind, `api:${principal.name}`));
          const pointer = previous ? `the active ${record.kind} stays ${previous}` : `no earlier ${record.kind} exists to return to`;
          throw conflict(`${record.kind} '${body.id}' failed to load (${withoutPaths(failed.reason ?? "unknown reason")}); ${pointer}`);
        }
        return { body: { swaps, model: await ctx.modelAnswer() } };
      },
    },
    {
      method: "post",
      path: "/v1/admin/rollback",
      summary: "Return the given kind to the artefact that was active before, and swap it in.",
      scope: "admin",
      body: RollbackBodySchema,
      response: AdminAnswerSchema,
      async handler({ body, principal }, ctx) {
        writerOnly(ctx, "roll back");
        await registryCall(() => ctx.registry.rollback(body.kind, `api:${principal.name}`));
        const swaps = await ctx.manager.sync(`rollback by ${principal.name}`, { retryFailed: true });
        return { body: { swaps, model: await ctx.modelAnswer() } };
      },
    },
    {
      method: "post",
      path: "/v1/admin/experiment",
      summary:
        "Start a traffic split: a share of users (by a hash of their id) is answered by a candidate table and/or adapter; /v1/quality compares the arms. Kept in the registry, so every server of it runs the split and a restart keeps it. Replaces a running one.",
      scope: "admin",
      body: ExperimentRequestSchema,
      response: ExperimentAnswerSchema,
      async handler({ body, principal }, ctx) {
        writerOnly(ctx, "start an experiment");
        const req = body as ExperimentRequest;
        const records = new Map((await ctx.registry.list()).map((r) => [r.id, r]));
        const active = await ctx.registry.active();
        for (const [kind, id] of [["table", req.candidateTable], ["adapter", req.candidateAdapter]] as const) {
          if (id === undefined) continue;
          if (records.get(id)?.kind !== kind) throw notFound(`the registry has no ${kind} '${id}'`);
          if (id === active[kind]) throw conflict(`'${id}' is the active ${kind}: a candidate must differ from what serves`);
        }
        const by = `api:${principal.name}`;
        const settings = { candidateTable: req.candidateTable ?? null, candidateAdapter: req.candidateAdapter ?? null, share: req.share, salt: req.salt, since: Date.now(), by };
        // Loaded here first: the registry only records a split this server can run.
        let prepared: Experiment;
        try {
          prepared = await ctx.experiments.prepare(settings);
        } catch (err) {
          throw conflict(`the candidate does not load (${withoutPaths(err instanceof Error ? err.message : String(err))})`);
        }
        let registered: ActiveSet | undefined;
        try {
          await registryCall(() => (registered = ctx.registry.startExperiment(settings, by)));
        } catch (err) {
          await prepared.dispose();
          throw err;
        }
        ctx.experiments.install(new Experiment(registered!.experiment!, prepared.candidateTable, prepared.candidateScorers));
        return { body: { experiment: ctx.experiments.current!.describe() } };
      },
    },
    {
      method: "post",
      path: "/v1/admin/experiment/stop",
      summary: "End the traffic split (in the registry: every server of it stops): every user is answered by the active artefacts again. Promoting the candidate is a separate, deliberate call (and ends the split too).",
      scope: "admin",
      body: z.strictObject({}).describe("no fields (an empty body is fine)"),
      response: ExperimentAnswerSchema,
      async handler({ principal }, ctx) {
        writerOnly(ctx, "stop an experiment");
        const ended = ctx.experiments.current?.describe();
        await registryCall(() => ctx.registry.stopExperiment(`api:${principal.name}`));
        ctx.experiments.install(null);
        return { body: { experiment: null, ...(ended ? { ended } : {}) } };
      },
    },
    jobRoute("refresh", "/v1/admin/refresh-table", "Start a job (child process) that builds a new RAG-augmented prediction table."),
    jobRoute("finetune", "/v1/admin/finetune", "Start a job (child process) that fine-tunes a new adapter."),
    {
      method: "get",
      path: "/healthz",
      summary: "Liveness: the process answers.",
      scope: null,
      response: z.object({ ok: z.boolean(), uptimeS: z.number() }),
      async handler() {
        return { body: { ok: true, uptimeS: Math.round(process.uptime()) } };
      },
    },
    {
      method: "get",
      path: "/readyz",
      summary: "Readiness: 200 once a model and a table are loaded and the store can serve and ingest, else 503 with the reason.",
      scope: null,
      response: ReadyAnswerSchema,
      async handler(_input, ctx) {
        // Open to anyone: the remedy names the store's folder, not where the server keeps it ('freshrec store check' prints it in full).
        const unready = await storeUnreadyReason(ctx.store);
        const store = unready && withoutPaths(unready);
        if (ctx.manager.ready && !store) return { body: { ready: true } };
        const missing = [!ctx.manager.scorers.value && "model", !ctx.manager.tables.value && "table"].filter(Boolean).join(" and ");
        const failure = ctx.manager.lastFailure;
        const loop = ctx.loop?.status();
        const why = [
          failure && `the last swap that failed: ${failure.what}: ${withoutPaths(failure.reason ?? "unknown reason")}`,
          loop?.transitions && `the update loop waits for data: ${loop.transitions.have} of ${loop.transitions.need} positive transitions stored`,
          loop?.phase === "bootstrapping" && "the update loop is bootstrapping the first model",
          loop?.failure && `the last ${loop.failure.action} job failed (${withoutPaths(loop.failure.error)}); retrying at ${new Date(loop.failure.nextAttemptAt).toISOString()}`,
        ].filter(Boolean);
        const models = ctx.manager.ready ? null : `no ${missing} loaded yet${why.length ? `: ${why.join("; ")}` : ""}`;
        return { status: 503, body: { ready: false, reason: [models, store].filter(Boolean).join("; ") } };
      },
    },
  ];
}

/** The latency label: the mode asked for, or table_fallback when a table request was scored live (table hits are pre-rendered). */
/** An admin route that starts a job of `kind` in a child process and answers 202 with the job. */
function jobRoute(kind: "refresh" | "finetune", path: string, summary: string): RouteSpec {
  return {
    method: "post",
    path,
    summary,
    scope: "admin",
    body: JobBodySchema,
    response: JobAnswerSchema,
    okStatus: 202,
    async handler({ body, principal }, ctx) {
      writerOnly(ctx, `start a ${kind} job`);
      if (!ctx.jobs) throw new HttpError(503, "no-jobs", "this server runs no update jobs");
      try {
        return { status: 202, body: { job: ctx.jobs.start(kind, { asOf: body.asOf ?? ctx.clock(), by: `api:${principal.name}` }) } };
      } catch (err) {
        if (err instanceof FreshrecError && err.code === "job-busy") throw conflict(err.message);
        throw err;
      }
    },
  };
}

function servedMode(answer: NextInterestsAnswer | JsonText, asked: Mode): string {
  return !(answer instanceof JsonText) && answer.fallback ? "table_fallback" : asked;
}

/**
 * Replicas open the store and registry read-only: writes go to the one writer, which a replica names rather
 * than forwards to (a forwarding hop would hide from the client which process acknowledged its events).
 */
function writerOnly(ctx: ServiceContext, what: string): void {
  if (ctx.role === "writer") return;
  const where = ctx.writerUrl ? `the writer at ${ctx.writerUrl}` : "the writer process of this store";
  throw new HttpError(421, "read-only-replica", `this server is a read-only replica and cannot ${what}: send it to ${where}`, ctx.writerUrl ? { "x-freshrec-writer": ctx.writerUrl } : {});
}

/** Registry refusals (gate failed, nothing to roll back to, ...) are conflicts with the registry's state. */
async function registryCall(fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof FreshrecError) throw conflict(err.message);
    throw err;
  }
}

/** Validates one part of a request; `where` names the route so the 400 says where the problem is. */
export function validate<T extends z.ZodType>(schema: T | undefined, input: unknown, where: string): z.infer<T> | undefined {
  return schema ? parseOrThrow(schema, input ?? {}, where) : undefined;
}

/** A batch over the limit is refused as oversize (413) before validating every event in it. */
export function checkBatchSize(body: unknown, maxBatch: number): void {
  const events = (body as { events?: unknown })?.events;
  if (Array.isArray(events) && events.length > maxBatch) throw tooLarge(`batch of ${events.length} events exceeds the limit of ${maxBatch}`);
}

export { ErrorAnswerSchema };
