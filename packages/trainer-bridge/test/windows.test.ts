import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS, type Transition } from "@freshrec/core";
import type { Store } from "@freshrec/retriever";
import { bootstrapWindow, buildTrainingSet, DataTooThinError, finetuneWindow, rollingRagSource, tableHoldoutStart } from "../src/index.js";
import { tinyContext, tinyWorldStore } from "./loop-fixtures.js";

describe("training windows sized by the data", () => {
  let store: Store;
  let dir = "";
  let startMs = 0;
  let endMs = 0;
  beforeAll(async () => {
    ({ store, dir, startMs, endMs } = await tinyWorldStore());
  }, 120_000);
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const count = async (w: { start: number; end: number }) => (await store.transitions(w)).length;

  it("keeps the configured days when they hold enough transitions", async () => {
    const ctx = tinyContext(store, dir, endMs, { bootstrapDays: 20, finetuneDays: 20, minWindowTransitions: 100 });
    const b = await bootstrapWindow(ctx);
    const range = (await store.timeRange())!;
    expect(b).toEqual({ start: range.min, end: range.min + 20 * DAY_MS });
    expect(await finetuneWindow(ctx)).toEqual({ start: endMs - 20 * DAY_MS, end: endMs });
  });

  it("widens a thin window away from its anchor until it holds the minimum, and says so", async () => {
    const ctx = tinyContext(store, dir, endMs, { bootstrapDays: 1, finetuneDays: 1, minWindowTransitions: 600 });
    const range = (await store.timeRange())!;
    expect(await count({ start: range.min, end: range.min + DAY_MS })).toBeLessThan(600);
    const b = await bootstrapWindow(ctx);
    expect(b.start).toBe(range.min);
    expect(b.end).toBeGreaterThan(range.min + DAY_MS);
    expect(await count(b)).toBeGreaterThanOrEqual(600);
    // The narrowest such window: one millisecond less and it would hold fewer.
    expect(await count({ start: b.start, end: b.end - 1 })).toBeLessThan(600);
    expect(b.widened).toMatch(/held \d+ positive transitions, fewer than 600: widened to/);
    const f = await finetuneWindow(ctx);
    expect(f.end).toBe(endMs);
    expect(await count(f)).toBeGreaterThanOrEqual(600);
    expect(await count({ start: f.start + 1, end: f.end })).toBeLessThan(600);
  });

  it("a table's holdout reaches back past its days when they hold too few transitions", async () => {
    const ctx = tinyContext(store, dir, endMs);
    const hour = 1 / 24;
    expect(await count({ start: endMs - hour * DAY_MS, end: endMs })).toBeLessThan(150);
    const start = await tableHoldoutStart(ctx, hour, 150);
    expect(await count({ start, end: endMs })).toBeGreaterThanOrEqual(150);
    expect(await count({ start: start + 1, end: endMs })).toBeLessThan(150);
    // Enough in the configured days: they are kept as they are.
    expect(await tableHoldoutStart(ctx, 5, 150)).toBe(endMs - 5 * DAY_MS);
  });

  it("reports data too thin with the numbers when the whole store holds fewer than the minimum", async () => {
    const early = startMs + 3 * DAY_MS;
    const have = await count({ start: (await store.timeRange())!.min, end: early });
    const ctx = tinyContext(store, dir, early, { minWindowTransitions: have + 1 });
    const err = await bootstrapWindow(ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataTooThinError);
    expect((err as DataTooThinError).code).toBe("data-too-thin");
    expect((err as Error).message).toContain(`${have} positive transitions in the store`);
    expect((err as Error).message).toContain(`at least ${have + 1}`);
  });

  it("a holdout whose days are sparse is lengthened to the minimum count (within its share cap)", async () => {
    // 400 transitions over days 0-9, then only 5 in the last three days of the window.
    const trs: Transition[] = [];
    for (let i = 0; i < 400; i++) trs.push({ history: [i % 5, 5 + (i % 3)], next: 8 + (i % 4), ts: Math.floor((i * 9 * DAY_MS) / 400) });
    for (let i = 0; i < 5; i++) trs.push({ history: [0, 5], next: 9, ts: 10 * DAY_MS + i * DAY_MS * 0.5 });
    const build = (minHoldoutTransitions: number) =>
      buildTrainingSet({
        transitions: trs,
        window: { start: 0, end: 13 * DAY_MS },
        rag: rollingRagSource(trs, { windowMs: 5 * DAY_MS, n: 3 }),
        layout: { k: 2, ragSlots: 3, nClusters: 12 },
        config: { holdoutDays: 3, minHoldoutTransitions, maxHoldoutShare: 0.2, relabelCopies: 0 },
      });
    expect((await build(0)).holdout).toHaveLength(5);
    const lengthened = await build(60);
    expect(lengthened.holdout.length).toBeGreaterThanOrEqual(60);
    expect(lengthened.holdout.length).toBeLessThanOrEqual(Math.ceil(0.2 * trs.length) + 1);
  });
});
