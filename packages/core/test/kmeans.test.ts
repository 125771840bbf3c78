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
});
