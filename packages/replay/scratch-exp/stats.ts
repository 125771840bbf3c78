import { loadDataset } from "../src/dataset.js";
import { planReplay } from "../src/replay.js";
import { scaled } from "../src/config.js";
import { DAY_MS } from "@freshrec/core";
const which = process.argv[2] ?? "tiny";
const d = which === "ml" ? await loadDataset({ kind: "movielens", dir: "../../../shared/datasets/movielens-latest-small" }, 1) : await loadDataset({ kind: "synthetic", size: which }, 1);
const c = planReplay(d, { strategies: [], seed: 1 });
const sc = scaled(c);
const trs = d.transitions;
const first = trs[0]!.ts, last = trs[trs.length-1]!.ts;
console.log({ clusters: d.clusters.length, transitions: trs.length, spanDays: (last-first)/DAY_MS, testStartDay: (c.testStart-first)/DAY_MS, timeScale: c.timeScale,
  recentWindowDays: sc.recentWindowMs/DAY_MS, finetuneWindowDays: sc.finetuneWindowMs/DAY_MS, refreshDays: sc.refreshEveryMs/DAY_MS, ftEveryDays: sc.finetuneEveryMs/DAY_MS,
  holdoutDays: 3*c.timeScale, pre: trs.filter(t=>t.ts<c.testStart).length, test: trs.filter(t=>t.ts>=c.testStart && t.ts<c.testEnd).length,
  keys: new Set(trs.map(t=>t.history.join(","))).size });
