import { describe, expect, it } from "vitest";
import { blendWithRag, defaultBlendGrid, fitBlend, MODEL_ALONE, popularityOf, type BlendCase, type ClusterScore } from "../src/index.js";

const dist = (...ps: Array<[number, number]>): ClusterScore[] => ps.map(([clusterId, p]) => ({ clusterId, p }));
const rag = (rag: number, popularity = 0) => ({ rag, popularity });

describe("blendWithRag", () => {
  const model = dist([3, 0.5], [4, 0.3], [5, 0.2]);
  const evidence = { items: [{ clusterId: 5, count: 6 }, { clusterId: 4, count: 4 }], support: 10 };

  it("keeps the model's ranking with zero weights and without evidence", () => {
    expect(blendWithRag(model, evidence, MODEL_ALONE)).toEqual(model);
    expect(blendWithRag(model, undefined, rag(0.7))).toEqual(model);
    expect(blendWithRag(model, { items: [], support: 0 }, rag(0.7))).toEqual(model);
    expect(blendWithRag(model, evidence, rag(0, 0.5))).toEqual(model); // no popularity vector given
  });

  it("mixes the counts in linearly and re-sorts", () => {
    const out = blendWithRag(model, evidence, rag(0.5));
    expect(out.map((s) => s.clusterId)).toEqual([5, 4, 3]);
    expect(out[0]!.p).toBeCloseTo(0.5 * 0.2 + 0.5 * 0.6);
    expect(out[2]!.p).toBeCloseTo(0.25);
    expect(out.reduce((a, s) => a + s.p, 0)).toBeCloseTo(1);
  });

  it("mixes popularity in as a third component", () => {
    const popularity = [0, 0, 0, 0.1, 0.1, 0.1, 0.7];
    const out = blendWithRag(dist([3, 0.5], [4, 0.3], [6, 0.2]), undefined, rag(0.3, 0.5), popularity);
    expect(out.map((s) => s.clusterId)).toEqual([6, 3, 4]);
    expect(out[0]!.p).toBeCloseTo(0.2 * 0.2 + 0.5 * 0.7);
  });

  it("ranks by counts at rag weight 1, the model ordering the clusters retrieval never saw", () => {
    const out = blendWithRag(dist([1, 0.1], [2, 0.6], [3, 0.3]), { items: [{ clusterId: 1, count: 3 }], support: 3 }, rag(1));
    expect(out.map((s) => s.clusterId)).toEqual([1, 2, 3]);
  });

  it("never brings back a cluster the model's distribution excluded (the history)", () => {
    const out = blendWithRag(dist([2, 0.6], [3, 0.4]), { items: [{ clusterId: 7, count: 9 }], support: 9 }, rag(0.5, 0.4), [0, 0, 0, 0, 0, 0, 0, 1]);
    expect(out.map((s) => s.clusterId)).toEqual([2, 3]);
  });
});

describe("popularityOf", () => {
  it("gives each cluster's share of the next clusters", () => {
    expect(popularityOf([1, 1, 2, 0], 4)).toEqual([0.25, 0.5, 0.25, 0]);
    expect(popularityOf([], 3)).toEqual([0, 0, 0]);
  });
});

describe("fitBlend", () => {
  // The model always prefers cluster 1; retrieval knows the right answer in `right` of the cases.
  const cases = (right: number, n = 100): BlendCase[] =>
    Array.from({ length: n }, (_, i) => ({ dist: dist([1, 0.7], [2, 0.2], [3, 0.1]), rag: { items: [{ clusterId: 2, count: 5 }], support: 5 }, next: i < right ? 2 : 1 }));

  it("tries 66 weight pairs with rag + popularity <= 1", () => {
    const grid = defaultBlendGrid();
    expect(grid).toHaveLength(66);
    expect(grid.every((w) => w.rag + w.popularity <= 1 + 1e-9)).toBe(true);
  });

  it("trusts retrieval when it is right more often than the model, with the least weight that flips the answer", () => {
    const fit = fitBlend(cases(80));
    // (1 - a) 0.7 < (1 - a) 0.2 + a from a > 1/3 on.
    expect(fit.weights).toEqual(rag(0.4));
    expect(fit.grid.find((g) => g.rag === 0.4 && g.popularity === 0)!.hit1).toBeCloseTo(0.8);
    expect(fit.cases).toBe(100);
  });

  it("keeps the model alone when retrieval misleads it", () => {
    const fit = fitBlend(cases(20));
    expect(fit.weights).toEqual(MODEL_ALONE);
    expect(fit.grid[0]!.hit1).toBeCloseTo(0.8);
  });

  it("backs off to popularity when it knows better than model and key counts", () => {
    const popular = Array.from({ length: 100 }, (): BlendCase => ({ dist: dist([1, 0.6], [2, 0.3], [3, 0.1]), rag: { items: [{ clusterId: 2, count: 1 }], support: 1 }, next: 3 }));
    const fit = fitBlend(popular, [0, 0, 0, 1]);
    expect(fit.weights.popularity).toBeGreaterThan(0);
    expect(fit.grid.find((g) => g.rag === fit.weights.rag && g.popularity === fit.weights.popularity)!.hit1).toBe(1);
  });

  it("prefers more weight on the model among equals", () => {
    const tied = fitBlend(cases(50), undefined, [rag(0.9), rag(0.6), rag(0.3)]);
    expect(tied.grid.map((g) => g.hit1)).toEqual([0.5, 0.5, 0.5]);
    expect(tied.weights).toEqual(rag(0.3));
  });

  it("ranks as blendWithRag does", () => {
    const c: BlendCase = { dist: dist([4, 0.4], [5, 0.35], [6, 0.25]), rag: { items: [{ clusterId: 6, count: 2 }, { clusterId: 5, count: 1 }], support: 3 }, next: 5 };
    const popularity = [0, 0, 0, 0, 0.2, 0.3, 0.5];
    for (const w of defaultBlendGrid()) {
      const rank = blendWithRag(c.dist, c.rag, w, popularity).findIndex((s) => s.clusterId === 5) + 1;
      const row = fitBlend([c], popularity, [w]).grid[0]!;
      expect(row.mrr, JSON.stringify(w)).toBeCloseTo(1 / rank, 12);
    }
  });
});
