/**
 * Does the loop's training actually produce a useful model? On the tiny synthetic world (fast-moving trends), a
 * base pretrained through the loop's own training set and trainer defaults is scored on the later, drifted days
 * against a Markov count table from the same training transitions. It must beat the table when its RAG slots are
 * filled with fresh point-in-time successors, and fresh RAG must clearly beat empty slots (the model reads them).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DAY_MS, FIRST_CLUSTER_TOKEN, createSyntheticWorld, historyKey, promptTokens, streamTransitions, type ClusterId, type Transition } from "@freshrec/core";
import { buildTrainingSet, exampleTokens, forward, nativeTrainer, rollingRagSource } from "../src/index.js";

const world = createSyntheticWorld("tiny", { seed: 1 });
const clusterOf = new Map(world.items.map((i) => [i.itemId, i.clusterId!]));
const all = [...streamTransitions([...world.events()], (id) => clusterOf.get(id), { k: 2 })];
const layout = { k: 2, ragSlots: 3, nClusters: world.clusters.length };
const RAG_WINDOW = 14 * DAY_MS;
const split = world.startMs + 18 * DAY_MS;
const test = all.filter((t) => t.ts >= split);

/** Top-1 of a count table of (key -> next) over `train`, falling back to overall popularity; history excluded. */
function markovRecall(train: readonly Transition[]): number {
  const byKey = new Map<string, Map<ClusterId, number>>();
  const overall = new Map<ClusterId, number>();
  for (const t of train) {
    const m = byKey.get(historyKey(t.history)) ?? new Map<ClusterId, number>();
    byKey.set(historyKey(t.history), m);
    m.set(t.next, (m.get(t.next) ?? 0) + 1);
    overall.set(t.next, (overall.get(t.next) ?? 0) + 1);
  }
  const ranked = (m: Map<ClusterId, number> | undefined) => [...(m ?? [])].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([c]) => c);
  const hits = test.filter((t) => [...ranked(byKey.get(historyKey(t.history))), ...ranked(overall)].find((c) => !t.history.includes(c)) === t.next);
  return hits.length / test.length;
}

/** Recall@1 of the model on the test days, the scorer's way: argmax over clusters outside the history. */
async function modelRecall(base: string, rag: Array<ClusterId[] | null>): Promise<number> {
  const prompts = test.map((t, i) => ({ tokens: promptTokens(t.history, rag[i]?.length ? rag[i]! : null, layout) }));
  const { rows } = await forward({ base, prompts, logits: true, threads: 2 });
  let hits = 0;
  test.forEach((t, i) => {
    let best = -1;
    for (let c = 0; c < layout.nClusters; c++)
      if (!t.history.includes(c) && (best < 0 || rows[i]!.logits![FIRST_CLUSTER_TOKEN + c]! > rows[i]!.logits![FIRST_CLUSTER_TOKEN + best]!)) best = c;
    if (best === t.next) hits++;
  });
  return hits / test.length;
}

describe("model quality on the tiny world", () => {
  const dir = mkdtempSync(join(tmpdir(), "quality-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a loop-trained base beats the Markov table with fresh RAG, and fresh RAG beats empty slots", async () => {
    const set = await buildTrainingSet({
      transitions: all,
      window: { start: world.startMs, end: split },
      rag: rollingRagSource(all, { windowMs: RAG_WINDOW, n: layout.ragSlots }),
      layout,
      config: { holdoutDays: 3 },
    });
    const { servePath } = await nativeTrainer().pretrainBase({
      examples: set.train.map((e) => exampleTokens(e, layout)),
      valExamples: set.val.map((e) => exampleTokens(e, layout)),
      layout,
      outDir: dir,
      modelId: "quality",
      window: { start: world.startMs, end: split },
      hyper: { size: { nEmbd: 64, nLayer: 2, nHead: 2, nFf: 128 }, threads: 2 },
      seed: 1,
    });
    const live = rollingRagSource(all, { windowMs: RAG_WINDOW, n: layout.ragSlots });
    const fresh: ClusterId[][] = [];
    for (const t of test) fresh.push(await live.top(t.history, t.ts));

    const kept = all.filter((t) => t.ts < split);
    const markov = markovRecall(kept);
    const withRag = await modelRecall(servePath, fresh);
    const withoutRag = await modelRecall(servePath, test.map(() => null));
    expect(test.length).toBeGreaterThan(500);
    expect(withRag).toBeGreaterThanOrEqual(markov);
    expect(withRag).toBeGreaterThan(withoutRag + 0.05);
  }, 300_000);
});
