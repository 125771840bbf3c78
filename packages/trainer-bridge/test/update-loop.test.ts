import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DAY_MS } from "@freshrec/core";
import { openStore } from "@freshrec/retriever";
import { openRegistry } from "@freshrec/registry";
import { DecisionLogLineSchema, SchedulerConfigSchema, UpdateLoop, inProcessRunner, loopStateFile, type UpdateLoopOptions } from "../src/index.js";
import { tinyContext, tinyWorldStore } from "./loop-fixtures.js";

const quiet = { info() {}, warn() {}, error() {} };

describe("UpdateLoop (real jobs on the tiny world)", () => {
  it("catches up after downtime with one refresh, retries a failed job with backoff while keeping its schedule, and resumes its state after a restart", { timeout: 300_000 }, async () => {
    const { store, startMs, dir } = await tinyWorldStore();
    const clock = { t: startMs + 10 * DAY_MS, now: () => clock.t };
    const ctx = tinyContext(store, dir, clock.t);
    const options: UpdateLoopOptions = {
      store,
      registry: ctx.registry,
      scheduler: SchedulerConfigSchema.parse({ strategy: "hybrid", refreshEveryDays: 2, finetuneEveryDays: 100 }),
      clock,
      jobContext: (asOf) => ({ ...ctx, asOf }),
      runner: inProcessRunner,
      driftEveryMs: DAY_MS,
      readDrift: "always",
      onFailure: "retry",
      retry: { baseMs: 200, maxMs: 1000 },
      stateFile: loopStateFile(ctx.registry.dir),
      log: quiet,
    };
    const loop = new UpdateLoop(options);
    expect(loop.status().phase).toBe("waiting-for-data");
    const boot = await loop.step();
    expect(boot.decisions.map((d) => d.action)).toEqual(["bootstrap"]);
    expect(loop.status()).toMatchObject({ phase: "idle", state: { bootstrappedAt: clock.t } });

    // Ten days of downtime with a 2-day cadence: one refresh, not five.
    clock.t += 10 * DAY_MS;
    const caught = await loop.step();
    expect(caught.decisions.map((d) => d.action)).toEqual(["refresh"]);
    expect(caught.artefacts[0]!.artefacts[0]!.kind).toBe("table");
    expect((await loop.step()).decisions).toEqual([]);
    const refreshedAt = clock.t;

    // A real fault: the active base file is gone. The refresh fails, the schedule stays due, retries back off.
    const base = ctx.registry.get(ctx.registry.active().base!);
    renameSync(base.path!, `${base.path}.away`);
    clock.t += 2 * DAY_MS;
    expect((await loop.step()).decisions).toEqual([]);
    const failed = loop.status();
    expect(failed.failure).toMatchObject({ action: "refresh", consecutive: 1 });
    expect(failed.state.lastRefresh).toBe(refreshedAt);
    expect(await loop.step()).toMatchObject({ skipped: "backoff" });
    await new Promise((r) => setTimeout(r, 250));
    expect((await loop.step()).decisions).toEqual([]);
    expect(loop.status().failure).toMatchObject({ consecutive: 2 });
    renameSync(`${base.path}.away`, base.path!);
    await new Promise((r) => setTimeout(r, 450));
    const recovered = await loop.step();
    expect(recovered.decisions.map((d) => d.action)).toEqual(["refresh"]);
    expect(loop.status().failure).toBeUndefined();
    expect(loop.status().state.lastRefresh).toBe(clock.t);

    // Every decision is logged with its outcome, in one schema.
    const lines = readFileSync(join(ctx.registry.dir, "scheduler.jsonl"), "utf8").trim().split("\n").map((l) => DecisionLogLineSchema.parse(JSON.parse(l)));
    expect(lines.map((l) => `${l.action}:${l.outcome}`)).toEqual(["bootstrap:done", "refresh:done", "refresh:failed", "refresh:failed", "refresh:done"]);
    expect(lines[2]!.error).toMatch(/base|model|file/i);

    // A restart reads the saved schedule: nothing is due yet.
    const again = new UpdateLoop(options);
    expect(again.status().state).toEqual(loop.status().state);
    expect((await again.step()).decisions).toEqual([]);
    await store.close();
  });

  it("waits for enough transitions and anchors its windows at the newest event when the data is older than the wall clock", async () => {
    const { store, dir, endMs } = await tinyWorldStore();
    const ctx = tinyContext(store, dir, endMs);
    const options: UpdateLoopOptions = {
      store,
      registry: ctx.registry,
      scheduler: SchedulerConfigSchema.parse({}),
      clock: { now: () => Date.now() },
      jobContext: (asOf) => ({ ...ctx, asOf }),
      runner: inProcessRunner,
      driftEveryMs: DAY_MS,
      anchor: "data",
      minTransitions: 1_000_000,
      log: quiet,
    };
    const loop = new UpdateLoop(options);
    expect(await loop.step()).toMatchObject({ skipped: "waiting-for-data" });
    const status = loop.status();
    expect(status.transitions!.need).toBe(1_000_000);
    expect(status.transitions!.have).toBeGreaterThan(100);
    expect(status.anchor).toMatchObject({ mode: "newest-event", reason: expect.stringMatching(/older than/) });
    expect(status.anchor!.asOf).toBe((await store.timeRange())!.max + 1);

    // An empty store has nothing to anchor at.
    const empty = await openStore(join(mkdtempSync(join(tmpdir(), "loop-empty-")), "store"));
    const idle = new UpdateLoop({ ...options, store: empty, registry: openRegistry(join(dir, "models-empty")) });
    expect(await idle.step()).toMatchObject({ skipped: "waiting-for-data", asOf: null });
    expect(idle.status().transitions).toEqual({ have: 0, need: 1_000_000 });
    await empty.close();
    await store.close();
  });
});
