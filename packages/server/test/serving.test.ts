import { copyFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { openStore } from "@freshrec/retriever";
import { loadClusterModel } from "@freshrec/scorer";
import { openRegistry } from "@freshrec/registry";
import { sampleManifest } from "@freshrec/registry/testing";
import { createApp } from "../src/app.js";
import { loadServerConfig } from "../src/config.js";
import { NextInterestsAnswerSchema } from "../src/api-schemas.js";
import { loopPresetFor, nativeTrainer, refreshTable } from "@freshrec/trainer-bridge";
import { serveModelFixture, type ServedFixture } from "./model-fixture.js";

/** Serving on a real bootstrapped model: table and live answers, fallback, and hot swaps under load. */
describe("serving a real model", () => {
  let s: ServedFixture;
  let f: ServedFixture["f"];
  let store: ServedFixture["store"];
  let registry: ServedFixture["registry"];
  let app: ServedFixture["app"];
  let url = "";

  beforeAll(async () => {
    s = await serveModelFixture({ env: { FRESHREC_AUTH: "off" }, overrides: { serving: { reloadEvery: 2 } } });
    ({ f, store, registry, app, url } = s);
  }, 900_000);

  afterAll(() => s?.close());

  const ask = async (body: unknown) => {
    const res = await fetch(`${url}/v1/next-interests`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as any };
  };

  /** Publishes the active adapter's weights again under a new id and path (as a fine-tune would publish a version). */
  const copyOfActiveAdapter = () => {
    const current = registry.getOf("adapter", registry.active().adapter!);
    const { id, dir } = registry.stage("adapter");
    copyFileSync(current.path!, join(dir, basename(current.path!)));
    return registry.publish({ id, kind: "adapter", main: basename(current.path!), manifest: { ...current.manifest }, gate: current.gate });
  };

  it("answers from the active table with its lineage, and falls back to live scoring for a missing key", async () => {
    const active = registry.active();
    const table = await store.predictionTable(registry.getOf("table", active.table!).manifest.tableId);
    const row = table!.rows[0]!;
    const history = row.key.split(",").map(Number);
    const answer = await ask({ history, k: 3 });
    expect(answer.status).toBe(200);
    expect(answer.json.interests.map((i: { clusterId: number }) => i.clusterId)).toEqual(row.clusters.slice(0, 3));
    expect(answer.json.lineage).toEqual({ baseId: active.base, adapterId: active.adapter, tableId: active.table, snapshotId: table!.meta.snapshotId, ragBlend: table!.meta.ragBlend, popularityBlend: table!.meta.popularityBlend, mode: "table" });

    // A one-cluster history has no pair key in the table: scored live, and the answer says so.
    const single = await ask({ history: [history[0]], k: 3 });
    expect(single.json.fallback).toMatch(/not in table/);
    expect(single.json.lineage).toMatchObject({ mode: "live", adapterId: active.adapter, tableId: null, ragBlend: table!.meta.liveRagBlend, popularityBlend: table!.meta.livePopularityBlend });
    expect(single.json.interests.map((i: { clusterId: number }) => i.clusterId)).not.toContain(history[0]);
  }, 60_000);

  it("answers a stored user from the table with the row's clusters, probabilities and keywords", async () => {
    const active = registry.active();
    const table = (await store.predictionTable(registry.getOf("table", active.table!).manifest.tableId))!;
    const rows = new Map(table.rows.map((r) => [r.key, r]));
    const keywords = new Map((await store.clusters()).map((c) => [c.id, c.keywords]));
    let checked = 0;
    for (let i = 0; i < 60 && checked < 3; i++) {
      const res = await fetch(`${url}/v1/users/u${i}/next-interests?k=4`);
      if (res.status !== 200) continue;
      const answer = NextInterestsAnswerSchema.parse(await res.json());
      if (answer.fallback) continue;
      const row = rows.get(answer.history.join(","))!;
      expect(answer).toEqual({
        userId: `u${i}`,
        history: answer.history,
        interests: row.clusters.slice(0, 4).map((clusterId, j) => ({ clusterId, p: row.probs[j], keywords: keywords.get(clusterId) })),
        lineage: { baseId: active.base, adapterId: active.adapter, tableId: active.table, snapshotId: table.meta.snapshotId, ragBlend: table.meta.ragBlend, popularityBlend: table.meta.popularityBlend, mode: "table" },
      });
      expect(answer.history).toEqual((await store.userState(`u${i}`))!.clusters.slice(-answer.history.length));
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  }, 60_000);

  it("swaps adapters under concurrent live requests: every request succeeds on the old or the new scorer", async () => {
    const before = registry.active().adapter!;
    const next = copyOfActiveAdapter();
    const requests = Array.from({ length: 60 }, (_, i) => ask({ history: [i % f.nClusters, (i + 1) % f.nClusters], k: 2, mode: "live" }));
    const promote = fetch(`${url}/v1/admin/promote`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: next.id }) });
    const more = Array.from({ length: 60 }, (_, i) => ask({ history: [(i + 2) % f.nClusters, i % f.nClusters], k: 2, mode: "live" }));
    const answers = await Promise.all([...requests, ...more]);
    expect((await promote).status).toBe(200);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const seen = new Set(answers.map((a) => a.json.lineage.adapterId));
    for (const id of seen) expect([before, next.id]).toContain(id);
    expect((await ask({ history: [1, 2], mode: "live" })).json.lineage.adapterId).toBe(next.id);
    // The old scorer is disposed once its last request is done.
    await new Promise((r) => setTimeout(r, 50));
    expect(app.context.manager.scorers.draining).toBe(0);
  }, 60_000);

  it("reloads the base model after reloadEvery adapter files, disposing the old model after its scorer", async () => {
    const generation = app.context.manager.models.generation;
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${url}/v1/admin/promote`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: copyOfActiveAdapter().id }) });
      expect((await res.json()).swaps).toEqual([expect.objectContaining({ ok: true })]);
    }
    expect(app.context.manager.models.generation).toBeGreaterThan(generation);
    expect(app.context.manager.models.value!.adapterLoads).toBeLessThanOrEqual(2);
    expect(app.context.manager.models.draining).toBe(0);
    expect((await ask({ history: [3, 4], mode: "live" })).status).toBe(200);
  }, 60_000);

  it("runs an adapter A/B from the registry: arms by user hash, a restart follows it, promoting the candidate ends it", async () => {
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return { status: res.status, json: (await res.json()) as any };
    };
    const active = registry.active();
    const candidate = copyOfActiveAdapter();
    expect((await post("/v1/admin/experiment", { candidateAdapter: active.adapter })).status).toBe(409);
    expect((await post("/v1/admin/experiment", { share: 0.5 })).json.error.issues).toEqual([expect.objectContaining({ path: "candidateTable", message: expect.stringMatching(/candidateAdapter/) })]);
    const started = await post("/v1/admin/experiment", { candidateAdapter: candidate.id, share: 0.5, salt: "ab" });
    expect(started.status).toBe(200);
    expect(started.json.experiment).toMatchObject({ candidateTable: null, candidateAdapter: candidate.id, candidateScorer: { baseId: active.base, adapterId: candidate.id }, share: 0.5, salt: "ab" });
    expect(registry.active().experiment).toMatchObject({ candidateAdapter: candidate.id, share: 0.5, salt: "ab" });

    // Live answers: each arm scored by its own adapter; table answers: the active table in both arms (no candidate table).
    const arms = new Map<string, string>();
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${url}/v1/users/u${i}/next-interests?k=3&mode=live`);
      if (res.status !== 200) continue;
      const { lineage } = (await res.json()) as any;
      expect(lineage.adapterId).toBe(lineage.arm === "candidate" ? candidate.id : active.adapter);
      arms.set(`u${i}`, lineage.arm);
      const table = (await (await fetch(`${url}/v1/users/u${i}/next-interests?k=3&mode=table`)).json()) as any;
      expect(table.lineage.arm).toBe(lineage.arm);
      if (!table.fallback) expect(table.lineage.tableId).toBe(active.table);
    }
    expect(new Set(arms.values())).toEqual(new Set(["active", "candidate"]));

    // Another process on the same registry (a restart, a replica) runs the same split without being told.
    const config = loadServerConfig({ env: { FRESHREC_AUTH: "off" }, overrides: { storeUri: f.storeUri, modelsDir: f.modelsDir, logLevel: "silent" } });
    const other = createApp({ config, store: await openStore(f.storeUri), registry: openRegistry(f.modelsDir), loadModel: loadClusterModel, log: pino({ level: "silent" }), clock: () => f.asOf });
    try {
      await other.start();
      expect(other.context.experiments.current?.settings).toEqual(registry.active().experiment);
      for (const [user, arm] of arms) expect(other.context.experiments.current!.armOf(user)).toBe(arm);
    } finally {
      await other.close();
    }

    // Promoting the candidate settles the experiment: the pointer drops it, every user gets the candidate.
    expect((await post("/v1/admin/promote", { id: candidate.id })).status).toBe(200);
    expect(registry.active()).toMatchObject({ adapter: candidate.id, experiment: null });
    expect(app.context.experiments.current).toBeNull();
    expect(registry.promotions().slice(-3).map((e) => [e.action, e.kind, e.to ?? e.candidate])).toEqual([
      ["experiment-start", "adapter", candidate.id],
      ["promote", "adapter", candidate.id],
      ["experiment-stop", "adapter", candidate.id],
    ]);

    // Stopping by hand: the candidate's scorer is disposed once idle, answers carry no arm.
    const again = copyOfActiveAdapter();
    expect((await post("/v1/admin/experiment", { candidateAdapter: again.id })).status).toBe(200);
    const slot = app.context.experiments.current!.candidateScorers!;
    const stopped = await post("/v1/admin/experiment/stop", {});
    expect(stopped.json).toMatchObject({ experiment: null, ended: { candidateAdapter: again.id } });
    expect(registry.active().experiment).toBeNull();
    await new Promise((r) => setTimeout(r, 50));
    expect(slot.value).toBeUndefined();
    expect(slot.draining).toBe(0);
    expect(((await (await fetch(`${url}/v1/users/u1/next-interests?mode=live`)).json()) as any).lineage.arm).toBeUndefined();
  }, 120_000);

  it("runs a table-path A/B of an adapter: its table (refresh --adapter, never promoted) brings it to live answers too", async () => {
    const active = registry.active();
    const candidate = copyOfActiveAdapter();
    const ctx = { store, registry, trainer: nativeTrainer(), loadModel: loadClusterModel, config: loopPresetFor("tiny"), asOf: f.asOf, by: "test" };
    const table = await refreshTable(ctx, { adapter: candidate.id });
    expect(table.manifest.lineage).toMatchObject({ baseId: active.base, adapterId: candidate.id });
    expect(registry.active().table).toBe(active.table);
    const res = await fetch(`${url}/v1/admin/experiment`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ candidateTable: table.id, share: 0.5 }) });
    expect(((await res.json()) as any).experiment).toMatchObject({ candidateTable: table.id, candidateAdapter: null, candidateScorer: { adapterId: candidate.id } });
    const lineages = [];
    for (let i = 0; i < 60; i++) {
      const r = await fetch(`${url}/v1/users/u${i}/next-interests?k=3`);
      if (r.status === 200) lineages.push(((await r.json()) as any).lineage);
    }
    const candidateArm = lineages.filter((l) => l.arm === "candidate");
    expect(candidateArm.length).toBeGreaterThan(0);
    // Table answers carry their table's lineage; live ones (fallbacks) the scorer's.
    for (const l of lineages.filter((x) => x.mode === "table")) expect(l.tableId).toBe(l.arm === "candidate" ? table.id : active.table);
    for (const l of lineages.filter((x) => x.mode === "live" || x.arm === "candidate")) expect(l.adapterId).toBe(l.arm === "candidate" ? candidate.id : active.adapter);
    expect((await fetch(`${url}/v1/admin/experiment/stop`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(200);
  }, 180_000);

  it("refuses to add a cluster to a cluster-token model, saying what it needs, and stores nothing", async () => {
    const before = await store.clusters();
    const res = await fetch(`${url}/v1/admin/clusters`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ clusters: [{ id: before.length, keywords: ["new", "topic"] }] }) });
    expect(res.status).toBe(409);
    expect(((await res.json()) as any).error.message).toMatch(/cluster-token model: its vocabulary has one token per cluster .*new base pretrained with it.*text model/);
    expect(await store.clusters()).toEqual(before);
  }, 60_000);

  it("refuses to promote a table that cannot be loaded: 409, the pointer stays, the previous table keeps serving", async () => {
    const served = registry.active().table;
    const { id } = registry.stage("table");
    registry.publish({ id, kind: "table", manifest: sampleManifest("table", { tableId: "no-such-table" }), gate: { passed: true, reasons: [], metrics: {} } });
    const res = await fetch(`${url}/v1/admin/promote`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id }) });
    const body = (await res.json()) as any;
    expect(res.status).toBe(409);
    expect(body.error.message).toMatch(new RegExp(`table '${id}' failed to load \\(.*no-such-table.*\\); the active table stays ${served}`));
    expect(registry.active().table).toBe(served);
    const model = (await (await fetch(`${url}/v1/model`)).json()) as any;
    expect(model.lineage.tableId).toBe(served);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  }, 60_000);

  it("comes up after a restart on the last adapter that loads when the active one's file went bad, and says why", async () => {
    const good = registry.active().adapter!;
    const promoted = copyOfActiveAdapter();
    const res = await fetch(`${url}/v1/admin/promote`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: promoted.id }) });
    expect(res.status).toBe(200);
    writeFileSync(promoted.path!, "GGUF but no longer a model");
    const config = loadServerConfig({ env: { FRESHREC_AUTH: "off" }, overrides: { storeUri: f.storeUri, modelsDir: f.modelsDir, logLevel: "silent", serving: { swapTimeoutMs: 10_000 } } });
    const restarted = createApp({ config, store: await openStore(f.storeUri), registry: openRegistry(f.modelsDir), loadModel: loadClusterModel, log: pino({ level: "silent" }), clock: () => f.asOf });
    try {
      await restarted.start();
      expect(restarted.context.manager.ready).toBe(true);
      const answer = (await restarted.context.modelAnswer()) as { lineage: { adapterId: string }; degraded: { scorer?: string } };
      expect(answer.lineage.adapterId).toBe(good);
      expect(answer.degraded.scorer).toMatch(new RegExp(`active adapter '${promoted.id}' does not load .*serving .*${good}`));
      expect(registry.active().adapter).toBe(promoted.id); // the pointer is the writer's to move, not a restart's
    } finally {
      await restarted.close();
    }
  }, 120_000);
});
