import { parseArgs } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DAY_MS, SYNTHETIC_SIZES, createSyntheticWorld, type SyntheticSize } from "@freshrec/core";
import { SchedulerConfigSchema, StrategySchema } from "@freshrec/trainer-bridge";
import { exitOnSignals, loadServerConfig, loopConfigFor, loopStateFile, readLoopState, SimulatedLoop, startServer } from "@freshrec/server";
import { terminalProgress } from "../progress.js";

export const summary = "run the service: seed the synthetic world and bootstrap models on first start, then serve while the update loop runs";

const HELP = `usage: freshrec serve [options]

First start (empty store): generates the synthetic world, ingests its first days, bootstraps the
base model, the first adapter and the first table (child-process jobs, with progress), then serves.
Later starts reuse the store and the registry and are ready in seconds. While serving, the hybrid
update loop runs on a simulated clock that streams the rest of the world into the store.

  --size SIZE         synthetic world: tiny | default | large (default: default; a store keeps its size)
  --store URI         LanceDB store (default data/store)
  --models DIR        model registry (default models)
  --port N            default 8787 (0 = any free port)
  --host H            default 127.0.0.1
  --config FILE       JSON server config (see ServerConfigSchema); flags and env override it
  --day-seconds S     wall seconds per simulated day (default 30)
  --no-simulate       keep the clock still: no world streaming, no scheduled jobs (bootstrap still runs if needed)
  --strategy S        scheduler strategy: hybrid (default), adaptive, rag, finetune, static, rag-frozen
  --warm-days D       days of the world ingested before the first bootstrap (default: half the world)
  --log-level L       pino level (default info)

Auth: FRESHREC_API_KEYS="name=key:read,ingest;ops=key2:admin". Without keys on a loopback host, auth is
OFF (localhost demo; every caller is admin) and a warning says so. Without keys on another host, serve refuses to start.`;

