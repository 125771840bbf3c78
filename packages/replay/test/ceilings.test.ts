import { describe, expect, it } from "vitest";
import { bootstrapPairedCI, createSyntheticWorld, DAY_MS, type Transition } from "@freshrec/core";
import { HindsightTablePredictor, OraclePredictor, pairedFigures } from "../src/ceilings.js";
import { Scoreboard } from "../src/scoreboard.js";

describe("ceilings of a replay", () => {
  it("the oracle ranks by the world's true P_t(next | history) at the time it was advanced to, history excluded", async () => {
    const world = createSyntheticWorld("tiny");
    const oracle = new OraclePredictor(world);
    const history = [3, 5];
    for (const day of [1, 20]) {
      const t = world.startMs + day * DAY_MS;
      await oracle.advanceTo(t);
      const list = await oracle.predict(history, 5);
      const p = world.groundTruth(history, t);
      expect(list).toHaveLength(5);
      expect(list).not.toContain(3);
      expect(list).not.toContain(5);
      for (let i = 1; i < list.length; i++) expect(p[list[i - 1]!]!).toBeGreaterThanOrEqual(p[list[i]!]!);
      const best = Math.max(...Array.from(p));
      expect(p[list[0]!]).toBe(best);
    }
  });

  it("the hindsight table answers each key's most frequent successor of the test period itself", async () => {
    const tr = (history: number[], next: number): Transition => ({ history, next, ts: 0 });
    const h = new HindsightTablePredictor([tr([1, 2], 3), tr([1, 2], 4), tr([1, 2], 4), tr([5, 6], 7)]);
    expect(await h.predict([1, 2], 2)).toEqual([4, 3]);
    // An unseen key falls back to the period's popularity, history excluded.
    expect(await h.predict([4, 9], 2)).toEqual([3, 7]);
  });

  it("paired figures: a share is the ratio of hit rates and a difference their gap, with CIs around them", () => {
    const a = new Scoreboard("a");
    const b = new Scoreboard("b");
    for (let i = 0; i < 200; i++) {
      a.record(i, [i % 4 === 0 ? 1 : 2, 3], 1); // hit@1 on a quarter
      b.record(i, [i % 2 === 0 ? 1 : 2, 3], 1); // hit@1 on half
    }
    const share = pairedFigures(a, b, "ratio", 1);
    expect(share["hit@1"].value).toBeCloseTo(0.5, 12);
    expect(share["hit@1"].ci[0]).toBeLessThan(0.5);
    expect(share["hit@1"].ci[1]).toBeGreaterThan(0.5);
    expect(share["hit@10"].value).toBeCloseTo(0.5, 12); // the lists hold 1 only where it is first
    const diff = pairedFigures(a, b, "diff", 1);
    expect(diff["hit@1"].value).toBeCloseTo(-0.25, 12);
    // Every a-hit is also a b-hit here (i % 4 == 0 implies i % 2 == 0): the paired difference is never positive.
    expect(diff["hit@1"].ci[1]).toBeLessThanOrEqual(0);
  });

  it("the paired bootstrap refuses series of different lengths and gives a zero-width CI for identical ones", () => {
    expect(() => bootstrapPairedCI([1, 0], [1], "diff", { seed: 1 })).toThrow(/2 values against 1/);
    const same = bootstrapPairedCI([1, 0, 1, 1], [1, 0, 1, 1], "diff", { seed: 1 });
    expect([same.mean, same.lo, same.hi]).toEqual([0, 0, 0]);
  });
});
