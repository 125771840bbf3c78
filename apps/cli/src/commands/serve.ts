import { parseArgs } from "node:util";
import { FreshrecError } from "@freshrec/core";
import { defaultModelsDir, defaultStoreUri, registryLocation, storeLocation } from "../paths.js";
import { textBaseModel } from "../service/base-model.js";
import { readServiceFile } from "../service/config-file.js";
import { serveUntilSignal, startService, type Role } from "../service/compose.js";
import { readServiceFlags, SERVICE_FLAGS } from "../service/flags.js";

export const summary = "serve your own data: the HTTP API and the update loop on the wall clock (roles: writer, replica)";

const HELP = `usage: freshrec serve [options]

Serves what the store holds (imported with 'freshrec import', or posted to POST /v1/events, from empty). Nothing
is invented: for the synthetic demo, run 'freshrec demo'. The writer runs the update loop on the wall clock: it
bootstraps once the store holds enough positive transitions (/readyz says how many until then), refreshes the RAG
table and fine-tunes on the strategy's cadence, gates every candidate and hot-swaps what passes.

  --role R            writer (default: holds the store's writer lock, ingests, runs the loop and its jobs) or
                      replica (read-only: answers reads, follows the writer's promotions; writes get 421)
  --store URI         LanceDB store: a folder or s3://bucket/prefix (default $FRESHREC_STORE or data/store)
  --models DIR|URI    model registry: a folder or s3://bucket/prefix (default $FRESHREC_MODELS or models)
  --model FILE        a text GGUF (Llama, Qwen, SmolLM2, ...) to build on: the first bootstrap registers it as the
                      base (linked, named by its sha256) and fine-tunes LoRA adapters on it, instead of pretraining a
                      cluster-token model; says what it will do with the file, or why it cannot use it
  --models-cache DIR  with an s3:// registry: this process's local copy of the artefacts it loads, checked by
                      sha256 (default $FRESHREC_MODELS_CACHE or models-cache)
  --config FILE       JSON config: server settings, scheduler, jobs, updateLoop (config/freshrec.example.json)
  --strategy S        hybrid (default), adaptive, rag, finetune, static, rag-frozen
  --writer-url URL    a replica names it when refusing writes
  --port N            default 8787 (0 = any free port)
  --host H            default 127.0.0.1
  --log-level L       pino level (default info)

Auth: API keys from FRESHREC_API_KEYS="name=key:read,ingest;ops=key2:admin" or auth.keys in --config. With no
keys at all, auth is OFF on a loopback host (a warning says so) and serve refuses any other host.

Object storage: endpoint, region, credentials and path-style come from the config's "storage" section or
AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, FRESHREC_S3_PATH_STYLE=1. A store has one
writer, on object storage too (a lease object in the store; README "Object storage and several hosts").`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      role: { type: "string", default: "writer" },
      store: { type: "string" },
      models: { type: "string" },
      "writer-url": { type: "string" },
      "models-cache": { type: "string" },
      model: { type: "string" },
      ...SERVICE_FLAGS,
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const role = values.role as Role;
  if (role !== "writer" && role !== "replica") throw new FreshrecError("usage", `--role: expected writer or replica, got ${JSON.stringify(values.role)}`);
  const { strategy, overrides } = readServiceFlags(values);
  const file = readServiceFile(values.config);
  if (strategy) file.scheduler.strategy = strategy;
  if (values.model !== undefined) {
    if (role !== "writer") throw new FreshrecError("usage", "--model: the writer registers the base; a replica follows the registry");
    file.jobs.baseModel = await textBaseModel(values.model);
  }
  const storeUri = storeLocation(values.store ?? defaultStoreUri());
  const { modelsDir, registryUri } = registryLocation(values.models ?? defaultModelsDir(), values["models-cache"]);
  const service = await startService({
    role,
    storeUri,
    modelsDir,
    ...(registryUri ? { registryUri } : {}),
    file,
    command: `freshrec serve --role ${role}`,
    overrides: { ...overrides, storeUri, modelsDir, ...(values["writer-url"] ? { writerUrl: values["writer-url"] } : {}) },
  });
  const { server, loop } = service;
  server.log.info({ url: server.url, role, store: storeUri, models: registryUri ?? modelsDir, strategy: file.scheduler.strategy }, role === "writer" ? "serving; the update loop runs on the wall clock" : "serving as a read-only replica");
  if (loop) {
    const status = loop.status();
    if (status.phase === "waiting-for-data") server.log.info({ minTransitions: file.updateLoop.minTransitions }, "no model yet: the first bootstrap starts once the store holds enough positive transitions (GET /readyz says how many)");
  }
  return serveUntilSignal(service);
}
