import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { mulberry32 } from "@freshrec/core";
import { openStore, TABLE } from "../src/index.js";
import { lancedb } from "../src/lance.js";
import { CRASH_DATA, circleClusters, itemsFor, randomEvents, tempStoreDir } from "./helpers.js";

const child = fileURLToPath(new URL("./fixtures/import-child.ts", import.meta.url));
// tsx as a loader in this very process: `tsx cli` would fork a grandchild that SIGKILL does not reach.
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm")).href;

/** Runs the importing child; kills it with SIGKILL after `killAfterAcks` acks plus `extraMs` (never, when undefined). Returns the acks seen. */
function runChild(dir: string, kill?: { afterAcks: number; extraMs: number }): Promise<{ acks: number; done: boolean }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", tsxLoader, child, dir], { stdio: ["ignore", "pipe", "pipe"] });
    let acks = 0;
    let done = false;
    let stderr = "";
    const maybeKill = () => {
      if (kill && acks >= kill.afterAcks) setTimeout(() => p.kill("SIGKILL"), kill.extraMs);
    };
    maybeKill();
    p.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      for (const line of chunk.split("\n")) {
        if (line.startsWith("ack ")) {
          acks++;
          if (kill && acks === kill.afterAcks) maybeKill();
        }
        if (line === "done") done = true;
      }
    });
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.on("exit", (code, signal) => {
      if (signal === "SIGKILL" || code === 0) resolve({ acks, done });
      else reject(new Error(`import child exited with ${code}: ${stderr}`));
    });
  });
}

/** Everything a store holds about events, in a canonical order. */
async function contents(dir: string) {
  const db = await lancedb.connect(dir);
  const rows = async (name: string, sortKey: (r: Record<string, unknown>) => string) =>
    (await (await db.openTable(name)).query().toArray()).map((r) => ({ ...r })).sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
  const store = await openStore(dir, { readConsistencyMs: 0 });
  const users = Array.from({ length: CRASH_DATA.users }, (_, u) => `u${u}`);
  const result = {
    events: await rows(TABLE.events, (r) => String(r.eventId)),
    transitions: await store.transitions({ start: 0, end: Number.MAX_SAFE_INTEGER }),
    userStates: await Promise.all(users.map((u) => store.userState(u))),
    version: await store.version(),
  };
  await store.close();
  db.close();
  return result;
}

describe("crash safety", () => {
  it("re-running an import killed with SIGKILL at random points gives exactly a clean import", async () => {
    const clean = tempStoreDir();
    const crashed = tempStoreDir();
    try {
      const store = await openStore(clean.dir, { k: 2, readConsistencyMs: 0 });
      await store.putClusters(circleClusters(CRASH_DATA.clusters));
      await store.putItems(itemsFor(CRASH_DATA.clusters, 3));
      const events = randomEvents(CRASH_DATA);
      for (let b = 0; b * CRASH_DATA.batch < events.length; b++) await store.ingest(events.slice(b * CRASH_DATA.batch, (b + 1) * CRASH_DATA.batch));
      await store.close();
      const expected = await contents(clean.dir);
      expect(expected.events.length).toBe(CRASH_DATA.events);
      expect(expected.transitions.length).toBeGreaterThan(100);

      const batches = Math.ceil(CRASH_DATA.events / CRASH_DATA.batch);
      const rng = mulberry32(20240601);
      // Kill points: after a random number of acknowledged batches plus a random delay. Keep killing
      // (at most 6 times) until a kill landed inside a batch, between its events append and its commit.
      let acked = 0;
      let insideBatch = 0;
      for (let round = 0; round < 6 && insideBatch < 1; round++) {
        const { acks, done } = await runChild(crashed.dir, { afterAcks: Math.floor(rng() * batches * 0.8), extraMs: Math.floor(rng() * 25) });
        acked = Math.max(acked, acks);
        const afterKill = await contents(crashed.dir);
        // every acknowledged batch is durable: its events are in the store right after the kill
        const stored = new Set(afterKill.events.map((e) => String(e.eventId)));
        expect(events.slice(0, acked * CRASH_DATA.batch).every((e) => stored.has(e.eventId))).toBe(true);
        expect(stored.size).toBe(afterKill.events.length); // no duplicates, ever
        if (afterKill.events.length > afterKill.version * CRASH_DATA.batch) insideBatch++;
        if (done) break;
      }
      const final = await runChild(crashed.dir);
      expect(final.done).toBe(true);
      expect(await contents(crashed.dir)).toEqual(expected);
    } finally {
      clean.cleanup();
      crashed.cleanup();
    }
  }, 90_000);
});
