import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { DAY_MS } from "@freshrec/core";
import { ADMIN_KEY, E2E_KEYS, INGEST_KEY, READ_KEY, promotionsUnderLoad, servesWritersTable, startFreshrec, type ServeProcess, within } from "./server-process.js";
import { writeOwnData, writeServiceConfig } from "./own-data.js";

const ROOT = join(import.meta.dirname, "..");
const MAIN = join(ROOT, "apps/cli/src/main.ts");
const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, FRESHREC_API_KEYS: E2E_KEYS } });

/**
 * Roles: one writer (lock, ingest, loop, jobs, promotions) and read-only replicas on the same store and
 * registry, as separate processes. Replicas follow every promotion within 2 s under load without failing a
 * request, refuse writes naming the writer, and a replica started later comes up on what is active.
 */
describe("one writer and read-only replicas", () => {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-roles-"));
  const store = join(dir, "store");
  const models = join(dir, "models");
  const procs: ServeProcess[] = [];
  afterAll(async () => {
    for (const p of procs.reverse()) await p.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it("replicas serve each promoted table within 2 s with zero failed requests; a store has one writer", async () => {
    const data = writeOwnData(dir, DAY_MS);
    const config = writeServiceConfig(dir, { refreshSeconds: 3600, minTransitions: 300 });
    const imported = cli("import", "events", data.eventsCsv, "--items", data.itemsCsv, "--store", store);
    expect(imported.status, imported.stderr).toBe(0);

    const writer = await startFreshrec(["serve", "--store", store, "--models", models, "--config", config]);
    procs.push(writer);
    await writer.waitFor("/readyz", 200, 5 * 60_000);

    // The single-writer lock: an import or a second writer on the same store is refused, naming the holder.
    const intruder = cli("import", "events", data.eventsCsv, "--items", data.itemsCsv, "--store", store);
    expect(intruder.status).toBe(4);
    expect(intruder.stderr).toMatch(/is being written by 'freshrec serve --role writer' \(pid \d+/);
    const second = cli("serve", "--store", store, "--models", models, "--config", config, "--port", "0");
    expect(second.status).toBe(4);
    expect(second.stderr.trim().split("\n")).toHaveLength(1); // one line, no stack

    // Two more tables to promote between (admin jobs on the writer).
    for (let i = 0; i < 2; i++) {
      const started = await writer.call("POST", "/v1/admin/refresh-table", { key: ADMIN_KEY, body: {} });
      expect(started.status).toBe(202);
      const done = await within(120_000, async () => (await writer.call("GET", "/v1/model", { key: READ_KEY })).json.jobs.find((j: { id: string }) => j.id === started.json.job.id)?.state !== "running");
      expect(done).toBeLessThan(Infinity);
    }
    const tables = (await writer.call("GET", "/v1/model", { key: READ_KEY })).json.registry.filter((r: { kind: string }) => r.kind === "table").map((r: { id: string }) => r.id) as string[];
    expect(tables.length).toBeGreaterThanOrEqual(3);

    const replicas = [];
    for (let i = 0; i < 2; i++) {
      const r = await startFreshrec(["serve", "--role", "replica", "--writer-url", writer.url, "--store", store, "--models", models, "--config", config]);
      procs.push(r);
      replicas.push(r);
    }
    for (const r of replicas) await r.waitFor("/readyz", 200, 60_000);

    // Writes go to the writer: a replica refuses them with 421 and names it.
    const refused = await replicas[0]!.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: data.events.slice(0, 1) } });
    expect(refused.status).toBe(421);
    expect(refused.json.error).toMatchObject({ code: "read-only-replica", message: expect.stringContaining(writer.url) });

    // Load on both replicas while the writer promotes ten times.
    const user = data.events[data.events.length - 1]!.userId;
    const { lags, answered, failures } = await promotionsUnderLoad(writer, replicas, tables, user);
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThan(100);
    expect(Math.max(...lags)).toBeLessThan(2000);

    // A replica started now comes up on what is active, from the store and registry alone.
    const late = await startFreshrec(["serve", "--role", "replica", "--store", store, "--models", models, "--config", config]);
    procs.push(late);
    const { writers: active, late: lateTable } = await servesWritersTable(late, writer);
    expect(lateTable).toBe(active);
    expect((await late.call("GET", "/v1/model", { key: READ_KEY })).json).toMatchObject({ role: "replica", loop: null });
  }, 10 * 60_000);
});
