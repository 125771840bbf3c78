import { rm, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { DAY_MS, type ModelKind, type Transition } from "@freshrec/core";
import type { ServerAb } from "./ab.js";
import { baselines } from "./baselines.js";
import { HindsightTablePredictor, OraclePredictor, pairedFigures } from "./ceilings.js";
import { coldStartFigures, firstSeen } from "./cold-start.js";
import {
  DEFAULT_REPLAY_MODEL,
  modelLoop,
  parseReplayConfig,
  scaleFor,
  scaled,
  PAPER_FINETUNE_DAYS,
  PAPER_REFRESH_DAYS,
  type ModelStrategyName,
  type ReplayConfig,
  type ReplayModelOptions,
} from "./config.js";
import { loadDataset, type DatasetSpec, type ReplayDataset } from "./dataset.js";
import { ReplayError } from "./errors.js";
import { driftSeries, popularityBefore } from "./analyses.js";
import { curve } from "./curves.js";
import { findings } from "./findings.js";
import type { Predictor } from "./predictor.js";
import type { Scoreboard } from "./scoreboard.js";
import { ResultsSchema, type Results, type StrategyResult } from "./results.js";
import { summarize } from "./summary.js";
import { walk, type WalkProgress } from "./walk.js";
import { writeReport, type WrittenReport } from "./report/write.js";
import type { ModelLab } from "./model-lab.js";
import { realLab } from "./real-lab.js";

export interface ReplayOptions {
  dataset: DatasetSpec | ReplayDataset;
  strategies: ModelStrategyName[];
  /** Strategies also replayed with live scoring (default: hybrid, when replayed); must be among `strategies`. */
  live?: ModelStrategyName[];
  seed: number;
  timeScale?: number;
  finetuneEveryDays?: number;
  refreshEveryDays?: number;
  /** Share of transitions (by count, latest) that form the test period (default 0.4). */
  testFraction?: number;
  /** Cut the test period to this many transitions' time span (reduced replays for CI). */
  maxTestTransitions?: number;
  /** Simulated A/B on the synthetic world: arms (treatment first) and requests per arm (default 2000). */
  ab?: { arms: string[]; users?: number };
  reportsDir: string;
  runId?: string;
  /** Model size and epoch budget (default DEFAULT_REPLAY_MODEL); becomes the update loop's pretrain / lora settings. */
  model?: Partial<ReplayModelOptions>;
  /**
   * Model kinds whose strategies run side by side (default cluster-token only): a text kind's strategies are named
   * `<strategy>-text` and run on `textModel`, else on freshrec's own small text model trained on the pretraining window.
   */
  modelKinds?: ModelKind[];
  textModel?: string;
  /** Further update-loop settings merged over the replay's and the model's (e.g. { gate: {...} }). */
  loop?: Record<string, unknown>;
  /** Builds the model strategies; default: the real update loop (realLab). */
  lab?: (dataset: ReplayDataset, config: ReplayConfig, workDir: string) => Promise<ModelLab>;
  onProgress?: (e: WalkProgress) => void;
}

export interface ReplayOutcome {
  results: Results;
  report: WrittenReport;
  /** The headline table as text, one row per strategy. */
  table: string;
  headline: Record<string, Pick<StrategyResult, "hit@1" | "hit@10" | "ndcg@10" | "train_cpu_s" | "refresh_s">>;
}

/** Chooses the test period and scales the paper's cadences to the dataset's traffic (documented in results.config). */
export function planReplay(d: ReplayDataset, o: Pick<ReplayOptions, "strategies" | "seed" | "timeScale" | "finetuneEveryDays" | "refreshEveryDays" | "testFraction" | "maxTestTransitions">): ReplayConfig {
  const trs = d.transitions;
  const fraction = o.testFraction ?? 0.4;
  const startIdx = Math.min(trs.length - 1, Math.max(1, Math.floor(trs.length * (1 - fraction))));
  const testStart = trs[startIdx]!.ts;
  let testEnd = trs[trs.length - 1]!.ts + 1;
  if (o.maxTestTransitions !== undefined && startIdx + o.maxTestTransitions < trs.length) testEnd = trs[startIdx + o.maxTestTransitions]!.ts;
  const perDay = (trs.filter((t) => t.ts >= testStart && t.ts < testEnd).length / Math.max(testEnd - testStart, DAY_MS)) * DAY_MS;
  return parseReplayConfig({
    strategies: o.strategies,
    seed: o.seed,
    timeScale: o.timeScale ?? scaleFor(perDay),
    finetuneEveryDays: o.finetuneEveryDays ?? PAPER_FINETUNE_DAYS,
    refreshEveryDays: o.refreshEveryDays ?? PAPER_REFRESH_DAYS,
    recentWindowDays: 14,
    finetuneWindowDays: 30,
    periodDays: Math.max(1, Math.round((testEnd - testStart) / DAY_MS / 20)),
    testStart,
    testEnd,
    listLength: 10,
  });
}

const fmt = (x: number) => (100 * x).toFixed(2).padStart(6);

function textTable(r: Results): string {
  const ceiling = r.analyses.ceiling;
  const share = (n: string) => {
    const s = ceiling?.shares[n];
    return s ? `${fmt(s["hit@1"].value)} ${fmt(s["hit@10"].value)}` : `${"".padStart(6)} ${"".padStart(6)}`;
  };
  const rows = Object.entries(r.strategies).map(
    ([n, s]) =>
      `${n.padEnd(18)} ${s.kind.padEnd(8)} ${fmt(s["hit@1"])} ${fmt(s["hit@10"])} ${share(n)} ${s["ndcg@10"].toFixed(4).padStart(7)} ${s.train_cpu_s.toFixed(1).padStart(8)} ${s.refresh_s.toFixed(1).padStart(8)}`,
  );
  const ref = ceiling ? `of ${ceiling.reference}` : "";
  const cold = Object.entries(r.analyses.coldStart?.strategies ?? {}).map(([n, c]) => {
    const rs = c.versus["recent-successors"];
    return `  ${n.padEnd(18)} ${String(c.transitions).padStart(6)} transitions into ${c.clusters} clusters: hit@10 ${fmt(c["hit@10"])}${rs ? `; recent-successors ${fmt(rs["hit@10"])}` : ""}`;
  });
  return [
    `${"strategy".padEnd(18)} ${"kind".padEnd(8)} ${"hit@1%".padStart(6)} ${"hit@10%".padStart(6)} ${"@1 sh%".padStart(6)} ${"@10sh%".padStart(6)} ${"ndcg@10".padStart(7)} ${"trainCPU".padStart(8)} ${"refresh".padStart(8)}  (sh%: share ${ref})`,
    ...rows,
    ...(cold.length > 0 ? ["cold start: test transitions into clusters first seen after the served model's training data", ...cold] : []),
  ].join("\n");
}

/** Every strategy as a share of the ceiling (the oracle where the ground truth is known), and each model strategy against each baseline, paired on the same transitions. */
function comparisons(predictors: readonly Predictor[], boards: Map<string, Scoreboard>, seed: number, synthetic: boolean): Pick<Results["analyses"], "ceiling" | "versusBaselines"> {
  const reference = synthetic ? "oracle" : "hindsight-table";
  const ref = boards.get(reference)!;
  const shares = Object.fromEntries(predictors.filter((p) => p.name !== reference).map((p) => [p.name, pairedFigures(boards.get(p.name)!, ref, "ratio", seed)]));
  const baselineNames = predictors.filter((p) => p.kind === "baseline").map((p) => p.name);
  const versusBaselines = Object.fromEntries(
    predictors
      .filter((p) => p.kind === "model")
      .map((p) => [p.name, Object.fromEntries(baselineNames.map((b) => [b, pairedFigures(boards.get(p.name)!, boards.get(b)!, "diff", seed)]))]),
  );
  const note = synthetic
    ? "oracle: the top of the world's true P_t(next | last k clusters) at each transition's time; the table's key is the same last k clusters, so the oracle is also the structural limit of any last-k predictor"
    : "no ground truth for recorded data: the reference is the best fixed last-k table chosen in hindsight on the test period (an upper bound for a table that is never refreshed)";
  return { ceiling: { reference, note, shares }, versusBaselines };
}

/** Runs a whole replay: dataset, strategies and baselines on the simulated clock, analyses, optional A/B, report. */
export async function runReplay(o: ReplayOptions): Promise<ReplayOutcome> {
  const wallStart = performance.now();
  const live = o.live ?? o.strategies.filter((s) => s === "hybrid");
  const missing = live.filter((s) => !o.strategies.includes(s));
  if (missing.length > 0) throw new ReplayError(`--live ${missing.join(", ")}: not among the replayed strategies (${o.strategies.join(", ") || "none"})`);
  const dataset = "transitions" in o.dataset ? o.dataset : await loadDataset(o.dataset, o.seed);
  const config = planReplay(dataset, o);
  const sc = scaled(config);
  const runId = o.runId ?? `${dataset.name}-${o.strategies.length === 6 ? "all" : o.strategies.join("+") || "baselines"}-seed${o.seed}`;
  const workDir = join(o.reportsDir, runId, ".work");
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });

  const model = { ...DEFAULT_REPLAY_MODEL, ...o.model };
  const loop = { ...modelLoop(model), ...o.loop };
  const kinds = { ...(o.modelKinds ? { modelKinds: o.modelKinds } : {}), ...(o.textModel ? { textModel: o.textModel } : {}) };
  const makeLab = o.lab ?? ((d: ReplayDataset, c: ReplayConfig, w: string) => realLab(d, c, w, { onProgress: o.onProgress, loop, ...kinds }));
  const lab = o.strategies.length > 0 ? await makeLab(dataset, config, workDir) : undefined;
  const models: Predictor[] = lab ? await lab.strategies(o.strategies, o.onProgress, live) : [];
  const testSet = dataset.transitions.filter((t) => t.ts >= config.testStart && t.ts < config.testEnd);
  const ceilings: Predictor[] = [...(dataset.world ? [new OraclePredictor(dataset.world)] : []), new HindsightTablePredictor(testSet)];
  const predictors = [...models, ...baselines(sc.recentWindowMs), ...ceilings];
  let abRun: ServerAb | undefined;
  try {
    const testTransitions = testSet.length;
    if (o.ab) {
      if (!lab) throw new ReplayError("--ab needs model strategies to serve (got --strategies none)");
      abRun = await lab.startAb({ arms: o.ab.arms, requestsPerArm: o.ab.users ?? 2000, testTransitions, seed: o.seed });
    }
    const walkStart = performance.now();
    const boards = await walk({
      transitions: dataset.transitions,
      testStart: config.testStart,
      testEnd: config.testEnd,
      predictors,
      listLength: config.listLength,
      onProgress: o.onProgress,
      ...(abRun ? { onStep: (g: readonly Transition[]) => abRun!.visit(g) } : {}),
    });
    const walkS = (performance.now() - walkStart) / 1000;
    const popularity = popularityBefore(dataset.transitions, config.testStart, dataset.clusters.length);
    const strategies: Results["strategies"] = {};
    for (const p of predictors) {
      const board = boards.get(p.name)!;
      if (board.outcomes.length === 0) throw new ReplayError(`the test period [${new Date(config.testStart).toISOString()}, ${new Date(config.testEnd).toISOString()}) holds no transitions`);
      const c = p.cost();
      strategies[p.name] = {
        kind: p.kind,
        ...summarize(board, { nClusters: dataset.clusters.length, popularity, seed: o.seed }),
        train_cpu_s: c.trainCpuS,
        refresh_s: c.refreshS,
        examples_trained: c.examplesTrained,
        finetunes: c.finetunes,
        refreshes: c.refreshes,
        curve: curve(board.outcomes, config.testStart, config.testEnd, sc.periodMs),
        ...(p.updates ? { updates: p.updates() } : {}),
      };
    }
    const analyses: Results["analyses"] = {
      drift: driftSeries(dataset.transitions, 30 * Math.min(config.timeScale, 12)),
      ...comparisons(predictors, boards, o.seed, dataset.world !== undefined),
      ...(models.length > 0 ? { coldStart: coldStartFigures(predictors, boards, firstSeen(dataset.transitions), o.seed) } : {}),
    };
    const ragAgreement = lab ? await lab.ragAgreement() : undefined;
    if (ragAgreement) analyses.ragAgreement = ragAgreement;
    const ab = abRun?.result();
    const results: Results = ResultsSchema.parse({
      runId,
      seed: o.seed,
      dataset: { name: dataset.name, source: dataset.source, events: dataset.events.length, transitions: dataset.transitions.length, clusters: dataset.clusters.length },
      config: { ...config, scaledMs: sc, driftWindowDays: analyses.drift?.windowDays, ...(lab ? { model, ...lab.describe() } : {}) },
      strategies,
      analyses,
      ...(ab ? { ab } : {}),
      findings: findings(strategies, ab, analyses),
      timings: { wall_s: (performance.now() - wallStart) / 1000, walk_s: walkS, ...(lab?.timings() ?? {}) },
    });
    const report = await writeReport(results, o.reportsDir);
    const headline = Object.fromEntries(
      Object.entries(strategies).map(([n, s]) => [n, { "hit@1": s["hit@1"], "hit@10": s["hit@10"], "ndcg@10": s["ndcg@10"], train_cpu_s: s.train_cpu_s, refresh_s: s.refresh_s }]),
    );
    return { results, report, table: textTable(results), headline };
  } finally {
    await abRun?.close();
    for (const p of predictors) await p.close?.();
    await lab?.close();
    await rm(workDir, { recursive: true, force: true });
  }
}
