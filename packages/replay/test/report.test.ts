import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findings } from "../src/findings.js";
import { reproducibleView, type Results, type StrategyResult } from "../src/results.js";
import { writeReport } from "../src/report/write.js";

const DAY = 86_400_000;

function strategy(kind: "model" | "baseline", hit1: number, ci: [number, number], extra: Partial<StrategyResult> = {}): StrategyResult {
  return {
    kind,
    n: 500,
    "hit@1": hit1,
    "hit@5": hit1 * 2,
    "hit@10": hit1 * 3,
    "ndcg@10": hit1 * 1.5,
    coverage: 0.5,
    novelty: 1.2,
    ci: { "hit@1": ci, "hit@5": ci, "hit@10": ci, "ndcg@10": ci },
    train_cpu_s: kind === "model" ? 12 : 0,
    refresh_s: kind === "model" ? 3 : 0,
    examples_trained: kind === "model" ? 1000 : 0,
    finetunes: 0,
    refreshes: 0,
    curve: [0, 1, 2].map((i) => ({ start: i * DAY, n: 100, "hit@1": hit1, "hit@10": hit1 * 3 })),
    ...extra,
  };
}

function results(strategies: Results["strategies"], extra: Partial<Results> = {}): Results {
  return {
    runId: "unit",
    seed: 1,
    dataset: { name: "unit", source: "hand-made", events: 10, transitions: 5, clusters: 8 },
    config: { testStart: 0 },
    strategies,
    analyses: { drift: { windowDays: 30, topN: 5, mean: 0.2, series: [{ start: 30 * DAY, mean: 0.2, variance: 0.01, keys: 12 }] } },
    findings: findings(strategies),
    timings: { wall_s: 1 },
    ...extra,
  };
}

describe("findings", () => {
  it("says plainly when a baseline beats every model strategy, and whether the CIs overlap", () => {
    const f = findings({ hybrid: strategy("model", 0.1, [0.08, 0.12]), finetune: strategy("model", 0.09, [0.07, 0.11]), markov: strategy("baseline", 0.2, [0.18, 0.22]) });
    expect(f[0]).toMatch(/^A baseline without a model wins: markov beats hybrid on hit@1 \(20\.00 % vs 10\.00 %\), with non-overlapping 95 % CIs/);
    expect(f).toContain("Hybrid vs fine-tuning alone: hybrid beats finetune on hit@1 (10.00 % vs 9.00 %), but the 95 % CIs overlap.");
  });

  it("credits the model when it wins and reports an A/B difference as significant only when its CI excludes 0", () => {
    const s = { hybrid: strategy("model", 0.3, [0.28, 0.32]), popularity: strategy("baseline", 0.1, [0.09, 0.11]) };
    const ab = (lo: number, hi: number): Results["ab"] => ({
      arms: [],
      difference: { treatment: "hybrid", control: "finetune", value: (lo + hi) / 2, ci: [lo, hi] },
      users: 10,
      requests: 20,
      via: "test",
      hotSwapWaits: 0,
    });
    expect(findings(s)[0]).toMatch(/^The best model strategy beats every baseline: hybrid beats popularity/);
    expect(findings(s, ab(0.01, 0.03)).at(-1)).toMatch(/significant at 95 %\.$/);
    expect(findings(s, ab(-0.01, 0.03)).at(-1)).toMatch(/not significant at 95 % \(the CI contains 0\)\.$/);
  });
});

describe("report writer", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("writes results.json, a self-contained HTML page and one PNG per chart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "freshrec-report-"));
    dirs.push(dir);
    const r = results({ hybrid: strategy("model", 0.2, [0.18, 0.22]), markov: strategy("baseline", 0.15, [0.13, 0.17]) });
    const out = await writeReport(r, dir);
    const files = (await readdir(out.dir)).sort();
    expect(files).toEqual(["drift-over-time.png", "hit-at-1-over-time.png", "hit-at-10-over-time.png", "index.html", "quality-vs-cost.png", "results.json"]);
    expect(JSON.parse(await readFile(join(out.dir, "results.json"), "utf8"))).toEqual(r);
    const html = await readFile(join(out.dir, "index.html"), "utf8");
    expect(html.match(/<svg/g)?.length).toBe(4);
    expect(html).not.toMatch(/<script|src="http|href="http/);
    const png = await readFile(join(out.dir, "quality-vs-cost.png"));
    expect(png.subarray(1, 4).toString()).toBe("PNG");
  });

  it("refuses results that do not match the schema, naming the run", async () => {
    const dir = await mkdtemp(join(tmpdir(), "freshrec-report-"));
    dirs.push(dir);
    const bad = { ...results({}), seed: 1.5 } as Results;
    await expect(writeReport(bad, dir)).rejects.toThrow(/results for run unit do not match the results schema/);
  });
});

describe("reproducibleView", () => {
  it("drops measured times and maps artefact ids to their order of appearance", () => {
    const update = (table: string, adapter: string) => ({ at: 1, action: "refresh" as const, candidate: table, promoted: true, table, base: "b-x", adapter, snapshot: "", ragBlend: 0.5, popularityBlend: 0, reason: "calendar: every 1 d", drift: {} });
    const a = results({ rag: strategy("model", 0.2, [0.1, 0.3], { updates: [update("t-1", "a-1"), update("t-2", "a-1")] }) });
    const b = results({ rag: strategy("model", 0.2, [0.1, 0.3], { train_cpu_s: 99, updates: [update("t-9", "a-7"), update("t-8", "a-7")] }) }, { timings: { wall_s: 5 } });
    expect(reproducibleView(a)).toEqual(reproducibleView(b));
    const c = results({ rag: strategy("model", 0.2, [0.1, 0.3], { updates: [update("t-1", "a-1"), update("t-1", "a-1")] }) });
    expect(reproducibleView(c)).not.toEqual(reproducibleView(a));
  });
});
