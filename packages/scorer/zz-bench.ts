import { existsSync, mkdirSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { clusterToToken, mulberry32, promptTokens, type LayoutParams } from "@freshrec/core";
import { loadClusterModel, type Prompt } from "./src/index.js";
import { DEFAULT_MODEL_SIZE, pretrain, trainLora } from "../trainer-bridge/src/index.js";

const L: LayoutParams = { k: 2, ragSlots: 3, nClusters: 500 };
function prompts(n: number, seed: number): Prompt[] {
  const rnd = mulberry32(seed);
  const c = () => Math.floor(rnd() * L.nClusters);
  return Array.from({ length: n }, () => ({ history: [c(), c()], rag: rnd() < 0.2 ? null : [c(), c(), c()] }));
}
const ex = (ps: Prompt[], s: number) => ps.map((p) => ({ tokens: promptTokens(p.history, p.rag, L), target: clusterToToken((p.history[1]! * 7 + 3 + s) % L.nClusters) }));
const D = "/tmp/scorer-work/models";
mkdirSync(D, { recursive: true });
if (!existsSync(`${D}/a.gguf`)) {
  await pretrain({ layout: L, modelId: "b", outF32: `${D}/f32.gguf`, outQ8: `${D}/q8.gguf`, size: DEFAULT_MODEL_SIZE, examples: ex(prompts(4000, 1), 0), epochs: 1, threads: 1, seed: 1 });
  await trainLora({ base: `${D}/f32.gguf`, out: `${D}/a.gguf`, adapterId: "a", examples: ex(prompts(2000, 3), 5), epochs: 1, threads: 1, seed: 1 });
}
const ps = prompts(8000, 2);
const model = await loadClusterModel({ path: `${D}/q8.gguf`, threads: 1 });
const mode = process.argv[2] ?? "all";
if (mode === "all" || mode === "single") {
  const s = await model.createScorer({ adapterPath: `${D}/a.gguf`, parallel: 1 });
  const t: number[] = [];
  for (const p of ps.slice(0, 2000)) { const a = performance.now(); await s.scoreNext([p]); t.push(performance.now() - a); }
  t.sort((a, b) => a - b);
  console.log("single p50", t[1000]!.toFixed(3), "p99", t[1980]!.toFixed(3));
  await s.dispose();
}
for (const [par, ctxs] of [[32, 1], [32, 2]] as const) {
  if (mode !== "all" && mode !== `bulk${ctxs}`) continue;
  const s = await model.createScorer({ adapterPath: `${D}/a.gguf`, parallel: par, contexts: ctxs });
  const a = performance.now(); const c0 = process.cpuUsage();
  await s.scoreNext(ps);
  const c = process.cpuUsage(c0);
  console.log(`bulk par${par} ctx${ctxs}`, (ps.length / ((performance.now() - a) / 1000)).toFixed(0), "prompts/s", ((c.user + c.system) / ps.length).toFixed(0), "cpu-us/prompt");
  await s.dispose();
}
await model.dispose();
