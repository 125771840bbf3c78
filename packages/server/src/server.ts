import { createServer, ServerResponse, type RequestListener, type Server } from "node:http";
import { Server as NetServer, type AddressInfo } from "node:net";
import pino, { type Logger } from "pino";
import { openStore, type Store } from "@freshrec/retriever";
import { loadScoringModel } from "@freshrec/scorer";
import { openRegistry, type Registry } from "@freshrec/registry";
import { createApp, type AppDeps, type FreshrecApp } from "./app.js";
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
  /** Stops accepting, drains (answers in-flight requests with Connection: close, closes idle sockets), then closes everything. */
  shutdown(reason: string): Promise<void>;
}

/** Opens the real store, registry and model loader, and serves the API. Listens before the model is loaded (/readyz says when). */
export async function startServer(config: ServerConfig, opts: Pick<AppDeps, "clock" | "log" | "jobs" | "loop"> = {}): Promise<RunningServer> {
  const log = opts.log ?? pino({ level: config.logLevel });
  // A replica reads what its writer made: it never creates a store (a mistyped --store is an error, not an empty store).
  const store = await openStore(config.storeUri, { create: config.role === "writer" });
  const registry = openRegistry(config.modelsDir);
  const app = createApp({ ...opts, config, store, registry, loadModel: loadScoringModel, log });
  const { http, drain } = drainableServer(app.handler);
  http.listen(config.port, config.host);
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
      const drained = drain();
      const grace = setTimeout(() => {
        log.warn({ graceMs: config.shutdownGraceMs }, "grace period over; closing the remaining connections");
        http.closeAllConnections();
      }, config.shutdownGraceMs);
      await drained;
      clearTimeout(grace);
      await loaded;
      // A load stuck in a dependency must not keep the process alive: exiting frees what it holds.
      const closed = await Promise.race([app.close().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), config.shutdownGraceMs).unref())]);
      if (closed) log.info("shut down cleanly");
      else log.warn({ graceMs: config.shutdownGraceMs }, "closing models and store did not finish within the grace period; exiting anyway");
    })());
  return { url, port, http, app, log, store, registry, loaded, shutdown };
}

/** How long after shutdown begins idle keep-alive sockets stay open for requests their clients already sent, or are sending. */
const IDLE_SETTLE_MS = 250;

/**
 * An HTTP server that drains as production servers do. Once `drain()` is called: no new connections; every
 * answer, in-flight ones included, says `Connection: close` and node closes its socket after it; a request
 * arriving on an idle keep-alive socket is still answered (so, with close) rather than reset; idle sockets are
 * closed once that settle time is over. Resolves when the last connection is gone.
 */
function drainableServer(handler: RequestListener): { http: Server; drain(): Promise<void> } {
  let draining = false;
  // Every answer's headers pass through writeHead (res.end without it calls it too): the one place to say close.
  function writeHead(this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (draining) this.shouldKeepAlive = false;
    return (ServerResponse.prototype.writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  }
  const http = createServer((req, res) => {
    // An own property, not a subclass method: express re-parents each response onto its own prototype.
    res.writeHead = writeHead as ServerResponse["writeHead"];
    handler(req, res);
  });
  const drain = () => {
    draining = true;
    // Each sweep runs after a poll phase (setImmediate), so a socket whose request has arrived is no longer idle.
    const sweep = setInterval(() => setImmediate(() => http.closeIdleConnections()), IDLE_SETTLE_MS);
    return new Promise<void>((resolve) => {
      // Deferred past the current poll phase, so connections the kernel already queued are accepted, not reset.
      // net's close, not http's: http's also destroys idle sockets at once, resetting requests already on the way.
      setImmediate(() =>
        NetServer.prototype.close.call(http, () => {
          clearInterval(sweep);
          resolve();
        }),
      );
    });
  };
  return { http, drain };
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
