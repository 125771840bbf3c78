import { describe, expect, it } from "vitest";
import {
  countSuccessors,
  DAY_MS,
  driftBetween,
  eventDrift,
  jaccard,
  keySimilarities,
  parseDurationMs,
  topSuccessors,
  windowedDrift,
  type Transition,
} from "../src/index.js";

const tr = (history: number[], next: number, ts = 0): Transition => ({ history, next, ts });
const repeat = (t: Transition, n: number) => Array.from({ length: n }, () => t);

describe("drift statistic", () => {
  it("jaccard and top successors with deterministic ties", () => {
    expect(jaccard([1, 2, 3], [2, 3, 4])).toBeCloseTo(0.5);
    expect(jaccard([], [])).toBe(1);
    expect(topSuccessors(new Map([[5, 2], [3, 2], [9, 7]]), 2)).toEqual([9, 3]);
  });
  it("compares top-n successors per key with support in both windows", () => {
    const a = [...repeat(tr([0, 1], 2), 3), ...repeat(tr([0, 1], 3), 2), ...repeat(tr([4, 5], 6), 5), tr([7, 8], 9)];
    const b = [...repeat(tr([0, 1], 2), 4), ...repeat(tr([0, 1], 4), 3), ...repeat(tr([4, 5], 6), 5), ...repeat(tr([7, 8], 1), 9)];
    const stat = driftBetween(a, b, { topN: 2, minSupport: 5 });
    // key 0,1: {2,3} vs {2,4} -> 1/3; key 4,5: {6} vs {6} -> 1; key 7,8 lacks support in a
    expect(stat.keys).toBe(2);
    expect(stat.mean).toBeCloseTo((1 / 3 + 1) / 2);
    expect(stat.variance).toBeCloseTo(((1 - 1 / 3) / 2) ** 2);
    expect(keySimilarities(countSuccessors(a), countSuccessors(b), { topN: 2, minSupport: 6 })).toEqual([]);
  });
  it("walks consecutive windows and pools every supported key", () => {
    const w = 30 * DAY_MS;
    const ts = [0, w + 1, 2 * w + 1, 3 * w + 5];
    const stream = [
      ...repeat(tr([0, 1], 2, ts[0]), 5),
      ...repeat(tr([0, 1], 2, ts[1]), 5),
      ...repeat(tr([0, 1], 3, ts[2]), 5),
      ...repeat(tr([0, 1], 3, ts[3]), 5),
    ];
    const d = windowedDrift(stream, { windowMs: w, topN: 1, minSupport: 5 });
    expect(d.pairs.map((p) => p.mean)).toEqual([1, 0, 1]);
    expect(d.overall).toMatchObject({ keys: 3, mean: 2 / 3 });
    expect(d.transitions).toBe(20);
    expect(() => windowedDrift([tr([0, 1], 2, 5 * w), tr([0, 1], 2, 0)], { windowMs: w })).toThrow("comes after a later window began");
  });
  it("runs from events through clusters to transitions", () => {
    const clusterOf = (item: string) => Number(item.slice(1));
    const events = ["i0", "i1", "i2", "i0", "i1", "i2"].map((itemId, i) => ({ userId: "u", itemId, ts: i * DAY_MS, signal: 5 }));
    const d = eventDrift(events, clusterOf, { windowMs: 3 * DAY_MS, k: 1, topN: 1, minSupport: 1 });
    // k=1: transitions 0->1 1->2 | 2->0 0->1 1->2; keys 0 and 1 agree across the two windows
    expect(d.overall).toMatchObject({ keys: 2, mean: 1 });
  });
  it("parses durations", () => {
    expect(parseDurationMs("30d")).toBe(30 * DAY_MS);
    expect(parseDurationMs("12h")).toBe(12 * 3_600_000);
    expect(() => parseDurationMs("30 days")).toThrow('duration "30 days"');
  });
});
