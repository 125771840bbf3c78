import { describe, expect, it } from "vitest";
import { compareEvents, createSyntheticWorld, DAY_MS, eventDrift, EventSchema, ItemSchema, SYNTHETIC_PRESETS } from "../src/index.js";
import { SLOW_TEST_TIMEOUT_MS } from "./slow.js";

const take = <T>(it: Iterable<T>, n: number): T[] => {
  const out: T[] = [];
  for (const x of it) {
    out.push(x);
    if (out.length === n) break;
  }
  return out;
};

describe("synthetic world", () => {
  const world = createSyntheticWorld("tiny");
  const events = [...world.events()];
  const clusterOf = new Map(world.items.map((i) => [i.itemId, i.clusterId!]));

  it("is deterministic for a seed and differs across seeds", () => {
    expect([...createSyntheticWorld("tiny").events()]).toEqual(events);
    expect(createSyntheticWorld("tiny").clusters).toEqual(world.clusters);
    expect(take(createSyntheticWorld("tiny", { seed: 8 }).events(), 50)).not.toEqual(events.slice(0, 50));
  });
  it("emits valid events in compareEvents order within the period, some of them negative", () => {
    expect(events.length).toBeGreaterThan(2_000);
    for (const e of events.slice(0, 200)) EventSchema.parse(e);
    for (let i = 1; i < events.length; i++) expect(compareEvents(events[i - 1]!, events[i]!)).toBeLessThan(0);
    expect(events[0]!.ts).toBeGreaterThanOrEqual(world.startMs);
    expect(events.at(-1)!.ts).toBeLessThan(world.endMs);
    const negatives = events.filter((e) => e.signal < 4).length / events.length;
    expect(negatives).toBeGreaterThan(0.05);
    expect(negatives).toBeLessThan(0.25);
  });
  it("has a catalogue with generated keywords, and late clusters get no traffic before they appear", () => {
    expect(world.clusters).toHaveLength(SYNTHETIC_PRESETS.tiny.clusters);
    expect(new Set(world.clusters.map((c) => c.keywords.join(" "))).size).toBe(world.clusters.length);
    for (const i of world.items.slice(0, 20)) ItemSchema.parse(i);
    const late = world.clusters.filter((c) => world.clusterBirth(c.id) > world.startMs);
    expect(late).toHaveLength(SYNTHETIC_PRESETS.tiny.newClusters);
    for (const c of late) {
      const seen = events.filter((e) => clusterOf.get(e.itemId) === c.id);
      expect(seen.length).toBeGreaterThan(0);
      expect(Math.min(...seen.map((e) => e.ts))).toBeGreaterThanOrEqual(world.clusterBirth(c.id));
    }
  });
  it("exposes a ground truth that is a distribution excluding the history and unborn clusters", () => {
    const late = world.clusters.find((c) => world.clusterBirth(c.id) > world.startMs)!.id;
    const t = world.startMs + DAY_MS;
    const p = world.groundTruth([0, 1], t);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1);
    expect(p[0]).toBe(0);
    expect(p[1]).toBe(0);
    expect(p[late]).toBe(0);
    expect(world.groundTruth([0, 1], world.clusterBirth(late))[late]).toBeGreaterThan(0);
  });
  it("accepts likely recommendations more often than unlikely ones", () => {
    const t = world.startMs + 10 * DAY_MS;
    const p = world.groundTruth([2, 3], t);
    const best = p.indexOf(Math.max(...p));
    const worst = p.indexOf(Math.min(...Array.from(p).filter((x) => x > 0)));
    expect(world.acceptProbability([2, 3], best, t)).toBeGreaterThan(world.acceptProbability([2, 3], worst, t));
    expect(world.acceptProbability([2, 3], 3, t)).toBe(0);
    expect(world.acceptProbability([2, 3], best, t)).toBeLessThanOrEqual(world.config.maxAccept);
  });
  it("drift lowers the similarity of successors between windows", () => {
    const measure = (drift: number) => {
      const w = createSyntheticWorld("tiny", { users: 400, days: 60, drift, newClusters: drift === 0 ? 0 : 2 });
      const map = new Map(w.items.map((i) => [i.itemId, i.clusterId!]));
      return eventDrift(w.events(), (id) => map.get(id), { windowMs: 20 * DAY_MS, k: 2, topN: 5, minSupport: 3 }).overall;
    };
    const still = measure(0);
    const drifting = measure(2);
    expect(still.keys).toBeGreaterThan(20);
    expect(drifting.keys).toBeGreaterThan(20);
    expect(drifting.mean).toBeLessThan(still.mean);
  }, SLOW_TEST_TIMEOUT_MS);
  it("validates its configuration", () => {
    expect(() => createSyntheticWorld("tiny", { users: 0 })).toThrow("users");
  });
});
