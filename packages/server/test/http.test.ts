import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { sampleManifest } from "@freshrec/registry/testing";
import { ADMIN_KEY, INGEST_KEY, READ_KEY, startHarness, type Harness } from "./helpers.js";

const CLUSTERS = Array.from({ length: 6 }, (_, id) => ({ id, keywords: [`topic${id}`, `kw${id}`] }));
const ITEMS = CLUSTERS.map((c) => ({ itemId: `item${c.id}`, clusterId: c.id }));
const event = (i: number, user = "u1") => ({ eventId: `e${i}`, userId: user, itemId: `item${i % 6}`, ts: 1_700_000_000_000 + i * 60_000, signal: 5 });

/** Error answers must never carry a stack trace or internal paths. */
const expectNoInternals = (text: string) => {
  expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
};

describe("HTTP API without a model (real store and registry)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ limits: { bodyBytes: 4096, maxBatch: 20, ratePerS: 1000, burst: 1000 } });
    await h.store.putClusters(CLUSTERS);
    await h.store.putItems(ITEMS);
  });
  afterAll(() => h.close());

  it("is live but not ready before the first model and table", async () => {
    expect((await h.call("GET", "/healthz")).status).toBe(200);
    const ready = await h.call("GET", "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.json.reason).toMatch(/no model and table loaded/);
    const answer = await h.call("POST", "/v1/next-interests", { key: READ_KEY, body: { history: [1, 2] } });
    expect(answer.status).toBe(503);
    expect(answer.json.error.code).toBe("not-ready");
  });

  it("answers 401 without or with a wrong key, 403 without the scope", async () => {
    const none = await h.call("GET", "/v1/model");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/Bearer/);
    expect((await h.call("GET", "/v1/model", { key: "not-a-real-key" })).status).toBe(401);
    expect((await h.call("POST", "/v1/events", { key: READ_KEY, body: { events: [event(1)] } })).status).toBe(403);
    const admin = await h.call("POST", "/v1/admin/rollback", { key: INGEST_KEY, body: { kind: "adapter" } });
    expect(admin.status).toBe(403);
    expect(admin.json.error.message).toContain("'admin' scope");
    expect(admin.text).not.toContain(INGEST_KEY);
  });

  it("ingests durably and idempotently by eventId", async () => {
    const events = [event(1), event(2), event(3), event(3)];
    const first = await h.call("POST", "/v1/events", { key: INGEST_KEY, body: { events } });
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ accepted: 3, duplicates: 1, received: 4 });
    const again = await h.call("POST", "/v1/events", { key: ADMIN_KEY, body: { events: events.slice(0, 3) } });
    expect(again.json).toEqual({ accepted: 0, duplicates: 3, received: 3 });
    expect((await h.store.userState("u1"))?.clusters).toEqual([2, 3]);
  });

  it("answers 400 naming the path of every invalid field", async () => {
    const bad = await h.call("POST", "/v1/events", {
      key: INGEST_KEY,
      body: { events: [{ ...event(4), ts: -1 }, { ...event(5), signal: "high" }, { ...event(6), eventId: "" }] },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.issues.map((i: { path: string }) => i.path)).toEqual(["events.0.ts", "events.1.signal", "events.2.eventId"]);
    const query = await h.call("GET", "/v1/users/u1/next-interests?k=0&mode=psychic", { key: READ_KEY });
    expect(query.status).toBe(400);
    expect(query.json.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(["k", "mode"]);
    const unknownField = await h.call("POST", "/v1/next-interests", { key: READ_KEY, body: { history: [1], extra: true } });
    expect(unknownField.status).toBe(400);
    expect(unknownField.json.error.message).toContain("POST /v1/next-interests");
    // An item the store does not know is refused by the retriever's own validation, still as a 400.
    const unknownItem = await h.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: [{ ...event(7), itemId: "nope" }] } });
    expect(unknownItem.status).toBe(400);
    expectNoInternals(unknownItem.text);
  });

  it("answers 400 for malformed JSON and 413 for oversize bodies and batches", async () => {
    const malformed = await h.call("POST", "/v1/events", { key: INGEST_KEY, raw: '{"events": [' });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error.code).toBe("malformed-json");
    expectNoInternals(malformed.text);
    const huge = await h.call("POST", "/v1/events", { key: INGEST_KEY, raw: JSON.stringify({ events: [event(1)], pad: "x".repeat(5000) }) });
    expect(huge.status).toBe(413);
    const batch = await h.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: Array.from({ length: 21 }, (_, i) => ({ e: i })) } });
    expect(batch.status).toBe(413);
    expect(batch.json.error.message).toContain("limit of 20");
  });

  it("answers 404 for unknown routes, users, clusters and artefacts, with request ids", async () => {
    const route = await h.call("GET", "/v1/nothing", { headers: { "x-request-id": "trace-42" } });
    expect(route.status).toBe(404);
    expect(route.headers.get("x-request-id")).toBe("trace-42");
    expect(route.json.error.requestId).toBe("trace-42");
    expect((await h.call("GET", "/v1/users/ghost/next-interests", { key: READ_KEY })).status).toBe(404);
    expect((await h.call("GET", "/v1/clusters/99", { key: READ_KEY })).status).toBe(404);
    expect((await h.call("GET", "/v1/clusters/3", { key: READ_KEY })).json).toEqual({ id: 3, keywords: ["topic3", "kw3"] });
    expect((await h.call("POST", "/v1/admin/promote", { key: ADMIN_KEY, body: { id: "adapter-none" } })).status).toBe(404);
    // Ids are never paths: anything path-like is refused by validation before reaching the registry.
    const traversal = await h.call("POST", "/v1/admin/promote", { key: ADMIN_KEY, body: { id: "../../etc/passwd" } });
    expect(traversal.status).toBe(400);
  });

  it("refuses to promote a base model that is a bad file, keeps serving nothing, and says why without paths", async () => {
    const { id, dir } = h.registry.stage("base");
    writeFileSync(join(dir, "base.gguf"), "this is not a gguf file");
    h.registry.publish({ id, kind: "base", main: "base.gguf", manifest: sampleManifest("base"), gate: { passed: true, reasons: [], metrics: {} } });
    const promoted = await h.call("POST", "/v1/admin/promote", { key: ADMIN_KEY, body: { id } });
    expect(promoted.status).toBe(409);
    expect(promoted.json.error.message).toMatch(new RegExp(`base '${id}' failed to load \\(model base\\.gguf: .*\\); no earlier base exists to return to`));
    expect(promoted.text).not.toContain(h.dir);
    const model = await h.call("GET", "/v1/model", { key: READ_KEY });
    expect(model.json.lastSwap.ok).toBe(false);
    expect(model.json.lastSwap.reason).toMatch(/base\.gguf/);
    expect(model.json.ready).toBe(false);
    const ready = await h.call("GET", "/readyz");
    expect(ready.json.reason).toMatch(/failed/);
    expect(ready.text).not.toContain(h.dir);
    const metrics = await h.call("GET", "/metrics");
    expect(metrics.text).toMatch(/freshrec_swaps_total\{what="scorer",outcome="failed"\} 1/);
  });

  it("publishes an OpenAPI document generated from the validation schemas", async () => {
    const doc = (await h.call("GET", "/openapi.json")).json;
    expect(doc.openapi).toBe("3.1.0");
    const events = doc.paths["/v1/events"].post;
    expect(events.requestBody.content["application/json"].schema.properties.events.maxItems).toBe(20);
    const next = doc.paths["/v1/users/{userId}/next-interests"].get;
    expect(next.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`)).toEqual(["path:userId", "query:k", "query:mode"]);
    expect(Object.keys(next.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "404", "429", "503"]));
  });

  it("answers plain GETs on the fast lane exactly as express answers them", async () => {
    // The same app served by express alone, counting what reaches express on the harness's (fast lane) server.
    const expressOnly = h.app.app.listen(0, "127.0.0.1");
    await new Promise((r) => expressOnly.once("listening", r));
    const expressUrl = `http://127.0.0.1:${(expressOnly.address() as AddressInfo).port}`;
    const express = h.app.app as unknown as { handle: (...args: unknown[]) => unknown };
    const handle = express.handle;
    let reachedExpress = 0;
    express.handle = function (this: unknown, ...args: unknown[]) {
      reachedExpress++;
      return handle.apply(this, args);
    };
    const requests: Array<[path: string, key?: string]> = [
      ["/readyz"],
      ["/v1/users/ghost/next-interests", READ_KEY],
      ["/v1/users/a%20b%22/next-interests?k=3", READ_KEY],
      ["/v1/users/u1/next-interests?k=5&mode=live", READ_KEY],
      ["/v1/users/u1/next-interests?k=0&mode=psychic", READ_KEY],
      ["/v1/users/u1/next-interests?k=0&mode=psychic", READ_KEY],
      ["/v1/users/u1/next-interests?k=2&extra=1", READ_KEY],
      ["/v1/users/u1/next-interests"],
      ["/v1/users/u1/next-interests", "not-a-real-key"],
      ["/v1/clusters", INGEST_KEY],
      ["/v1/clusters", READ_KEY],
      ["/v1/clusters/3", READ_KEY],
      ["/v1/clusters/99", READ_KEY],
      ["/v1/clusters/x", READ_KEY],
      ["/v1/clusters/%20", READ_KEY],
      ["/v1/users/u1/next-interests?k=0x10", READ_KEY],
      ["/v1/model", READ_KEY],
    ];
    const fetchBoth = async (path: string, key?: string) => {
      const headers: Record<string, string> = { "x-request-id": "same-id" };
      if (key) headers.authorization = `Bearer ${key}`;
      const [lane, plain] = await Promise.all([fetch(h.url + path, { headers }), fetch(expressUrl + path, { headers })]);
      const view = async (res: Response) => ({
        status: res.status,
        headers: ["content-type", "content-length", "x-request-id", "www-authenticate", "retry-after"].map((n) => res.headers.get(n)),
        body: await res.text(),
      });
      return [await view(lane), await view(plain)] as const;
    };
    try {
      for (const [path, key] of requests) {
        const [lane, plain] = await fetchBoth(path, key);
        expect(lane, path).toEqual(plain);
      }
      expect(reachedExpress).toBe(requests.length); // only the express-only server's requests
      // Paths express matches more leniently than the fast lane still answer the same, through express.
      for (const path of ["/v1/clusters/3/", "/V1/CLUSTERS/3"]) {
        const [lane, plain] = await fetchBoth(path, READ_KEY);
        expect(lane.status, path).toBe(200);
        expect(lane, path).toEqual(plain);
      }
      expect(reachedExpress).toBe(requests.length + 4);
    } finally {
      express.handle = handle;
      await new Promise((r) => expressOnly.close(r));
    }
    const metrics = (await h.call("GET", "/metrics")).text;
    expect(metrics).toMatch(/freshrec_http_request_duration_seconds_count\{method="GET",route="\/v1\/users\/:userId\/next-interests",mode="",status="404"\} \d+/);
  });

  it("exposes latency histograms by route and mode", async () => {
    const text = (await h.call("GET", "/metrics")).text;
    expect(text).toMatch(/freshrec_http_request_duration_seconds_count\{method="POST",route="\/v1\/events",mode="",status="200"\} \d+/);
    expect(text).toContain("freshrec_ready 0");
  });
});

describe("rate limiting", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ limits: { bodyBytes: 4096, maxBatch: 20, ratePerS: 0.01, burst: 3 } });
  });
  afterAll(() => h.close());

  it("answers 429 with Retry-After once a key's burst is spent; other keys are unaffected", async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await h.call("GET", "/v1/clusters", { key: READ_KEY })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await h.call("GET", "/v1/clusters", { key: READ_KEY });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await h.call("GET", "/v1/clusters", { key: ADMIN_KEY })).status).toBe(200);
  });
});
