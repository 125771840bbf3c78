import { describe, expect, it } from "vitest";
import { DAY_MS, mulberry32, type Transition } from "@freshrec/core";
import { MarkovBaseline, PopularityBaseline, RecentSuccessorsBaseline } from "../src/baselines.js";
import { walk } from "../src/walk.js";
import type { Predictor } from "../src/predictor.js";

const tr = (history: number[], next: number, day: number): Transition => ({ history, next, ts: day * DAY_MS });

describe("model-free baselines", () => {
  it("recent successors forget what left the window while markov keeps the whole history", async () => {
    const recent = new RecentSuccessorsBaseline(10 * DAY_MS);
    const markov = new MarkovBaseline();
    // Old regime (days 0-4): 1,2 -> 3. New regime (days 20-21): 1,2 -> 4.
    const old = [0, 1, 2, 3, 4].map((d) => tr([1, 2], 3, d));
    const fresh = [20, 21].map((d) => tr([1, 2], 4, d));
    for (const t of [...old, ...fresh]) {
      recent.observe(t);
      markov.observe(t);
    }
    await recent.advanceTo(25 * DAY_MS);
    await markov.advanceTo(25 * DAY_MS);
    expect((await recent.predict([1, 2], 3))[0]).toBe(4);
    expect((await markov.predict([1, 2], 3))[0]).toBe(3);
  });

  it("never recommends a cluster of the history and pads short lists with popular clusters", async () => {
    const pop = new PopularityBaseline(30 * DAY_MS);
    const recent = new RecentSuccessorsBaseline(30 * DAY_MS);
    for (const t of [tr([1, 2], 3, 1), tr([5, 6], 1, 1), tr([5, 6], 1, 2), tr([7, 8], 9, 2)]) {
      pop.observe(t);
      recent.observe(t);
    }
    await pop.advanceTo(3 * DAY_MS);
    await recent.advanceTo(3 * DAY_MS);
    expect(await pop.predict([1, 2], 5)).toEqual([3, 9]);
    // Key 1,2 has one successor (3); the rest comes from popularity, without history clusters.
    expect(await recent.predict([1, 2], 5)).toEqual([3, 9]);
    expect(await recent.predict([3, 4], 5)).toEqual([1, 9]);
  });
});

describe("walk", () => {
  it("predicts each transition from the past only: a predictor that peeks at observed data never scores its own transition", async () => {
    const seen: Transition[] = [];
    // An oracle of the past: predicts the next cluster of the last observed transition with the same key.
    const pastOracle: Predictor = {
      name: "past-oracle",
      kind: "baseline",
      advanceTo: async () => undefined,
      predict: async (h) => {
        const last = [...seen].reverse().find((t) => t.history.join() === h.join());
        return last ? [last.next] : [];
      },
      observe: (t) => void seen.push(t),
      cost: () => ({ trainCpuS: 0, examplesTrained: 0, refreshS: 0, finetunes: 0, refreshes: 0 }),
    };
    const rnd = mulberry32(7);
    const trs: Transition[] = [];
    for (let i = 0; i < 400; i++) trs.push(tr([1, 2], Math.floor(rnd() * 1000) + 3, Math.floor(i / 4)));
    const boards = await walk({ transitions: trs, testStart: 10 * DAY_MS, predictors: [pastOracle] });
    const outcomes = boards.get("past-oracle")!.outcomes;
    expect(outcomes.length).toBe(trs.filter((t) => t.ts >= 10 * DAY_MS).length);
    // Random successors from 1000 choices: a predictor limited to the past almost never hits; one that saw the answer always would.
    expect(outcomes.filter((o) => o.rank === 1).length).toBeLessThan(10);
  });

  it("recent successors beat markov after a regime change, and both are deterministic", async () => {
    const make = () => {
      const rnd = mulberry32(3);
      const trs: Transition[] = [];
      for (let d = 0; d < 120; d++)
        for (let u = 0; u < 20; u++) {
          const a = Math.floor(rnd() * 5);
          const next = d < 90 ? (a + 1) % 10 : (a + 5) % 10; // the successor of each key changes on day 90
          trs.push({ history: [a + 10, a + 20], next: rnd() < 0.8 ? next : Math.floor(rnd() * 10), ts: d * DAY_MS + u });
        }
      return trs;
    };
    const run = async () => {
      const boards = await walk({ transitions: make(), testStart: 90 * DAY_MS, predictors: [new RecentSuccessorsBaseline(7 * DAY_MS), new MarkovBaseline()] });
      return [...boards.values()].map((b) => b.outcomes.filter((o) => o.rank === 1).length);
    };
    const [recent, markov] = await run();
    expect(recent!).toBeGreaterThan(markov! * 2);
    expect(await run()).toEqual([recent, markov]);
  });
});
