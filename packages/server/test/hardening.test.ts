import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS, MAX_LISTED_ISSUES } from "@freshrec/core";
import { sampleManifest } from "@freshrec/registry/testing";
import { withoutPaths } from "../src/log-safety.js";
import { ADMIN_KEY, INGEST_KEY, READ_KEY, startHarness, type Harness } from "./helpers.js";
import { rawRequest } from "./raw-http.js";

/** Answers to hostile or sloppy requests (issue 12): 4xx with a clear, small JSON error, never a 500. */
const CLUSTERS = Array.from({ length: 6 }, (_, id) => ({ id, keywords: [`topic${id}`] }));
const ITEMS = CLUSTERS.map((c) => ({ itemId: `item${c.id}`, clusterId: c.id }));
/** The server's (injected) clock: far from wall time, so only the injected clock can bound timestamps right. */
const NOW = 1_600_000_000_000;
const event = (i: number, ts = NOW - i * 60_000) => ({ eventId: `h${i}`, userId: "u1", itemId: `item${i % 6}`, ts, signal: 5 });

const expectClientError = (answer: { status: number; json: any }, status: number, code: string) => {
  expect(answer.status).toBe(status);
  expect(answer.json?.error).toMatchObject({ code, message: expect.any(String), requestId: expect.any(String) });
};

describe("hostile requests (real store, no model)", () => {
  let h: Harness;
  const send = (method: string, path: string, opts: { key?: string; headers?: Record<string, string>; body?: string | Buffer } = {}) =>
    rawRequest(h.url, {
      method,
      path,
      body: opts.body,
      headers: { ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}), ...(opts.body !== undefined ? { "content-type": "application/json" } : {}), ...opts.headers },
    });

  beforeAll(async () => {
    h = await startHarness({}, { clock: () => NOW });
    await h.store.putClusters(CLUSTERS);
    await h.store.putItems(ITEMS);
  });
  afterAll(() => h.close());

  it("answers a bad percent-escape in a path with 400 bad-path", async () => {
    for (const path of ["/v1/users/%E0%A4%A/next-interests", "/v1/users/%/next-interests?k=3", "/v1/clusters/%", "/v1/clusters/%zz"]) {
      expectClientError(await send("GET", path, { key: READ_KEY }), 400, "bad-path");
    }
  });

  it("answers a body that does not decode with its content-encoding with 400, and still decodes real ones", async () => {
    const body = JSON.stringify({ events: [event(1)] });
    for (const encoding of ["gzip", "br", "deflate", "GZIP"]) {
      const answer = await send("POST", "/v1/events", { key: INGEST_KEY, body, headers: { "content-encoding": encoding } });
      expectClientError(answer, 400, "bad-content-encoding");
    }
    expectClientError(await send("POST", "/v1/events", { key: INGEST_KEY, body, headers: { "content-encoding": "x-unknown" } }), 415, "encoding.unsupported");
    const gzipped = await send("POST", "/v1/events", { key: INGEST_KEY, body: gzipSync(body), headers: { "content-encoding": "gzip" } });
    expect(gzipped.json).toEqual({ accepted: 1, duplicates: 0, received: 1 });
    const brotli = await send("POST", "/v1/events", { key: INGEST_KEY, body: brotliCompressSync(body), headers: { "content-encoding": "br" } });
    expect(brotli.json).toEqual({ accepted: 0, duplicates: 1, received: 1 });
  });

  it("answers deeply nested JSON on every JSON route with a short 400", async () => {
    const routes = Object.entries((await h.call("GET", "/openapi.json")).json.paths as Record<string, Record<string, unknown>>)
      .filter(([, methods]) => "post" in methods)
      .map(([path]) => path);
    expect(routes).toEqual(expect.arrayContaining(["/v1/events", "/v1/next-interests", "/v1/admin/promote"]));
    const arrays = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
    const objects = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    const bodies = [arrays(5_000), objects(5_000), `{"events":${arrays(5_000)}}`, `{"history":[${arrays(5_000)}]}`, `{"id":${objects(5_000)},"k":1}`, arrays(200_000)];
    for (const path of routes) {
      for (const body of bodies) {
        const answer = await send("POST", path, { key: ADMIN_KEY, body });
        expectClientError(answer, 400, "validation");
        expect(answer.text.length, path).toBeLessThan(10_000);
      }
    }
  });

  it("echoes at most a clipped preview of an invalid value, in the message and in the issues", async () => {
    const huge = "x".repeat(900_000);
    const long = await send("POST", "/v1/events", { key: INGEST_KEY, body: JSON.stringify({ events: [{ ...event(2), userId: huge }] }) });
    expectClientError(long, 400, "validation");
    expect(long.text.length).toBeLessThan(2_000);
    expect(long.json.error.message).toContain("(900000 chars)");
    expect(long.json.error.issues).toEqual([{ path: "events.0.userId", message: expect.any(String) }]);

    const key = "k".repeat(100_000);
    const unknownKey = await send("POST", "/v1/next-interests", { key: READ_KEY, body: JSON.stringify({ history: [1], [key]: 1 }) });
    expectClientError(unknownKey, 400, "validation");
    expect(unknownKey.text.length).toBeLessThan(2_000);
    for (const issue of unknownKey.json.error.issues) expect(issue.message.length).toBeLessThan(300);

    const many = await send("POST", "/v1/events", { key: INGEST_KEY, body: JSON.stringify({ events: Array.from({ length: 1_000 }, () => ({})) }) });
    expectClientError(many, 400, "validation");
    expect(many.json.error.issues).toHaveLength(MAX_LISTED_ISSUES);
    expect(many.json.error.message).toMatch(/and \d+ more issues$/);
    expect(many.text.length).toBeLessThan(20_000);
  });

  it("bounds event timestamps by the server clock plus limits.maxFutureSkewMs, and refuses absurd ones", async () => {
    const ingest = (ts: number, i: number) => send("POST", "/v1/events", { key: INGEST_KEY, body: JSON.stringify({ events: [event(i, ts)] }) });
    for (const [i, ts] of [[10, NOW + DAY_MS + 1], [11, Date.now()], [12, 2 ** 53 - 1]]) {
      const answer = await ingest(ts!, i!);
      expectClientError(answer, 400, "validation");
      expect(answer.json.error.issues.map((issue: { path: string }) => issue.path)).toEqual(["events.0.ts"]);
      expect(answer.json.error.message).toMatch(/events\.0\.ts: must be at most/);
    }
    expect((await ingest(NOW + DAY_MS + 1, 13)).json.error.message).toContain(`must be at most ${NOW + DAY_MS}: the server clock + limits.maxFutureSkewMs (${DAY_MS} ms)`);
    expectClientError(await ingest(-1, 14), 400, "validation");
    expect((await ingest(NOW + DAY_MS, 15)).json).toEqual({ accepted: 1, duplicates: 0, received: 1 });
  });

  it("reads the auth scheme case-insensitively", async () => {
    for (const scheme of ["bearer", "BEARER", "Bearer", "bEaReR"]) {
      expect((await send("GET", "/v1/clusters", { headers: { authorization: `${scheme} ${READ_KEY}` } })).status, scheme).toBe(200);
    }
  });

  it("takes only canonical decimal integers in the path and the query", async () => {
    for (const k of ["0x10", "1e1", "%20", "", "+5", "010", "1.0", "-1", "9".repeat(40), "1,2"]) {
      const answer = await send("GET", `/v1/users/u1/next-interests?k=${k}`, { key: READ_KEY });
      expectClientError(answer, 400, "validation");
      expect(answer.json.error.issues.map((issue: { path: string }) => issue.path), k).toEqual(["k"]);
    }
    expectClientError(await send("GET", "/v1/users/u1/next-interests?k=1&k=2", { key: READ_KEY }), 400, "validation");
    expect((await send("GET", "/v1/users/u1/next-interests?k=7", { key: READ_KEY })).status).not.toBe(400);
    for (const id of ["%20", "0x3", "3.0", "-1", "03", "1e0", "%2B3"]) {
      const answer = await send("GET", `/v1/clusters/${id}`, { key: READ_KEY });
      expectClientError(answer, 400, "validation");
      expect(answer.json.error.issues.map((issue: { path: string }) => issue.path), id).toEqual(["clusterId"]);
    }
    expect((await send("GET", "/v1/clusters/0", { key: READ_KEY })).json).toEqual({ id: 0, keywords: ["topic0"] });
  });

  it("answers failure reasons in /v1/model naming the file, never where the server keeps it", async () => {
    const { id, dir } = h.registry.stage("base");
    writeFileSync(join(dir, "base.gguf"), "this is not a gguf file");
    h.registry.publish({ id, kind: "base", main: "base.gguf", manifest: sampleManifest("base"), gate: { passed: true, reasons: [], metrics: {} } });
    await send("POST", "/v1/admin/promote", { key: ADMIN_KEY, body: JSON.stringify({ id }) });
    const model = await send("GET", "/v1/model", { key: READ_KEY });
    expect(model.json.lastFailure).toMatchObject({ ok: false, reason: expect.stringMatching(/^model base\.gguf: not a GGUF file/) });
    expect(model.text).toContain("base.gguf");
    expect(model.text).not.toContain(h.dir);
  });
});

