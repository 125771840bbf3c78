/**
 * The service, composed: an HTTP server (packages/server) and, on the writer, the store's writer lock, the
 * update loop (trainer-bridge's UpdateLoop) with its jobs in child processes, and scheduled store maintenance.
 * `freshrec serve` composes it over the wall clock; `freshrec demo` over a simulated clock and the synthetic world.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { DAY_MS, type Event } from "@freshrec/core";
import { openRegistryMirror, type ActiveSet } from "@freshrec/registry";
import { acquireStoreWriterLock, isObjectStoreUri, objectStorageEnv, type Store, type WriterLock } from "@freshrec/retriever";
import { loadScoringModel } from "@freshrec/scorer";
import { exitOnSignals, loadServerConfig, startServer, type RunningServer, type ServerConfig, type ServerConfigInput } from "@freshrec/server";
import { DecisionLogLineSchema, JobProcesses, loopStateFile, nativeTrainer, UpdateLoop, type Clock, type DecisionLogLine, type EventSource, type LoopStatus } from "@freshrec/trainer-bridge";
import { terminalProgress } from "../progress.js";
import { CLI_COMMAND, REPO_ROOT } from "../paths.js";
import type { ServiceFile } from "./config-file.js";

export type Role = "writer" | "replica";

export interface ServiceOptions {
  role: Role;
  storeUri: string;
  /** The local registry folder; with registryUri, the local cache of that registry. */
  modelsDir: string;
  /** An s3:// registry that modelsDir mirrors: the writer pushes to it, replicas pull from it (object-mirror.ts). */
  registryUri?: string;
  file: ServiceFile;
  /** Flags and fixed settings over the file and the environment. */
  overrides: Partial<ServerConfigInput>;
  /** Wall clock unless given (the demo's simulated clock). */
  clock?: Clock;
  /**
   * The demo's synthetic world, made once the writer holds the store (it may seed it); production has none:
   * events arrive over HTTP or by `freshrec import`. `afterIngest` keeps the server's user caches right.
   */
  source?: (store: Store, afterIngest: (events: Event[]) => void) => Promise<EventSource>;
  /** "data" in production (windows anchor at the newest event when the store holds only history); "clock" in the demo. */
  anchor?: "clock" | "data";
  /** Called after every loop step (the demo moves its clock). */
  afterStep?: () => Promise<void> | void;
  /** Named in the writer lock and in refusals. */
  command: string;
}

export interface Service {
  server: RunningServer;
  config: ServerConfig;
  loop?: UpdateLoop;
  jobs?: JobProcesses;
  /** Stops the loop and its job, drains HTTP, closes the store, releases the writer lock. */
  stop(reason: string): Promise<void>;
}

/**
 * Starts a writer (lock, server, loop, jobs, maintenance) or a read-only replica (server only). If anything
 * fails after the server listens, everything started is stopped before the error propagates: a failed start
 * never leaves a port open.
 */
