import type { CurvePoint } from "./results.js";
import type { Outcome } from "./scoreboard.js";

/** hit@1 and hit@10 per evaluation period [start + i * periodMs, start + (i + 1) * periodMs); empty periods kept with n = 0. */
export function curve(outcomes: readonly Outcome[], start: number, end: number, periodMs: number): CurvePoint[] {
  const periods = Math.max(1, Math.ceil((end - start) / periodMs));
  const n = new Array<number>(periods).fill(0);
  const h1 = new Array<number>(periods).fill(0);
  const h10 = new Array<number>(periods).fill(0);
  for (const o of outcomes) {
    const i = Math.min(periods - 1, Math.floor((o.ts - start) / periodMs));
    if (i < 0) continue;
    n[i]!++;
    if (o.rank === 1) h1[i]!++;
    if (o.rank >= 1 && o.rank <= 10) h10[i]!++;
  }
  return n.map((count, i) => ({
    start: start + i * periodMs,
    n: count,
    "hit@1": count ? h1[i]! / count : 0,
    "hit@10": count ? h10[i]! / count : 0,
  }));
}
