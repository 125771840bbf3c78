import { buildModelFixture } from "/work/main/packages/server/test/model-fixture.ts";
import { openRegistry } from "@freshrec/trainer-bridge";
const t0 = Date.now();
const f = await buildModelFixture();
console.log(Date.now() - t0, f);
const r = openRegistry(f.modelsDir);
console.log(JSON.stringify(r.active()), r.list().map((x) => [x.id, x.kind, x.status, x.path, JSON.stringify(x.manifest).slice(0, 300)]));
