import { describe, expect, it } from "vitest";
import { DAY_MS } from "@freshrec/core";
import { lancedb, TABLE } from "@freshrec/retriever";
import { ADMIN_KEY, INGEST_KEY, READ_KEY, startFreshrec, type ServeProcess } from "./server-process.js";
import { cli, serveScratch, writeOwnData, writeServiceConfig } from "./own-data.js";

const BOOTSTRAP_MS = 5 * 60_000;

/**
 * `freshrec serve` on a team's own data, cold: a catalogue imported, no event stored, events arriving over HTTP.
 * The update loop runs on the wall clock: it waits for data, bootstraps, answers with lineage, and refreshes the
 * table on a cadence of seconds (set by the config file), hot-swapping it.
 */
describe("freshrec serve on your own data (wall clock, cold start over HTTP)", () => {
  const { dir, store, models, serving } = serveScratch("freshrec-own-data-");
  let s: ServeProcess;

  it("waits for data, bootstraps on it without a restart, serves with lineage, refreshes on the wall clock, and stores only what it was sent", async () => {
    const data = writeOwnData(dir, DAY_MS);
    const config = writeServiceConfig(dir, { refreshSeconds: 15, minTransitions: 300 });
    cli("import", "items", data.itemsCsv, "--store", store);
    s = serving(await startFreshrec(["serve", "--store", store, "--models", models, "--config", config]));
    await s.waitFor("/healthz", 200, 60_000);

    // Too little data: not ready, and both /readyz and /v1/model say how much there is and how much is needed.
    const first = data.events.slice(0, 200);
    expect((await s.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: first } })).status).toBe(200);
    const waitingReady = await s.call("GET", "/readyz");
    expect(waitingReady.status).toBe(503);
    let waiting = (await s.call("GET", "/v1/model", { key: READ_KEY })).json;
    for (let i = 0; i < 20 && waiting.loop?.transitions === undefined; i++) {
      await new Promise((r) => setTimeout(r, 500));
      waiting = (await s.call("GET", "/v1/model", { key: READ_KEY })).json;
    }
    expect(waiting.role).toBe("writer");
    expect(waiting.loop).toMatchObject({ phase: "waiting-for-data", transitions: { need: 300 } });
    expect(waiting.loop.transitions.have).toBeLessThan(300);

    // The rest arrives: the loop bootstraps by itself and the server becomes ready.
    for (let i = 200; i < data.events.length; i += 1000) {
      const ack = await s.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: data.events.slice(i, i + 1000) } });
      expect(ack.status).toBe(200);
    }
    await s.waitFor("/readyz", 200, BOOTSTRAP_MS);
    const model = (await s.call("GET", "/v1/model", { key: READ_KEY })).json;
    expect(model.lineage).toMatchObject({ baseId: expect.any(String), adapterId: expect.any(String), tableId: expect.any(String) });
    // The newest event is a day old: windows end at the wall clock.
    expect(model.loop.anchor).toMatchObject({ mode: "clock" });
    expect(model.loop.lastDecision).toMatchObject({ outcome: "done" });
    const bootTable = model.lineage.tableId as string;

    // Answers in table and live mode, with lineage, for a user of the posted data.
    const user = data.events[data.events.length - 1]!.userId;
    const table = await s.call("GET", `/v1/users/${user}/next-interests?k=5`, { key: READ_KEY });
    expect(table.status).toBe(200);
    expect(table.json.lineage.baseId).toBe(model.lineage.baseId);
    const live = await s.call("GET", `/v1/users/${user}/next-interests?k=5&mode=live`, { key: READ_KEY });
    expect(live.status).toBe(200);
    expect(live.json.lineage).toMatchObject({ mode: "live", adapterId: model.lineage.adapterId });

    // New events now; then a refresh on the 15 s cadence builds a new table, which is hot-swapped in.
    const now = Date.now();
    const fresh = [3, 7, 3, 11].map((c, i) => ({ eventId: `live-${i}`, userId: "live-user", itemId: `c${c}-i0`, ts: now - 60_000 + i * 1000, signal: 5 }));
    expect((await s.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: fresh } })).json).toMatchObject({ accepted: 4 });
    const until = Date.now() + 3 * 60_000;
    let swapped = model;
    while (Date.now() < until && swapped.lineage.tableId === bootTable) {
      await new Promise((r) => setTimeout(r, 1000));
      swapped = (await s.call("GET", "/v1/model", { key: READ_KEY })).json;
    }
    expect(swapped.lineage.tableId).not.toBe(bootTable);
    expect(swapped.loop.lastDecision).toMatchObject({ action: "refresh", outcome: "done" });
    expect((await s.call("GET", "/v1/users/live-user/next-interests?k=3", { key: READ_KEY })).json.history).toEqual([3, 11]);
    const metrics = (await s.call("GET", "/metrics")).text;
    expect(metrics).toMatch(/freshrec_loop_decisions_total\{action="refresh",outcome="done"\} [1-9]/);

    // An admin can still start a job by hand; a second one while it runs is a conflict.
    const job = await s.call("POST", "/v1/admin/refresh-table", { key: ADMIN_KEY, body: {} });
    expect([202, 409]).toContain(job.status);

    expect(await s.stop()).toBe(0);
    // The store holds exactly what was posted: nothing invented, nothing lost, nothing twice.
    const db = await lancedb.connect(store);
    const rows = await (await db.openTable(TABLE.events)).query().select(["eventId"]).toArray();
    const stored = rows.map((r) => String(r.eventId)).sort();
    const sent = [...data.events.map((e) => e.eventId), ...fresh.map((e) => e.eventId)].sort();
    expect(stored).toEqual(sent);
  }, BOOTSTRAP_MS + 6 * 60_000);
});
