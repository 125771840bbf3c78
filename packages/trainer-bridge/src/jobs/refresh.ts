import { historyKey, parseHistoryKey, type ClusterId, type LayoutParams, type Transition } from "@freshrec/core";
import { blendWithRag, MODEL_ALONE, popularityOf, ragPrompt, type BlendFit, type BlendWeights, type Scorer } from "@freshrec/scorer";
import { evaluateGate } from "../gates/gates.js";
import type { TableMeta, TableRecord } from "@freshrec/registry";
import { baseLayout, days, JobError, loadForScoring, scoreOptions, type JobContext } from "./context.js";
import { scoreAll, tableHoldout } from "./evaluate.js";
import { activeBase } from "./finetune.js";
import { timed } from "./measure.js";
import { fitLiveBlend, fitRagBlend } from "./rag-blend-fit.js";
import { trainingSetConfig } from "./training-data.js";
import { tableHoldoutStart } from "./windows.js";

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

/** Fewest past transitions a fitted blend may rest on; below it the table serves the model's own ranking. */
const MIN_BLEND_CASES = 200;

interface RagBlendChoice {
  weights: BlendWeights;
  fit?: BlendFit;
  reason: string;
  /** Live answers' weights (fresh retrieval); absent: the table's. */
  live?: { weights: BlendWeights; fit?: BlendFit };
}

/** The blend weights of this refresh: the configured ones, or fitted on the last holdout days (rag-blend-fit.ts). */
async function ragBlendFor(
  ctx: JobContext,
  scorer: Scorer,
  transitions: readonly Transition[],
  holdoutStart: number,
  ragItems: number,
  layout: LayoutParams,
): Promise<RagBlendChoice> {
  if (ctx.config.ragBlend !== "fit") return { weights: ctx.config.ragBlend, reason: "configured" };
  const holdout = transitions.filter((t) => t.ts >= holdoutStart);
  if (holdout.length < MIN_BLEND_CASES) return { weights: MODEL_ALONE, reason: `fit skipped: ${holdout.length} holdout transitions < ${MIN_BLEND_CASES}` };
  const windowMs = days(ctx.config.ragWindowDays);
  const windowStart = holdoutStart - windowMs;
  const lagged = await ctx.store.snapshot({ start: windowStart, end: holdoutStart, n: ragItems });
  const popularity = popularityOf(recentNexts(transitions, windowStart, holdoutStart), layout.nClusters);
  const { batch, onProgress } = scoreOptions(ctx);
  const fit = await fitRagBlend({ scorer, holdout, snapshot: lagged, popularity, layout, batch, ...(onProgress ? { onProgress } : {}) });
  const live = await fitLiveBlend({ scorer, transitions, holdoutStart, windowMs, popularity, layout, batch, ...(onProgress ? { onProgress } : {}) });
  return {
    weights: fit.weights,
    fit,
    reason: `fitted on ${fit.cases} holdout transitions with retrieval as of ${new Date(holdoutStart).toISOString()}; live weights on ${live.cases} with retrieval just before each`,
    live: { weights: live.weights, fit: live },
  };
}

/** What a table's meta carries of its blend: the table's and live answers' weights and, when used, the popularity vector both mix in. */
function blendMeta(b: RagBlendChoice, popularity: number[]): Pick<TableMeta, "ragBlend" | "popularityBlend" | "liveRagBlend" | "livePopularityBlend" | "popularity"> {
  const live = b.live?.weights ?? b.weights;
  const popular = b.weights.popularity > 0 || live.popularity > 0;
  return { ragBlend: b.weights.rag, popularityBlend: b.weights.popularity, liveRagBlend: live.rag, livePopularityBlend: live.popularity, ...(popular ? { popularity: JSON.stringify(popularity) } : {}) };
}

function* recentNexts(transitions: readonly Transition[], start: number, end: number): Iterable<number> {
  for (const t of transitions) if (t.ts >= start && t.ts < end) yield t.next;
}

/**
 * Table refresh job: bulk-scores history keys with the active base + adapter and (when `rag`) a fresh RAG
 * snapshot, mixes the snapshot's successor counts and recent popularity into the model's scores with the blend
 * weights (fitted on the last holdout days by default), stores the top-n clusters per key with probabilities as a LanceDB prediction table whose id and
 * meta record base, adapter, snapshot and time, gates it against the active table on the last holdout days,
 * publishes its registry record and promotes it (one pointer swap) when it passes.
 */
