import { describe, expect, it } from "vitest";
import { bootstrapCI, bootstrapDiffCI, coverage, hitAtK, mean, mrr, ndcgAtK, novelty, reciprocalRank, variance } from "../src/index.js";

describe("ranking metrics", () => {
  it("hit@k counts a relevant answer only within the top k", () => {
    expect(hitAtK([3, 1, 2], new Set([2]), 2)).toBe(0);
    expect(hitAtK([3, 1, 2], new Set([2]), 3)).toBe(1);
    expect(hitAtK([], [2], 5)).toBe(0);
  });
  it("ndcg@k discounts by log2 of the rank and normalises by the ideal ranking", () => {
    expect(ndcgAtK([5, 7], [5], 2)).toBe(1);
    expect(ndcgAtK([7, 5], [5], 2)).toBeCloseTo(1 / Math.log2(3));
    expect(ndcgAtK([7, 5, 9], [5, 9], 3)).toBeCloseTo((1 / Math.log2(3) + 1 / Math.log2(4)) / (1 + 1 / Math.log2(3)));
    expect(ndcgAtK([7], [], 3)).toBe(0);
  });
  it("mrr averages reciprocal ranks, 0 for a miss", () => {
    expect(reciprocalRank(["a", "b", "c"], ["c"])).toBeCloseTo(1 / 3);
    expect(mrr([{ ranked: [1, 2], relevant: [1] }, { ranked: [1, 2], relevant: [2] }, { ranked: [1, 2], relevant: [3] }])).toBeCloseTo(0.5);
  });
  it("coverage and novelty", () => {
    expect(coverage([1, 1, 2, 3], 10)).toBeCloseTo(0.3);
    // counts 7 and 1 with add-one smoothing over 2 clusters: p = 8/10 and 2/10
    expect(novelty([0], [7, 1])).toBeCloseTo(-Math.log2(0.8));
    expect(novelty([1, 1], [7, 1])).toBeCloseTo(-Math.log2(0.2));
    expect(novelty([1], [7, 1])).toBeGreaterThan(novelty([0], [7, 1]));
  });
  it("mean and population variance", () => {
    expect(mean([1, 2, 3])).toBe(2);
    expect(variance([1, 2, 3])).toBeCloseTo(2 / 3);
    expect(mean([])).toBeNaN();
  });
});

describe("bootstrap", () => {
  const rate = Array.from({ length: 400 }, (_, i) => (i % 10 < 3 ? 1 : 0));
  it("brackets the mean of a rate, is seeded, and narrows with more data", () => {
    const ci = bootstrapCI(rate, { seed: 3 });
    expect(ci.mean).toBeCloseTo(0.3);
    expect(ci.lo).toBeLessThan(0.3);
    expect(ci.hi).toBeGreaterThan(0.3);
    // normal approximation: half-width about 1.96 * sqrt(0.21 / 400) = 0.045
    expect(ci.hi - ci.lo).toBeGreaterThan(0.06);
    expect(ci.hi - ci.lo).toBeLessThan(0.12);
    expect(bootstrapCI(rate, { seed: 3 })).toEqual(ci);
    const bigger = bootstrapCI([...rate, ...rate, ...rate, ...rate], { seed: 3 });
    expect(bigger.hi - bigger.lo).toBeLessThan(ci.hi - ci.lo);
  });
  it("a difference of two rates excludes 0 only when the arms differ", () => {
    const better = rate.map((_, i) => (i % 10 < 5 ? 1 : 0));
    const diff = bootstrapDiffCI(better, rate, { seed: 1 });
    expect(diff.mean).toBeCloseTo(0.2);
    expect(diff.lo).toBeGreaterThan(0);
    const same = bootstrapDiffCI(rate, rate, { seed: 1 });
    expect(same.lo).toBeLessThan(0);
    expect(same.hi).toBeGreaterThan(0);
  });
});
