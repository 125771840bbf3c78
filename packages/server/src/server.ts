import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import pino, { type Logger } from "pino";
import { openStore, type Store } from "@freshrec/retriever";
import { loadClusterModel } from "@freshrec/scorer";
import { openRegistry, type Registry } from "@freshrec/trainer-bridge";
import { createApp, type FreshrecApp } from "./app.js";
import type { ServerConfig } from "./config.js";

export interface RunningServer {
  url: string;
  port: number;
  http: Server;
  app: FreshrecApp;
  log: Logger;
  store: Store;
  registry: Registry;
  /** Resolves once the first registry sync ended (ready if a model and a table were active). */
  loaded: Promise<void>;
  /** Stops accepting, lets in-flight requests (and so their ingests) finish, then closes everything. */
  shutdown(reason: string): Promise<void>;
}

/** Opens the real store, registry and model loader, and serves the API. Listens before the model is loaded (/readyz says when). */
export async function startServer(config: ServerConfig, opts: { clock?: () => number; log?: Logger } = {}): Promise<RunningServer> {
  const log = opts.log ?? pino({ level: config.logLevel });
  const store = await openStore(config.storeUri);
  const registry = openRegistry(config.modelsDir);
  const app = createApp({ config, store, registry, loadModel: loadClusterModel, log, clock: opts.clock });
  const http = app.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    http.once("listening", resolve);
    http.once("error", reject);
  });
  http.keepAliveTimeout = 5_000;
  const { port } = http.address() as AddressInfo;
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
  log.info({ url, auth: config.auth.enabled ? `${config.auth.keys.length} keys` : "off" }, "listening");
  const loaded = app.start().catch((err) => log.error({ err }, "initial model load failed"));

  let closing: Promise<void> | undefined;
  const shutdown = (reason: string) =>
    (closing ??= (async () => {
      log.info({ reason }, "shutting down: no new connections, draining in-flight requests");
      const drained = new Promise<void>((resolve) => http.close(() => resolve()));
      // Keep-alive sockets that go idle while draining would otherwise hold the server open.
      const sweep = setInterval(() => http.closeIdleConnections(), 100);
      const grace = setTimeout(() => {
        log.warn({ graceMs: config.shutdownGraceMs }, "grace period over; closing the remaining connections");
        http.closeAllConnections();
      }, config.shutdownGraceMs);
      await drained;
      clearInterval(sweep);
      clearTimeout(grace);
      await loaded;
      // A load stuck in a dependency must not keep the process alive: exiting frees what it holds.
      const closed = await Promise.race([app.close().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), config.shutdownGraceMs).unref())]);
      if (closed) log.info("shut down cleanly");
      else log.warn({ graceMs: config.shutdownGraceMs }, "closing models and store did not finish within the grace period; exiting anyway");
    })());
  return { url, port, http, app, log, store, registry, loaded, shutdown };
}

/** SIGTERM / SIGINT: shut down gracefully and exit 0 (1 if shutting down failed). */
export function exitOnSignals(server: Pick<RunningServer, "shutdown">, log: Logger, beforeExit: () => Promise<void> = async () => {}): void {
  const onSignal = (signal: NodeJS.Signals) => {
    void (async () => {
      try {
        await beforeExit();
        await server.shutdown(signal);
        process.exit(0);
      } catch (err) {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      }
    })();
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
}
