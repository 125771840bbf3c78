import { z } from "zod";
import { DAY_MS, FreshrecError, parseOrThrow } from "@freshrec/core";
import { ApiKeySchema, parseApiKeys } from "./auth.js";


export const ServerConfigSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).default(8787),
  host: z.string().min(1).default("127.0.0.1"),
  storeUri: z.string().min(1),
  modelsDir: z.string().min(1),
  auth: z
    .strictObject({
      /** false = every request is an anonymous admin. Only for a localhost demo; `freshrec serve` says so loudly. */
      enabled: z.boolean().default(true),
      keys: z.array(ApiKeySchema).default([]),
    })
    .default({ enabled: true, keys: [] })
    .refine((a) => !a.enabled || a.keys.length > 0, { message: "auth is enabled but no API keys are configured (set FRESHREC_API_KEYS)", path: ["keys"] }),
  limits: z
    .strictObject({
      bodyBytes: z.number().int().min(1024).default(1_048_576),
      maxBatch: z.number().int().min(1).default(5_000),
      /** Token bucket per API key (or per client address when auth is off). */
      ratePerS: z.number().positive().default(20_000),
      burst: z.number().int().min(1).default(40_000),
      /** Failed authentications (401/403) per client address: past this bucket the address gets 429 before its key is checked. */
      authFailuresPerS: z.number().positive().default(1),
      authFailureBurst: z.number().int().min(1).default(30),
      /** Ingested event timestamps may run at most this far ahead of the server clock. */
      maxFutureSkewMs: z.number().int().min(0).default(DAY_MS),
    })
    .default({ bodyBytes: 1_048_576, maxBatch: 5_000, ratePerS: 20_000, burst: 40_000, authFailuresPerS: 1, authFailureBurst: 30, maxFutureSkewMs: DAY_MS }),
  serving: z
    .strictObject({
      liveWindowMs: z.number().int().positive().default(14 * DAY_MS),
      ragMethod: z.enum(["frequency", "trend"]).default("frequency"),
      reloadEvery: z.number().int().min(1).default(16),
      /** Safety net only: ingestion through this process (API or simulated loop) invalidates a user at once. */
      userCacheMs: z.number().int().min(0).default(10_000),
      userCacheSize: z.number().int().min(1).default(100_000),
      /** Sequences per scorer context: concurrent live requests decode together. */
      parallel: z.number().int().min(1).default(16),
      threads: z.number().int().min(1).default(1),
      /** A model or adapter load slower than this fails its swap (the previous one keeps serving). */
      swapTimeoutMs: z.number().int().min(100).default(60_000),
    })
    .default({ liveWindowMs: 14 * DAY_MS, ragMethod: "frequency", reloadEvery: 16, userCacheMs: 10_000, userCacheSize: 100_000, parallel: 16, threads: 1, swapTimeoutMs: 60_000 }),
  /** Served answers recorded for online quality: sampled, buffered in memory, flushed in batches by the writer (replicas keep theirs in memory). */
  recording: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Share of user answers recorded (drawn from a generator seeded by `seed`). */
      sampleRate: z.number().min(0).max(1).default(1),
      seed: z.number().int().default(1),
      /** Answers held in memory: past it, a writer drops new ones (counted), a replica forgets its oldest. */
      bufferSize: z.number().int().min(1).default(100_000),
      /**
       * Identical answers (same clusters, mode, lineage and arm) to one user within one window of this length are one
       * exposure, stored once with the number of requests it answered: a client polling or a page reloaded shows
       * the user nothing new, and counting each request would weigh those users' outcomes many times over. 0: every
       * request is its own row.
       */
      repeatWindowMs: z.number().int().min(0).default(60_000),
      /** The writer appends the buffer to the store this often (one LanceDB version per flush). */
      flushEveryMs: z.number().int().min(50).default(5_000),
      /** The writer deletes stored answers older than this (hourly): the log must not outgrow the store. */
      retentionMs: z.number().int().positive().default(30 * DAY_MS),
    })
    .prefault({}),
  /** Online quality: the share of served answers whose clusters the user engaged with within the horizon. */
  quality: z
    .strictObject({
      horizonMs: z.number().int().positive().default(DAY_MS),
      /** Answers served this far back from now are counted (bounds the join). */
      windowMs: z.number().int().positive().default(7 * DAY_MS),
      /** At most about this many stored answers are joined: past it the window shrinks to the latest ones (high traffic: also lower recording.sampleRate). */
      maxAnswers: z.number().int().positive().default(200_000),
      /** Width of the time buckets of the quality-over-time series. */
      bucketMs: z.number().int().positive().default(DAY_MS),
      /** A computed report is reused this long (the dashboard and /metrics poll it). */
      cacheMs: z.number().int().min(0).default(2_000),
    })
    .prefault({}),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** SIGTERM: how long in-flight requests may take before the process exits anyway. */
  shutdownGraceMs: z.number().int().min(0).default(10_000),
  /** writer: the one process that ingests, runs jobs and promotes; replica: read-only, follows the writer's promotions. */
  role: z.enum(["writer", "replica"]).default("writer"),
  /** The writer's base URL, named in a replica's refusals of writes. */
  writerUrl: z.string().url().optional(),
});
export type ServerConfig = z.infer<typeof ServerConfigSchema>;
export type ServerConfigInput = z.input<typeof ServerConfigSchema>;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

