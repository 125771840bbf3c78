import { DAY_MS, driftBetween } from "@freshrec/core";
import { tinyWorldStore } from "./loop-fixtures.js";
const { store, startMs } = await tinyWorldStore({ driftDay: 18, world: { drift: 0.1, users: 250 } });
const trained = await store.transitions({ start: startMs, end: startMs + 10 * DAY_MS });
for (const r of [4, 6]) for (const ms of [3]) {
  const row = [];
  for (let d = 12; d <= 30; d += 2) {
    const t = startMs + d * DAY_MS;
    const recent = await store.transitions({ start: t - r * DAY_MS, end: t });
    const before = await store.transitions({ start: t - 2 * r * DAY_MS, end: t - r * DAY_MS });
    const a = driftBetween(trained, recent, { minSupport: ms });
    const b = driftBetween(before, recent, { minSupport: ms });
    row.push(`d${d}:${a.mean.toFixed(2)}/${a.keys} ${b.mean.toFixed(2)}/${b.keys}`);
  }
  console.log(`r=${r} ms=${ms}`, row.join("  "));
}
await store.close();
