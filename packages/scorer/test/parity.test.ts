import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIRST_CLUSTER_TOKEN, promptTokens, vocabSize } from "@freshrec/core";
import { loadClusterModel, type ClusterModel, type Prompt } from "../src/index.js";
import { forward } from "../../trainer-bridge/src/index.js";
import { boundPrompt, loadBoundedModel } from "./error-bound.js";
import { LAYOUT, logSoftmax, randomPrompts, trainTinyModels, type TinyModels } from "./fixtures.js";

/**
 * Largest |log-prob - exact log-prob| / bound over every prompt's cluster tokens (full-vocabulary log-softmax), for
 * the native trainer's forward pass and for llama.cpp, with the exact answers and bounds of test/error-bound.ts (F32:
 * float rounding only). Both <= 1, so the two agree within twice the bound. The trainer and llama.cpp build
 * different ggml graphs (batched, pruned differently), so they round differently; nothing more may differ.
 */
async function parityRatios(model: ClusterModel, base: string, prompts: Prompt[], adapter?: string): Promise<{ trainer: number; llama: number; between: number }> {
  const scorer = await model.createScorer({ exact: true, parallel: 8, ...(adapter ? { adapterPath: adapter } : {}) });
  const llamaLp = await scorer.tokenLogProbs(prompts);
  await scorer.dispose();
  const trainer = await forward({ base, ...(adapter ? { adapter } : {}), prompts: prompts.map((p) => ({ tokens: promptTokens(p.history, p.rag, LAYOUT) })), logits: true });
  const bounded = await loadBoundedModel(base, adapter);
  const vocab = Array.from({ length: vocabSize(LAYOUT) }, (_, t) => t);
  const clusters = vocab.slice(FIRST_CLUSTER_TOKEN);
  const worst = { trainer: 0, llama: 0, between: 0 };
  trainer.rows.forEach((row, i) => {
    expect(row.logits).toHaveLength(vocabSize(LAYOUT));
    const lp = logSoftmax(row.logits!);
    const p = prompts[i]!;
    const exact = boundPrompt(bounded, promptTokens(p.history, p.rag, LAYOUT), { fast: false }, vocab, clusters);
    clusters.forEach((t, k) => {
      const b = exact.bound[k]!;
      worst.trainer = Math.max(worst.trainer, Math.abs(lp[t]! - exact.logp[k]!) / b);
      worst.llama = Math.max(worst.llama, Math.abs(llamaLp[i]![t]! - exact.logp[k]!) / b);
      worst.between = Math.max(worst.between, Math.abs(lp[t]! - llamaLp[i]![t]!) / (2 * b));
    });
  });
  return worst;
}

const top1 = (dists: Array<Array<{ clusterId: number }>>) => dists.map((d) => d[0]!.clusterId);

describe("parity between the native trainer and llama.cpp", () => {
  let m: TinyModels;
  let f32: ClusterModel;
  let q8: ClusterModel;
  const prompts = randomPrompts(200, 11);

  beforeAll(async () => {
    m = await trainTinyModels();
    f32 = await loadClusterModel({ path: m.f32 });
    q8 = await loadClusterModel({ path: m.q8 });
  }, 240_000);
  afterAll(async () => {
    await f32?.dispose();
    await q8?.dispose();
    await m?.cleanup();
  });

  it("F32 base: trainer forward log-probs equal node-llama-cpp's within the derived float-rounding bound", async () => {
    const r = await parityRatios(f32, m.f32, prompts);
    expect(r.trainer, "trainer vs exact").toBeLessThanOrEqual(1);
    expect(r.llama, "llama.cpp vs exact").toBeLessThanOrEqual(1);
    expect(r.between, "trainer vs llama.cpp").toBeLessThanOrEqual(1);
  }, 60_000);

  it("F32 base + adapter: trainer forward with the adapter equals node-llama-cpp with it within the derived bound", async () => {
    const r = await parityRatios(f32, m.f32, prompts, m.adapter);
    expect(r.trainer, "trainer vs exact").toBeLessThanOrEqual(1);
    expect(r.llama, "llama.cpp vs exact").toBeLessThanOrEqual(1);
    expect(r.between, "trainer vs llama.cpp").toBeLessThanOrEqual(1);
  }, 60_000);

  it("the adapter changes the answers (so the adapter parity above is not the base's parity twice)", async () => {
    const base = await f32.createScorer();
    const adapted = await f32.createScorer({ adapterPath: m.adapter });
    const a = top1(await base.scoreNext(prompts));
    const b = top1(await adapted.scoreNext(prompts));
    expect(a.filter((c, i) => c !== b[i]).length).toBeGreaterThan(prompts.length / 4);
    await Promise.all([base.dispose(), adapted.dispose()]);
  });

  it("Q8_0 base + adapter agrees with F32 base + adapter on the top-1 cluster for >= 99% of prompts", async () => {
    const [sf, sq] = await Promise.all([f32.createScorer({ adapterPath: m.adapter, exact: true }), q8.createScorer({ adapterPath: m.adapter, exact: true })]);
    const a = top1(await sf.scoreNext(prompts));
    const b = top1(await sq.scoreNext(prompts));
    const agree = a.filter((c, i) => c === b[i]).length / prompts.length;
    expect(agree).toBeGreaterThanOrEqual(0.99);
    await Promise.all([sf.dispose(), sq.dispose()]);
  });
});
