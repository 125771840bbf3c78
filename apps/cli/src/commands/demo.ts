import { parseArgs } from "node:util";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { createSyntheticWorld, DAY_MS, FreshrecError, SYNTHETIC_SIZES, type SyntheticSize } from "@freshrec/core";
import { loopPresetFor } from "@freshrec/trainer-bridge";
import { REPO_ROOT } from "../paths.js";
import { demoTextModel, textBaseModel } from "../service/base-model.js";
import { readServiceFile } from "../service/config-file.js";
import { serveUntilSignal, startService } from "../service/compose.js";
import { readServiceFlags, SERVICE_FLAGS } from "../service/flags.js";
import { claimDemoStore, readDemoState, saveDemoState, SimulatedClock, WorldSource } from "../service/demo-world.js";

export const summary = "the embedded demo: a synthetic drifting world streamed into its own store, served while the update loop runs on a simulated clock";

const HELP = `usage: freshrec demo [options]

The production service ('freshrec serve') with two demo pieces: the embedded synthetic world as its event
source and a simulated clock. First start: seeds its own store with the world, ingests its first half, bootstraps
the base model, the first adapter and the first table (child-process jobs, with progress), then serves. Later
starts resume where the clock stopped and are ready in seconds. The demo only ever writes to a store it created.

  --size SIZE         synthetic world: tiny | default | large (default: default; a store keeps its size)
  --store URI         the demo's store (default data/demo/store)
  --models DIR        the demo's model registry (default data/demo/models)
  --day-seconds S     wall seconds per simulated day (default 30)
  --no-simulate       keep the clock still: no world streaming, no scheduled jobs (bootstrap still runs if needed)
  --warm-days D       days of the world ingested before the first bootstrap (default: half the world)
  --model-kind K      cluster-token (default: freshrec's own model, pretrained by the bootstrap) or text: a text
                      GGUF as the base, LoRA-fine-tuned on the world (--model FILE, else the demo writes a small
                      llama-architecture model with a production tokenizer and random weights, and its bootstrap
                      trains them on the world first: nothing is downloaded)
  --model FILE        the text GGUF for --model-kind text (Llama, Qwen, SmolLM2, ...)
  --strategy S        hybrid (default), adaptive, rag, finetune, static, rag-frozen
  --config FILE       the same config file as 'freshrec serve' (its jobs section replaces the world's preset)
  --port N            default 8787 (0 = any free port)
  --host H            default 127.0.0.1
  --log-level L       pino level (default info)

Auth: as 'freshrec serve' (FRESHREC_API_KEYS or auth.keys in --config; without keys, off on loopback only).`;

