import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS, describeClusters, mulberry32, type Cluster, type Transition } from "@freshrec/core";
import { AmbiguousDescriptionsError, loadTextEncoder, type TextPromptEncoder } from "@freshrec/scorer";
import { buildTrainingSet, bundledVocab, initTextModel, rollingRagSource, textTokenExamples } from "../src/index.js";

const clusters: Cluster[] = ["baking bread", "home cooking", "trail hiking", "city cycling", "jazz guitar", "chess openings"].map((d, id) => ({ id, keywords: d.split(" ") }));
const layout = { k: 2, ragSlots: 3, nClusters: clusters.length };

function stream(days: number, seed: number): Transition[] {
  const rng = mulberry32(seed);
  const out: Transition[] = [];
  for (let t = 0; t < days * DAY_MS; t += Math.floor(rng() * DAY_MS * 0.2) + 1) {
    const a = Math.floor(rng() * 6);
    const b = (a + 1 + Math.floor(rng() * 5)) % 6;
    let next = (b + 1) % 6;
    if (next === a) next = (next + 1) % 6;
    out.push({ history: [a, b], next, ts: t });
  }
  return out;
}

let dir: string;
let encoder: TextPromptEncoder;
let dispose: () => Promise<void>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "freshrec-text-examples-"));
  const path = join(dir, "base.gguf");
  await initTextModel({ vocab: bundledVocab("llama-bpe"), out: path, layout: { nEmbd: 32, nFf: 64, nHead: 2, nHeadKv: 1, nLayer: 1 }, seed: 1 });
  ({ encoder, dispose } = await loadTextEncoder({ path }));
}, 120_000);
afterAll(async () => {
  await dispose?.();
  await rm(dir, { recursive: true, force: true });
});

describe("text training examples", () => {
  it("are the scorer's own prompt and answer tokens, RAG lines with the counts retrieved at each example's time", async () => {
    const all = stream(20, 3);
    const window = { start: 10 * DAY_MS, end: 20 * DAY_MS };
    const set = await buildTrainingSet({ transitions: all, window, rag: rollingRagSource(all, { windowMs: 5 * DAY_MS, n: 3 }), layout, config: { relabelCopies: 0 } });
    const { examples, valExamples } = textTokenExamples(set, encoder, clusters);
    expect(examples).toHaveLength(set.train.length);
    expect(valExamples).toHaveLength(set.val.length);
    const descriptions = describeClusters(clusters, encoder.template);
    const withRag = set.train.findIndex((e) => (e.rag?.length ?? 0) > 0);
    const noRag = set.train.findIndex((e) => e.rag === null);
    expect(withRag).toBeGreaterThanOrEqual(0);
    expect(noRag).toBeGreaterThanOrEqual(0);
    for (const i of [withRag, noRag]) {
      const e = set.train[i]!;
      const rag = e.rag === null ? null : e.rag.map((clusterId, j) => ({ clusterId, count: e.ragCounts![j]! }));
      expect(examples[i]!.prompt).toEqual(encoder.promptTokens({ history: e.history, rag }, descriptions));
      expect(examples[i]!.answer).toEqual(encoder.answerTokens(descriptions.get(e.next)!));
    }
    // the count of the top successor, as of the example's time, is what the rolling source saw
    const e = set.train[withRag]!;
    const seen = await rollingRagSource(all, { windowMs: 5 * DAY_MS, n: 1 }).topCounted(e.history, e.ts);
    expect(e.ragCounts![0]).toBe(seen[0]!.count);
    expect(e.rag![0]).toBe(seen[0]!.clusterId);
  });

  it("refuses clusters whose descriptions tokenise identically, and examples whose RAG lines lost their counts", async () => {
    const set = { train: [{ history: [0, 1], next: 2, ts: 5, rag: [3] }], val: [] };
    expect(() => textTokenExamples(set, encoder, [...clusters, { id: 6, keywords: ["baking", "bread"] }])).toThrow(AmbiguousDescriptionsError);
    expect(() => textTokenExamples(set, encoder, clusters)).toThrow(/without their counts/);
  });
});
