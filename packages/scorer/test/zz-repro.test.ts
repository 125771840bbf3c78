import { it } from "vitest";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterToToken, mulberry32, promptTokens } from "@freshrec/core";
import { loadClusterModel, type Prompt } from "../src/index.js";
import { pretrain, trainLora } from "../../trainer-bridge/src/index.js";

const L = { k: 2, ragSlots: 3, nClusters: 20 };
function varied(n: number, seed: number): Prompt[] {
  const rnd = mulberry32(seed);
  const c = () => Math.floor(rnd() * L.nClusters);
  return Array.from({ length: n }, () => {
    const h = [c(), c()];
    const r = rnd() < 0.3 ? null : Array.from({ length: 1 + Math.floor(rnd() * 3) }, c);
    return { history: h, rag: r };
  });
}
const ex = (ps: Prompt[], s: number) => ps.map((p) => ({ tokens: promptTokens(p.history, p.rag, L), target: clusterToToken((p.history[1]! * 3 + s) % L.nClusters) }));

it("repro", async () => {
  const dir = await mkdtemp(join(tmpdir(), "repro-"));
  const f32 = join(dir, "b.gguf"), ad = join(dir, "a.gguf"), q8 = join(dir, "q.gguf");
  await pretrain({ layout: L, modelId: "x", outF32: f32, outQ8: q8, size: { nEmbd: Number(process.env.NEMBD ?? 32), nLayer: 1, nHead: 2, nFf: 64 }, examples: ex(varied(1000, 1), 0), epochs: 3, threads: 1, seed: 1 });
  await trainLora({ base: f32, out: ad, adapterId: "a", examples: ex(varied(500, 2), 5), epochs: 2, threads: 1, seed: 1 });
  const model = await loadClusterModel({ path: process.env.USEQ8 ? q8 : f32, threads: 1 });
  const prompts = varied(600, 42);
  for (const exact of [true, false]) {
    const s1 = await model.createScorer({ parallel: 1, exact, adapterPath: ad });
    const ref = [];
    for (const p of prompts) ref.push((await s1.tokenLogProbs([p]))[0]!);
    for (const [par, ctxs] of [[8, 1], [16, 2], [32, 2]]) {
      const s = await model.createScorer({ parallel: par, contexts: ctxs, exact, adapterPath: ad });
      const got = [];
      for (let i = 0; i < prompts.length; i += 256) got.push(...(await s.tokenLogProbs(prompts.slice(i, i + 256))));
      let bad = 0, nan = 0, worst = 0;
      got.forEach((lp, i) => { let w = 0; lp.forEach((v, t) => { if (!Number.isFinite(v)) nan++; w = Math.max(w, Math.abs(v - ref[i]![t]!)); }); if (w > 1e-5) bad++; worst = Math.max(worst, w); });
      console.log(JSON.stringify({ exact, par, ctxs, bad, nan, worst }));
      await s.dispose();
    }
    await s1.dispose();
  }
  await model.dispose();
}, 600000);
