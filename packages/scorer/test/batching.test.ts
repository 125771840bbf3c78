import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "@freshrec/core";
import { decodeBatchLimit, loadClusterModel, readGgufMetadata, type ClusterModel, type ClusterScore, type Prompt, type Scorer, type ScorerOptions } from "../src/index.js";
import { LAYOUT, trainTinyModels, type TinyModels } from "./fixtures.js";

/**
 * Prompts that differ in every part a batch could mix up: histories of 0-4 clusters (shorter and longer than k,
 * with repeats), RAG lists null, empty, or 1-5 long (beyond the slots), so that sequences reuse prefixes of
 * different lengths and decode suffixes of different lengths side by side.
 */
function variedPrompts(n: number, seed: number): Prompt[] {
  const rnd = mulberry32(seed);
  const c = () => Math.floor(rnd() * LAYOUT.nClusters);
  const list = (max: number) => Array.from({ length: Math.floor(rnd() * (max + 1)) }, c);
  return Array.from({ length: n }, () => ({ history: list(4), rag: rnd() < 0.15 ? null : list(5) }));
}

function shuffled<T>(xs: T[], seed: number): T[] {
  const rnd = mulberry32(seed);
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Scores `prompts` through `scorer` in the given order, split into concurrent calls of the given sizes; answers in prompt order. */
async function scoreInPieces(scorer: Scorer, prompts: Prompt[], order: number[], pieces: number[]): Promise<ClusterScore[][]> {
  const out: ClusterScore[][] = new Array(prompts.length);
  const calls: Promise<void>[] = [];
  let at = 0;
  for (const size of [...pieces, order.length]) {
    const idx = order.slice(at, at + size);
    at += idx.length;
    if (idx.length === 0) continue;
    calls.push(scorer.scoreNext(idx.map((i) => prompts[i]!)).then((ds) => ds.forEach((d, j) => (out[idx[j]!] = d))));
  }
  await Promise.all(calls);
  return out;
}

/** p by cluster id, after checking the distribution is a proper closed-set one for `prompt`. */
function checked(d: ClusterScore[], prompt: Prompt): Float64Array {
  const p = new Float64Array(LAYOUT.nClusters).fill(Number.NaN);
  for (const s of d) {
    expect(Number.isFinite(s.p)).toBe(true);
    p[s.clusterId] = s.p;
  }
  expect(d).toHaveLength(LAYOUT.nClusters - new Set(prompt.history).size);
  expect(d.reduce((s, x) => s + x.p, 0)).toBeCloseTo(1, 9);
  return p;
}

function maxDiff(a: ClusterScore[][], b: ClusterScore[][], prompts: Prompt[]): number {
  let worst = 0;
  prompts.forEach((prompt, i) => {
    const pa = checked(a[i]!, prompt);
    const pb = checked(b[i]!, prompt);
    pa.forEach((x, c) => {
      if (!Number.isNaN(x)) worst = Math.max(worst, Math.abs(x - pb[c]!));
    });
  });
  return worst;
}

describe("batched scoring equals one prompt at a time", () => {
  let m: TinyModels;
  const models = new Map<string, ClusterModel>();
  const prompts = variedPrompts(240, 21);

  beforeAll(async () => {
    m = await trainTinyModels();
    for (const path of [m.f32, m.q8, m.narrowQ8]) models.set(path, await loadClusterModel({ path }));
  }, 240_000);
  afterAll(async () => {
    await Promise.all([...models.values()].map((x) => x.dispose()));
    await m?.cleanup();
  });

  /** One prompt per call on one sequence: nothing else is ever in the batch. */
  async function oneAtATime(model: ClusterModel, opts: ScorerOptions): Promise<ClusterScore[][]> {
    const scorer = await model.createScorer({ ...opts, parallel: 1 });
    const out: ClusterScore[][] = [];
    for (const p of prompts) out.push((await scorer.scoreNext([p]))[0]!);
    await scorer.dispose();
    return out;
  }

  /** The same prompts through wide pools, in different orders and call splits, so each prompt meets different batch neighbours. */
  async function batchedRuns(model: ClusterModel, opts: ScorerOptions): Promise<ClusterScore[][][]> {
    const all = prompts.map((_, i) => i);
    // Repeated, because one of the faults (concurrent logits reads, see LogitsReadQueue) is a race.
    const runs: Array<[ScorerOptions, number[], number[]]> = [1, 2, 3].flatMap((seed): Array<[ScorerOptions, number[], number[]]> => [
      [{ parallel: 8, contexts: 1 }, seed === 1 ? all : shuffled(all, seed), []],
      [{ parallel: 16, contexts: 2 }, all.slice().reverse(), []],
      [{ parallel: 16, contexts: 1 }, shuffled(all, 10 + seed), [7, 50, 1, 90]],
      [{ parallel: 32, contexts: 2 }, shuffled(all, 20 + seed), [120]],
    ]);
    const out: ClusterScore[][][] = [];
    for (const [pool, order, pieces] of runs) {
      const scorer = await model.createScorer({ ...opts, ...pool });
      out.push(await scoreInPieces(scorer, prompts, order, pieces));
      await scorer.dispose();
    }
    return out;
  }

  // Q8_0 matrix products take another CPU kernel (AMX / repacked int8) once a batch holds enough rows, which
  // rounds differently: batch shape moves Q8_0 answers by up to ~3e-4. The races this guards against moved them by ~10.
  const cases = [
    { name: "F32 base + adapter", bound: 1e-5, base: (t: TinyModels) => t.f32, adapter: (t: TinyModels) => t.adapter },
    { name: "Q8_0 base + adapter", bound: 1e-3, base: (t: TinyModels) => t.q8, adapter: (t: TinyModels) => t.adapter },
    { name: "Q8_0 base with n_embd 32 (llama.cpp's AMX Q8_0 bug) + adapter", bound: 1e-3, base: (t: TinyModels) => t.narrowQ8, adapter: (t: TinyModels) => t.otherAdapter },
  ];

  for (const c of cases) {
    it(`${c.name}, exact: every distribution proper, and equal within ${c.bound} across 8-32 sequences, 1-2 contexts, orders and call splits`, async () => {
      const model = models.get(c.base(m))!;
      const opts = { exact: true, adapterPath: c.adapter(m) };
      const reference = await oneAtATime(model, opts);
      for (const run of await batchedRuns(model, opts)) expect(maxDiff(reference, run, prompts)).toBeLessThanOrEqual(c.bound);
    }, 120_000);
  }

  it("fast mode (F16 KV cache, flash attention): every distribution proper, and within 1e-3 of one at a time", async () => {
    // llama.cpp's CPU flash attention switches to a tiled kernel for larger query blocks, which rounds differently:
    // batch composition moves fast-mode answers by ~1e-4, never more than that in our runs.
    const model = models.get(m.q8)!;
    const opts = { adapterPath: m.adapter };
    const reference = await oneAtATime(model, opts);
    for (const run of await batchedRuns(model, opts)) expect(maxDiff(reference, run, prompts)).toBeLessThanOrEqual(1e-3);
  }, 120_000);

  it("limits decode batches only for Q8_0 models with 32-wide weights", async () => {
    expect(decodeBatchLimit(await readGgufMetadata(m.narrowQ8))).toBe(31);
    expect(decodeBatchLimit(await readGgufMetadata(m.narrowF32))).toBeUndefined();
    expect(decodeBatchLimit(await readGgufMetadata(m.q8))).toBeUndefined();
  });
});
