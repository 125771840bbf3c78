/**
 * A real, tiny served world for server tests: core's tiny synthetic world in a LanceDB store, and a registry
 * bootstrapped by the update loop's own jobs (native trainer: base, adapter, RAG table), run in this process.
 * Built once per test file (about half a minute on 2 cores).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSyntheticWorld, DAY_MS } from "@freshrec/core";
import { openStore } from "@freshrec/retriever";
import { loadClusterModel } from "@freshrec/scorer";
import { openRegistry } from "@freshrec/registry";
import { bootstrap, loopPresetFor, nativeTrainer } from "@freshrec/trainer-bridge";

export interface ModelFixture {
  dir: string;
  storeUri: string;
  modelsDir: string;
  /** Simulated "now" the fixture was bootstrapped at. */
  asOf: number;
  nClusters: number;
}

export async function buildModelFixture(onProgress?: (e: { phase: string; done: number; total?: number }) => void): Promise<ModelFixture> {
  const world = createSyntheticWorld("tiny");
  const dir = mkdtempSync(join(tmpdir(), "freshrec-server-model-"));
  const storeUri = join(dir, "store");
  const modelsDir = join(dir, "models");
  const asOf = world.startMs + 20 * DAY_MS;
  const store = await openStore(storeUri, { k: world.config.k });
  await store.putClusters(world.clusters);
  await store.putItems(world.items.map((i) => ({ itemId: i.itemId, clusterId: i.clusterId! })));
  await store.ingest([...world.events()].filter((e) => e.ts < asOf));
  await bootstrap({
    store,
    registry: openRegistry(modelsDir),
    trainer: nativeTrainer(),
    loadModel: loadClusterModel,
    config: loopPresetFor("tiny"),
    asOf,
    by: "test:fixture",
    onProgress,
  });
  await store.close();
  return { dir, storeUri, modelsDir, asOf, nClusters: world.clusters.length };
}
