import { mkdtempSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "@freshrec/retriever";
import { loadServerConfig } from "../src/config.js";
import { startServer, type RunningServer } from "../src/server.js";
import { INGEST_KEY, KEYS, READ_KEY } from "./helpers.js";
import { rawRequest, type RawAnswer } from "./raw-http.js";

const NOW = 1_700_000_000_000;
const CLUSTERS = Array.from({ length: 4 }, (_, id) => ({ id, keywords: [`topic${id}`] }));
const ITEMS = CLUSTERS.map((c) => ({ itemId: `item${c.id}`, clusterId: c.id }));
/** Keep-alive clients sending requests back to back, how many each sends at most, and after how many answers SIGTERM comes. */
const CLIENTS = 8;
const PER_CLIENT = 25;
const SHUTDOWN_AFTER = 40;
/** Clients that sent one request before shutdown and sit idle on their keep-alive connection until the listener closed. */
const IDLE_CLIENTS = 3;

interface Outcome {
  method: string;
  sentBeforeClose?: boolean;
  sentAfterShutdown?: boolean;
  answeredAfterShutdown?: boolean;
  reused?: boolean;
  answer?: RawAnswer;
  error?: NodeJS.ErrnoException;
  event?: object;
}

/** SIGTERM during a burst of keep-alive traffic, on the real server (startServer: real store, registry and HTTP). */
describe("shutdown drains like a production HTTP server", () => {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-drain-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("answers every request sent before the listener closed, with Connection: close once shutdown began, and stores every acknowledged POST", async () => {
    const config = loadServerConfig({
      env: { FRESHREC_API_KEYS: KEYS },
      overrides: { port: 0, storeUri: join(dir, "store"), modelsDir: join(dir, "models"), logLevel: "silent", shutdownGraceMs: 30_000 },
    });
    const server: RunningServer = await startServer(config, { clock: () => NOW, log: pino({ level: "silent" }) });
    await server.store.putClusters(CLUSTERS);
    await server.store.putItems(ITEMS);
    await server.loaded;

    const outcomes: Outcome[] = [];
    let shutdownCalled = false;
    let shutdown: Promise<void> | undefined;
    let late: Promise<Outcome[]> | undefined;
    let answered = 0;
    let eventNo = 0;
    const send = async (agent: Agent, method: "GET" | "POST", path: string, key: string): Promise<Outcome> => {
      const event = method === "POST" ? { eventId: `d${eventNo}`, userId: `u${eventNo % 5}`, itemId: `item${eventNo % 4}`, ts: NOW - 1_000 + eventNo++, signal: 5 } : undefined;
      const outcome: Outcome = { method, event };
      outcomes.push(outcome);
      try {
        outcome.answer = await rawRequest(server.url, {
          method,
          path,
          agent,
          headers: { authorization: `Bearer ${key}`, ...(event ? { "content-type": "application/json" } : {}) },
          body: event ? JSON.stringify({ events: [event] }) : undefined,
          onSent: (reused) => Object.assign(outcome, { reused, sentBeforeClose: server.http.listening, sentAfterShutdown: shutdownCalled }),
        });
        outcome.answeredAfterShutdown = shutdownCalled;
        if (++answered === SHUTDOWN_AFTER) {
          shutdownCalled = true;
          shutdown = server.shutdown("SIGTERM");
          late = sendOnIdleOnceClosed();
        }
      } catch (err) {
        outcome.error = err as NodeJS.ErrnoException;
      }
      return outcome;
    };
    const requests = [
      (agent: Agent) => send(agent, "GET", "/healthz", READ_KEY),
      (agent: Agent) => send(agent, "POST", "/v1/events", INGEST_KEY),
      (agent: Agent) => send(agent, "GET", "/v1/clusters", READ_KEY),
      (agent: Agent) => send(agent, "POST", "/v1/events", INGEST_KEY),
    ];
    const agents = Array.from({ length: CLIENTS + IDLE_CLIENTS }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
    const idle = agents.slice(CLIENTS);
    // Idle keep-alive connections opened before shutdown still carry a request sent once the listener is closed.
    const sendOnIdleOnceClosed = async () => {
      for (let i = 0; i < 10 && server.http.listening; i++) await new Promise((r) => setImmediate(r));
      expect(server.http.listening).toBe(false);
      return Promise.all(idle.map((agent, i) => (i % 2 ? send(agent, "GET", "/v1/clusters", READ_KEY) : send(agent, "POST", "/v1/events", INGEST_KEY))));
    };
    for (const agent of idle) expect((await send(agent, "GET", "/v1/clusters", READ_KEY)).answer?.headers.connection).toBe("keep-alive");

    const busy = agents.slice(0, CLIENTS).map(async (agent, c) => {
      for (let i = 0; i < PER_CLIENT; i++) {
        // A refused connection means the listener is gone: this client is done.
        if ((await requests[(c + i) % requests.length]!(agent)).error) return;
      }
    });
    await Promise.all(busy);
    expect(shutdownCalled).toBe(true);
    for (const outcome of await late!) {
      expect(outcome.error).toBeUndefined();
      expect(outcome).toMatchObject({ reused: true, sentBeforeClose: false });
      expect(outcome.answer?.headers.connection).toBe("close");
    }
    await shutdown;
    for (const agent of agents) agent.destroy();

    // Nothing sent before the listener closed was reset or cut; failures are refused connections (nothing sent).
    const failed = outcomes.filter((o) => o.error);
    expect(failed.filter((o) => o.sentBeforeClose)).toEqual([]);
    for (const o of failed) expect([o.error?.code, o.sentBeforeClose, o.reused]).toEqual(["ECONNREFUSED", undefined, undefined]);
    // The burst really was mid-flight: requests sent before shutdown were answered after it, and some came after.
    expect(outcomes.filter((o) => o.sentAfterShutdown === false && o.answeredAfterShutdown).length).toBeGreaterThan(0);
    const afterShutdown = outcomes.filter((o) => o.sentAfterShutdown && o.answer);
    expect(afterShutdown.length).toBeGreaterThan(IDLE_CLIENTS);
    for (const o of afterShutdown) expect(o.answer!.headers.connection).toBe("close");
    for (const o of outcomes.filter((o) => o.answer)) expect(o.answer!.status).toBe(200);

    // Every POST answered 2xx is durable: ingesting its events again finds them all stored.
    const acknowledged = outcomes.filter((o) => o.method === "POST" && o.answer && o.answer.status < 300).map((o) => o.event!);
    expect(acknowledged.length).toBeGreaterThan(0);
    const store = await openStore(config.storeUri);
    try {
      expect(await store.ingest(acknowledged)).toEqual({ accepted: 0, duplicates: acknowledged.length });
    } finally {
      await store.close();
    }
  }, 60_000);
});
