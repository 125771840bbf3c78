import { readdirSync, rmSync, statfsSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DAY_MS } from "@freshrec/core";
import { DiskFullError, StoreCorruptError, StoreDerivedMissingError, StoreUsageError, openStore, type IngestEvent, type Store } from "../src/index.js";
import { lancedb } from "../src/lance.js";
import { T0, circleClusters, itemsFor, randomEvents, smallDisk, tempStoreDir } from "./helpers.js";

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const EVENTS = randomEvents({ seed: 21, users: 20, events: 900, clusters: 8, days: 20 });
const Q = { asOf: T0 + 30 * DAY_MS, windowMs: 30 * DAY_MS, n: 3, minSupport: 1 };

async function storeAt(dir: string): Promise<Store> {
  const store = await openStore(dir, { k: 2, readConsistencyMs: 0 });
  cleanups.push(() => store.close());
  return store;
}

/** A store with EVENTS ingested in three batches, closed; returns its folder and what it answers. */
async function filledDir(events: IngestEvent[] = EVENTS) {
  const { dir, cleanup } = tempStoreDir();
  cleanups.push(cleanup);
  const store = await openStore(dir, { k: 2, readConsistencyMs: 0 });
  await store.putClusters(circleClusters(8));
  await store.putItems(itemsFor(8, 3));
  for (let b = 0; b < 3; b++) await store.ingest(events.slice(b * 300, (b + 1) * 300));
  const answers = { successors: await store.successors([2, 3], Q), user: await store.userState("u1"), transitions: await store.transitions({ start: 0, end: T0 + 99 * DAY_MS }) };
  await store.close();
  return { dir, answers };
}

const dataFiles = (dir: string, table: string) => readdirSync(join(dir, `${table}.lance`, "data")).map((f) => join(dir, `${table}.lance`, "data", f));

async function withTable(dir: string, name: string, fn: (t: Awaited<ReturnType<Awaited<ReturnType<typeof lancedb.connect>>["openTable"]>>) => Promise<unknown>) {
  const db = await lancedb.connect(dir);
  const t = await db.openTable(name);
  await fn(t);
  t.close();
  db.close();
}

async function rowCount(dir: string, name: string): Promise<number> {
  let n = 0;
  await withTable(dir, name, async (t) => (n = await t.countRows()));
  return n;
}

describe("a derived table lost", () => {
  it("fails ingest with store-derived-missing naming the repair command, reports it in health and check, and repair restores it", async () => {
    const { dir, answers } = await filledDir();
    rmSync(join(dir, "transitions.lance"), { recursive: true });
    const store = await storeAt(dir);

    const err = await store.ingest([{ eventId: "new-1", userId: "u1", itemId: "i1_0", ts: T0 + 25 * DAY_MS, signal: 5 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreDerivedMissingError);
    expect((err as StoreDerivedMissingError).code).toBe("store-derived-missing");
    expect((err as Error).message).toContain(`\`freshrec store repair --store ${dir}\``);
    expect((err as Error).message).not.toMatch(/rebuildDerived|backup/);

    const health = await store.health({ maxAgeMs: 0 });
    expect(health.ok).toBe(false);
    expect(health.problems).toEqual([expect.objectContaining({ code: "store-derived-missing", table: "transitions", remedy: expect.stringContaining("freshrec store repair") })]);
    const report = await store.check();
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => [p.code, p.table])).toEqual([["store-derived-missing", "transitions"]]);
    expect(report.tables.find((t) => t.name === "events")).toEqual({ name: "events", rows: 900, ok: true });

    const progress: string[] = [];
    const repaired = await store.repair({ onProgress: (e) => progress.push(e.phase) });
    expect(repaired).toMatchObject({ ok: true, unrecoverable: [] });
    expect(repaired.rebuilt).toEqual(expect.arrayContaining(["transitions", "user_state", "folds"]));
    expect(progress).toContain("fold batches");
    expect(repaired.after).toMatchObject({ ok: true, watermark: 3, events: 900, pendingBatches: 0 });
    expect(await store.health({ maxAgeMs: 0 })).toMatchObject({ ok: true, problems: [] });
    expect(await store.successors([2, 3], Q)).toEqual(answers.successors);
    expect(await store.userState("u1")).toEqual(answers.user);
    expect(await store.ingest(EVENTS)).toEqual({ accepted: 0, duplicates: 900 });
  });

  it("finds transitions that disagree with the commit markers, and repair makes them agree again", async () => {
    const { dir, answers } = await filledDir();
    await withTable(dir, "transitions", (t) => t.delete("seq = 2"));
    const store = await storeAt(dir);
    const report = await store.check();
    expect(report.problems).toEqual([expect.objectContaining({ code: "store-derived-inconsistent", table: "transitions", message: expect.stringContaining("(seq 2)") })]);
    expect((await store.repair()).ok).toBe(true);
    expect(await store.transitions({ start: 0, end: T0 + 99 * DAY_MS })).toEqual(answers.transitions);
  });
});

