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

  it("relabelled copies map history, RAG slots and target through one permutation of the cluster ids", async () => {
    const set = await buildTrainingSet({ transitions: all, window, rag: rollingRagSource(all, { windowMs: 5 * DAY_MS, n: 3 }), layout, config: { relabelCopies: 1, valFraction: 0 } });
    const copies = set.train.filter((e) => e.relabelled);
    expect(copies.length).toBe(set.manifest.counts.relabelled);
    expect(copies.length).toBe(set.train.filter((e) => !e.relabelled && e.rag?.length).length);
    for (const e of copies) {
      const ids = [...e.history, ...e.rag!];
      expect(new Set(e.history).size).toBe(e.history.length);
      expect(e.history.includes(e.next)).toBe(false);
      expect(ids.every((c) => c >= 0 && c < layout.nClusters)).toBe(true);
    }
    // Some copy is not its original: the ids really move.
    const originals = new Set(set.train.filter((e) => !e.relabelled).map((e) => `${e.ts}|${e.history}|${e.next}`));
    expect(copies.some((e) => !originals.has(`${e.ts}|${e.history}|${e.next}`))).toBe(true);
  });

  it("never uses the example's own or future transitions for its RAG slots", async () => {
    // Only one transition for key 5,6 exists; its own example must see no successors.
    const lone: Transition[] = [{ history: [5, 6], next: 7, ts: window.start + DAY_MS }];
    const set = await buildTrainingSet({ transitions: lone, window, rag: rollingRagSource(lone, { windowMs: 5 * DAY_MS, n: 3 }), layout, config: { ragDropout: 0, relabelCopies: 0, holdoutDays: 1, minHoldoutTransitions: 0 } });
    expect(set.train).toEqual([{ history: [5, 6], next: 7, ts: window.start + DAY_MS, rag: [] }]);
  });

  it("caps pairs and keys, holds out the last days in time order, adds no-RAG copies for a share, splits val, and is reproducible", async () => {
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
    const real = [...set.train, ...set.val].filter((e) => e.rag !== null && !e.relabelled);
    const pairs = new Map<string, number>();
    const keys = new Map<string, number>();
    for (const e of real) {
      pairs.set(`${e.history}>${e.next}`, (pairs.get(`${e.history}>${e.next}`) ?? 0) + 1);
      keys.set(historyKey(e.history), (keys.get(historyKey(e.history)) ?? 0) + 1);
    }
    expect(Math.max(...pairs.values())).toBe(30);
    expect(Math.max(...keys.values())).toBeLessThanOrEqual(40);
    expect(m.counts.droppedByPairCap).toBeGreaterThan(0);
    expect(real.length).toBe(m.counts.kept);
    expect(m.counts.kept + m.counts.holdout + m.counts.droppedByPairCap + m.counts.droppedByKeyCap).toBe(m.counts.inWindow);
    expect(m.counts.train + m.counts.val).toBe(m.counts.kept + m.counts.ragDropped + m.counts.relabelled);
    expect(Math.max(...set.train.map((e) => e.ts))).toBeLessThan(m.holdoutStart);
    expect(Math.min(...set.holdout.map((e) => e.ts))).toBeGreaterThanOrEqual(m.holdoutStart);
    expect(m.holdoutStart).toBe(window.end - 3 * DAY_MS);
    expect(set.holdout.every((e) => e.rag !== null && !e.relabelled)).toBe(true);
    // No-RAG copies: a share of the real examples appears a second time with empty slots.
    const share = m.counts.ragDropped / m.counts.kept;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.35);
    // Val holds real traffic only, never a transition that is also trained on.
    expect(m.counts.val).toBeGreaterThan(0);
    expect(set.val.some((e) => e.relabelled)).toBe(false);
    const trainIds = new Set(set.train.filter((e) => !e.relabelled).map((e) => `${e.ts}|${e.history}|${e.next}`));
    expect(set.val.filter((e) => trainIds.has(`${e.ts}|${e.history}|${e.next}`))).toEqual([]);
    expect(m.storeVersion).toBe(12);
    expect(m.id).toMatch(/^ts-[0-9a-f]{12}$/);
    expect((await make(1)).manifest.id).toBe(m.id);
    expect((await make(2)).manifest.id).not.toBe(m.id);
  });
});
