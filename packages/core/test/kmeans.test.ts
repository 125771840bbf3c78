import { describe, expect, it } from "vitest";
import { kmeans, mulberry32, nearestCentroid } from "../src/index.js";

/** Three tight 2-d blobs of different sizes around (0,0), (10,0), (0,10). */
function blobs(sizes: number[], seed = 1) {
  const rng = mulberry32(seed);
  const centers = [[0, 0], [10, 0], [0, 10]];
  const data: number[] = [];
  const truth: number[] = [];
  sizes.forEach((n, c) => {
    for (let i = 0; i < n; i++) {
      data.push(centers[c]![0]! + rng() - 0.5, centers[c]![1]! + rng() - 0.5);
      truth.push(c);
    }
  });
  return { points: { data: Float32Array.from(data), n: truth.length, d: 2 }, truth };
}

describe("kmeans", () => {
  it("recovers well-separated blobs and is deterministic for a seed", () => {
    const { points, truth } = blobs([30, 20, 10]);
    const r = kmeans(points, { k: 3, seed: 5 });
    // same blob <=> same cluster
    for (let i = 0; i < truth.length; i++) for (let j = 0; j < truth.length; j += 7) expect(r.assignment[i] === r.assignment[j]).toBe(truth[i] === truth[j]);
    expect([...r.sizes].sort((a, b) => a - b)).toEqual([10, 20, 30]);
    expect(kmeans(points, { k: 3, seed: 5 })).toEqual(r);
    const c = r.assignment[0]!;
    expect(nearestCentroid(Float32Array.from([0.1, -0.2]), r.centroids)).toBe(c);
  });
  it("balancing caps every cluster at ceil(n/k)", () => {
    const { points } = blobs([40, 10, 10]);
    const r = kmeans(points, { k: 3, seed: 2, balance: true });
    expect(r.sizes).toEqual([20, 20, 20]);
    const loose = kmeans(points, { k: 3, seed: 2, balance: { slack: 1.5 } });
    expect(Math.max(...loose.sizes)).toBeLessThanOrEqual(30);
  });
  it("copes with identical points and rejects bad k", () => {
    const points = { data: new Float32Array(20).fill(1), n: 10, d: 2 };
    const r = kmeans(points, { k: 3, seed: 1 });
    expect(r.sizes.reduce((a, b) => a + b)).toBe(10);
    expect(() => kmeans(points, { k: 11, seed: 1 })).toThrow("k = 11 exceeds the 10 points");
  });
  it("a weighted point counts as that many coincident points and is never split", () => {
    // Point 0 stands for 5 copies of (0,0); the copies themselves give the same centroids and sizes.
    const weighted = { data: Float32Array.from([0, 0, 10, 0, 10, 1]), n: 3, d: 2, weights: [5, 1, 1] };
    const copies = { data: Float32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 10, 1]), n: 7, d: 2 };
    const w = kmeans(weighted, { k: 2, seed: 3 });
    const c = kmeans(copies, { k: 2, seed: 3 });
    expect([...w.sizes].sort()).toEqual([...c.sizes].sort());
    expect(w.inertia).toBeCloseTo(c.inertia);
    // Balanced: capacity ceil(7 / 2) = 4 in weight; the point of weight 5 cannot fit anywhere and takes a cluster of its own.
    const b = kmeans(weighted, { k: 2, seed: 3, balance: true });
    expect(b.assignment[1]).toBe(b.assignment[2]);
    expect(b.assignment[0]).not.toBe(b.assignment[1]);
    expect([...b.sizes].sort()).toEqual([2, 5]);
  });
  it("rejects weights that are missing, zero or not numbers", () => {
    const data = Float32Array.from([0, 1, 2]);
    expect(() => kmeans({ data, n: 3, d: 1, weights: [1, 1] }, { k: 1, seed: 1 })).toThrow("2 weights for 3 points");
    expect(() => kmeans({ data, n: 3, d: 1, weights: [1, 0, 1] }, { k: 1, seed: 1 })).toThrow("weight of point 1 must be a positive number (got 0)");
  });
});
