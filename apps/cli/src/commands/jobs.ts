/**
 * `freshrec jobs run bootstrap|finetune|refresh`: one update-loop job, normally in its own process so that
 * training never stalls serving. Output is published atomically to the registry; a killed run leaves nothing visible.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { FreshrecError, parseOrThrow } from "@freshrec/core";
import { openRegistry, type ArtefactRecord } from "@freshrec/registry";
import { acquireStoreWriterLock, openStore } from "@freshrec/retriever";
import { loadScoringModel } from "@freshrec/scorer";
import {
  JOB_EXIT,
  JOB_KINDS,
  LoopConfigSchema,
  bootstrap,
  externalTrainer,
  finetune,
  nativeTrainer,
  refreshTable,
  type JobContext,
  type JobKind,
  type JobMessage,
} from "@freshrec/trainer-bridge";
import { terminalProgress } from "../progress.js";
import { defaultModelsDir, defaultStoreUri, storeLocation } from "../paths.js";

export const summary = "run an update-loop job (bootstrap | finetune | refresh) against a store and a model registry";


const HELP = `usage: freshrec jobs run ${JOB_KINDS.join("|")} [options]

  bootstrap   pretrain a base on the first window if none is active, then a first adapter and table
  finetune    LoRA adapter on the active base from the latest window (warm start from the active adapter)
  refresh     bulk-score every history key with the active base + adapter and a fresh RAG snapshot

  --store URI              LanceDB store (default $FRESHREC_STORE or data/store under the repo root)
  --models DIR             model registry (default $FRESHREC_MODELS or models/ under the repo root)
  --as-of MS               the job's "now" in ms (default: the store's last event, capped at the wall clock)
  --config FILE            loop configuration JSON (windows, caps, gates, hyperparameters; see LoopConfigSchema)
  --no-rag                 refresh/bootstrap: score the table without RAG
  --no-promote             publish the candidate but do not promote it even if it passes its gate
  --adapter ID             refresh: score the table with this registered adapter (on its base) instead of the active
                           one; never promoted: a candidate table for an A/B (POST /v1/admin/experiment)
  --trainer-command CMD    train adapters with an external command (contract: trainer-bridge src/external/README.md)
  --by WHO                 recorded in the promotion log (default user:$USER)
  --json                   progress as JSON lines on stdout; the last line is the result

Exit codes: ${Object.entries(JOB_EXIT).map(([k, v]) => `${v} ${k}`).join(", ")}. A job writes the store, so it takes the
store's writer lock, unless it was started by the writer that holds it.`;

const say = (msg: JobMessage) => console.log(JSON.stringify(msg));

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      store: { type: "string" },
      models: { type: "string" },
      "as-of": { type: "string" },
      config: { type: "string" },
      "no-rag": { type: "boolean", default: false },
      "no-promote": { type: "boolean", default: false },
      adapter: { type: "string" },
      "trainer-command": { type: "string" },
      by: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  const [verb, job] = positionals;
  if (values.help || verb !== "run" || !JOB_KINDS.includes(job as JobKind)) {
    console.log(HELP);
    return values.help ? JOB_EXIT.ok : JOB_EXIT.usage;
  }
  const config = values.config
    ? parseOrThrow(LoopConfigSchema, JSON.parse(readFileSync(values.config, "utf8")), values.config)
    : LoopConfigSchema.parse({});
  const storeUri = storeLocation(values.store ?? defaultStoreUri());
  const lock = await acquireStoreWriterLock(storeUri, { command: `freshrec jobs run ${job}` });
  if (!lock.owned) exitWithParent();
  const store = await openStore(storeUri);
  const terminal = values.json ? undefined : terminalProgress();
  try {
    let asOf = values["as-of"] === undefined ? undefined : Number(values["as-of"]);
    if (asOf !== undefined && !Number.isInteger(asOf)) throw new FreshrecError("usage", `--as-of: '${values["as-of"]}' is not an integer of ms`);
    if (asOf === undefined) {
      const range = await store.timeRange();
      if (!range) throw new FreshrecError("usage", "the store holds no events: import or ingest some first");
      asOf = Math.min(Date.now(), range.max + 1);
    }
    const native = nativeTrainer();
    const ctx: JobContext = {
      store,
      registry: openRegistry(resolve(values.models ?? defaultModelsDir())),
      trainer: values["trainer-command"] ? externalTrainer(values["trainer-command"].split(/\s+/).filter(Boolean), native) : native,
      loadModel: loadScoringModel,
      config,
      asOf,
      by: values.by ?? `user:${process.env.USER ?? "unknown"}`,
      autoPromote: !values["no-promote"],
      onProgress: values.json ? (progress) => say({ progress }) : terminal!.report,
    };
    const rag = !values["no-rag"];
    const records: ArtefactRecord[] =
      job === "bootstrap"
        ? Object.values(await bootstrap(ctx, { rag })).filter((r): r is ArtefactRecord => r !== undefined)
        : job === "finetune"
          ? [await finetune(ctx)]
          : [await refreshTable(ctx, { rag, ...(values.adapter ? { adapter: values.adapter } : {}) })];
    terminal?.done();
    const summaryOf = (r: ArtefactRecord) => ({ id: r.id, kind: r.kind, status: r.status, gate: r.gate });
    if (values.json) say({ result: { job: job as JobKind, asOf, artefacts: records.map(summaryOf) } });
    else for (const r of records) console.log(`${r.kind} ${r.id}: ${r.status}${r.gate.reasons.length ? ` (${r.gate.reasons.join("; ")})` : ""}`);
    return records.every((r) => r.gate.passed) ? JOB_EXIT.ok : JOB_EXIT.rejected;
  } finally {
    terminal?.done();
    await store.close();
    await lock.release();
  }
}

/**
 * A job started by a writer writes under that writer's lock: if the writer dies (kill -9), so does the job, or it
 * would go on writing the store beside the writer that takes the lock over.
 */
function exitWithParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(JOB_EXIT.failed);
  }, 200).unref();
}
