import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DAY_MS, mulberry32, type Cluster } from "@freshrec/core";
import type { IngestEvent } from "../src/index.js";

export const T0 = Date.UTC(2024, 0, 1);

/** A fresh store directory, removed by the returned cleanup. */
export function tempStoreDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-store-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** C clusters with 4-d centroids on a circle, so neighbouring ids are near. */
export function circleClusters(c: number): Cluster[] {
  return Array.from({ length: c }, (_, id) => ({
    id,
    keywords: [`topic${id}`],
    centroid: [Math.cos((2 * Math.PI * id) / c), Math.sin((2 * Math.PI * id) / c), 0.1 * (id % 3), 1],
  }));
}

/** Items i<c>_<j> in cluster c. */
export const itemsFor = (c: number, perCluster: number) =>
  Array.from({ length: c * perCluster }, (_, i) => ({ itemId: `i${i % c}_${Math.floor(i / c)}`, clusterId: i % c }));

/** Seeded random events: users walk mostly to the next cluster (c -> c+1), sometimes anywhere. */
export function randomEvents(opts: { seed: number; users: number; events: number; clusters: number; days: number }): IngestEvent[] {
  const rng = mulberry32(opts.seed);
  const at = new Map<number, number>();
  const out: IngestEvent[] = [];
  for (let i = 0; i < opts.events; i++) {
    const u = Math.floor(rng() * opts.users);
    const prev = at.get(u) ?? Math.floor(rng() * opts.clusters);
    const c = rng() < 0.8 ? (prev + 1) % opts.clusters : Math.floor(rng() * opts.clusters);
    at.set(u, c);
    out.push({
      eventId: `e${i}`,
      userId: `u${u}`,
      itemId: `i${c}_${Math.floor(rng() * 3)}`,
      ts: T0 + Math.floor((i / opts.events) * opts.days * DAY_MS),
      signal: rng() < 0.8 ? 5 : 2,
    });
  }
  return out;
}

/** The data set of the crash test (shared by the test and its child process). */
export const CRASH_DATA = { seed: 11, users: 40, events: 3000, clusters: 8, days: 30, batch: 150 };

/**
 * A tmpfs of `sizeMb` at a fresh directory (a real full disk for tests), or the reason it cannot be had
 * (mounting needs root). `release` unmounts and removes it.
 */
export function smallDisk(sizeMb: number): { dir: string; release(): void } | { skip: string } {
  const dir = mkdtempSync(join(tmpdir(), "freshrec-disk-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m`, "tmpfs", dir], { stdio: "pipe" });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return { skip: `cannot mount a tmpfs to fill (${String((err as Error).message).split("\n")[0]}): run as root to test a full disk` };
  }
  return {
    dir,
    release() {
      execFileSync("umount", [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
