import { createSyntheticWorld, streamTransitions, windowedDrift, DAY_MS } from "./src/index.js";
for (const size of (process.argv[2] ?? "tiny,default").split(",")) {
  const extra = process.argv[3] ? JSON.parse(process.argv[3]) : {};
  const t = Date.now();
  const w = createSyntheticWorld(size as any, extra);
  const clusterOf = new Map(w.items.map((i) => [i.itemId, i.clusterId!]));
  let n = 0, neg = 0;
  const counted = (function* () { for (const e of w.events()) { n++; if (e.signal < 4) neg++; yield e; } })();
  const d = windowedDrift(streamTransitions(counted, (id) => clusterOf.get(id), { k: 2 }), { windowMs: 30 * DAY_MS });
  console.log(size, Date.now() - t, "ms", n, "events", neg, "neg", d.transitions, "transitions", JSON.stringify(d.overall), d.pairs.map(p=>`${p.mean.toFixed(3)}/${p.keys}`).join(" "));
}
