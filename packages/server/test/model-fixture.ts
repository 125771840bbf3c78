/**
 * A real, tiny served world for server tests: core's tiny synthetic world in a LanceDB store, and a registry
 * bootstrapped by the update loop's own jobs (native trainer: base, adapter, RAG table), run in this process.
 * Built once per test file (about half a minute on 2 cores).
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSyntheticWorld, DAY_MS } from "@freshrec/core";
import { openStore, type Store } from "@freshrec/retriever";
import { loadClusterModel } from "@freshrec/scorer";
import { openRegistry, type Registry } from "@freshrec/registry";
import { bootstrap, loopPresetFor, nativeTrainer } from "@freshrec/trainer-bridge";
import { createApp, type FreshrecApp } from "../src/app.js";
import { loadServerConfig, type ServerConfigInput } from "../src/config.js";

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

/** A server (real app, loopback HTTP) over a freshly built model fixture. */
export interface ServedFixture {
  f: ModelFixture;
  store: Store;
  registry: Registry;
  app: FreshrecApp;
  url: string;
  close(): Promise<void>;
}

/** Builds the fixture and serves it on a free loopback port, on the fixture's clock (or the one `clock` makes for it). */
export async function serveModelFixture(config: { env: NodeJS.ProcessEnv; overrides?: Partial<ServerConfigInput>; clock?: (f: ModelFixture) => () => number }): Promise<ServedFixture> {
  const f = await buildModelFixture();
  const store = await openStore(f.storeUri);
  const registry = openRegistry(f.modelsDir);
  const settings = loadServerConfig({ env: config.env, overrides: { storeUri: f.storeUri, modelsDir: f.modelsDir, logLevel: "silent", ...config.overrides } });
  const app = createApp({ config: settings, store, registry, loadModel: loadClusterModel, log: pino({ level: "silent" }), clock: config.clock?.(f) ?? (() => f.asOf) });
  await app.start();
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    f,
    store,
    registry,
    app,
    url,
    async close() {
      await new Promise((r) => server.close(r));
      await app.close();
      rmSync(f.dir, { recursive: true, force: true });
    },
  };
}
