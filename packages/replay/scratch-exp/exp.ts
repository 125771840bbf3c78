import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DAY_MS, FIRST_CLUSTER_TOKEN, historyKey, promptTokens, type Transition } from "@freshrec/core";
import { buildTrainingSet, exampleTokens, forward, pretrain, rollingRagSource, trainLora } from "@freshrec/trainer-bridge";
import { loadDataset } from "../src/dataset.js";
import { planReplay } from "../src/replay.js";
import { scaled } from "../src/config.js";

const P = JSON.parse(process.env.P ?? "{}");
const which = P.data ?? "tiny";
const d = which === "ml" ? await loadDataset({ kind: "movielens", dir: "../../../shared/datasets/movielens-latest-small" }, 1) : await loadDataset({ kind: "synthetic", size: which }, 1);
const c = planReplay(d, { strategies: [], seed: 1 });
const sc = scaled(c);
const trs = d.transitions;
const layout = { k: 2, ragSlots: 3, nClusters: d.clusters.length };
const first = trs[0]!.ts;
const ragMs = sc.recentWindowMs;
const tsCfg = { holdoutDays: 3 * c.timeScale, ragWindowDays: ragMs / DAY_MS, seed: 1, ...(P.ts ?? {}) };
const set = await buildTrainingSet({ transitions: trs.filter((t) => t.ts < c.testStart), window: { start: first, end: c.testStart }, rag: rollingRagSource(trs, { windowMs: ragMs, n: 3 }), layout, config: tsCfg });
console.log("manifest", JSON.stringify(set.manifest.counts));

const test = trs.filter((t) => t.ts >= c.testStart && t.ts < c.testEnd).slice(0, P.maxTest ?? 100000);
// point-in-time fresh rag for the test
const rs = rollingRagSource(trs, { windowMs: ragMs, n: 3 });
const testRag: number[][] = [];
for (const t of test) testRag.push(await rs.top(t.history, t.ts));
// frozen rag at testStart
const rs2 = rollingRagSource(trs, { windowMs: ragMs, n: 3 });
const frozenRag: number[][] = [];
for (const t of test) frozenRag.push(await rs2.top(t.history, c.testStart));

function markovTop1(train: Transition[], tst: Transition[]) {
  const m = new Map<string, Map<number, number>>();
  const pop = new Map<number, number>();
  for (const t of train) { const k = historyKey(t.history); if (!m.has(k)) m.set(k, new Map()); m.get(k)!.set(t.next, (m.get(k)!.get(t.next) ?? 0) + 1); pop.set(t.next, (pop.get(t.next) ?? 0) + 1); }
  const rank = (x?: Map<number, number>) => x ? [...x].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([c]) => c) : [];
  let hit = 0;
  for (const t of tst) { const top = [...rank(m.get(historyKey(t.history))), ...rank(pop)].find((cc) => !t.history.includes(cc)); if (top === t.next) hit++; }
  return hit / tst.length;
}
const preAll = trs.filter((t) => t.ts < c.testStart);
console.log("markov(all pre) test r@1", markovTop1(preAll, test).toFixed(4), "markov(train only)", markovTop1(set.train.map(e=>({history:e.history,next:e.next,ts:e.ts})), test).toFixed(4));
let rsHit = 0; test.forEach((t, i) => { if ((testRag[i]!.filter(x=>!t.history.includes(x))[0]) === t.next) rsHit++; });
console.log("fresh rag r1 test r@1", (rsHit / test.length).toFixed(4));
let fzHit = 0; test.forEach((t, i) => { if ((frozenRag[i]!.filter(x=>!t.history.includes(x))[0]) === t.next) fzHit++; });
console.log("frozen rag r1 test r@1", (fzHit / test.length).toFixed(4));
let hoHit = 0; set.holdout.forEach((e) => { if ((e.rag ?? []).filter(x=>!e.history.includes(x))[0] === e.next) hoHit++; });
console.log("holdout rag r1 r@1", (hoHit / set.holdout.length).toFixed(4));

const dir = mkdtempSync(join(tmpdir(), "exp-"));
const t0 = performance.now();
const pre = await pretrain({ examples: set.train.map((e) => exampleTokens(e, layout)), valExamples: set.val.map((e) => exampleTokens(e, layout)), layout, modelId: "exp", outF32: join(dir, "b.gguf"), threads: 2, seed: 1, ...(P.pre ?? {}) });
console.log("pretrain s", ((performance.now() - t0) / 1000).toFixed(1), JSON.stringify(pre.epochs.map((e) => [e.epoch, +e.train_loss.toFixed(3), e.val_loss && +e.val_loss.toFixed(3), e.val_acc && +e.val_acc.toFixed(3)])), "steps", pre.metrics.steps, "best", pre.metrics.best_epoch);

async function evalModel(label: string, adapter?: string) {
  for (const [name, rag] of [["fresh", testRag], ["none", test.map(() => null)], ["frozen", frozenRag]] as const) {
    const prompts = test.map((t, i) => ({ tokens: promptTokens(t.history, rag[i] && rag[i]!.length ? rag[i]! : null, layout) }));
    const r = await forward({ base: join(dir, "b.gguf"), ...(adapter ? { adapter } : {}), prompts, logits: true, threads: 2 });
    let hit = 0, copy = 0;
    test.forEach((t, i) => {
      const lg = r.rows[i]!.logits!;
      let best = -1, bv = -Infinity;
      for (let cc = 0; cc < layout.nClusters; cc++) { if (t.history.includes(cc)) continue; const v = lg[FIRST_CLUSTER_TOKEN + cc]!; if (v > bv) { bv = v; best = cc; } }
      if (best === t.next) hit++;
      const r1 = rag[i]?.filter((x) => !t.history.includes(x))[0];
      if (r1 !== undefined && best === r1) copy++;
    });
    console.log(label, name, "test r@1", (hit / test.length).toFixed(4), "copies r1", (copy / test.length).toFixed(3));
  }
}
await evalModel("base");
if (P.lora) {
  const t1 = performance.now();
  const lr = await trainLora({ examples: set.train.map((e) => exampleTokens(e, layout)), valExamples: set.val.map((e) => exampleTokens(e, layout)), base: join(dir, "b.gguf"), out: join(dir, "a.gguf"), adapterId: "a", threads: 2, seed: 1, ...P.lora });
  console.log("lora s", ((performance.now() - t1) / 1000).toFixed(1), JSON.stringify(lr.epochs.map((e) => [e.epoch, +e.train_loss.toFixed(3), e.val_loss && +e.val_loss.toFixed(3), e.val_acc && +e.val_acc.toFixed(3)])));
  await evalModel("lora", join(dir, "a.gguf"));
}
if (P.diag) {
  const fr = await forward({ base: join(dir, "b.gguf"), prompts: set.train.map((e) => exampleTokens(e, layout)), threads: 2 });
  console.log("forward on train: recall@1", fr.recallAt1, "loss", fr.loss);
  const fh = await forward({ base: join(dir, "b.gguf"), prompts: set.holdout.map((e) => exampleTokens(e, layout)), threads: 2 });
  console.log("forward on holdout: recall@1", fh.recallAt1, "loss", fh.loss);
  const hist = new Map<number, number>(); for (const e of set.train) hist.set(e.next, (hist.get(e.next) ?? 0) + 1);
  console.log("most common next share", Math.max(...hist.values()) / set.train.length);
  let inRag = 0; for (const e of set.train) if (e.rag && e.rag[0] === e.next) inRag++;
  console.log("train r1==next share", inRag / set.train.length);
}
