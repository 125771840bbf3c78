import { describe, expect, it } from "vitest";
import { blendWithRag, fitBlend, type BlendCase, type ClusterScore } from "../src/index.js";

const dist = (...ps: Array<[number, number]>): ClusterScore[] => ps.map(([clusterId, p]) => ({ clusterId, p }));

describe("blendWithRag", () => {
  const model = dist([3, 0.5], [4, 0.3], [5, 0.2]);
  const rag = { items: [{ clusterId: 5, count: 6 }, { clusterId: 4, count: 4 }], support: 10 };

  it("keeps the model's ranking at lambda 0 and without evidence", () => {
    expect(blendWithRag(model, rag, 0)).toEqual(model);
    expect(blendWithRag(model, undefined, 0.7)).toEqual(model);
    expect(blendWithRag(model, { items: [], support: 0 }, 0.7)).toEqual(model);
  });

  it("mixes the counts in linearly and re-sorts", () => {
    const out = blendWithRag(model, rag, 0.5);
    expect(out.map((s) => s.clusterId)).toEqual([5, 4, 3]);
    expect(out[0]!.p).toBeCloseTo(0.5 * 0.2 + 0.5 * 0.6);
    expect(out[2]!.p).toBeCloseTo(0.25);
    expect(out.reduce((a, s) => a + s.p, 0)).toBeCloseTo(1);
  });

  it("ranks by counts at lambda 1, the model ordering the clusters retrieval never saw", () => {
    const out = blendWithRag(dist([1, 0.1], [2, 0.6], [3, 0.3]), { items: [{ clusterId: 1, count: 3 }], support: 3 }, 1);
    expect(out.map((s) => s.clusterId)).toEqual([1, 2, 3]);
  });

  it("never brings back a cluster the model's distribution excluded (the history)", () => {
    const out = blendWithRag(dist([2, 0.6], [3, 0.4]), { items: [{ clusterId: 7, count: 9 }], support: 9 }, 0.9);
    expect(out.map((s) => s.clusterId)).toEqual([2, 3]);
  });
});

describe("fitBlend", () => {
  // The model always prefers cluster 1; retrieval knows the right answer in `right` of the cases.
  const cases = (right: number, n = 100): BlendCase[] =>
    Array.from({ length: n }, (_, i) => {
      const truth = i < right ? 2 : 1;
      return { dist: dist([1, 0.7], [2, 0.2], [3, 0.1]), rag: { items: [{ clusterId: 2, count: 5 }], support: 5 }, next: truth };
    });

  it("trusts retrieval when it is right more often than the model", () => {
    const fit = fitBlend(cases(80));
    // (1 - l) 0.7 < (1 - l) 0.2 + l from l > 1/3 on: the smallest such weight of the grid.
    expect(fit.lambda).toBe(0.4);
    expect(fit.grid.find((g) => g.lambda === fit.lambda)!.hit1).toBeCloseTo(0.8);
    expect(fit.cases).toBe(100);
  });

  it("keeps the model alone when retrieval misleads it", () => {
    const fit = fitBlend(cases(20));
    expect(fit.lambda).toBe(0);
    expect(fit.grid[0]!.hit1).toBeCloseTo(0.8);
  });

  it("prefers the smaller weight among equals", () => {
    const tied = fitBlend(cases(50), [0.9, 0.6, 0.3]);
    expect(tied.grid.map((g) => g.hit1)).toEqual([0.5, 0.5, 0.5]);
    expect(tied.lambda).toBe(0.3);
    expect(fitBlend(cases(0), [0, 0.2, 0.4]).lambda).toBe(0);
  });
});
