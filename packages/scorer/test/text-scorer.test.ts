import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultTextTemplate, describeClusters, FreshrecError, type TextPromptInput } from "@freshrec/core";
import {
  AmbiguousDescriptionsError,
  inspectModelFile,
  loadTextModel,
  ModelFileError,
  UnusableModelError,
  type TextModel,
} from "../src/index.js";
import { makeTinyTextModels, textClusters, type TinyTextModels } from "./text-fixtures.js";
// Relative import on purpose: trainer-bridge depends on the scorer (see fixtures.ts).
import { forwardText } from "../../trainer-bridge/src/index.js";

/**
 * Tolerance for one log-probability read twice, once on a KV state reused across candidates and once with the whole
 * prompt evaluated again (exact mode: F32 weights and KV cache, plain attention). Both run the same kernels on the
 * same weights; only the batch shape changes, and with it the float32 summation order. 1e-4 is the F32 bound the
 * project holds two independent implementations of the forward pass to (trainer vs llama.cpp), so it bounds this too.
 * A candidate's score sums one read per scored token, so its tolerance grows with its token count.
 */
const READ_TOL = 1e-4;
/** Tests read 128k-token distributions on 2 shared cores. */
const SLOW = 120_000;

let m: TinyTextModels;
let base: TextModel;
let instruct: TextModel;
const clusters = textClusters(64);
const prompts: TextPromptInput[] = [
  { history: [3, 12], rag: [{ clusterId: 40, count: 7 }] },
  { history: [12, 3], rag: null },
  { history: [63, 0], rag: [{ clusterId: 5, count: 2 }, { clusterId: 6, count: 1 }] },
];

beforeAll(async () => {
  m = await makeTinyTextModels();
  base = await loadTextModel({ path: m.base });
  instruct = await loadTextModel({ path: m.instruct });
}, 120_000);
afterAll(async () => {
  await base?.dispose();
  await instruct?.dispose();
  await m?.cleanup();
}, 60_000);

describe("inspecting a model file", () => {
  it("says what freshrec will do with a base and an instruct model", async () => {
    expect(base.assessment).toMatchObject({ kind: "text", architecture: "llama", promptStyle: "completion", training: "native", chatTemplate: false });
    expect(base.assessment.tokenizer).toEqual({ model: "gpt2", pre: "llama-bpe", tokens: 128256 });
    expect(instruct.assessment).toMatchObject({ kind: "text", promptStyle: "chat", chatTemplate: true });
    expect(instruct.encoder.chatWrapperName).toBe("ChatML");
    expect(base.modelId).toMatch(/^text-[0-9a-f]{16}$/);
    expect(base.sha256).not.toBe(instruct.sha256);
  }, SLOW);

  it("refuses a file without weights or without GGUF, with the reason", async () => {
    await expect(inspectModelFile(m.vocabOnly)).rejects.toThrow(UnusableModelError);
    await expect(inspectModelFile(m.vocabOnly)).rejects.toThrow(/no weights/);
    const junk = join(m.dir, "junk.gguf");
    await writeFile(junk, "not a model at all, just text");
    await expect(inspectModelFile(junk)).rejects.toThrow(ModelFileError);
    await expect(loadTextModel({ path: m.vocabOnly })).rejects.toBeInstanceOf(FreshrecError);
  }, SLOW);
});

describe("prompts", () => {
  it("instruct models get their chat template, base models BOS + the completion text", () => {
    const descriptions = describeClusters(clusters, defaultTextTemplate());
    const chat = instruct.encoder.promptTokens(prompts[0]!, descriptions);
    expect(chat.length).toBeGreaterThan(20);
    const plain = base.encoder.promptTokens(prompts[0]!, descriptions);
    // Llama 3 BPE: <|begin_of_text|> is 128000
    expect(plain[0]).toBe(128000);
    expect(base.encoder.answerTokens("cozy, chess").length).toBeGreaterThan(1);
  }, SLOW);
});

