/** Shared setup for the update-loop tests: a store filled from core's tiny synthetic world and a job context with a tiny model. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSyntheticWorld, DAY_MS, type Event, type SyntheticConfig } from "@freshrec/core";
import { openStore, type Store } from "@freshrec/retriever";
import { loadClusterModel } from "@freshrec/scorer";
import { openRegistry } from "@freshrec/registry";
import { LoopConfigSchema, nativeTrainer, type JobContext, type LoopConfig } from "../src/index.js";

export const TINY_MODEL = { size: { nEmbd: 32, nLayer: 1, nHead: 2, nFf: 64 }, epochs: 3, batch: 32, lr: 3e-3, threads: 2 };
export const TINY_LORA = { epochs: 2, batch: 32, lr: 1e-2, rank: 8, threads: 2 };

/**
 * Ingests the tiny world's events up to `untilDay`; from `driftDay` on (if given) every event's cluster is
 * relabelled through a fixed permutation, an abrupt drift event the old adapter has never seen.
 */
export async function tinyWorldStore(opts: { driftDay?: number; world?: Partial<SyntheticConfig> } = {}): Promise<{ store: Store; startMs: number; endMs: number; dir: string }> {
  const world = createSyntheticWorld("tiny", opts.world);
  const dir = mkdtempSync(join(tmpdir(), "loop-"));
  const store = await openStore(join(dir, "store"), { k: world.config.k });
  await store.putClusters(world.clusters);
  await store.putItems(world.items.map((i) => ({ itemId: i.itemId, clusterId: i.clusterId! })));
  const itemsOf = new Map<number, string[]>();
  for (const i of world.items) itemsOf.set(i.clusterId!, [...(itemsOf.get(i.clusterId!) ?? []), i.itemId]);
  const clusterOf = new Map(world.items.map((i) => [i.itemId, i.clusterId!]));
  const n = world.clusters.length;
  const shifted = (c: number) => (c * 7 + 3) % n; // a permutation when gcd(7, n) = 1
  const driftAt = opts.driftDay === undefined ? Infinity : world.startMs + opts.driftDay * DAY_MS;
  const events: Event[] = [];
  for (const e of world.events()) {
    if (e.ts < driftAt) events.push(e);
    else {
      const c = shifted(clusterOf.get(e.itemId)!);
      const items = itemsOf.get(c)!;
      events.push({ ...e, itemId: items[e.itemId.length % items.length]! });
    }
  }
  await store.ingest(events);
  return { store, startMs: world.startMs, endMs: world.endMs, dir };
}

export function tinyContext(store: Store, dir: string, asOf: number, overrides: Partial<LoopConfig> = {}): JobContext {
  return {
    store,
    registry: openRegistry(join(dir, "models")),
    trainer: nativeTrainer(),
    loadModel: loadClusterModel,
    config: LoopConfigSchema.parse({
      bootstrapDays: 10,
      finetuneDays: 10,
      tableSupportDays: 10,
      ragWindowDays: 7,
      trainingSet: { holdoutDays: 2 },
      // The tiny world's 10-day windows hold about 480 transitions: below the product's default minimum of 500.
      minWindowTransitions: 200,
      // A 2-day holdout of the tiny world is ~170 transitions: one example is 0.6 points of recall.
      gate: { maxRegression: 0.05 },
      pretrain: TINY_MODEL,
      lora: TINY_LORA,
      ...overrides,
    }),
    asOf,
    by: "test",
  };
}