export async function refreshTable(ctx: JobContext, opts: { rag?: boolean; adapter?: string } = {}): Promise<TableRecord> {
  const rag = opts.rag ?? true;
  const active = ctx.registry.active();
  // A candidate adapter's table (for an A/B on the table path) is scored on that adapter's own base, and is never
  // promoted by the job: the served table would then disagree with the served adapter.
  const adapter = opts.adapter ? ctx.registry.getOf("adapter", opts.adapter) : active.adapter ? ctx.registry.getOf("adapter", active.adapter) : undefined;
  const base = opts.adapter ? ctx.registry.getOf("base", adapter!.manifest.baseId) : activeBase(ctx, "refresh").record;
  if (!base.path) throw new JobError("refresh", `base ${base.id} has no model file`);
  const layout = await baseLayout(ctx, base);
  const { holdoutDays, minHoldoutTransitions } = trainingSetConfig(ctx);
  const holdoutStart = await tableHoldoutStart(ctx, holdoutDays, minHoldoutTransitions);
  const supportStart = ctx.asOf - days(ctx.config.tableSupportDays);
  const ragStart = ctx.asOf - days(ctx.config.ragWindowDays);
  // Reaches back far enough for the table's keys, its holdout and, with RAG, the retrieval window before that holdout (the blend fit).
  const recent = await ctx.store.transitions({ start: Math.min(supportStart, rag ? holdoutStart - days(ctx.config.ragWindowDays) : holdoutStart), end: ctx.asOf });
  const every = allKeys(layout, ctx.config.allKeysUpTo);
  const keys = every ?? [...new Set(recent.filter((t) => t.ts >= supportStart).map((t) => historyKey(t.history)))].sort();
  // More successors than the prompt's slots: the blend weighs every retrieved count, the prompt shows the top ones.
  const ragItems = Math.max(layout.ragSlots, ctx.config.tableTopN);
  const snapshot = rag ? await ctx.store.snapshot({ start: ragStart, end: ctx.asOf, n: ragItems }) : undefined;
  const popularity = rag ? popularityOf(recentNexts(recent, ragStart, ctx.asOf), layout.nClusters) : [];

  let blend: RagBlendChoice = { weights: MODEL_ALONE, reason: "no RAG" };
  const scored = await timed(async () => {
    const model = await loadForScoring(ctx, base.path!);
    try {
      const { batch, onProgress, contexts, parallel } = scoreOptions(ctx);
      const scorer = await model.createScorer({ contexts, parallel, ...(adapter?.path ? { adapterPath: adapter.path, adapterId: adapter.id } : {}) });
      if (rag) blend = await ragBlendFor(ctx, scorer, recent, holdoutStart, ragItems, layout);
      const histories = keys.map(parseHistoryKey);
      const evidence = histories.map((h) => snapshot?.lookup(h));
      const dists = await scoreAll(scorer, histories.map((h, i) => ragPrompt(h, evidence[i], layout.ragSlots)), batch, "table", onProgress);
      return dists.map((d, i) => blendWithRag(d, evidence[i], blend.weights, popularity));
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
    meta: { baseId: lineage.baseId, adapterId: lineage.adapterId ?? "", snapshotId: lineage.snapshotId ?? "", createdAt: ctx.asOf, rag: rag ? 1 : 0, ...blendMeta(blend, popularity) } satisfies TableMeta,
    rows,
  });

  // Both tables answer the same last days. The candidate's RAG window covers them, so this gate catches broken
  // or regressed tables rather than measuring true future accuracy (the replay harness does that).
  const holdout = recent.filter((t) => t.ts >= holdoutStart);
  const candidate = tableHoldout(rows, holdout, layout.nClusters);
  const activeRows = active.table ? (await ctx.store.predictionTable(active.table))?.rows : undefined;
  const incumbent = activeRows ? tableHoldout(activeRows, holdout, layout.nClusters) : undefined;
  const gate = evaluateGate(candidate, incumbent, ctx.config.gate);
  const known = ctx.registry.list("table").map((r) => r.id);
  ctx.registry.publish({
    id,
    kind: "table",
    gate,
    manifest: {
      tableId: id,
      lineage,
      rag,
      ragBlend: blend,
      keys: rows.length,
      allKeys: every !== undefined,
      wallS: scored.wallS,
      cpuS: scored.cpuS,
      holdout: candidate,
      incumbent: { id: active.table, holdout: incumbent ?? null },
      asOf: ctx.asOf,
    },
  });
  if (gate.passed && ctx.autoPromote !== false && !opts.adapter) ctx.registry.promote(id, ctx.by);
  // Tables the registry's retention just retired leave the store too (only those: a store may serve several registries).
  if (ctx.config.dropRetiredTables) {
    const kept = new Set(ctx.registry.list("table").map((r) => r.id));
    await ctx.store.dropPredictionTables(known.filter((t) => !kept.has(t)));
  }
  return ctx.registry.getOf("table", id);
}
