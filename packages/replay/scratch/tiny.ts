import { runReplay, modelLoop } from "../src/index.js";
const t0 = performance.now();
const out = await runReplay({
  dataset: { kind: "synthetic", size: "tiny" },
  strategies: (process.argv[2] ?? "static,finetune,rag,hybrid,adaptive,rag-frozen").split(",") as any,
  seed: 1, timeScale: 1, finetuneEveryDays: 4, refreshEveryDays: 1,
  loop: modelLoop({ size: "tiny", pretrainEpochs: 2, loraEpochs: 2, threads: 1 }),
  reportsDir: "/tmp/rp", runId: "tiny-scratch", ab: { arms: ["hybrid", "finetune"], users: 300 },
  onProgress: (e) => { if (e.phase !== "replay" || e.done === e.total) console.error(((performance.now()-t0)/1000).toFixed(1), e.phase, e.done, e.total ?? "", JSON.stringify(e.info ?? {})); },
});
console.log(out.table);
console.log(JSON.stringify(out.results.timings), JSON.stringify(out.results.config.tableMisses));
for (const [n, s] of Object.entries(out.results.strategies)) console.log(n, s.finetunes, s.refreshes, s.examples_trained);
console.log(JSON.stringify(out.results.ab));
for (const [n, s] of Object.entries(out.results.strategies)) for (const u of s.updates ?? []) console.log(n, new Date(u.at).toISOString(), u.action, u.promoted, u.table, u.adapter, u.snapshot);
