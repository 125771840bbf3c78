import { describe, expect, it } from "vitest";
import pino from "pino";
import { HttpError } from "../src/errors.js";
import { JsonText } from "../src/json-text.js";
import { ServerMetrics } from "../src/metrics.js";
import { ModelManager, ServingScorer, ServingTable } from "../src/model-manager.js";
import type { ModelPort, RegistryPort, ScorerPort, StorePort } from "../src/ports.js";
import { Predictor } from "../src/predictor.js";

/**
 * The predictor's user-state cache against a store whose reads the test completes by hand: the only way to
 * interleave an ingest with a read in flight deterministically. Everything else is the real serving code.
 */
function setup(userCacheMs = 60_000) {
  const reads: Array<{ userId: string; resolve: (clusters: number[] | null) => void }> = [];
  const store = {
    userState: (userId: string) =>
      new Promise((resolve) => reads.push({ userId, resolve: (clusters) => resolve(clusters && { userId, clusters, lastTs: 0 }) })),
  } as unknown as StorePort;
  const metrics = new ServerMetrics({ processMetrics: false });
  const manager = new ModelManager({ registry: {} as RegistryPort, store, loadModel: async () => ({}) as ModelPort, metrics, log: pino({ level: "silent" }), reloadEvery: 4, swapTimeoutMs: 1000 });
  const model = { value: { layout: { k: 2, ragSlots: 2, nClusters: 8 } } as ModelPort, generation: 1, release() {} };
  void manager.scorers.swap(new ServingScorer({ dispose() {} } as ScorerPort, model, "base", "adapter"));
  const keywords = new Map(Array.from({ length: 8 }, (_, c) => [c, [`kw${c}`]]));
  const rows = new Map([["1,2", { clusters: [3, 4], probs: [0.6, 0.4] }], ["2,5", { clusters: [6], probs: [1] }]]);
  void manager.tables.swap(new ServingTable("t1", rows, keywords, "base", "adapter", "snap", { weights: { rag: 0, popularity: 0 }, liveWeights: { rag: 0, popularity: 0 } }));
  const predictor = new Predictor({ manager, store, metrics, clock: () => 0, liveWindowMs: 1, ragMethod: "frequency", userCacheMs, userCacheSize: 100 });
  const history = async (p: Promise<unknown>) => (JSON.parse(((await p) as JsonText).text) as { history: number[] }).history;
  return { reads, predictor, history };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("Predictor user state cache", () => {
  it("reads a user once for concurrent requests and answers from memory afterwards", async () => {
    const { reads, predictor, history } = setup();
    const a = predictor.forUser("u", 2, "table");
    const b = predictor.forUser("u", 2, "table");
    await tick();
    expect(reads).toHaveLength(1);
    reads[0]!.resolve([1, 2]);
    expect(await history(a)).toEqual([1, 2]);
    expect(await history(b)).toEqual([1, 2]);
    expect(await predictor.forUser("u", 1, "table")).toBeInstanceOf(JsonText);
    expect(reads).toHaveLength(1);
  });

  it("does not keep a read that an ingest overtook: the next request reads again", async () => {
    const { reads, predictor, history } = setup();
    const before = predictor.forUser("u", 2, "table");
    await tick();
    predictor.invalidateUsers(["u"]); // events for u became durable while the read was in flight
    reads[0]!.resolve([1, 2]);
    expect(await history(before)).toEqual([1, 2]);
    const after = predictor.forUser("u", 2, "table");
    await tick();
    expect(reads).toHaveLength(2);
    reads[1]!.resolve([2, 5]);
    expect(await history(after)).toEqual([2, 5]);
  });

  it("remembers unknown users, and re-reads once an entry is older than userCacheMs", async () => {
    const { reads, predictor } = setup();
    const first = predictor.forUser("ghost", 2, "table");
    await tick();
    reads[0]!.resolve(null);
    await expect(first).rejects.toMatchObject({ status: 404 });
    await expect(predictor.forUser("ghost", 2, "table")).rejects.toBeInstanceOf(HttpError);
    expect(reads).toHaveLength(1);

    const expiring = setup(0);
    for (let i = 0; i < 2; i++) {
      const answer = expiring.predictor.forUser("u", 2, "table");
      await tick();
      expiring.reads.at(-1)!.resolve([1, 2]);
      await answer;
    }
    expect(expiring.reads).toHaveLength(2);
  });
});
