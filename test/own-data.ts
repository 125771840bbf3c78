/** A team's own data as `freshrec serve` meets it: generic-format files and a config file, written by the test. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import type { ServeProcess } from "./server-process.js";
import { createSyntheticWorld, DAY_MS, type Event } from "@freshrec/core";
import { loopPresetFor } from "@freshrec/trainer-bridge";

const ROOT = join(import.meta.dirname, "..");
const MAIN = join(ROOT, "apps/cli/src/main.ts");
/** Runs the freshrec CLI to completion (stdout returned; a failure throws with its stderr). */
export const cli = (...args: string[]) => execFileSync(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

/** A scratch folder with a store and registry path for one describe block; the server it runs and the folder go after it. */
export function serveScratch(prefix: string): { dir: string; store: string; models: string; serving(s: ServeProcess): ServeProcess } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let server: ServeProcess | undefined;
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);
  return { dir, store: join(dir, "store"), models: join(dir, "models"), serving: (s) => (server = s) };
}

export interface OwnData {
  itemsCsv: string;
  eventsCsv: string;
  /** Every event, time-ordered, as POST /v1/events takes them. */
  events: Event[];
}

/**
 * The tiny world's catalogue and events in the generic CSV format (`packages/core/IMPORT-FORMAT.md`), with
 * timestamps moved so that the newest event is `endAgoMs` before now: data that looks live to a wall-clock loop.
 */
export function writeOwnData(dir: string, endAgoMs: number): OwnData {
  const world = createSyntheticWorld("tiny");
  const raw = [...world.events()];
  const shift = Date.now() - endAgoMs - raw[raw.length - 1]!.ts;
  const events = raw.map((e) => ({ ...e, ts: e.ts + shift }));
  const itemsCsv = join(dir, "items.csv");
  const eventsCsv = join(dir, "events.csv");
  writeFileSync(itemsCsv, `itemId,clusterId\n${world.items.map((i) => `${i.itemId},${i.clusterId}`).join("\n")}\n`);
  writeFileSync(eventsCsv, `eventId,userId,itemId,ts,signal\n${events.map((e) => `${e.eventId},${e.userId},${e.itemId},${e.ts},${e.signal}`).join("\n")}\n`);
  return { itemsCsv, eventsCsv, events };
}

/** The service config file: the tiny world's job settings, and a refresh every `refreshSeconds` of wall time. */
export function writeServiceConfig(dir: string, o: { refreshSeconds: number; minTransitions: number; extra?: Record<string, unknown> }): string {
  const path = join(dir, "freshrec.json");
  const config = {
    scheduler: { strategy: "hybrid", refreshEveryDays: (o.refreshSeconds * 1000) / DAY_MS, finetuneEveryDays: 365 },
    jobs: loopPresetFor("tiny"),
    updateLoop: { tickSeconds: 1, minTransitions: o.minTransitions, driftEverySeconds: 5, retry: { baseSeconds: 2, maxSeconds: 10 } },
    ...o.extra,
  };
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}
