import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS, type Transition } from "@freshrec/core";
import { loadDataset, planReplay, reproducibleView, ResultsSchema, runReplay, type ReplayOptions, type Results, type UpdateEntry } from "@freshrec/replay";
import { writeSmallTextModel } from "@freshrec/trainer-bridge";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), "freshrec-replay-"));
  dirs.push(d);
  return d;
};

// The reduced CI replay: the tiny synthetic world, every strategy on the real update loop with a tiny model,
// cadences of 4 days (fine-tune) and 1 day (RAG refresh) over its ~12-day test period, and the simulated A/B.
const FINETUNE_DAYS = 4;
const REFRESH_DAYS = 1;
const options = (reportsDir: string, runId: string): ReplayOptions => ({
  dataset: { kind: "synthetic", size: "tiny" },
  strategies: ["static", "finetune", "rag", "hybrid", "adaptive", "rag-frozen"],
  seed: 4,
  timeScale: 1,
  finetuneEveryDays: FINETUNE_DAYS,
  refreshEveryDays: REFRESH_DAYS,
  model: { size: "tiny", pretrainEpochs: 2, loraEpochs: 2, threads: 1 },
  ab: { arms: ["hybrid", "finetune"], users: 150 },
  reportsDir,
  runId,
});

/** Test transitions into a cluster first seen in the data at or after `from`, counted independently of the replay's code. */
function coldStartCounter(transitions: readonly Transition[], testStart: number, testEnd: number): (from: number) => number {
  const born = new Map<number, number>();
  for (const t of transitions) for (const c of [...t.history, t.next]) born.set(c, Math.min(born.get(c) ?? Infinity, t.ts));
  const test = transitions.filter((t) => t.ts >= testStart && t.ts < testEnd);
  return (from) => test.filter((t) => born.get(t.next)! >= from).length;
}

/** Calendar oracle: how many fine-tunes and refreshes a strategy owes over these test timestamps. */
function owed(timestamps: number[], start: number, finetuneMs: number | undefined, refreshMs: number | undefined) {
  let lastF = start;
  let lastR = start;
  let finetunes = 0;
  let refreshes = 0;
  for (const ts of timestamps) {
    if (finetuneMs !== undefined && ts - lastF >= finetuneMs) {
      finetunes++;
      refreshes++;
      lastF = lastR = ts;
    } else if (refreshMs !== undefined && ts - lastR >= refreshMs) {
      refreshes++;
      lastR = ts;
    }
  }
  return { finetunes, refreshes };
}