/**
 * Builds the config from (lowest to highest precedence) a JSON object (the `server` part of a config file,
 * named by `source` in errors), the environment and explicit overrides. Environment: FRESHREC_PORT,
 * FRESHREC_HOST, FRESHREC_API_KEYS ("key:read,ingest;name=key:admin"), FRESHREC_AUTH=off, FRESHREC_LOG_LEVEL.
 * Keys count from every source. With none at all, `anonymousOnLoopback` turns auth off on a loopback host
 * (a local demo; the caller warns) and refuses any other host.
 */
export function loadServerConfig(
  opts: { values?: Record<string, unknown>; source?: string; env?: NodeJS.ProcessEnv; overrides?: Partial<ServerConfigInput>; anonymousOnLoopback?: boolean } = {},
): ServerConfig {
  const env = opts.env ?? process.env;
  const fromFile = opts.values ?? {};
  const fromEnv: Record<string, unknown> = {};
  if (env.FRESHREC_PORT) fromEnv.port = Number(env.FRESHREC_PORT);
  if (env.FRESHREC_HOST) fromEnv.host = env.FRESHREC_HOST;
  if (env.FRESHREC_LOG_LEVEL) fromEnv.logLevel = env.FRESHREC_LOG_LEVEL;
  const fileAuth = (fromFile.auth ?? {}) as Record<string, unknown>;
  const overrideAuth = (opts.overrides?.auth ?? {}) as Record<string, unknown>;
  const auth: Record<string, unknown> = {
    ...fileAuth,
    ...(env.FRESHREC_API_KEYS ? { keys: parseApiKeys(env.FRESHREC_API_KEYS) } : {}),
    ...(env.FRESHREC_AUTH === "off" ? { enabled: false } : {}),
    ...overrideAuth,
  };
  const merged: Record<string, unknown> = { ...fromFile, ...fromEnv, ...opts.overrides, auth };
  const noKeys = !Array.isArray(auth.keys) || auth.keys.length === 0;
  if (opts.anonymousOnLoopback && noKeys && auth.enabled !== false) {
    const host = typeof merged.host === "string" ? merged.host : "127.0.0.1";
    if (!LOOPBACK.has(host))
      throw new FreshrecError("config", `refusing to serve on ${host} without API keys: set FRESHREC_API_KEYS or auth.keys in --config (or FRESHREC_AUTH=off to accept the risk)`);
    auth.enabled = false;
  }
  const where = opts.source ? `server config (${opts.source} + environment)` : "server config (environment)";
  return parseOrThrow(ServerConfigSchema, merged, where);
}
