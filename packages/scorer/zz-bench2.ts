import { performance } from "node:perf_hooks";
import { mulberry32, type LayoutParams } from "@freshrec/core";
import { loadClusterModel as loadNew, type Prompt } from "./src/index.js";
import { loadClusterModel as loadOld } from "./zz-old/cluster-model.js";
const L: LayoutParams = { k: 2, ragSlots: 3, nClusters: 500 };
function prompts(n: number, seed: number): Prompt[] {
  const rnd = mulberry32(seed);
  const c = () => Math.floor(rnd() * L.nClusters);
  return Array.from({ length: n }, () => ({ history: [c(), c()], rag: rnd() < 0.2 ? null : [c(), c(), c()] }));
}
const D = "/tmp/scorer-work/models";
const ps = prompts(8000, 2);
const res: Record<string, number[]> = {};
const add = (k: string, v: number) => (res[k] ??= []).push(v);
for (let rep = 0; rep < 3; rep++) {
  for (const [name, load] of [["old", loadOld], ["new", loadNew]] as const) {
    const model = await load({ path: `${D}/q8.gguf`, threads: 1 });
    const s = await model.createScorer({ adapterPath: `${D}/a.gguf`, parallel: 1 });
    const t: number[] = [];
    for (const p of ps.slice(0, 1000)) { const a = performance.now(); await s.scoreNext([p]); t.push(performance.now() - a); }
    t.sort((a, b) => a - b);
    add(`${name} single p50 ms`, t[500]!); add(`${name} single p99 ms`, t[990]!);
    await s.dispose();
    for (const ctxs of [1, 2]) {
      const b = await model.createScorer({ adapterPath: `${D}/a.gguf`, parallel: 32, contexts: ctxs });
      const a = performance.now(); const c0 = process.cpuUsage();
      await b.scoreNext(ps);
      const c = process.cpuUsage(c0);
      add(`${name} bulk ctx${ctxs} prompts/s`, ps.length / ((performance.now() - a) / 1000));
      add(`${name} bulk ctx${ctxs} cpu-us/prompt`, (c.user + c.system) / ps.length);
      await b.dispose();
    }
    await model.dispose();
  }
}
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(30), v.map((x) => x.toFixed(x < 10 ? 3 : 0)).join("  "));
