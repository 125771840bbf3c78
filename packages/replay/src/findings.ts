import type { Results, StrategyResult } from "./results.js";

const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
const overlaps = (a: [number, number], b: [number, number]) => a[0] <= b[1] && b[0] <= a[1];

/** "a beats b on hit@1 (x vs y)", qualified when the 95 % CIs overlap. */
function compare(name: string, a: StrategyResult, other: string, b: StrategyResult): string {
  const [hi, lo, hiName, loName] = a["hit@1"] >= b["hit@1"] ? [a, b, name, other] : [b, a, other, name];
  const sure = overlaps(hi.ci["hit@1"], lo.ci["hit@1"]) ? "but the 95 % CIs overlap" : "with non-overlapping 95 % CIs";
  if (hi["hit@1"] === lo["hit@1"]) return `${name} and ${other} tie on hit@1 (${pct(a["hit@1"])})`;
  return `${hiName} beats ${loName} on hit@1 (${pct(hi["hit@1"])} vs ${pct(lo["hit@1"])}), ${sure}`;
}

/**
 * Plain statements about the paper's claims on this run, and about baselines that beat the model.
 * Every statement is derived from the figures, so it changes when they do.
 */
export function findings(strategies: Results["strategies"], ab?: Results["ab"], analyses?: Pick<Results["analyses"], "ceiling" | "versusBaselines">): string[] {
  const out: string[] = [];
  const all = Object.entries(strategies);
  const models = all.filter(([, s]) => s.kind === "model");
  const bases = all.filter(([, s]) => s.kind === "baseline");
  const best = (list: typeof all) => list.reduce<(typeof all)[number] | undefined>((m, e) => (!m || e[1]["hit@1"] > m[1]["hit@1"] ? e : m), undefined);
  const bestModel = best(models);
  const bestBase = best(bases);
  if (bestModel && bestBase) {
    if (bestBase[1]["hit@1"] > bestModel[1]["hit@1"])
      out.push(`A baseline without a model wins: ${compare(bestBase[0], bestBase[1], bestModel[0], bestModel[1])}. The model strategies do not earn their cost on this data.`);
    else out.push(`The best model strategy beats every baseline: ${compare(bestModel[0], bestModel[1], bestBase[0], bestBase[1])}.`);
    const beaten = models.filter(([, s]) => s["hit@1"] < bestBase[1]["hit@1"]).map(([n]) => n);
    if (beaten.length > 0 && beaten.length < models.length) out.push(`Baseline ${bestBase[0]} beats these model strategies on hit@1: ${beaten.join(", ")}.`);
  }
  const s = strategies;
  if (s.hybrid && s.finetune) out.push(`Hybrid vs fine-tuning alone: ${compare("hybrid", s.hybrid, "finetune", s.finetune)}.`);
  if (s.hybrid && s.rag) out.push(`Hybrid vs RAG alone: ${compare("hybrid", s.hybrid, "rag", s.rag)}.`);
  if (s.rag && s["rag-frozen"]) out.push(`RAG refreshed vs RAG frozen at the start (paper: refreshed wins): ${compare("rag", s.rag, "rag-frozen", s["rag-frozen"])}.`);
  if (s["rag-frozen"] && s.static) out.push(`RAG frozen vs no RAG (paper: RAG wins): ${compare("rag-frozen", s["rag-frozen"], "static", s.static)}.`);
  if (s.adaptive && s.hybrid) out.push(`Drift-adaptive vs calendar hybrid: ${compare("adaptive", s.adaptive, "hybrid", s.hybrid)}.`);
  for (const [name, x] of all.filter(([n]) => n.endsWith("-live"))) {
    const table = name.slice(0, -"-live".length);
    if (s[table]) out.push(`Live scoring vs the ${table} table refreshed on its cadence: ${compare(name, x, table, s[table])}.`);
  }
  // Counts, not seconds: findings are part of the reproducible results (measured seconds are in the table).
  const spend = (n: string, x: StrategyResult) => `${n} ran ${x.finetunes} fine-tunes on ${x.examples_trained} examples and ${x.refreshes} table refreshes`;
  if (s.hybrid && s.finetune) out.push(`Update work: ${spend("hybrid", s.hybrid)}; ${spend("finetune", s.finetune)}.`);
  const ceiling = analyses?.ceiling;
  for (const [name, share] of Object.entries(ceiling?.shares ?? {}).filter(([n]) => strategies[n]?.kind === "model"))
    out.push(`${name} reaches ${pct(share["hit@1"].value)} [${pct(share["hit@1"].ci[0])}, ${pct(share["hit@1"].ci[1])}] of ${ceiling!.reference}'s hit@1 and ${pct(share["hit@10"].value)} of its hit@10.`);
  for (const [name, against] of Object.entries(analyses?.versusBaselines ?? {})) {
    const lost = Object.entries(against).filter(([, d]) => !(d["hit@1"].ci[0] > 0 && d["hit@10"].ci[0] > 0));
    if (lost.length === 0) out.push(`${name} beats every baseline on hit@1 and hit@10 with the paired 95 % CI of each difference above 0.`);
    else
      out.push(
        `${name} does not surely beat ${lost.map(([b, d]) => `${b} (hit@1 ${pct(d["hit@1"].value)} [${pct(d["hit@1"].ci[0])}, ${pct(d["hit@1"].ci[1])}], hit@10 ${pct(d["hit@10"].value)} [${pct(d["hit@10"].ci[0])}, ${pct(d["hit@10"].ci[1])}])`).join(", ")}.`,
      );
  }
  if (ab) {
    const d = ab.difference;
    const sig = d.ci[0] > 0 || d.ci[1] < 0 ? "significant at 95 %" : "not significant at 95 % (the CI contains 0)";
    out.push(`Simulated A/B: ${d.treatment} - ${d.control} acceptance = ${pct(d.value)} [${pct(d.ci[0])}, ${pct(d.ci[1])}], ${sig}.`);
  }
  return out;
}
