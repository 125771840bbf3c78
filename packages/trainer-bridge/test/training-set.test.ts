import { describe, expect, it } from "vitest";
import { DAY_MS, historyKey, mulberry32, type Transition } from "@freshrec/core";
import { buildTrainingSet, rollingRagSource } from "../src/index.js";

const layout = { k: 2, ragSlots: 3, nClusters: 12 };

/** A seeded stream of transitions over `days`, one popular pair dominating. */
function stream(days: number, seed = 7): Transition[] {
  const rng = mulberry32(seed);
  const out: Transition[] = [];
  for (let t = 0; t < days * DAY_MS; t += Math.floor(rng() * DAY_MS * 0.05) + 1) {
    const popular = rng() < 0.5;
    const a = popular ? 0 : Math.floor(rng() * 12);
    const b = popular ? 1 : (a + 1 + Math.floor(rng() * 11)) % 12;
    let next = popular ? 2 : Math.floor(rng() * 12);
    while (next === a || next === b) next = (next + 1) % 12;
    out.push({ userId: `u${Math.floor(rng() * 50)}`, history: [a, b], next, ts: t });
  }
  return out;
}

describe("training sets", () => {
  const all = stream(30);
  const window = { start: 10 * DAY_MS, end: 30 * DAY_MS };

  it("the rolling RAG source refuses to go back in time", async () => {
    const rolling = rollingRagSource(all, { windowMs: 5 * DAY_MS, n: 3 });
    await rolling.top([0, 1], DAY_MS);
    await expect(rolling.top([0, 1], 0)).rejects.toThrow(/went back in time/);
  });

  it("never uses the example's own or future transitions for its RAG slots", async () => {
    // Only one transition for key 5,6 exists; its own example must see no successors.
    const lone: Transition[] = [{ history: [5, 6], next: 7, ts: window.start + DAY_MS }];
    const set = await buildTrainingSet({ transitions: lone, window, rag: rollingRagSource(lone, { windowMs: 5 * DAY_MS, n: 3 }), layout, config: { ragDropout: 0, holdoutDays: 1 } });
    expect(set.train).toEqual([{ history: [5, 6], next: 7, ts: window.start + DAY_MS, rag: [] }]);
  });

  it("caps pairs and keys, holds out the last days in time order, drops RAG for a share, and is reproducible", async () => {
    const make = (seed: number) =>
      buildTrainingSet({
        transitions: all,
        window,
        rag: rollingRagSource(all, { windowMs: 5 * DAY_MS, n: 3 }),
        layout,
        config: { perPairCap: 30, perKeyCap: 40, ragDropout: 0.25, holdoutDays: 3, seed },
        storeVersion: 12,
      });
    const set = await make(1);
    const m = set.manifest;
    const pairs = new Map<string, number>();
    const keys = new Map<string, number>();
    for (const e of set.train) {
      pairs.set(`${e.history}>${e.next}`, (pairs.get(`${e.history}>${e.next}`) ?? 0) + 1);
      keys.set(historyKey(e.history), (keys.get(historyKey(e.history)) ?? 0) + 1);
    }
    expect(Math.max(...pairs.values())).toBe(30);
    expect(Math.max(...keys.values())).toBeLessThanOrEqual(40);
    expect(m.counts.droppedByPairCap).toBeGreaterThan(0);
    expect(m.counts.train + m.counts.holdout + m.counts.droppedByPairCap + m.counts.droppedByKeyCap).toBe(m.counts.inWindow);
    expect(Math.max(...set.train.map((e) => e.ts))).toBeLessThan(m.holdoutStart);
    expect(Math.min(...set.holdout.map((e) => e.ts))).toBeGreaterThanOrEqual(m.holdoutStart);
    expect(m.holdoutStart).toBe(window.end - 3 * DAY_MS);
    expect(set.holdout.every((e) => e.rag !== null)).toBe(true);
    const share = set.train.filter((e) => e.rag === null).length / set.train.length;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.35);
    expect(m.storeVersion).toBe(12);
    expect(m.id).toMatch(/^ts-[0-9a-f]{12}$/);
    expect((await make(1)).manifest.id).toBe(m.id);
    expect((await make(2)).manifest.id).not.toBe(m.id);
  });
});
