import { it } from "vitest";
import { mulberry32 } from "@freshrec/core";
import { loadClusterModel, type Prompt } from "../src/index.js";
import { LAYOUT, trainTinyModels, logSoftmax } from "./fixtures.js";
import { forward } from "../../trainer-bridge/src/index.js";
import { promptTokens } from "@freshrec/core";
function variedPrompts(n: number, seed: number): Prompt[] {
  const rnd = mulberry32(seed);
  const c = () => Math.floor(rnd() * LAYOUT.nClusters);
  const list = (max: number) => Array.from({ length: Math.floor(rnd() * (max + 1)) }, c);
  return Array.from({ length: n }, () => ({ history: list(4), rag: rnd() < 0.15 ? null : list(5) }));
}
it("debug", async () => {
  const m = await trainTinyModels();
  const model = await loadClusterModel({ path: m.f32 });
  const prompts = variedPrompts(240, 21);
  const opts = { exact: true, adapterPath: process.env.NOAD ? undefined : m.adapter };
  for (let rep = 0; rep < Number(process.env.REPS ?? 6); rep++) {
    const s1 = await model.createScorer({ ...opts, parallel: 1 });
    const ref = [];
    for (const p of prompts) ref.push((await s1.tokenLogProbs([p]))[0]!);
    await s1.dispose();
    for (const [par, ctxs] of [[8, 1], [16, 2]]) {
      const s = await model.createScorer({ ...opts, parallel: par, contexts: ctxs });
      const got = await s.tokenLogProbs(prompts);
      await s.dispose();
      const bad: number[] = [];
      got.forEach((lp, i) => { let w = 0; lp.forEach((v, t) => { w = Math.max(w, Math.abs(v - ref[i]![t]!)); }); if (!(w <= 1e-5)) bad.push(i); });
      if (bad.length) {
        const fw = await forward({ base: m.f32, ...(opts.adapterPath ? { adapter: opts.adapterPath } : {}), prompts: bad.slice(0, 3).map((i) => ({ tokens: promptTokens(prompts[i]!.history, prompts[i]!.rag, LAYOUT) })), logits: true });
        fw.rows.forEach((row, j) => { const lp = logSoftmax(row.logits!); const i = bad[j]!; let dr = 0, dg = 0; for (let t = 8; t < lp.length; t++) { dr = Math.max(dr, Math.abs(lp[t]! - ref[i]![t]!)); dg = Math.max(dg, Math.abs(lp[t]! - got[i]![t]!)); } console.log("truth vs ref", dr.toFixed(6), "truth vs batched", dg.toFixed(6)); });
      }
      if (bad.length) console.log(JSON.stringify({ rep, par, ctxs, nbad: bad.length, first: bad.slice(0, 8), p: bad.slice(0, 3).map((i) => prompts[i]) }));
    }
  }
  await model.dispose();
}, 600000);