/** Wall milliseconds between the demo's loop steps; each moves the simulated clock by tick x speed. */
const TICK_MS = 1000;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      size: { type: "string" },
      store: { type: "string", default: resolve(REPO_ROOT, "data", "demo", "store") },
      models: { type: "string", default: resolve(REPO_ROOT, "data", "demo", "models") },
      "day-seconds": { type: "string", default: "30" },
      "no-simulate": { type: "boolean", default: false },
      "warm-days": { type: "string" },
      "model-kind": { type: "string", default: "cluster-token" },
      model: { type: "string" },
      ...SERVICE_FLAGS,
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const storeUri = resolve(values.store);
  const modelsDir = resolve(values.models);
  mkdirSync(modelsDir, { recursive: true });
  const saved = readDemoState(modelsDir);
  const size = (saved?.size ?? values.size ?? "default") as SyntheticSize;
  if (!SYNTHETIC_SIZES.includes(size)) throw new FreshrecError("usage", `--size: expected one of ${SYNTHETIC_SIZES.join(", ")}, got ${JSON.stringify(size)}`);
  if (saved && values.size && values.size !== saved.size) console.error(`freshrec demo: this demo holds the '${saved.size}' world; ignoring --size ${values.size}`);
  const daySeconds = Number(values["day-seconds"]);
  if (!(daySeconds > 0)) throw new FreshrecError("usage", `--day-seconds: expected a positive number, got ${JSON.stringify(values["day-seconds"])}`);
  const { strategy, overrides } = readServiceFlags(values);
  const warmDays = values["warm-days"] === undefined ? undefined : Number(values["warm-days"]);
  if (warmDays !== undefined && !(warmDays > 0)) throw new FreshrecError("usage", `--warm-days: expected a positive number, got ${JSON.stringify(values["warm-days"])}`);

  const world = createSyntheticWorld(size);
  const clock = new SimulatedClock(saved?.now ?? world.startMs + Math.round((warmDays ?? world.config.days / 2) * DAY_MS));
  const file = readServiceFile(values.config, { jobs: loopPresetFor(size) });
  if (strategy) file.scheduler.strategy = strategy;
  const kind = values.model !== undefined ? "text" : values["model-kind"];
  if (kind !== "cluster-token" && kind !== "text") throw new FreshrecError("usage", `--model-kind: expected cluster-token or text, got ${JSON.stringify(kind)}`);
  if (kind === "text") {
    file.jobs.baseModel = values.model !== undefined ? await textBaseModel(values.model) : await demoTextModel(modelsDir);
    // The demo's own model has random weights: the bootstrap trains them on the world first (a team's model is used as it is).
    if (values.model === undefined) file.jobs.text = { ...file.jobs.text, trainBase: true };
    // Prompts are ~20x the cluster-token model's: three LoRA epochs at a higher rate keep a fine-tune of the tiny world near 3 minutes.
    if (!values.config) file.jobs.lora = { epochs: 3, batch: 16, lr: 1e-2, rank: 8, threads: 2 };
  }
  // The demo is small and on its own data: bootstrap at once, read drift daily in simulated time.
  file.updateLoop = { ...file.updateLoop, minTransitions: 0, driftEverySeconds: Math.min(file.updateLoop.driftEverySeconds, 86_400), tickSeconds: TICK_MS / 1000 };
  const speed = values["no-simulate"] ? 0 : DAY_MS / (daySeconds * 1000);

  const service = await startService({
    role: "writer",
    storeUri,
    modelsDir,
    file,
    clock,
    anchor: "clock",
    command: "freshrec demo",
    source: async (store, afterIngest) => {
      const claimed = await claimDemoStore(store, storeUri, world, size);
      if (claimed === "seeded") console.error(`freshrec demo: seeded ${storeUri} with the '${size}' synthetic world (${world.clusters.length} clusters, ${world.items.length} items)`);
      return new WorldSource(world, store, saved?.now ?? -Infinity, afterIngest);
    },
    // The clock moves only between steps: a model is never trained on a world that moved on without it.
    afterStep: () => {
      clock.advanceTo(Math.min(world.endMs, clock.now() + Math.round(TICK_MS * speed)));
      saveDemoState(modelsDir, { size, now: clock.now() });
    },
    overrides: { ...overrides, storeUri, modelsDir },
  });
  const { server } = service;
  const banner = () => {
    const auth = service.config.auth.enabled ? ' -H "Authorization: Bearer $KEY"' : "";
    console.error(`
freshrec demo is serving at ${server.url}   (simulated clock: ${new Date(clock.now()).toISOString().slice(0, 10)}, ${speed === 0 ? "stopped" : `1 day every ${daySeconds} s`})

  curl${auth} '${server.url}/v1/users/u1/next-interests?k=5'
  curl${auth} '${server.url}/v1/users/u1/next-interests?k=5&mode=live'
  curl${auth} -X POST ${server.url}/v1/next-interests -H 'content-type: application/json' -d '{"history":[3,7],"k":5}'
  curl${auth} -X POST ${server.url}/v1/events -H 'content-type: application/json' \\
       -d '{"events":[{"eventId":"demo-1","userId":"u1","itemId":"c3-i0","ts":${clock.now()},"signal":5}]}'
  curl${auth} ${server.url}/v1/model      curl ${server.url}/metrics      curl ${server.url}/openapi.json
`);
  };
  await server.loaded;
  const manager = server.app.context.manager;
  if (manager.ready) banner();
  else {
    server.log.info("not ready yet: bootstrapping the first model and table (GET /readyz says when)");
    const wait = setInterval(() => {
      if (!manager.ready) return;
      clearInterval(wait);
      banner();
    }, 500);
    wait.unref();
  }
  return serveUntilSignal(service);
}
