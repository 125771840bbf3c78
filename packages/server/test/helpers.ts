import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import pino from "pino";
import { openStore, type Store } from "@freshrec/retriever";
import { loadClusterModel } from "@freshrec/scorer";
import { openRegistry, type Registry } from "@freshrec/registry";
import { createApp, type AppDeps, type FreshrecApp } from "../src/app.js";
import { loadServerConfig, type ServerConfigInput } from "../src/config.js";
import { httpCaller, type Call } from "./http-call.js";

export const READ_KEY = "reader-key-0001";
export const INGEST_KEY = "ingest-key-0001";
export const ADMIN_KEY = "admin-key-00001";
export const KEYS = `reader=${READ_KEY}:read;ingester=${INGEST_KEY}:ingest;ops=${ADMIN_KEY}:admin`;

export interface Harness {
  url: string;
  app: FreshrecApp;
  store: Store;
  registry: Registry;
  dir: string;
  call: Call;
  close(): Promise<void>;
}

/** A server on a random loopback port over a fresh real store and registry (and the real model loader). */
export async function startHarness(overrides: Partial<ServerConfigInput> = {}, deps: Pick<AppDeps, "clock"> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-server-"));
  const config = loadServerConfig({
    env: { FRESHREC_API_KEYS: KEYS },
    overrides: { port: 0, storeUri: join(dir, "store"), modelsDir: join(dir, "models"), logLevel: "silent", ...overrides },
  });
  const store = await openStore(config.storeUri);
  const registry = openRegistry(config.modelsDir);
  const app = createApp({ ...deps, config, store, registry, loadModel: loadClusterModel, log: pino({ level: "silent" }) });
  await app.start();
  const server: Server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    app,
    store,
    registry,
    dir,
    call: httpCaller(url),
    async close() {
      await new Promise((r) => server.close(r));
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
