import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { reproducibleView, ResultsSchema, runReplay } from "@freshrec/replay";

const MOVIELENS = join(import.meta.dirname, "../../shared/datasets/movielens-latest-small");
const have = existsSync(join(MOVIELENS, "ratings.csv"));
if (!have) console.warn(`replay e2e: ${MOVIELENS} is absent; skipping the MovieLens replay`);

describe.skipIf(!have)("replay harness end to end (reduced MovieLens replay)", () => {
  let dir = "";
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("pretrains, runs model strategies on the real update loop next to the baselines, and writes a report", async () => {
    dir = await mkdtemp(join(tmpdir(), "freshrec-replay-"));
    const out = await runReplay({
      dataset: { kind: "movielens", dir: MOVIELENS },
      strategies: ["static", "rag"],
      seed: 3,
      testFraction: 0.05,
      maxTestTransitions: 400,
      // A reduced run: one short pretraining epoch; cadences scaled so that a few RAG refreshes happen.
      loop: { pretrain: { epochs: 1 }, lora: { epochs: 1 } },
      timeScale: 4,
      reportsDir: dir,
      runId: "ci",
    });
    const r = ResultsSchema.parse(JSON.parse(await readFile(join(dir, "ci", "results.json"), "utf8")));
    expect(Object.keys(r.strategies).sort()).toEqual(["markov", "popularity", "rag", "recent-successors", "static"]);
    for (const s of Object.values(r.strategies)) {
      for (const k of ["hit@1", "hit@10", "ndcg@10", "train_cpu_s", "refresh_s"] as const) expect(Number.isFinite(s[k])).toBe(true);
      expect(s.n).toBe(r.strategies.static!.n);
      expect(s["hit@1"]).toBeLessThanOrEqual(s["hit@10"]);
      expect(s.ci["hit@1"][0]).toBeLessThanOrEqual(s["hit@1"]);
    }
    // static never updates; rag refreshes its table on its cadence.
    expect(r.strategies.static!.refreshes).toBe(0);
    expect(r.strategies.rag!.refreshes).toBeGreaterThan(0);
    expect(r.strategies.rag!.refresh_s).toBeGreaterThan(0);
    expect(r.analyses.ragAgreement!.keys).toBeGreaterThan(0);
    expect(r.findings.length).toBeGreaterThan(0);
    const html = await readFile(join(dir, "ci", "index.html"), "utf8");
    expect(html).toContain("<svg");
    expect(html).not.toMatch(/<script|src="http/);
    for (const png of ["hit-at-1-over-time.png", "quality-vs-cost.png"]) expect((await stat(join(dir, "ci", png))).size).toBeGreaterThan(1000);
    expect(out.results.runId).toBe("ci");
  }, 600_000);

  it("gives the same numbers for the same seed (baselines only, fast)", async () => {
    const base = await mkdtemp(join(tmpdir(), "freshrec-replay-"));
    try {
      const run = (id: string) =>
        runReplay({ dataset: { kind: "movielens", dir: MOVIELENS }, strategies: [], seed: 5, testFraction: 0.2, reportsDir: base, runId: id });
      const a = await run("a");
      const b = await run("b");
      expect(reproducibleView(a.results)).toEqual(reproducibleView(b.results));
      expect(a.results.strategies.markov!.n).toBeGreaterThan(1000);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  }, 120_000);
});
