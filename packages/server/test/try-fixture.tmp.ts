import { buildModelFixture } from "./model-fixture.js";
import { openRegistry } from "@freshrec/trainer-bridge";
const t0 = Date.now();
let last = "";
const f = await buildModelFixture((e) => { if (e.phase !== last) { last = e.phase; console.log(((Date.now() - t0) / 1000).toFixed(1), e.phase, e.done, e.total); } });
console.log(Date.now() - t0, JSON.stringify(f));
const r = openRegistry(f.modelsDir);
console.log(JSON.stringify(r.active()));
for (const x of r.list()) console.log(x.id, x.kind, x.status, x.path, JSON.stringify(x.manifest).slice(0, 400));
