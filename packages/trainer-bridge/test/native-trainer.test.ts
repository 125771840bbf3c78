import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { GGUF_META, LAYOUT_VERSION, promptLength, vocabSize } from "@freshrec/core";
import { readGgufFileInfo } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTrainer, forward, pretrain, trainLora, TrainerError, type PretrainResult } from "../src/index.js";
// The scorer's exact answers and derived rounding bounds, by relative path (scorer/test/fixtures.ts imports this package the same way).
import { boundPrompt, loadBoundedModel } from "../../scorer/test/error-bound.js";
import { baseRule, isShifted, LAYOUT, llamaCppLogProbs, logSoftmax, makeExamples, shiftedRule, tempDir, TINY, type Case } from "./native-fixtures.js";

const work = tempDir();
const basePath = join(work.dir, "base.gguf");
const q8Path = join(work.dir, "base.q8.gguf");
const adapterPath = join(work.dir, "shift.lora.gguf");
const train = makeExamples(3000, 1, baseRule);
const probes = makeExamples(40, 99, baseRule);
let base: PretrainResult;

/**
 * Largest |log-prob - exact log-prob| / bound over every probe and token, for the trainer's and llama.cpp's F32
 * answers, with the exact answers and float-rounding bounds of scorer/test/error-bound.ts. <= 1 means both are
 * within the bound of the exact answer, so within twice it of each other: the tolerance is derived per value from
 * the model's weights and activations, not measured on one CPU.
 */
async function ratioToBound(ours: number[][], theirs: number[][], probes: readonly Case[], adapter?: { filePath: string; scale: number }): Promise<number> {
  const bounded = await loadBoundedModel(basePath, adapter?.filePath, adapter?.scale);
  const vocab = Array.from({ length: vocabSize(LAYOUT) }, (_, t) => t);
  let worst = 0;
  probes.forEach((p, i) => {
    const exact = boundPrompt(bounded, p.tokens, { fast: false }, vocab);
    for (const t of vocab)
      for (const lp of [ours[i]!, theirs[i]!]) worst = Math.max(worst, Math.abs(lp[t]! - exact.logp[t]!) / exact.bound[t]!);
  });
  return worst;
}

beforeAll(async () => {
  await ensureTrainer();
  base = await pretrain({
    layout: LAYOUT, modelId: "test-base", outF32: basePath, outQ8: q8Path, size: TINY, examples: train,
    epochs: 12, batch: 32, lr: 1e-2, seed: 7, windowStartMs: 1000, windowEndMs: 2000, progressEvery: 0,
  });
}, 180_000);
afterAll(() => work.cleanup());

describe("native trainer: base model", { timeout: 120_000 }, () => {
  it("pretrains all weights to learn the synthetic rule and reports metrics", () => {
    expect(base.outputs).toEqual({ f32: basePath, q8_0: q8Path });
    expect(base.metrics.val_acc).toBeGreaterThan(0.9);
    expect(base.epochs[0]!.train_loss).toBeGreaterThan(base.metrics.train_loss);
    expect(base.metrics.n_train + base.metrics.n_val).toBe(train.length);
  });

  it("writes the freshrec metadata and gpt2-style vocabulary into the GGUF", async () => {
    const info = await readGgufFileInfo(basePath, { readTensorInfo: true });
    const meta = info.metadata as unknown as Record<string, Record<string, unknown>>;
    const flat = (key: string) => key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], meta);
    expect(flat(GGUF_META.layoutVersion)).toBe(LAYOUT_VERSION);
    expect(flat(GGUF_META.k)).toBe(LAYOUT.k);
    expect(flat(GGUF_META.ragSlots)).toBe(LAYOUT.ragSlots);
    expect(flat(GGUF_META.nClusters)).toBe(LAYOUT.nClusters);
    expect(flat(GGUF_META.firstClusterToken)).toBe(8);
    expect(flat(GGUF_META.modelId)).toBe("test-base");
    expect(Number(flat(GGUF_META.windowStart))).toBe(1000);
    expect(Number(flat(GGUF_META.windowEnd))).toBe(2000);
    expect(flat("tokenizer.ggml.model")).toBe("gpt2");
    expect((flat("tokenizer.ggml.tokens") as string[]).length).toBe(vocabSize(LAYOUT));
    const names = info.fullTensorInfo!.map((t) => t.name);
    expect(names).toContain("output.weight");
    expect(names).toContain("token_embd.weight");
  });

  it("matches llama.cpp's next-token distribution in F32 (both within the derived float-rounding bound of the exact one)", async () => {
    const ours = await forward({ base: basePath, prompts: probes, logits: true });
    const theirs = await llamaCppLogProbs(basePath, probes);
    expect(await ratioToBound(ours.rows.map((r) => logSoftmax(r.logits!)), theirs, probes)).toBeLessThanOrEqual(1);
  });

  it("Q8_0 copy agrees with the F32 base on the top-1 token", async () => {
    const prompts = makeExamples(200, 5, baseRule);
    const [f32, q8] = await Promise.all([forward({ base: basePath, prompts, topK: 1 }), forward({ base: q8Path, prompts, topK: 1 })]);
    const agree = f32.rows.filter((r, i) => r.top![0] === q8.rows[i]!.top![0]).length;
    expect(agree / prompts.length).toBeGreaterThanOrEqual(0.99);
  });

  it("is deterministic: same seed and data give byte-identical files", async () => {
    const small = train.slice(0, 300);
    const paths = [join(work.dir, "d1.gguf"), join(work.dir, "d2.gguf")];
    for (const outF32 of paths) await pretrain({ layout: LAYOUT, modelId: "det", outF32, size: TINY, examples: small, epochs: 2, seed: 3 });
    expect(readFileSync(paths[0]!).equals(readFileSync(paths[1]!))).toBe(true);
  });
});

