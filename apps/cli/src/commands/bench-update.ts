/**
 * `freshrec bench update`: the update loop's costs on the synthetic default world. Pretraining a base from
 * scratch is the baseline for a LoRA fine-tune (both timed with their example counts), and a table refresh
 * without RAG is the baseline for one with a fresh RAG snapshot; the model alone (blend weight 0) is the baseline
 * for the fitted RAG blend, both scored forward on the holdout days. Last stdout line: one JSON object.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DAY_MS, createSyntheticWorld, type Event, type SyntheticSize } from "@freshrec/core";
import { openStore } from "@freshrec/retriever";
import { loadClusterModel } from "@freshrec/scorer";
import { openRegistry } from "@freshrec/registry";
import { LoopConfigSchema, finetune, nativeTrainer, pretrainBase, refreshTable, type JobContext } from "@freshrec/trainer-bridge";
import { terminalProgress } from "../progress.js";

export const summary = "benchmark the update loop: LoRA fine-tune vs pretraining, table refresh with vs without RAG, RAG blend vs model alone";

const HELP = `usage: freshrec bench update [--size tiny|default|large] [--json]

  Builds a store from the first 60 days of the synthetic world (default: default), pretrains a base on days
  0-14, fine-tunes a LoRA adapter on days 53-60, then refreshes the prediction table at day 60 with and
  without RAG. Model: n_embd 32, 1 layer, 1 epoch each (the bench measures the loop, not model quality).`;

const BENCH_MODEL = { size: { nEmbd: 32, nLayer: 1, nHead: 2, nFf: 64 }, epochs: 1, batch: 64, lr: 3e-3, threads: 2 };
const BENCH_LORA = { epochs: 1, batch: 64, lr: 5e-3, rank: 8, threads: 2 };

const seconds = (s: unknown) => Number(Number(s).toFixed(3));

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { size: { type: "string", default: "default" }, json: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const world = createSyntheticWorld(values.size as SyntheticSize);
  const dir = mkdtempSync(join(tmpdir(), "bench-update-"));
  const progress = terminalProgress();
  const store = await openStore(join(dir, "store"), { k: world.config.k });
  try {
    await store.putClusters(world.clusters);
    await store.putItems(world.items.map((i) => ({ itemId: i.itemId, clusterId: i.clusterId! })));
    const end = world.startMs + 60 * DAY_MS;
    let batch: Event[] = [];
    let ingested = 0;
    for (const e of world.events()) {
      if (e.ts >= end) break;
      batch.push(e);
      if (batch.length === 50_000) {
        await store.ingest(batch);
        ingested += batch.length;
        progress.report({ phase: "ingest", done: ingested });
        batch = [];
      }
    }
    if (batch.length) await store.ingest(batch);
    ingested += batch.length;

    const registry = openRegistry(join(dir, "models"));
    const ctx: JobContext = {
      store,
      registry,
      trainer: nativeTrainer(),
      loadModel: loadClusterModel,
      config: LoopConfigSchema.parse({ bootstrapDays: 14, finetuneDays: 7, pretrain: BENCH_MODEL, lora: BENCH_LORA, warmStart: false }),
      asOf: world.startMs + 14 * DAY_MS,
      by: "bench",
      onProgress: progress.report,
    };
    const base = await pretrainBase(ctx);
    // The bench measures cost, not quality: use the artefacts even if a 1-epoch model misses a gate.
    if (base.status !== "active") registry.promote(base.id, "bench", "bench: promoted despite gate");
    const adapter = await finetune({ ...ctx, asOf: end });
    if (adapter.status !== "active") registry.promote(adapter.id, "bench", "bench: promoted despite gate");
    const withRag = await refreshTable({ ...ctx, asOf: end, autoPromote: false }, { rag: true });
    const withoutRag = await refreshTable({ ...ctx, asOf: end, autoPromote: false }, { rag: false });
    progress.done();

    const blend = withRag.manifest.ragBlend;
    const blendAt = (rag: number, popularity: number) => blend.fit?.grid.find((g) => g.rag === rag && g.popularity === popularity)?.hit1 ?? null;
    const counts = (r: typeof base | typeof adapter) => ("trainingSet" in r.manifest ? r.manifest.trainingSet.counts.train : 0);
    const result = {
      world: values.size,
      events: ingested,
      finetune_s: seconds(adapter.manifest.wallS),
      finetune_cpu_s: seconds(adapter.manifest.cpuS),
      finetune_examples: counts(adapter),
      pretrain_s: seconds(base.manifest.wallS),
      pretrain_cpu_s: seconds(base.manifest.cpuS),
      pretrain_examples: counts(base),
      table_refresh_s: seconds(withRag.manifest.wallS),
      table_refresh_norag_s: seconds(withoutRag.manifest.wallS),
      table_keys: withRag.manifest.keys,
      table_recall_at1: withRag.gate.metrics.recallAt1,
      table_norag_recall_at1: withoutRag.gate.metrics.recallAt1,
      // Forward hit@1 on the holdout days with retrieval from before them: the blend's fit grid.
      blend_rag_weight: blend.weights.rag,
      blend_popularity_weight: blend.weights.popularity,
      blend_hit1: blendAt(blend.weights.rag, blend.weights.popularity),
      blend_model_alone_hit1: blendAt(0, 0),
      blend_counts_alone_hit1: blendAt(1, 0),
      blend_popularity_alone_hit1: blendAt(0, 1),
      adapter_recall_at1: adapter.gate.metrics.recallAt1,
      base_recall_at1: adapter.gate.metrics.activeRecallAt1,
    };
    if (!values.json) {
      console.log(`fine-tune: ${result.finetune_s} s for ${result.finetune_examples} examples (pretrain baseline: ${result.pretrain_s} s for ${result.pretrain_examples})`);
      console.log(`table refresh: ${result.table_refresh_s} s for ${result.table_keys} keys with RAG (without: ${result.table_refresh_norag_s} s)`);
      console.log(
        `RAG blend: weights rag ${result.blend_rag_weight} popularity ${result.blend_popularity_weight}, forward hit@1 ${result.blend_hit1} (model alone ${result.blend_model_alone_hit1}, key counts alone ${result.blend_counts_alone_hit1}, popularity alone ${result.blend_popularity_alone_hit1})`,
      );
    }
    console.log(JSON.stringify(result));
    return 0;
  } finally {
    progress.done();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
