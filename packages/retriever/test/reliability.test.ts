import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { readdirSync, renameSync, rmSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { DAY_MS } from "@freshrec/core";
import { IncompatibleStoreError, StoreDerivedMissingError, openStore, type IngestEvent } from "../src/index.js";
import { lancedb } from "../src/lance.js";
import { T0, circleClusters, itemsFor, randomEvents, tempStoreDir } from "./helpers.js";

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm")).href;
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function filledStore(events: IngestEvent[]) {
  const { dir, cleanup } = tempStoreDir();
  cleanups.push(cleanup);
  const store = await openStore(dir, { k: 2, readConsistencyMs: 0 });
  await store.putClusters(circleClusters(8));
  await store.putItems(itemsFor(8, 3));
  if (events.length) await store.ingest(events);
  return { dir, store };
}

/** A path inside a table's folder: its data files or its manifests. */
const filesOf = (dir: string, table: string, sub: "data" | "_versions") => readdirSync(join(dir, `${table}.lance`, sub)).map((f) => join(dir, `${table}.lance`, sub, f));

describe("damaged stores", () => {
  it("names a table whose data file is gone, keeps the rest usable, and repair rebuilds derived tables", async () => {
    const events = randomEvents({ seed: 5, users: 20, events: 800, clusters: 8, days: 20 });
    const { dir, store } = await filledStore(events);
    const q = { asOf: T0 + 30 * DAY_MS, windowMs: 30 * DAY_MS, n: 3, minSupport: 1 };
    const before = await store.successors([2, 3], q);
    const userBefore = await store.userState("u1");
    await store.close();

    for (const f of filesOf(dir, "transitions", "data")) rmSync(f);
    const damaged = await openStore(dir, { readConsistencyMs: 0 });
    cleanups.push(() => damaged.close());
    const err = await damaged.successors([2, 3], q).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreDerivedMissingError);
    expect((err as StoreDerivedMissingError).table).toBe("transitions");
    expect((err as StoreDerivedMissingError).code).toBe("store-derived-missing");
    expect((err as Error).message).toContain(`table 'transitions' is missing`);
    expect((err as Error).message).toContain(`freshrec store repair --store ${dir}`);
    expect(await damaged.userState("u1")).toEqual(userBefore);
    expect((await damaged.clusters()).length).toBe(8);

    expect((await damaged.repair()).rebuilt).toContain("transitions");
    expect(await damaged.successors([2, 3], q)).toEqual(before);
    expect(await damaged.userState("u1")).toEqual(userBefore);
    expect(await damaged.ingest(events)).toEqual({ accepted: 0, duplicates: events.length });
  });

  it("names a table whose latest manifest is truncated", async () => {
    const { dir, store } = await filledStore([]);
    await store.putPredictionTable({ id: "t", meta: {}, rows: [{ key: "1,2", clusters: [3], probs: [1] }] });
    await store.close();
    const manifests = filesOf(dir, "prediction_tables", "_versions").filter((f) => f.endsWith(".manifest")).sort();
    for (const m of manifests) truncateSync(m, 10);
    const damaged = await openStore(dir, { readConsistencyMs: 0 });
    cleanups.push(() => damaged.close());
    await expect(damaged.predictionTable("t")).rejects.toThrow(/table 'prediction_tables' is unreadable \(.*sufficient data.*\).*run a table refresh/);
    expect(await damaged.version()).toBe(0);
    expect(await damaged.itemClusters(["i3_0"])).toEqual(new Map([["i3_0", 3]]));
  });

  it("refuses a store written with another schema version or history length", async () => {
    const { dir, store } = await filledStore([]);
    await store.close();
    await expect(openStore(dir, { k: 3 })).rejects.toThrow(/history length k=2, not k=3/);
    const db = await lancedb.connect(dir);
    await (await db.openTable("meta")).update({ where: "key = 'schema_version'", values: { value: "99" } });
    db.close();
    const err = await openStore(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IncompatibleStoreError);
    expect((err as Error).message).toMatch(/schema version 99 and this freshrec reads version 1/);
  });
});

