import { loadClusterModel } from "@freshrec/scorer";
import { openStore } from "@freshrec/retriever";
import { DAY_MS } from "@freshrec/core";
const m = await loadClusterModel({ path: "/tmp/loop-qBp990/models/artefacts/base-20261125T190245Z-527794/base-q8_0.gguf", threads: 1 });
const store = await openStore("/tmp/loop-qBp990/store");
const asOf = 1705536000000 + DAY_MS;
const snap = await store.snapshot({ start: asOf - 7 * DAY_MS, end: asOf, n: 3 });
const prompts = Array.from({ length: 14 }, (_, i) => { const h = [0, i + 1]; const hit = snap.lookup(h); return { history: h, rag: hit && hit.items.length ? hit.items.map((x) => x.clusterId) : null }; });
for (const opts of [{ parallel: 1 }, { exact: true }, { exact: true, contexts: 2 }, { parallel: 1, contexts: 2 }]) {
  const s = await m.createScorer(opts);
  const out = await s.scoreNext(prompts);
  console.log(JSON.stringify(opts), out.map((r, i) => JSON.stringify(prompts[i]!.rag) + ":" + r[0]!.clusterId + "/" + r[0]!.p.toFixed(3)).join(" "));
  const singles = [];
  for (const p of prompts) singles.push((await s.scoreNext([p]))[0]![0]!.clusterId);
  console.log("singles", singles.join(","));
  await s.dispose();
}
await m.dispose(); await store.close();
