import { performance } from "node:perf_hooks";
import { clusterDistribution } from "./src/distribution.js";
const V = 508;
const flat: number[] = [];
const lg = Array.from({ length: V }, (_, i) => Math.sin(i * 7.3) * 3);
const order = lg.map((l, i) => [l, i] as const).sort((a, b) => b[0] - a[0]);
for (const [l, i] of order) flat.push(i, Math.exp(l) / 100);
function revive(a: number[]) { const m = new Map<number, number>(); for (let i = 1; i < a.length; i += 2) m.set(a[i - 1]!, a[i]!); return m; }
for (let rep = 0; rep < 3; rep++) {
  let t = performance.now();
  for (let i = 0; i < 20000; i++) revive(flat.slice());
  console.log("copy+revive us", ((performance.now() - t) / 20000 * 1000).toFixed(1));
  const m = revive(flat);
  t = performance.now();
  for (let i = 0; i < 20000; i++) clusterDistribution(m, [3, 9], 500);
  console.log("clusterDistribution us", ((performance.now() - t) / 20000 * 1000).toFixed(1));
}
