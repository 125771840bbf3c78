import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { DAY_MS, FreshrecError, parseOrThrow } from "@freshrec/core";
import { ApiKeySchema, parseApiKeys } from "./auth.js";

/** The monorepo root (jobs run from there) and the `freshrec` CLI: admin jobs run as `freshrec jobs run ...` in a child process. */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const CLI_MAIN = fileURLToPath(new URL("../../../apps/cli/src/main.ts", import.meta.url));

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
    })
    .default({ bodyBytes: 1_048_576, maxBatch: 5_000, ratePerS: 20_000, burst: 40_000 }),
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
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** SIGTERM: how long in-flight requests may take before the process exits anyway. */
  shutdownGraceMs: z.number().int().min(0).default(10_000),
  /** argv prefix that runs the CLI; admin jobs append `jobs run <kind> ...`. */
  jobCommand: z.array(z.string()).min(1).default([process.execPath, "--import", "tsx", CLI_MAIN]),
  /** Extra arguments for every job, e.g. ["--config", "<loop config JSON>"]. */
  jobArgs: z.array(z.string()).default([]),
});
export type ServerConfig = z.infer<typeof ServerConfigSchema>;
export type ServerConfigInput = z.input<typeof ServerConfigSchema>;

/**
 * Builds the config from (lowest to highest precedence) a JSON file, the environment and explicit overrides.
 * Environment: FRESHREC_PORT, FRESHREC_HOST, FRESHREC_API_KEYS ("key:read,ingest;name=key:admin"),
 * FRESHREC_AUTH=off, FRESHREC_LOG_LEVEL.
 */
export function loadServerConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Partial<ServerConfigInput> } = {}): ServerConfig {
  const env = opts.env ?? process.env;
  let fromFile: Record<string, unknown> = {};
  if (opts.file) {
    try {
      fromFile = JSON.parse(readFileSync(opts.file, "utf8")) as Record<string, unknown>;
    } catch (err) {
      throw new FreshrecError("config", `cannot read server config ${opts.file}: ${(err as Error).message}`);
    }
  }
  const fromEnv: Record<string, unknown> = {};
  if (env.FRESHREC_PORT) fromEnv.port = Number(env.FRESHREC_PORT);
  if (env.FRESHREC_HOST) fromEnv.host = env.FRESHREC_HOST;
  if (env.FRESHREC_LOG_LEVEL) fromEnv.logLevel = env.FRESHREC_LOG_LEVEL;
  const fileAuth = (fromFile.auth ?? {}) as Record<string, unknown>;
  const overrideAuth = (opts.overrides?.auth ?? {}) as Record<string, unknown>;
  const auth = {
    ...fileAuth,
    ...(env.FRESHREC_API_KEYS ? { keys: parseApiKeys(env.FRESHREC_API_KEYS) } : {}),
    ...(env.FRESHREC_AUTH === "off" ? { enabled: false } : {}),
    ...overrideAuth,
  };
  const merged = { ...fromFile, ...fromEnv, ...opts.overrides, auth };
  return parseOrThrow(ServerConfigSchema, merged, opts.file ? `server config (${opts.file} + environment)` : "server config (environment)");
}
