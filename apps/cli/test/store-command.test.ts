import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "@freshrec/retriever";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "freshrec-store-cmd-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `freshrec store ...` in its own process: exit status and the report (the last stdout line). */
function freshrec(...args: string[]): { status: number | null; report: any; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", MAIN, "store", ...args, "--json"], { encoding: "utf8", timeout: 60_000 });
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  return { status: r.status, report: last ? JSON.parse(last) : null, stderr: r.stderr };
}

describe("freshrec store check | repair", () => {
  it("checks a store, names a lost derived table with its remedy, repairs it, and reports damage it cannot repair", async () => {
    const uri = join(dir, "store");
    const store = await openStore(uri, { k: 2 });
    await store.putClusters([0, 1, 2].map((id) => ({ id, keywords: [`t${id}`] })));
    await store.putItems([0, 1, 2].map((c) => ({ itemId: `i${c}`, clusterId: c })));
    const events = Array.from({ length: 60 }, (_, i) => ({ eventId: `e${i}`, userId: `u${i % 4}`, itemId: `i${i % 3}`, ts: 1_700_000_000_000 + i * 1000, signal: 5 }));
    for (let b = 0; b < 3; b++) await store.ingest(events.slice(b * 20, (b + 1) * 20));
    await store.close();

    const healthy = freshrec("check", "--store", uri);
    expect(healthy.status).toBe(0);
    expect(healthy.report).toMatchObject({ ok: true, events: 60, watermark: 3, problems: [] });

    rmSync(join(uri, "transitions.lance"), { recursive: true });
    const damaged = freshrec("check", "--store", uri);
    expect(damaged.status).toBe(1);
    expect(damaged.report.problems).toEqual([expect.objectContaining({ code: "store-derived-missing", table: "transitions", remedy: expect.stringContaining(`freshrec store repair --store ${uri}`) })]);
    expect(damaged.stderr).toMatch(/check events: 60\/60/); // progress

    const repaired = freshrec("repair", "--store", uri);
    expect(repaired.status).toBe(0);
    expect(repaired.report).toMatchObject({ ok: true, unrecoverable: [], after: { ok: true, events: 60 } });
    expect(repaired.report.rebuilt).toContain("transitions");
    expect(freshrec("check", "--store", uri).status).toBe(0);

    rmSync(join(uri, "events.lance"), { recursive: true });
    const lost = freshrec("repair", "--store", uri);
    expect(lost.status).toBe(1);
    expect(lost.report.rebuilt).toEqual([]);
    expect(lost.report.unrecoverable).toEqual([expect.objectContaining({ code: "store-corrupt", table: "events", remedy: expect.stringMatching(/cannot be rebuilt/) })]);
  }, 120_000);

  it("refuses a folder that holds no store, creating nothing", () => {
    const missing = join(dir, "no-store-here");
    const r = freshrec("check", "--store", missing);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`no store at ${missing}`);
    expect(existsSync(missing)).toBe(false);
  }, 60_000);
});