describe("replay harness end to end (tiny synthetic world, real update loop, A/B through the real server)", () => {
  let r: Results;
  let reportDir = "";
  let testTimestamps: number[] = [];
  let coldAt: (from: number) => number = () => 0;

  beforeAll(async () => {
    const base = await tempDir();
    const out = await runReplay(options(base, "ci"));
    reportDir = out.report.dir;
    r = ResultsSchema.parse(JSON.parse(await readFile(join(reportDir, "results.json"), "utf8")));
    const o = options(base, "ci");
    const dataset = await loadDataset(o.dataset as { kind: "synthetic"; size: string }, o.seed);
    const plan = planReplay(dataset, o);
    testTimestamps = [...new Set(dataset.transitions.filter((t) => t.ts >= plan.testStart && t.ts < plan.testEnd).map((t) => t.ts))];
    coldAt = coldStartCounter(dataset.transitions, plan.testStart, plan.testEnd);
  }, 300_000);

  it("puts every strategy beside the world's oracle, and every model strategy against every baseline, paired on the same transitions", () => {
    expect(r.strategies.oracle!.kind).toBe("oracle");
    expect(r.strategies["hindsight-table"]!.kind).toBe("oracle");
    const ceiling = r.analyses.ceiling!;
    expect(ceiling.reference).toBe("oracle");
    expect(Object.keys(ceiling.shares)).not.toContain("oracle");
    for (const [name, share] of Object.entries(ceiling.shares)) {
      // The same test transitions on both sides: a share is exactly the ratio of the two hit rates.
      expect(share["hit@1"].value, name).toBeCloseTo(r.strategies[name]!["hit@1"] / r.strategies.oracle!["hit@1"], 12);
      expect(share["hit@10"].value, name).toBeCloseTo(r.strategies[name]!["hit@10"] / r.strategies.oracle!["hit@10"], 12);
      expect(share["hit@1"].ci[0], name).toBeLessThanOrEqual(share["hit@1"].value);
      expect(share["hit@1"].ci[1], name).toBeGreaterThanOrEqual(share["hit@1"].value);
    }
    const models = Object.entries(r.strategies).filter(([, s]) => s.kind === "model").map(([n]) => n);
    expect(Object.keys(r.analyses.versusBaselines!).sort()).toEqual(models.sort());
    for (const m of models)
      for (const b of ["popularity", "recent-successors", "markov"]) {
        const d = r.analyses.versusBaselines![m]![b]!;
        expect(d["hit@1"].value, `${m} - ${b}`).toBeCloseTo(r.strategies[m]!["hit@1"] - r.strategies[b]!["hit@1"], 12);
      }
    expect(r.findings.some((f) => /of oracle's hit@1/.test(f))).toBe(true);
  });

  it("scores every strategy and baseline on every test transition, with no table misses", () => {
    expect(Object.keys(r.strategies).sort()).toEqual([
      "adaptive",
      "finetune",
      "hindsight-table",
      "hybrid",
      "hybrid-counts-only",
      "hybrid-live",
      "markov",
      "oracle",
      "popularity",
      "rag",
      "rag-frozen",
      "recent-successors",
      "static",
    ]);
    const n = r.strategies.static!.n;
    expect(n).toBeGreaterThan(300);
    for (const [name, s] of Object.entries(r.strategies)) {
      expect(s.n, name).toBe(n);
      expect(s["hit@1"], name).toBeLessThanOrEqual(s["hit@10"]);
      expect(s.ci["hit@1"][0], name).toBeLessThanOrEqual(s["hit@1"]);
      expect(s.ci["hit@1"][1], name).toBeGreaterThanOrEqual(s["hit@1"]);
    }
    expect(r.config.tableMisses).toEqual({ static: 0, finetune: 0, rag: 0, hybrid: 0, adaptive: 0, "rag-frozen": 0 });
  });

  it("scores cold start: transitions into clusters born after the served model's fine-tune, every baseline on the same ones", () => {
    const cold = r.analyses.coldStart!;
    const models = Object.entries(r.strategies).filter(([, s]) => s.kind === "model").map(([n]) => n);
    // The counts-only twins answer without a model: no fine-tune to be born after.
    expect(Object.keys(cold.strategies).sort()).toEqual(models.filter((n) => !n.endsWith("-counts-only")).sort());
    // static serves the bootstrap's model, fine-tuned at the test period's start, for the whole period.
    expect(cold.strategies.static!.transitions).toBe(coldAt(r.config.testStart as number));
    for (const [name, c] of Object.entries(cold.strategies)) {
      expect(Object.keys(c.versus).sort(), name).toEqual(["hindsight-table", "markov", "oracle", "popularity", "recent-successors"]);
      if (c.transitions === 0) continue;
      expect(c.clusters, name).toBeGreaterThan(0);
      expect(c["hit@1"], name).toBeLessThanOrEqual(c["hit@10"]);
      expect(c.versus.popularity!.difference!["hit@10"].value, name).toBeCloseTo(c["hit@10"] - c.versus.popularity!["hit@10"], 12);
    }
  });

  it("runs fine-tunes and refreshes on each strategy's cadence through the real jobs", () => {
    const start = r.config.testStart as number;
    const calendar = (f?: number, rr?: number) => owed(testTimestamps, start, f && f * DAY_MS, rr && rr * DAY_MS);
    const s = r.strategies;
    const counts = (name: string) => ({ finetunes: s[name]!.finetunes, refreshes: s[name]!.refreshes });
    expect(counts("static")).toEqual({ finetunes: 0, refreshes: 0 });
    expect(counts("rag-frozen")).toEqual({ finetunes: 0, refreshes: 0 });
    expect(counts("rag")).toEqual(calendar(undefined, REFRESH_DAYS));
    expect(counts("finetune")).toEqual(calendar(FINETUNE_DAYS, undefined));
    expect(counts("hybrid")).toEqual(calendar(FINETUNE_DAYS, REFRESH_DAYS));
    expect(counts("rag").refreshes).toBeGreaterThanOrEqual(8);
    expect(counts("hybrid").finetunes).toBeGreaterThanOrEqual(2);
    // The model's own contribution is measured on the hybrid's own tables: same refreshes, no training of its own.
    expect(counts("hybrid-counts-only")).toEqual({ finetunes: 0, refreshes: counts("hybrid").refreshes });
    // Training cost is measured from the trainer; strategies that never fine-tune spend none.
    expect(s.hybrid!.train_cpu_s).toBeGreaterThan(0);
    expect(s.hybrid!.examples_trained).toBeGreaterThan(0);
    expect(s.rag!.train_cpu_s).toBe(0);
    expect(s.rag!.refresh_s).toBeGreaterThan(0);
    // Live scoring follows the hybrid's own updates: same work, no extra training.
    expect(counts("hybrid-live")).toEqual(counts("hybrid"));
    expect(s["hybrid-live"]!.examples_trained).toBe(s.hybrid!.examples_trained);
    expect(r.findings.some((f) => f.startsWith("Live scoring vs the hybrid table"))).toBe(true);
  });

  it("changes the served lineage after promoted updates: new tables, new RAG snapshots, new adapters", () => {
    const ups = (name: string): UpdateEntry[] => r.strategies[name]!.updates ?? [];
    expect(ups("static")).toEqual([]);
    expect(ups("rag-frozen")).toEqual([]);
    const rag = ups("rag");
    expect(rag.filter((u) => u.promoted).length).toBeGreaterThan(0);
    expect(new Set(rag.map((u) => u.adapter)).size).toBe(1); // rag never fine-tunes
    for (let i = 1; i < rag.length; i++) {
      const [prev, cur] = [rag[i - 1]!, rag[i]!];
      if (cur.promoted) {
        expect(cur.table).toBe(cur.candidate);
        expect(cur.table).not.toBe(prev.table);
        expect(cur.snapshot).not.toBe(prev.snapshot);
      } else expect(cur.table).toBe(prev.table);
    }
    for (const u of rag) expect(u.snapshot).not.toBe("");
    for (const u of ups("finetune")) expect(u).toMatchObject({ snapshot: "", ragBlend: 0, popularityBlend: 0 }); // no RAG in fine-tune-only tables
    for (const u of rag) expect(Math.min(u.ragBlend, u.popularityBlend)).toBeGreaterThanOrEqual(0);
    for (const u of rag) expect(u.ragBlend + u.popularityBlend).toBeLessThanOrEqual(1);
    // Every update was decided by the service's UpdateLoop: its decision lines name why (calendar or drift).
    for (const name of ["rag", "finetune", "hybrid", "adaptive"]) for (const u of ups(name)) expect(u.reason, `${name} ${u.candidate}`).toMatch(/^(calendar: |drift: |after fine-tune)/);
    expect(ups("adaptive").some((u) => u.drift.recentJaccard !== undefined || u.drift.adapterJaccard !== undefined)).toBe(true);
    const hybrid = ups("hybrid");
    const tunes = hybrid.filter((u) => u.action === "finetune");
    expect(tunes.some((u) => u.promoted)).toBe(true);
    for (const f of tunes) {
      const after = hybrid[hybrid.indexOf(f) + 1]!;
      expect(after).toMatchObject({ action: "refresh", at: f.at });
      if (f.promoted && after.promoted) expect(after.adapter).toBe(f.candidate);
    }
  });

  it("serves the A/B arms through the real HTTP server and reports acceptance with a 95 % CI", () => {
    const ab = r.ab!;
    expect(ab.arms.map((a) => a.arm)).toEqual(["hybrid", "finetune"]);
    expect(ab.requests).toBe(ab.arms[0]!.served + ab.arms[1]!.served);
    for (const a of ab.arms) {
      expect(a.served).toBeGreaterThan(50);
      expect(a.rate).toBeCloseTo(a.accepted / a.served, 10);
      expect(a.rate).toBeLessThanOrEqual(0.6); // the tiny world's maxAccept
      expect(a.ci[0]).toBeLessThanOrEqual(a.rate);
      expect(a.ci[1]).toBeGreaterThanOrEqual(a.rate);
    }
    expect(ab.difference.value).toBeCloseTo(ab.arms[0]!.rate - ab.arms[1]!.rate, 10);
    expect(ab.difference.ci[0]).toBeLessThanOrEqual(ab.difference.value);
    expect(ab.difference.ci[1]).toBeGreaterThanOrEqual(ab.difference.value);
    expect(r.findings.some((f) => f.startsWith("Simulated A/B: hybrid - finetune"))).toBe(true);
  });

  it("writes the report with charts as inline SVG and PNG", async () => {
    const html = await readFile(join(reportDir, "index.html"), "utf8");
    expect(html).toContain("<svg");
    expect(html).toContain("Simulated A/B");
    expect(html).not.toMatch(/<script|src="http/);
    for (const png of ["hit-at-1-over-time.png", "quality-vs-cost.png", "ab-acceptance.png"]) expect((await stat(join(reportDir, png))).size).toBeGreaterThan(1000);
  });

  it("gives the same numbers, updates and A/B outcome for the same seed", async () => {
    const again = await runReplay(options(await tempDir(), "ci-again"));
    expect(reproducibleView(again.results)).toEqual(reproducibleView(r));
  }, 300_000);
});

describe("replay of both model kinds side by side (tiny world, a small text GGUF as the user's base)", () => {
  let r: Results;
  let coldAt: (from: number) => number = () => 0;
  let nTest = 0;

  beforeAll(async () => {
    const base = await tempDir();
    const textModel = await writeSmallTextModel(join(base, "team-text.gguf"));
    // No fine-tune inside the short test period: each strategy serves its bootstrap adapter (or base) throughout.
    const o: ReplayOptions = {
      dataset: { kind: "synthetic", size: "tiny" },
      strategies: ["finetune", "hybrid"],
      modelKinds: ["cluster-token", "text"],
      textModel,
      seed: 4,
      timeScale: 1,
      finetuneEveryDays: 100,
      refreshEveryDays: 4,
      maxTestTransitions: 500,
      model: { size: "tiny", pretrainEpochs: 2, loraEpochs: 1, threads: 2 },
      reportsDir: base,
      runId: "kinds",
    };
    r = (await runReplay(o)).results;
    const dataset = await loadDataset(o.dataset as { kind: "synthetic"; size: string }, o.seed);
    const plan = planReplay(dataset, o);
    coldAt = coldStartCounter(dataset.transitions, plan.testStart, plan.testEnd);
    nTest = dataset.transitions.filter((t) => t.ts >= plan.testStart && t.ts < plan.testEnd).length;
  }, 600_000);

  it("runs every strategy on both kinds over the same transitions, the text ones on the user's file", () => {
    expect(Object.keys(r.strategies).filter((n) => r.strategies[n]!.kind === "model").sort()).toEqual([
      "finetune",
      "finetune-text",
      "hybrid",
      "hybrid-counts-only",
      "hybrid-live",
      "hybrid-text",
      "hybrid-text-counts-only",
      "hybrid-text-live",
    ]);
    for (const [name, s] of Object.entries(r.strategies)) expect(s.n, name).toBe(nTest);
    const kinds = r.config.modelKinds as Record<string, { strategySuffix: string; loop: { baseModel?: string } }>;
    expect(kinds.text).toMatchObject({ strategySuffix: "-text", loop: { baseModel: "team-text.gguf" } });
    expect(kinds["cluster-token"]!.loop.baseModel).toBeUndefined();
    expect(r.config.tableMisses).toEqual({ finetune: 0, hybrid: 0, "finetune-text": 0, "hybrid-text": 0 });
  });

  it("reports cold start per kind: clusters born after the served model's fine-tune", () => {
    const cold = r.analyses.coldStart!.strategies;
    const start = r.config.testStart as number;
    expect(cold.finetune!.transitions).toBe(coldAt(start));
    // A text base the user brought saw none of the data: if its first adapter was refused, every cluster is new to it.
    expect([coldAt(start), nTest]).toContain(cold["finetune-text"]!.transitions);
    expect(cold["hybrid-text-live"]!.transitions).toBe(cold["hybrid-text"]!.transitions);
  });
});

const MOVIELENS = join(import.meta.dirname, "../../shared/datasets/movielens-latest-small");
const haveMovieLens = existsSync(join(MOVIELENS, "ratings.csv"));
if (!haveMovieLens) console.warn(`replay e2e: ${MOVIELENS} is absent; skipping the MovieLens baselines replay`);

describe.skipIf(!haveMovieLens)("MovieLens replay, baselines only", () => {
  it("gives the same numbers for the same seed", async () => {
    const base = await tempDir();
    const run = (id: string) => runReplay({ dataset: { kind: "movielens", dir: MOVIELENS }, strategies: [], seed: 5, testFraction: 0.2, reportsDir: base, runId: id });
    const a = await run("a");
    const b = await run("b");
    expect(reproducibleView(a.results)).toEqual(reproducibleView(b.results));
    expect(a.results.strategies.markov!.n).toBeGreaterThan(1000);
  }, 120_000);
});