describe("native trainer: LoRA", { timeout: 120_000 }, () => {
  const shifted = makeExamples(400, 11, shiftedRule, isShifted);
  let trained: Awaited<ReturnType<typeof trainLora>>;

  beforeAll(async () => {
    // The fine-tune sees the new pattern plus a replay of the unchanged one, as freshrec's update loop does.
    const replay = makeExamples(800, 12, baseRule, (a) => !isShifted(a));
    trained = await trainLora({
      base: basePath, out: adapterPath, adapterId: "shift-1", rank: 4, alpha: 8, examples: [...shifted, ...replay],
      epochs: 10, lr: 1e-2, seed: 5, progressEvery: 0,
    });
  }, 180_000);

  it("moves the top-1 of shifted prompts to the new pattern and keeps the others", async () => {
    const probeShift = makeExamples(100, 21, shiftedRule, isShifted);
    const probeKeep = makeExamples(100, 22, baseRule, (a) => !isShifted(a));
    const withAdapter = await forward({ base: basePath, adapter: adapterPath, prompts: probeShift, topK: 1 });
    expect(withAdapter.recallAt1).toBeGreaterThanOrEqual(0.9);
    expect(withAdapter.adapterId).toBe("shift-1");
    const [before, after] = await Promise.all([
      forward({ base: basePath, prompts: probeKeep, topK: 1 }),
      forward({ base: basePath, adapter: adapterPath, prompts: probeKeep, topK: 1 }),
    ]);
    const kept = before.rows.filter((r, i) => r.top![0] === after.rows[i]!.top![0]).length;
    expect(kept / probeKeep.length).toBeGreaterThanOrEqual(0.95);
    expect(trained.outputs).toMatchObject({ adapter: adapterPath, rank: 4, alpha: 8 });
  });

  it("base + adapter in llama.cpp matches the trainer's forward with the adapter (both within the derived bound of the exact one)", async () => {
    for (const scale of [1, 0.5]) {
      const ours = await forward({ base: basePath, adapter: adapterPath, scale, prompts: probes, logits: true });
      const theirs = await llamaCppLogProbs(basePath, probes, { filePath: adapterPath, scale });
      expect(await ratioToBound(ours.rows.map((r) => logSoftmax(r.logits!)), theirs, probes, { filePath: adapterPath, scale })).toBeLessThanOrEqual(1);
    }
  });

  it("warm-starts from an existing adapter", async () => {
    const out = join(work.dir, "warm.lora.gguf");
    const r = await trainLora({ base: basePath, out, adapterId: "shift-2", initAdapter: adapterPath, examples: shifted, epochs: 1, progressEvery: 0 });
    expect(r.outputs.rank).toBe(4);
    expect(r.epochs[0]!.val_acc).toBeGreaterThanOrEqual(0.9);
  });
});

describe("native trainer: bad inputs", { timeout: 120_000 }, () => {
  const expectFailure = async (p: Promise<unknown>, message: RegExp) => {
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TrainerError);
    expect((err as TrainerError).message).toMatch(message);
    expect((err as TrainerError).exitCode).toBe(1);
  };

  it("names a missing base file", async () => {
    await expectFailure(forward({ base: join(work.dir, "nope.gguf"), prompts: probes }), /cannot open .*nope\.gguf/);
  });

  it("refuses an adapter as a base model", async () => {
    await expectFailure(forward({ base: adapterPath, prompts: probes }), /is a LoRA adapter, not a base model/);
  });

  it("refuses an adapter trained for another vocabulary", async () => {
    const otherLayout = { ...LAYOUT, nClusters: LAYOUT.nClusters + 4 };
    const otherBase = join(work.dir, "other.gguf");
    const otherAdapter = join(work.dir, "other.lora.gguf");
    await pretrain({ layout: otherLayout, modelId: "other", outF32: otherBase, size: TINY, examples: train.slice(0, 64), epochs: 1 });
    await trainLora({ base: otherBase, out: otherAdapter, adapterId: "o", examples: train.slice(0, 64), epochs: 1, targets: ["q", "output"] });
    await expectFailure(forward({ base: basePath, adapter: otherAdapter, prompts: probes }), /vocabulary of 24 tokens but the base has 20/);
  });

  it("refuses an empty dataset without writing a file", async () => {
    const out = join(work.dir, "empty.lora.gguf");
    await expectFailure(trainLora({ base: basePath, out, adapterId: "e", examples: [] }), /holds no examples/);
    expect(existsSync(out)).toBe(false);
  });

  it("stops on a NaN loss without writing a file", async () => {
    const out = join(work.dir, "nan.gguf");
    await expectFailure(
      pretrain({ layout: LAYOUT, modelId: "nan", outF32: out, size: TINY, examples: train.slice(0, 256), epochs: 3, lr: 1e30, clip: 0 }),
      /loss became (NaN|infinite)/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it("rejects prompts of the wrong length with the line number", async () => {
    await expectFailure(forward({ base: basePath, prompts: [{ tokens: [1, 2, 3] }] }), new RegExp(`:1: expected ${promptLength(LAYOUT)} prompt ids`));
  });
});