const isLoopback = (host: string) => host === "127.0.0.1" || host === "localhost" || host === "::1";

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      size: { type: "string" },
      store: { type: "string", default: "data/store" },
      models: { type: "string", default: "models" },
      port: { type: "string" },
      host: { type: "string" },
      config: { type: "string" },
      "day-seconds": { type: "string", default: "30" },
      "no-simulate": { type: "boolean", default: false },
      strategy: { type: "string", default: "hybrid" },
      "warm-days": { type: "string" },
      "log-level": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const storeUri = resolve(values.store);
  const modelsDir = resolve(values.models);
  mkdirSync(modelsDir, { recursive: true });
  const stateFile = loopStateFile(modelsDir);
  const saved = readLoopState(stateFile);
  const size = (saved?.size ?? values.size ?? "default") as SyntheticSize;
  if (!SYNTHETIC_SIZES.includes(size)) throw new Error(`--size: expected one of ${SYNTHETIC_SIZES.join(", ")}, got ${JSON.stringify(size)}`);
  if (saved && values.size && values.size !== saved.size) console.error(`freshrec serve: this store holds the '${saved.size}' world; ignoring --size ${values.size}`);
  const daySeconds = Number(values["day-seconds"]);
  if (!(daySeconds > 0)) throw new Error(`--day-seconds: expected a positive number, got ${JSON.stringify(values["day-seconds"])}`);

  // Jobs (child processes) read the loop settings for this world size from a file next to the registry.
  const loopConfig = loopConfigFor(size);
  const loopConfigFile = join(modelsDir, "serve-loop-config.json");
  writeFileSync(loopConfigFile, JSON.stringify(loopConfig, null, 2));

  const env = { ...process.env };
  const host = values.host ?? env.FRESHREC_HOST ?? "127.0.0.1";
  const noKeys = !env.FRESHREC_API_KEYS;
  if (noKeys && env.FRESHREC_AUTH !== "off") {
    if (!isLoopback(host)) throw new Error(`refusing to serve on ${host} without API keys: set FRESHREC_API_KEYS (or FRESHREC_AUTH=off to accept the risk)`);
    env.FRESHREC_AUTH = "off";
  }
  const config = loadServerConfig({
    file: values.config,
    env,
    overrides: {
      storeUri,
      modelsDir,
      host,
      jobArgs: ["--config", loopConfigFile],
      ...(values.port !== undefined ? { port: Number(values.port) } : {}),
      ...(values["log-level"] ? { logLevel: values["log-level"] as "info" } : {}),
    },
  });
  let loop: SimulatedLoop | undefined;
  const server = await startServer(config, { clock: () => loop?.now() ?? Date.now() });
  const { log, store, registry } = server;
  const { jobs, afterIngest } = server.app.context;
  if (!config.auth.enabled) log.warn("auth is OFF (no FRESHREC_API_KEYS on a loopback host): every caller is an admin. Set keys before exposing this server.");
  const world = createSyntheticWorld(size);
  const progress = terminalProgress();
  jobs.subscribe((job, event) => {
    if (event === "progress" && job.progress) progress.report({ ...job.progress, phase: `${job.kind}:${job.progress.phase}` });
    if (event === "end") progress.done();
  });

  let initialNow = world.startMs + Math.round((Number(values["warm-days"] ?? world.config.days / 2)) * DAY_MS);
  if ((await store.clusters()).length === 0) {
    log.info({ size, clusters: world.clusters.length, items: world.items.length }, "empty store: seeding the synthetic world");
    await store.putClusters(world.clusters);
    await store.putItems(world.items.map((i) => ({ itemId: i.itemId, clusterId: i.clusterId })));
  } else {
    const range = await store.timeRange();
    if (range && !saved) initialNow = Math.max(initialNow, range.max + 1);
  }
  loop = new SimulatedLoop(
    {
      world,
      size,
      store,
      registry,
      jobs,
      log,
      scheduler: SchedulerConfigSchema.parse({ strategy: StrategySchema.parse(values.strategy) }),
      stateFile,
      loopConfig,
      speed: values["no-simulate"] ? 0 : DAY_MS / (daySeconds * 1000),
      tickMs: 1000,
      onIngest: afterIngest,
    },
    { now: initialNow },
  );
  // A bootstrap that never finished (crash, failed job) leaves no active model: let the scheduler start over.
  const active = registry.active();
  if (!active.base || !active.table) loop.resetScheduler();
  else loop.adoptBootstrapped();
  const ingested = await loop.catchUp();
  if (ingested > 0) log.info({ events: ingested, until: new Date(loop.now()).toISOString() }, "caught up with the synthetic world (events up to the simulated clock)");
  loop.start();

  const banner = () => {
    const auth = config.auth.enabled ? ' -H "Authorization: Bearer $KEY"' : "";
    console.error(`
freshrec is serving at ${server.url}   (simulated clock: ${new Date(loop!.now()).toISOString().slice(0, 10)}, ${values["no-simulate"] ? "stopped" : `1 day every ${daySeconds} s`})

  curl${auth} '${server.url}/v1/users/u1/next-interests?k=5'
  curl${auth} '${server.url}/v1/users/u1/next-interests?k=5&mode=live'
  curl${auth} -X POST ${server.url}/v1/next-interests -H 'content-type: application/json' -d '{"history":[3,7],"k":5}'
  curl${auth} -X POST ${server.url}/v1/events -H 'content-type: application/json' \\
       -d '{"events":[{"eventId":"demo-1","userId":"u1","itemId":"c3-i0","ts":${loop!.now()},"signal":5}]}'
  curl${auth} ${server.url}/v1/model      curl ${server.url}/metrics      curl ${server.url}/openapi.json
`);
  };
  await server.loaded;
  if (server.app.context.manager.ready) banner();
  else {
    log.info("not ready yet: bootstrapping the first model and table (GET /readyz says when)");
    const wait = setInterval(() => {
      if (!server.app.context.manager.ready) return;
      clearInterval(wait);
      banner();
    }, 500);
    wait.unref();
  }
  exitOnSignals(server, log, () => loop!.stop());
  await new Promise(() => {}); // serve until a signal ends the process
  return 0;
}