describe("failed authentication limit per client address", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ limits: { authFailureBurst: 5, authFailuresPerS: 0.001 } });
  });
  afterAll(() => h.close());

  const get = (key: string, localAddress = "127.0.0.1") => rawRequest(h.url, { method: "GET", path: "/v1/clusters", headers: { authorization: `Bearer ${key}` }, localAddress });

  it("answers 429 with Retry-After once an address spent its failures, before checking even a right key; other addresses are unaffected", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await get(`wrong-key-${i}`)).status);
    statuses.push((await rawRequest(h.url, { method: "POST", path: "/v1/events", headers: { authorization: `Bearer ${READ_KEY}` }, localAddress: "127.0.0.1" })).status);
    for (let i = 0; i < 20; i++) statuses.push((await get(`wrong-key-${i}`)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 403, ...Array(20).fill(429)]);
    const blocked = await get(READ_KEY);
    expectClientError(blocked, 429, "rate-limited");
    expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
    expect((await get(READ_KEY, "127.0.0.2")).status).toBe(200);
    expect((await get("wrong-key", "127.0.0.2")).status).toBe(401);
    // Open endpoints take no key and are not gated.
    expect((await rawRequest(h.url, { method: "GET", path: "/healthz", localAddress: "127.0.0.1" })).status).toBe(200);
  });
});

describe("withoutPaths", () => {
  it("turns absolute paths into their basename and leaves URLs, relative paths and plain text alone", () => {
    expect(withoutPaths("model /tmp/x/models/artefacts/base-1/base.gguf: not a GGUF file")).toBe("model base.gguf: not a GGUF file");
    expect(withoutPaths("ENOENT: no such file or directory, open '/srv/freshrec/store/events.lance'")).toBe("ENOENT: no such file or directory, open 'events.lance'");
    expect(withoutPaths("cannot read C:\\data\\models\\a.gguf or \\\\host\\share\\b.gguf (file:///var/lib/c.gguf)")).toBe("cannot read a.gguf or b.gguf (c.gguf)");
    for (const text of ["see https://example.com/a/b for details", "table t-1/2 of models/base.gguf", "3/4 done", "no model loaded"]) expect(withoutPaths(text)).toBe(text);
  });
});