describe("closed-set text scoring", () => {
  it("gives a distribution over every cluster but the history, summing to 1, sorted", async () => {
    for (const model of [base, instruct]) {
      const scorer = await model.createScorer({ clusters, parallel: 2 });
      try {
        const dists = await scorer.scoreNext(prompts);
        dists.forEach((d, i) => {
          const ids = d.map((s) => s.clusterId);
          expect(new Set(ids).size).toBe(62);
          for (const h of prompts[i]!.history) expect(ids).not.toContain(h);
          expect(Math.abs(d.reduce((a, s) => a + s.p, 0) - 1)).toBeLessThan(1e-12);
          for (let j = 1; j < d.length; j++) expect(d[j]!.p).toBeLessThanOrEqual(d[j - 1]!.p);
        });
      } finally {
        await scorer.dispose();
      }
    }
  }, SLOW);

  it("reusing the prompt's KV state scores every candidate as evaluating it with its whole prompt does", async () => {
    const scorer = await base.createScorer({ clusters, parallel: 3, exact: true });
    try {
      const reused = await scorer.answerScores(prompts, "relative");
      const whole = await scorer.answerScores(prompts, "relative", { reuse: false });
      reused.forEach((r, i) => {
        expect(r.size).toBe(62);
        for (const [c, s] of r) expect(Math.abs(s.logp - whole[i]!.get(c)!.logp)).toBeLessThanOrEqual(READ_TOL * s.tokens);
      });
      // full-vocabulary reads at every answer token, on a smaller closed set (each read sorts 128k probabilities)
      scorer.setClusters(clusters.slice(0, 6));
      const small = prompts.map((p) => ({ history: [p.history[0]! % 6, (p.history[0]! + 1) % 6], rag: null }));
      const a = await scorer.answerScores(small, "absolute");
      const b = await scorer.answerScores(small, "absolute", { reuse: false });
      a.forEach((r, i) => {
        expect(r.size).toBe(4);
        for (const [c, s] of r) {
          expect(s.logp).toBeLessThan(0);
          expect(Math.abs(s.logp - b[i]!.get(c)!.logp)).toBeLessThanOrEqual(READ_TOL * s.tokens);
        }
      });
    } finally {
      await scorer.dispose();
    }
  }, SLOW);

  it("sum and length-normalised scorings rank by full-vocabulary log-probs", async () => {
    const six = clusters.slice(0, 6);
    const sum = await base.createScorer({ clusters: six, scoring: "sum", exact: true });
    const mean = await base.createScorer({ clusters: six, scoring: "mean", exact: true });
    try {
      const input = [{ history: [0, 1], rag: null }];
      const [scores] = await sum.answerScores(input, "absolute");
      const [ds] = await sum.scoreNext(input);
      const [dm] = await mean.scoreNext(input);
      const best = (f: (s: { logp: number; tokens: number }) => number) => [...scores!].sort((x, y) => f(y[1]) - f(x[1]))[0]![0];
      expect(ds![0]!.clusterId).toBe(best((s) => s.logp));
      expect(dm![0]!.clusterId).toBe(best((s) => s.logp / s.tokens));
      for (const d of [ds!, dm!]) expect(Math.abs(d.reduce((a, s) => a + s.p, 0) - 1)).toBeLessThan(1e-12);
    } finally {
      await Promise.all([sum.dispose(), mean.dispose()]);
    }
  }, SLOW);

  it("scores each answer as the native trainer's own forward pass does (F32, GQA, tied output, real tokenizer)", async () => {
    const six = clusters.slice(0, 6);
    const scorer = await base.createScorer({ clusters: six, exact: true });
    try {
      const input = { history: [0, 1], rag: [{ clusterId: 2, count: 4 }] };
      const [scores] = await scorer.answerScores([input], "absolute");
      const { descriptions, tokens } = base.encoder.answers(six);
      const prompt = base.encoder.promptTokens(input, descriptions);
      const ids = [...scores!.keys()];
      const trainer = await forwardText({ base: m.base, prompts: ids.map((c) => ({ prompt, answer: tokens.get(c)! })) });
      ids.forEach((c, i) => {
        const s = scores!.get(c)!;
        expect(trainer.rows[i]!.nAnswer).toBe(s.tokens);
        expect(Math.abs(s.logp - trainer.rows[i]!.answerLogprob!)).toBeLessThanOrEqual(READ_TOL * s.tokens);
      });
    } finally {
      await scorer.dispose();
    }
  }, SLOW);

  it("refuses descriptions that tokenise identically, naming the clusters", async () => {
    const twins = [...clusters.slice(0, 4), { id: 4, keywords: [" urban", "cooking "] }];
    await expect(base.createScorer({ clusters: twins })).rejects.toThrow(AmbiguousDescriptionsError);
    await expect(base.createScorer({ clusters: twins })).rejects.toThrow(/0 = 4/);
  }, SLOW);

  it("scores a cluster added at run time from its keywords alone", async () => {
    const scorer = await base.createScorer({ clusters: clusters.slice(0, 10) });
    try {
      const before = (await scorer.scoreNext([{ history: [0, 1], rag: null }]))[0]!;
      expect(before.map((s) => s.clusterId)).not.toContain(10);
      scorer.setClusters([...clusters.slice(0, 10), { id: 10, keywords: ["sourdough", "baking"] }]);
      const after = (await scorer.scoreNext([{ history: [0, 1], rag: [{ clusterId: 10, count: 3 }] }]))[0]!;
      expect(after.map((s) => s.clusterId)).toContain(10);
      expect(Math.abs(after.reduce((a, s) => a + s.p, 0) - 1)).toBeLessThan(1e-12);
      expect(() => scorer.setClusters([...clusters.slice(0, 10), { id: 10, keywords: ["urban", "guitar"] }])).toThrow(/1 = 10/);
    } finally {
      await scorer.dispose();
    }
  }, SLOW);
});