export async function startService(o: ServiceOptions): Promise<Service> {
  const config = loadServerConfig({ values: o.file.server, ...(o.file.source ? { source: o.file.source } : {}), overrides: { ...o.overrides, role: o.role }, anonymousOnLoopback: true });
  // The store, the server and the writer's job processes all reach object storage with the same settings.
  if (isObjectStoreUri(o.storeUri) || o.registryUri) Object.assign(process.env, objectStorageEnv(o.file.storage));
  const lock: WriterLock | undefined = o.role === "writer" ? await acquireStoreWriterLock(o.storeUri, { command: o.command, storage: o.file.storage }) : undefined;
  let mirroring: { stop(): Promise<void> } | undefined;
  let server: RunningServer | undefined;
  let loop: UpdateLoop | undefined;
  let jobs: JobProcesses | undefined;
  let maintenance: { stop(): void } | undefined;
  const clock = o.clock ?? { now: () => Date.now() };
  let stopping: Promise<void> | undefined;
  const stop = (reason: string) =>
    (stopping ??= (async () => {
      await loop?.stop();
      await jobs?.stop();
      maintenance?.stop();
      await server?.shutdown(reason);
      await mirroring?.stop(); // the writer's last push: every promotion it made reaches the bucket
      await lock?.release();
    })());

  const log = pino({ level: config.logLevel });
  try {
    if (o.registryUri) mirroring = await mirrorRegistry(o.registryUri, o.modelsDir, o, log, () => void server?.app.context.manager.sync("registry mirror").catch((err) => log.error({ err }, "sync after a registry pull failed")));
    if (o.role === "writer") {
      mkdirSync(o.modelsDir, { recursive: true });
      // Jobs are separate processes: they read the loop's job settings from a file beside the registry.
      const jobsConfigFile = join(o.modelsDir, "jobs-config.json");
      writeFileSync(jobsConfigFile, JSON.stringify(o.file.jobs, null, 2));
      jobs = new JobProcesses({
        command: CLI_COMMAND,
        storeUri: o.storeUri,
        modelsDir: o.modelsDir,
        cwd: REPO_ROOT,
        jobArgs: ["--config", jobsConfigFile],
        env: { FRESHREC_WRITER_TOKEN: lock!.holder.token },
        log,
      });
    }
    const loopPort = { status: (): LoopStatus | { phase: string } => loop?.status() ?? { phase: "starting" }, decisions: (limit: number) => recentDecisions(o.modelsDir, limit) };
    server = await startServer(config, { log, clock: () => clock.now(), ...(jobs ? { jobs, loop: loopPort } : {}) });
    const { store, registry } = server;
    if (!config.auth.enabled) log.warn("auth is OFF (no API keys on a loopback host): every caller is an admin. Set keys before exposing this server.");
    if (o.role === "replica") {
      log.info({ writer: config.writerUrl ?? "unknown" }, "read-only replica: answers reads, follows the writer's promotions; writes are refused with 421");
      return { server, config, stop };
    }

    const metrics = server.app.context.metrics;
    wireJobs(jobs!, metrics);
    const u = o.file.updateLoop;
    const source = o.source ? await o.source(store, server.app.context.afterIngest) : undefined;
    loop = new UpdateLoop({
      store,
      registry,
      scheduler: o.file.scheduler,
      clock,
      jobContext: (asOf) => ({ store, registry, trainer: nativeTrainer(), loadModel: loadScoringModel, config: o.file.jobs, asOf, by: "scheduler" }),
      runner: jobs!.actionRunner(registry),
      ...(source ? { source, sourceSync: "every-step" as const } : {}),
      anchor: o.anchor ?? "data",
      ...(u.staleAfterDays ? { staleAfterMs: u.staleAfterDays * DAY_MS } : {}),
      minTransitions: u.minTransitions,
      driftEveryMs: u.driftEverySeconds * 1000,
      readDrift: "always",
      onFailure: "retry",
      retry: { baseMs: u.retry.baseSeconds * 1000, maxMs: u.retry.maxSeconds * 1000 },
      stateFile: loopStateFile(o.modelsDir),
      log,
      onDecision: (d) => {
        metrics.loopDecisions.inc({ action: d.action, outcome: d.outcome });
        metrics.loopFailures.set(loop?.status().failure?.consecutive ?? 0);
      },
    });
    maintenance = store.startMaintenance(u.maintenanceEverySeconds * 1000, {
      onResult: (r) => log.debug({ maintenance: r }, "store maintenance done"),
      onError: (err) => log.warn({ err }, "store maintenance failed; it runs again on schedule"),
    });
    loop.start(u.tickSeconds * 1000, o.afterStep);
    return { server, config, loop, jobs, stop };
  } catch (err) {
    await stop("start failed");
    throw err;
  }
}

/**
 * Keeps the local registry folder and the s3:// registry in step: the writer first reconciles (restores from the
 * bucket on a fresh host, else uploads what it has) and then pushes every 200 ms; a replica pulls into its cache
 * every 250 ms and has its server reload at once (`onSwitched`). A failed round is logged (once per distinct
 * error) and retried: the cache keeps serving what it verified.
 */
async function mirrorRegistry(uri: string, cacheDir: string, o: ServiceOptions, log: pino.Logger, reload: () => void): Promise<{ stop(): Promise<void> }> {
  const mirror = openRegistryMirror(uri, cacheDir, o.file.storage);
  let lastError = "";
  const onError = (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    if (message !== lastError) log.warn({ err, registry: uri }, "registry mirror round failed; retrying");
    lastError = message;
  };
  try {
    if (o.role === "writer") log.info({ registry: uri, cache: cacheDir, done: await mirror.reconcile() }, "registry mirrored");
    else log.info({ registry: uri, cache: cacheDir, active: (await mirror.pull()).active }, "registry cache up to date");
  } catch (err) {
    onError(err);
  }
  const onSwitched = (active: ActiveSet) => {
    log.info({ registry: uri, active }, "registry pointer moved; reloading");
    reload();
  };
  return o.role === "writer" ? mirror.follow("push", { intervalMs: 200, onError }) : mirror.follow("pull", { intervalMs: 250, onError, onSwitched });
}

/** Job progress on the terminal and job counts in /metrics. */
function wireJobs(jobs: JobProcesses, metrics: RunningServer["app"]["context"]["metrics"]): void {
  const progress = terminalProgress();
  jobs.subscribe((job, event) => {
    if (event === "progress" && job.progress) progress.report({ ...job.progress, phase: `${job.kind}:${job.progress.phase}` });
    if (event === "end") progress.done();
    if (event !== "progress") metrics.setJobs(jobs.list());
  });
}

/** SIGTERM / SIGINT stop the service and exit 0; serve until then. */
export async function serveUntilSignal(service: Service): Promise<never> {
  exitOnSignals({ shutdown: (reason) => service.stop(reason) }, service.server.log);
  return new Promise<never>(() => {});
}

/** The loop's latest decisions from `<models>/scheduler.jsonl` (the dashboard's history); a line still being appended is skipped. */
function recentDecisions(modelsDir: string, limit: number): DecisionLogLine[] {
  const path = join(modelsDir, "scheduler.jsonl");
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .slice(-limit)
    .flatMap((line) => {
      try {
        const parsed = DecisionLogLineSchema.safeParse(JSON.parse(line));
        return parsed.success ? [parsed.data] : [];
      } catch {
        return [];
      }
    });
}
