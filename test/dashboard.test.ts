/**
 * The dashboard in a real headless Chromium against a real server (real LanceDB store, llama.cpp, the native
 * trainer's tiny bootstrap) with auth on. It sees the lineage; a real table refresh job runs, an admin promotes
 * its table and the page shows the new table with its diff; answers are served and events posted, the serving
 * clock passes the quality horizon and the page shows the online quality move; an A/B against the earlier table
 * splits the world's users and the page compares the arms. The screenshot is kept in
 * test/artefacts/ (FRESHREC_UPDATE_SCREENSHOT=1 also writes docs/dashboard.png, the README's).
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { createSyntheticWorld, DAY_MS } from "@freshrec/core";
import { loadClusterModel } from "@freshrec/scorer";
import { loopPresetFor, nativeTrainer, refreshTable } from "@freshrec/trainer-bridge";
import { serveModelFixture, type ServedFixture } from "../packages/server/test/model-fixture.js";
import { httpCaller, type Call } from "../packages/server/test/http-call.js";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const ARTEFACTS = join(import.meta.dirname, "artefacts");
const READ = "dash-reader-key-1";
const INGEST = "dash-ingest-key-1";
const ADMIN = "dash-admin-key-01";
const HOUR = 3_600_000;

if (!CHROMIUM) console.warn("dashboard browser test skipped: no chromium binary (apt-get install chromium; .ci/run installs it)");

describe.skipIf(!CHROMIUM)("dashboard in a browser", () => {
  let s: ServedFixture;
  let call: Call;
  let browser: Browser;
  let page: Page;
  let now = 0;
  const world = createSyntheticWorld("tiny");

  beforeAll(async () => {
    s = await serveModelFixture({
      env: { FRESHREC_API_KEYS: `reader=${READ}:read;ingester=${INGEST}:ingest;ops=${ADMIN}:admin` },
      overrides: { recording: { flushEveryMs: 200 }, quality: { cacheMs: 0 } },
      clock: (f) => {
        now = f.asOf;
        return () => now;
      },
    });
    call = httpCaller(s.url);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
  }, 600_000); // the bootstrap takes about half a minute on a quiet 2-core machine, several on a busy one
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  }, 60_000);

  const text = async (selector: string) => (await page.locator(selector).textContent()) ?? "";

  it("asks for a key without one, then shows what serves now", async () => {
    await page.goto(`${s.url}/dashboard/?poll=300`);
    await page.locator("#login").waitFor({ state: "visible" });
    expect(await text("#status")).toContain("API key");
    await page.goto(`${s.url}/dashboard/?poll=300#key=${READ}`);
    const model = (await call("GET", "/v1/model", { key: READ })).json;
    await expect.poll(() => text("#active-table"), { timeout: 10_000 }).toBe(model.lineage.tableId);
    expect(await text("#status")).toContain("ready");
    expect(await text("#serving")).toContain(model.lineage.adapterId);
    expect(page.url()).not.toContain(READ); // the key leaves the address bar
  }, 60_000);

  it("shows a refreshed table once promoted, with the keys whose top-1 it changed", async () => {
    const before = (await call("GET", "/v1/model", { key: READ })).json.lineage.tableId;
    // Four more days of the world arrive over HTTP; the refresh then sees fresher successors.
    const later = s.f.asOf + 4 * DAY_MS;
    const events = [...world.events()].filter((e) => e.ts >= s.f.asOf && e.ts < later);
    now = later;
    for (let i = 0; i < events.length; i += 2000) expect((await call("POST", "/v1/events", { key: INGEST, body: { events: events.slice(i, i + 2000) } })).status).toBe(200);
    await expect.poll(() => text("#ingest-received"), { timeout: 10_000 }).toBe(String(events.length));

    const table = await refreshTable({ store: s.store, registry: s.registry, trainer: nativeTrainer(), loadModel: loadClusterModel, config: loopPresetFor("tiny"), asOf: later, by: "test:dashboard", autoPromote: false });
    const promoted = await call("POST", "/v1/admin/promote", { key: ADMIN, body: { id: table.id } });
    expect(promoted.status, promoted.text).toBe(200);
    await expect.poll(() => text("#active-table"), { timeout: 10_000 }).toBe(table.id);
    await expect.poll(() => page.locator("#diff-to").textContent(), { timeout: 10_000 }).toBe(table.id);

    const diff = (await call("GET", "/v1/tables/diff", { key: READ })).json;
    expect(diff.from.id).toBe(before);
    expect(diff.to.id).toBe(table.id);
    // Same base and adapter, a newer snapshot: whatever changed, retrieval changed it.
    expect(diff.cause).toBe("rag");
    expect(await text("#diff-changed")).toBe(String(diff.top1Changed));
    const [a, b] = [(await s.store.predictionTable(table.manifest.tableId))!, (await s.store.predictionTable(s.registry.getOf("table", before).manifest.tableId))!];
    const top1 = (rows: typeof a.rows) => new Map(rows.map((r) => [r.key, r.clusters[0]]));
    const [ta, tb] = [top1(a.rows), top1(b.rows)];
    const changed = [...ta].filter(([k, c]) => tb.has(k) && tb.get(k) !== c).length;
    expect(diff.top1Changed).toBe(changed);
    expect(await text("#registry")).toContain(`api:ops`);
  }, 120_000);

  it("shows the online quality move once answers settle against the events users posted", async () => {
    const active = (await call("GET", "/v1/model", { key: READ })).json.lineage.tableId as string;
    const rows = (await s.store.predictionTable(s.registry.getOf("table", active).manifest.tableId))!.rows;
    const row = rows.find((r) => r.key.split(",").length === 2 && r.clusters.length >= 4)!;
    const [a, b] = row.key.split(",").map(Number) as [number, number];
    const item = (c: number) => world.items.find((i) => i.clusterId === c)!.itemId;
    const t0 = now;
    const post = (userId: string, clusters: number[], from: number, tag: string) =>
      call("POST", "/v1/events", { key: INGEST, body: { events: clusters.map((c, i) => ({ eventId: `${tag}-${userId}-${i}`, userId, itemId: item(c), ts: from + i * 60_000, signal: 5 })) } });
    for (const user of ["dash-hit", "dash-miss"]) expect((await post(user, [a, b], t0 - 2 * HOUR, "h")).status).toBe(200);
    const answers = await Promise.all(["dash-hit", "dash-miss"].map(async (u) => (await call("GET", `/v1/users/${u}/next-interests?k=3`, { key: READ })).json));
    for (const ans of answers) expect(ans.lineage).toMatchObject({ mode: "table", tableId: active });
    const top = answers[0].interests.map((i: { clusterId: number }) => i.clusterId) as number[];
    const elsewhere = world.clusters.map((c) => c.id).find((c) => !top.includes(c) && c !== a && c !== b)!;

    // One user engages with the top-1 within the horizon, the other with nothing that was recommended.
    expect((await post("dash-hit", [top[0]!], t0 + HOUR, "f")).status).toBe(200);
    expect((await post("dash-miss", [elsewhere], t0 + HOUR, "f")).status).toBe(200);
    const open = (await call("GET", "/v1/quality", { key: READ })).json;
    expect(open.answers).toMatchObject({ settled: 0, open: 2 });
    await expect.poll(() => text("#quality"), { timeout: 10_000 }).toContain("0 settled, 2 still open");

    now = t0 + DAY_MS + HOUR;
    const settled = (await call("GET", "/v1/quality", { key: READ })).json;
    expect(settled.answers).toMatchObject({ settled: 2, open: 0 });
    expect(settled.groups).toEqual([expect.objectContaining({ tableId: active, mode: "table", arm: "active", settled: 2, top1: expect.objectContaining({ rate: 0.5 }), topk: expect.objectContaining({ rate: 0.5 }) })]);
    await expect.poll(() => text("#quality"), { timeout: 10_000 }).toContain("2 settled, 0 still open");
    expect(await text("#quality")).toContain("50.0 %");
    const metrics = (await call("GET", "/metrics")).text;
    expect(metrics).toMatch(new RegExp(`freshrec_online_hit_rate\\{table_id="${active}",adapter_id="[^"]*",mode="table",arm="active",at="top1"\\} 0.5`));

    // The writer flushed the recorded answers into the store.
    await expect.poll(async () => (await s.store.servedAnswers.read({ from: t0, to: t0 + 1 })).length, { timeout: 5_000 }).toBe(2);
  }, 60_000);

  it("splits traffic between the active table and a candidate, names the arm in each answer, and compares the arms", async () => {
    const active = (await call("GET", "/v1/model", { key: READ })).json.lineage.tableId as string;
    const candidate = (await call("GET", "/v1/tables/diff", { key: READ })).json.from.id as string;
    const started = await call("POST", "/v1/admin/experiment", { key: ADMIN, body: { candidateTable: candidate, share: 0.5, salt: "dash" } });
    expect(started.status, started.text).toBe(200);
    expect((await call("POST", "/v1/admin/experiment", { key: ADMIN, body: { candidateTable: active } })).status).toBe(409);

    // The world's users are answered now; the next day of the world then arrives, and the horizon passes.
    const served = now;
    const users = [...new Set([...world.events()].filter((e) => e.ts < s.f.asOf).map((e) => e.userId))];
    const arms = new Map<string, string>();
    for (const u of users) {
      const res = await call("GET", `/v1/users/${u}/next-interests?k=5`, { key: READ });
      if (res.status !== 200) continue;
      arms.set(u, res.json.lineage.arm);
      // A key the arm's table lacks is scored live (tableId null), still in its arm.
      if (res.json.lineage.mode === "table") expect(res.json.lineage.tableId).toBe(res.json.lineage.arm === "candidate" ? candidate : active);
    }
    const perArm = (arm: string) => [...arms.values()].filter((a) => a === arm).length;
    expect(perArm("active")).toBeGreaterThan(0);
    expect(perArm("candidate")).toBeGreaterThan(0);
    const next = [...world.events()].filter((e) => e.ts > served && e.ts <= served + DAY_MS);
    for (let i = 0; i < next.length; i += 2000) expect((await call("POST", "/v1/events", { key: INGEST, body: { events: next.slice(i, i + 2000) } })).status).toBe(200);
    now = served + DAY_MS + 1;

    const q = (await call("GET", "/v1/quality", { key: READ })).json;
    expect(q.experiment.running).toMatchObject({ candidateTable: candidate, share: 0.5 });
    expect(q.experiment.arms.map((a: { arm: string; settled: number }) => [a.arm, a.settled])).toEqual([
      ["active", perArm("active") + 2], // the two answers of the quality test came before the experiment
      ["candidate", perArm("candidate")],
    ]);
    const d = q.experiment.difference.topk;
    expect(d.lo).toBeLessThanOrEqual(d.diff);
    expect(d.diff).toBeLessThanOrEqual(d.hi);
    await expect.poll(() => text("#experiment"), { timeout: 10_000 }).toContain("candidate − active");
    expect(await text("#experiment")).toContain(`table ${candidate} answers 50.0 % of users`);

    mkdirSync(ARTEFACTS, { recursive: true });
    const shot = join(ARTEFACTS, "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.FRESHREC_UPDATE_SCREENSHOT === "1") copyFileSync(shot, join(import.meta.dirname, "..", "docs", "dashboard.png"));
    expect(existsSync(shot)).toBe(true);

    const stopped = await call("POST", "/v1/admin/experiment/stop", { key: ADMIN });
    expect(stopped.json).toMatchObject({ experiment: null, ended: { candidateTable: candidate } });
    const after = (await call("GET", `/v1/users/${[...arms.keys()][0]}/next-interests?k=5`, { key: READ })).json;
    expect(after.lineage.arm).toBeUndefined();
    expect(after.lineage.tableId).toBe(active);
  }, 120_000);
});
