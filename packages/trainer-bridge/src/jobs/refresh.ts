import { historyKey, parseHistoryKey, type ClusterId, type LayoutParams } from "@freshrec/core";
import { readGgufMetadata } from "@freshrec/scorer";
import { evaluateGate } from "../gates/gates.js";
import type { ArtefactRecord } from "../registry/schemas.js";
import { days, loadForScoring, scoreOptions, type JobContext } from "./context.js";
import { scoreAll, tableHoldout } from "./evaluate.js";
import { activeBase } from "./finetune.js";
import { timed } from "./measure.js";
import { trainingSetConfig } from "./training-data.js";

/** Every ordered history of k distinct clusters, or undefined when there are more than `limit`. */
function allKeys(layout: LayoutParams, limit: number): string[] | undefined {
  let count = 1;
  for (let i = 0; i < layout.k; i++) count *= layout.nClusters - i;
  if (count > limit) return undefined;
  const out: string[] = [];
  const walk = (prefix: ClusterId[]) => {
    if (prefix.length === layout.k) return void out.push(historyKey(prefix));
    for (let c = 0; c < layout.nClusters; c++) if (!prefix.includes(c)) walk([...prefix, c]);
  };
  walk([]);
  return out;
}

/**
 * Table refresh job: bulk-scores history keys with the active base + adapter and (when `rag`) a fresh RAG
 * snapshot, stores the top-n clusters per key with probabilities as a LanceDB prediction table whose id and
 * meta record base, adapter, snapshot and time, gates it against the active table on the last holdout days,
 * publishes its registry record and promotes it (one pointer swap) when it passes.
 */
export async function refreshTable(ctx: JobContext, opts: { rag?: boolean } = {}): Promise<ArtefactRecord> {
  const rag = opts.rag ?? true;
  const { record: base } = activeBase(ctx, "refresh");
  const active = ctx.registry.active();
  const adapter = active.adapter ? ctx.registry.get(active.adapter) : undefined;
  const { layout } = await readGgufMetadata(base.path!);
  const holdoutStart = ctx.asOf - days(trainingSetConfig(ctx).holdoutDays);
  const supportStart = ctx.asOf - days(ctx.config.tableSupportDays);
  const recent = await ctx.store.transitions({ start: Math.min(supportStart, holdoutStart), end: ctx.asOf });
  const every = allKeys(layout, ctx.config.allKeysUpTo);
  const keys = every ?? [...new Set(recent.filter((t) => t.ts >= supportStart).map((t) => historyKey(t.history)))].sort();
  const snapshot = rag ? await ctx.store.snapshot({ start: ctx.asOf - days(ctx.config.ragWindowDays), end: ctx.asOf, n: layout.ragSlots }) : undefined;

  const scored = await timed(async () => {
    const model = await loadForScoring(ctx, base.path!);
    try {
      const { batch, onProgress, contexts, parallel } = scoreOptions(ctx);
      const scorer = await model.createScorer({ contexts, parallel, ...(adapter?.path ? { adapterPath: adapter.path, adapterId: adapter.id } : {}) });
      const prompts = keys.map((key) => {
        const history = parseHistoryKey(key);
        const hit = snapshot?.lookup(history);
        return { history, rag: hit && hit.items.length ? hit.items.map((i) => i.clusterId) : null };
      });
      return await scoreAll(scorer, prompts, batch, "table", onProgress);
    } finally {
      await model.dispose();
    }
  });
  const rows = keys.map((key, i) => {
    const top = scored.value[i]!.slice(0, ctx.config.tableTopN);
    return { key, clusters: top.map((x) => x.clusterId), probs: top.map((x) => x.p) };
  });

  const { id } = ctx.registry.stage("table");
  const lineage = { baseId: base.id, adapterId: adapter?.id ?? null, snapshotId: snapshot?.id ?? null, createdAt: ctx.asOf };
  await ctx.store.putPredictionTable({
    id,
    meta: { baseId: lineage.baseId, adapterId: lineage.adapterId ?? "", snapshotId: lineage.snapshotId ?? "", createdAt: ctx.asOf, rag: rag ? 1 : 0 },
    rows,
  });

  // Both tables answer the same last days. The candidate's RAG window covers them, so this gate catches broken
  // or regressed tables rather than measuring true future accuracy (the replay harness does that).
  const holdout = recent.filter((t) => t.ts >= holdoutStart);
  const candidate = tableHoldout(rows, holdout, layout.nClusters);
  const activeRows = active.table ? (await ctx.store.predictionTable(active.table))?.rows : undefined;
  const incumbent = activeRows ? tableHoldout(activeRows, holdout, layout.nClusters) : undefined;
  const gate = evaluateGate(candidate, incumbent, ctx.config.gate);
  ctx.registry.publish({
    id,
    kind: "table",
    gate,
    manifest: {
      tableId: id,
      lineage,
      rag,
      keys: rows.length,
      allKeys: every !== undefined,
      wallS: scored.wallS,
      cpuS: scored.cpuS,
      holdout: candidate,
      incumbent: { id: active.table, holdout: incumbent ?? null },
      asOf: ctx.asOf,
    },
  });
  if (gate.passed && ctx.autoPromote !== false) ctx.registry.promote(id, ctx.by);
  return ctx.registry.get(id);
}
