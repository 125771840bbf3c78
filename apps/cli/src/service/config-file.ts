import { readFileSync } from "node:fs";
import { z } from "zod";
import { FreshrecError, parseOrThrow } from "@freshrec/core";
import { resolveObjectStorage, type ObjectStorage } from "@freshrec/retriever";
import { LoopConfigSchema, SchedulerConfigSchema, type LoopConfig, type SchedulerConfig } from "@freshrec/trainer-bridge";

/** How the long-running update loop of a writer behaves (the jobs' own windows and models are under `jobs`). */
export const UpdateLoopSettingsSchema = z.strictObject({
  /** Seconds between the loop's wake-ups: decisions happen at most this often. */
  tickSeconds: z.number().positive().default(5),
  /** Positive transitions the store must hold before the first bootstrap; until then /readyz is 503 and says how many. */
  minTransitions: z.number().int().nonnegative().default(500),
  /** When the newest stored event is older than this, windows end at it instead of the wall clock (default: the RAG window). */
  staleAfterDays: z.number().positive().optional(),
  /** Drift is read at most this often (seconds), logged with every decision, and drives the adaptive strategy. */
  driftEverySeconds: z.number().positive().default(3600),
  /** A failed job is retried after baseSeconds, doubling per consecutive failure, at most maxSeconds. */
  retry: z.strictObject({ baseSeconds: z.number().positive().default(30), maxSeconds: z.number().positive().default(1800) }).prefault({}),
  /** Store compaction and old-version cleanup (LanceDB makes a version per write). */
  maintenanceEverySeconds: z.number().positive().default(600),
});
export type UpdateLoopSettings = z.infer<typeof UpdateLoopSettingsSchema>;

/**
 * The one configuration file of `freshrec serve` / `freshrec demo` (`--config FILE`, JSON; example:
 * `config/freshrec.example.json`). Server settings sit at the top level (port, host, auth, limits, serving, and
 * `recording` / `quality` for online quality: ServerConfigSchema), beside four sections: `scheduler` (strategy and cadences), `jobs` (windows, gates and
 * hyper-parameters of the update jobs: LoopConfigSchema), `updateLoop` (the loop process itself) and `storage`
 * (how to reach an s3:// store and registry: endpoint, region, accessKeyId, secretAccessKey, pathStyle;
 * ObjectStorageSchema, over the AWS_* environment variables).
 */
const ServiceFileSchema = z
  .object({
    scheduler: z.record(z.string(), z.unknown()).optional(),
    jobs: z.record(z.string(), z.unknown()).optional(),
    updateLoop: z.record(z.string(), z.unknown()).optional(),
    storage: z.record(z.string(), z.unknown()).optional(),
  })
  .catchall(z.unknown());

export interface ServiceFile {
  /** Server settings, validated later with the environment and flags merged in (loadServerConfig). */
  server: Record<string, unknown>;
  scheduler: SchedulerConfig;
  jobs: LoopConfig;
  updateLoop: UpdateLoopSettings;
  /** Object-storage settings in effect (file over environment); used only when the store or registry is s3://. */
  storage: ObjectStorage;
  source?: string;
}

/** Reads and validates a service config file; every error names the file and the field. */
export function readServiceFile(path: string | undefined, defaults: { jobs?: LoopConfig } = {}): ServiceFile {
  let raw: unknown = {};
  if (path) {
    try {
      raw = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new FreshrecError("config", `cannot read config ${path}: ${(err as Error).message}`);
    }
  }
  const where = path ?? "defaults";
  const { scheduler, jobs, updateLoop, storage, ...server } = parseOrThrow(ServiceFileSchema, raw, where);
  return {
    server,
    scheduler: parseOrThrow(SchedulerConfigSchema, scheduler ?? {}, `${where}: scheduler`),
    jobs: jobs ? parseOrThrow(LoopConfigSchema, { ...defaults.jobs, ...jobs }, `${where}: jobs`) : (defaults.jobs ?? LoopConfigSchema.parse({})),
    updateLoop: parseOrThrow(UpdateLoopSettingsSchema, updateLoop ?? {}, `${where}: updateLoop`),
    storage: resolveObjectStorage(storage, process.env, `${where}: storage`),
    ...(path ? { source: path } : {}),
  };
}
