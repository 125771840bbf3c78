import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultTextTemplate, type TextPromptInput } from "@freshrec/core";
import { loadTextModel, type TextModel } from "../src/index.js";
import { textClusters } from "./text-fixtures.js";
// Relative import on purpose: trainer-bridge depends on the scorer (see fixtures.ts).
import { bundledVocab, initTextModel, trainTextModel } from "../../trainer-bridge/src/index.js";

/** 8 clusters; the next one follows the last history cluster by a fixed rule (skipping the older one). */
const clusters = textClusters(8);
const next = (a: number, b: number) => {
  let t = (b + 1) % 8;
  if (t === a) t = (t + 1) % 8;
  return t;
};
const inputs: TextPromptInput[] = [];
for (let a = 0; a < 8; a++) for (let b = 0; b < 8; b++) if (a !== b) inputs.push({ history: [a, b], rag: null });
/** An empty system text halves the prompt, and the training time with it. */
const template = { ...defaultTextTemplate(), system: "" };

let dir: string;
let trained: TextModel;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "freshrec-text-trained-"));
  const init = join(dir, "init.gguf");
  // StarCoder's tokenizer (49k tokens, SmolLM2's size): the tied embedding trains, so a smaller vocabulary is cheaper
  await initTextModel({ vocab: bundledVocab("starcoder"), out: init, layout: { nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 128, nCtx: 256 }, seed: 1 });
  const untrained = await loadTextModel({ path: init, template });
  const { descriptions, tokens } = untrained.encoder.answers(clusters);
  // the scorer's own encoder renders the training examples: the model learns exactly the prompts it is scored on
  const examples = inputs.map((p) => ({ prompt: untrained.encoder.promptTokens(p, descriptions), answer: tokens.get(next(p.history[0]!, p.history[1]!))! }));
  await untrained.dispose();
  const out = join(dir, "trained.gguf");
  await trainTextModel({ base: init, out, examples, epochs: 20, batch: 8, lr: 1e-2, valFraction: 0, seed: 1, threads: 1 });
  trained = await loadTextModel({ path: out, template });
}, 300_000);
afterAll(async () => {
  await trained?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe("a text model trained on its prompts", () => {
  it("ranks the trained answer first (chance: 1 in 6)", async () => {
    const scorer = await trained.createScorer({ clusters });
    try {
      const dists = await scorer.scoreNext(inputs);
      const hits = dists.filter((d, i) => d[0]!.clusterId === next(inputs[i]!.history[0]!, inputs[i]!.history[1]!)).length;
      // measured 53 of 56 after 20 epochs; the bound leaves room for float differences between CPUs in training
      expect(hits).toBeGreaterThanOrEqual(48);
    } finally {
      await scorer.dispose();
    }
  }, 120_000);
});
