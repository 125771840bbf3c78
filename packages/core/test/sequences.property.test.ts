import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { advanceRecent, emptyRecent, extractTransitions, streamTransitions, compareEvents, type ClusteredEvent } from "../src/index.js";

const eventArb = fc.record({
  userId: fc.constantFrom("a", "b", "c"),
  itemId: fc.integer({ min: 0, max: 30 }).map(String),
  ts: fc.integer({ min: 0, max: 50 }),
  signal: fc.constantFrom(1, 3, 4, 5),
  clusterId: fc.integer({ min: 0, max: 6 }),
});
/** Events with distinct ids; an item's cluster is fixed by the item. */
const eventsArb = fc.array(eventArb, { maxLength: 60 }).map((list) =>
  list.map((e, i): ClusteredEvent => ({ ...e, eventId: `e${i}`, clusterId: Number(e.itemId) % 7 })),
);

describe("sequence invariants (property)", () => {
  it("advanceRecent keeps at most k distinct clusters, newest last, and a transition's next is novel", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 40 }), fc.integer({ min: 1, max: 4 }), (clusters, k) => {
        let state = emptyRecent();
        clusters.forEach((c, i) => {
          const before = state.clusters;
          const step = advanceRecent(state, c, i, k);
          state = step.state;
          expect(new Set(state.clusters).size).toBe(state.clusters.length);
          expect(state.clusters.length).toBeLessThanOrEqual(k);
          expect(state.clusters.at(-1)).toBe(c);
          if (step.transition) {
            expect(step.transition.history).toEqual(before);
            expect(step.transition.history).toHaveLength(k);
            expect(step.transition.history).not.toContain(step.transition.next);
          } else expect(before.length < k || before.includes(c)).toBe(true);
        });
      }),
    );
  });
  it("extractTransitions: histories of k distinct clusters, next never in history, only positive engagement", () => {
    fc.assert(
      fc.property(eventsArb, fc.integer({ min: 1, max: 3 }), (events, k) => {
        const out = extractTransitions(events, { k, threshold: 4 });
        for (const t of out) {
          expect(t.history).toHaveLength(k);
          expect(new Set(t.history).size).toBe(k);
          expect(t.history).not.toContain(t.next);
        }
        const positives = events.filter((e) => e.signal >= 4);
        expect(out.length).toBeLessThanOrEqual(Math.max(0, positives.length - k));
        expect(extractTransitions(positives, { k, threshold: 4 })).toEqual(out);
      }),
    );
  });
  it("extractTransitions does not depend on input order", () => {
    fc.assert(
      fc.property(eventsArb, fc.integer(), (events, seed) => {
        const shuffled = [...events].sort((a, b) => ((Number(a.eventId.slice(1)) * 2654435761) ^ seed) % 97 - ((Number(b.eventId.slice(1)) * 2654435761) ^ seed) % 97);
        expect(extractTransitions(shuffled, { k: 2 })).toEqual(extractTransitions(events, { k: 2 }));
      }),
    );
  });
  it("streamTransitions over ordered events yields what extractTransitions finds", () => {
    fc.assert(
      fc.property(eventsArb, fc.integer({ min: 1, max: 3 }), (events, k) => {
        const ordered = [...events].sort(compareEvents);
        const clusterOf = new Map(events.map((e) => [e.itemId, e.clusterId]));
        const streamed = [...streamTransitions(ordered, (id) => clusterOf.get(id), { k })];
        const key = (t: { userId?: string; ts: number; next: number; history: number[] }) => `${t.userId}|${t.ts}|${t.history}|${t.next}`;
        expect(streamed.map(key).sort()).toEqual(extractTransitions(events, { k }).map(key).sort());
      }),
    );
  });
  it("consecutive repeats of a cluster never produce a transition", () => {
    fc.assert(
      fc.property(eventsArb, (events) => {
        const doubled = events.flatMap((e) => [e, { ...e, eventId: `${e.eventId}x` }]);
        expect(extractTransitions(doubled, { k: 2 })).toEqual(extractTransitions(events, { k: 2 }));
      }),
    );
  });
});