describe("the events log damaged", () => {
  it("truncated data files: ingest fails with store-corrupt, health says so, repair rebuilds nothing and keeps the derived data", async () => {
    const { dir, answers } = await filledDir();
    for (const f of dataFiles(dir, "events")) truncateSync(f, 100);
    const store = await storeAt(dir);

    const err = await store.ingest([{ eventId: "new-1", userId: "u1", itemId: "i1_0", ts: T0, signal: 5 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect((err as StoreCorruptError).code).toBe("store-corrupt");
    expect((err as StoreCorruptError).table).toBe("events");
    expect((err as Error).message).toContain(`freshrec store check --store ${dir}`);
    rmSync(join(dir, "user_state.lance"), { recursive: true }); // and a derived table is lost too
    const health = await store.health({ maxAgeMs: 0 });
    expect(health.problems.map((p) => [p.code, p.table]).sort()).toEqual([
      ["store-corrupt", "events"],
      ["store-derived-missing", "user_state"],
    ]);

    const repaired = await store.repair();
    expect(repaired.ok).toBe(false);
    expect(repaired.rebuilt).toEqual([]);
    const why = Object.fromEntries(repaired.unrecoverable.map((p) => [p.table, p.remedy]));
    expect(why.events).toMatch(/cannot be rebuilt.*backup.*re-import/);
    expect(why.user_state).toMatch(/^Not rebuilt/);
    // what was derived from the lost events is still there
    expect(await store.transitions({ start: 0, end: T0 + 99 * DAY_MS })).toEqual(answers.transitions);
  });

  it("events missing from folded batches: check reports lost events, repair refuses to rebuild from what is left", async () => {
    const { dir, answers } = await filledDir();
    await withTable(dir, "events", (t) => t.delete("seq = 2"));
    const store = await storeAt(dir);
    const report = await store.check();
    expect(report.problems).toEqual([expect.objectContaining({ code: "store-corrupt", table: "events", message: expect.stringMatching(/events were lost .*\(seq 2\)/) })]);
    await withTable(dir, "folds", (t) => t.delete("seq = 1")); // and a derived table is off too
    const repaired = await store.repair();
    expect(repaired.rebuilt).toEqual([]);
    expect(repaired.unrecoverable.map((p) => [p.table, p.code]).sort()).toEqual([
      ["events", "store-corrupt"],
      ["folds", "store-derived-inconsistent"],
    ]);
    expect(await rowCount(dir, "transitions")).toBe(answers.transitions.length);
  });

  it("opens existing stores only when asked to, and calls events without settings a damaged store", async () => {
    const { dir } = await filledDir();
    await expect(openStore(join(dir, "nothing-here"), { create: false })).rejects.toThrow(StoreUsageError);
    rmSync(join(dir, "meta.lance"), { recursive: true });
    const err = await openStore(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect((err as StoreCorruptError).table).toBe("meta");
  });
});

describe("a full disk", () => {
  it("is a disk-full error (the store is fine), shows in health until space is freed, and ingest resumes then", async (ctx) => {
    const disk = smallDisk(16);
    if ("skip" in disk) return ctx.skip(disk.skip);
    cleanups.push(() => disk.release());
    const events = randomEvents({ seed: 22, users: 30, events: 6000, clusters: 8, days: 10 });
    const store = await storeAt(join(disk.dir, "store"));
    await store.putClusters(circleClusters(8));
    await store.putItems(itemsFor(8, 3));
    await store.ingest(events.slice(0, 1000));

    const filler = join(disk.dir, "filler");
    const { bavail, bsize } = statfsSync(disk.dir);
    writeFileSync(filler, Buffer.alloc(bavail * bsize - 16 * 1024));
    const err = await store.ingest(events.slice(1000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskFullError);
    expect((err as DiskFullError).code).toBe("disk-full");
    expect((err as Error).message).toMatch(/disk holding .* is full; the store itself is intact.*writes resume by themselves/);
    expect((err as Error).message).not.toMatch(/backup|repair/);
    const full = await store.health({ maxAgeMs: 0 });
    expect(full.problems.map((p) => p.code)).toEqual(["disk-full"]);
    // still full: a retry fails the same way and the report stays
    await expect(store.ingest(events.slice(1000))).rejects.toBeInstanceOf(DiskFullError);
    expect((await store.health({ maxAgeMs: 0 })).ok).toBe(false);

    rmSync(filler);
    expect(await store.health({ maxAgeMs: 0 })).toMatchObject({ ok: true, problems: [] });
    const resumed = await store.ingest(events.slice(1000));
    expect(resumed.accepted + resumed.duplicates).toBe(5000);

    // exactly what a store that never saw a full disk holds
    const { dir: cleanDir, cleanup } = tempStoreDir();
    cleanups.push(cleanup);
    const clean = await storeAt(cleanDir);
    await clean.putClusters(circleClusters(8));
    await clean.putItems(itemsFor(8, 3));
    await clean.ingest(events.slice(0, 1000));
    await clean.ingest(events.slice(1000));
    const all = { start: 0, end: T0 + 99 * DAY_MS };
    expect(await store.transitions(all)).toEqual(await clean.transitions(all));
    expect(await store.version()).toBe(await clean.version());
    expect(await store.check()).toMatchObject({ ok: true, events: 6000 });
  }, 60_000);
});