describe("maintenance", () => {
  it("keeps fragments and versions bounded under many small batches", async () => {
    const { store } = await filledStore([]);
    const events = randomEvents({ seed: 6, users: 30, events: 1200, clusters: 8, days: 20 });
    const sizes: Array<{ fragments: number; versions: number }> = [];
    for (let round = 0; round < 3; round++) {
      for (let b = 0; b < 25; b++) {
        const at = (round * 25 + b) * 10;
        await store.ingest(events.slice(at, at + 10));
      }
      const r = await store.maintain({ olderThanMs: 0 });
      sizes.push({ fragments: r.fragments, versions: r.versions });
    }
    // the same after 25, 50 and 75 batches: at most two fragments and two versions per table (9 tables)
    // (without maintenance each batch adds a fragment and a version to four tables: 300 after 75 batches)
    for (const s of sizes) expect(s.fragments <= 18 && s.versions <= 18, JSON.stringify(sizes)).toBe(true);
    const all = await store.transitions({ start: 0, end: Number.MAX_SAFE_INTEGER });
    expect(all.length).toBeGreaterThan(100);
    expect(await store.version()).toBe(75);
  }, 30_000);
});

describe("scheduled maintenance", () => {
  it("compacts a writer's small batches on its schedule, reports each run, and goes on after a failed run", async () => {
    const { dir, store } = await filledStore([]);
    const events = randomEvents({ seed: 7, users: 30, events: 400, clusters: 8, days: 20 });
    for (let b = 0; b < 40; b++) await store.ingest(events.slice(b * 10, (b + 1) * 10));
    const results: Array<{ fragments: number; versions: number }> = [];
    const errors: unknown[] = [];
    let ran!: () => void;
    const twice = new Promise<void>((r) => (ran = r));
    const folds = join(dir, "folds.lance");
    renameSync(folds, `${folds}.away`); // the first run fails on it; put back once it did
    const schedule = store.startMaintenance(20, {
      olderThanMs: 0,
      onError: (err) => {
        errors.push(err);
        renameSync(`${folds}.away`, folds);
      },
      onResult: (r) => {
        results.push(r);
        if (results.length === 2) ran();
      },
    });
    await twice;
    schedule.stop();
    expect(errors).toEqual([expect.any(StoreDerivedMissingError)]);
    // 40 batches left ~160 fragments and versions; every run leaves at most two per table
    for (const r of results) expect(r.fragments <= 18 && r.versions <= 18, JSON.stringify(results)).toBe(true);
  }, 30_000);
});

describe("one writer, reader processes", () => {
  it("readers see every committed batch eventually and never fail", async () => {
    const { dir, store } = await filledStore([]);
    const batches = 12;
    const events = randomEvents({ seed: 8, users: 10, events: batches * 100, clusters: 8, days: 30 });
    const child = fileURLToPath(new URL("./fixtures/reader-child.ts", import.meta.url));
    const lines: Array<{ version?: number; support?: number; error?: string }> = [];
    const reader = spawn(process.execPath, ["--import", tsxLoader, child, dir, String(batches)], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise<number | null>((resolve) => reader.on("exit", resolve));
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    let buffer = "";
    reader.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      for (const p of parts) (p === "ready" ? ready() : lines.push(JSON.parse(p)));
    });
    await isReady;
    for (let b = 0; b < batches; b++) {
      await store.ingest(events.slice(b * 100, (b + 1) * 100));
      if (b % 4 === 3) await store.maintain();
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(await exited).toBe(0);
    expect(lines.filter((l) => l.error)).toEqual([]);
    const versions = lines.map((l) => l.version!);
    expect(versions.at(-1)).toBe(batches);
    expect(versions).toEqual([...versions].sort((a, b) => a - b)); // never goes back
    const supports = lines.map((l) => l.support!);
    expect(supports).toEqual([...supports].sort((a, b) => a - b));
    const final = await store.successors([0, 1], { asOf: Number.MAX_SAFE_INTEGER / 2, windowMs: Number.MAX_SAFE_INTEGER / 2, n: 3, minSupport: 1 });
    expect(supports.at(-1)).toBeLessThanOrEqual(final.support);
  }, 40_000);
});
