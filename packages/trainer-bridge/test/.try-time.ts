import { readFileSync } from "node:fs";
import { trainLora } from "../src/index.js";
import { loadClusterModel } from "@freshrec/scorer";
const D = "/tmp/loop-811Vj5/models/artefacts";
const base = D + "/base-20261125T185740Z-8420a9";
const lines = readFileSync(D + "/adapter-20261125T185812Z-26a8bc/train.jsonl", "utf8").trim().split("\n").map((l) => JSON.parse(l));
let t = Date.now();
const r = await trainLora({ examples: lines.map((l) => ({ tokens: l.tokens, target: l.target })), base: base + "/base-f32.gguf", out: "/tmp/x-adapter.gguf", adapterId: "x", epochs: 3, batch: 32, lr: 5e-3, rank: 4, threads: 2 });
console.log("lora", Date.now() - t, JSON.stringify(r.metrics));
const prompts = lines.slice(0, 134).map((l) => ({ history: l.history, rag: l.rag }));
for (const withAdapterFirst of [false, true]) {
  const m = await loadClusterModel({ path: base + "/base-q8_0.gguf", threads: 2 });
  t = Date.now();
  if (withAdapterFirst) { const s = await m.createScorer({ adapterPath: "/tmp/x-adapter.gguf" }); await s.scoreNext(prompts); await s.dispose(); console.log("adapter scoring", Date.now() - t); }
  t = Date.now();
  const s = await m.createScorer({});
  const out = await s.scoreNext(prompts);
  console.log("base scoring", Date.now() - t, "top1 of first 10:", out.slice(0, 10).map((x) => x[0]!.clusterId).join(","));
  await s.dispose(); await m.dispose();
}
