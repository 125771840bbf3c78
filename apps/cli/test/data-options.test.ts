import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { UNPLACED } from "@freshrec/core";
import { openStore } from "@freshrec/retriever";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "freshrec-data-options-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function freshrec(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

// 16 items in 4 genres, and one whose only tag is too rare to be a clustering feature.
const items = write("items.csv", `itemId,genre,tags\n${["jazz", "rock", "pop", "folk"].flatMap((g) => [1, 2, 3, 4].map((i) => `${g}${i},${g},`)).join("\n")}\nodd,,seen-once\n`);
const events = write(
  "events.csv",
  `eventId,userId,itemId,ts,signal\n${["jazz1", "rock1", "pop1", "odd", "folk1"].map((item, i) => `e${i},u1,${item},2024-05-0${i + 1},${3 + (i % 2)}`).join("\n")}\n`,
);

describe("data options of the CLI", () => {
  it("names an unknown option with balanced quotes", () => {
    const r = freshrec("import", "events", events, "--items", items, "--bogus", "3");
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe("freshrec: Unknown option '--bogus' (see --help)");
  }, 60_000);

  it("import takes --threshold, prints every choice, and a store refuses a different threshold later", async () => {
    expect(freshrec("import", "events", events, "--items", items, "--threshold", "four").stderr).toContain('--threshold "four": expected a finite number');
    const store = join(dir, "store");
    const first = freshrec("import", "events", events, "--items", items, "--store", store, "--threshold", "3", "--json");
    expect(first.status).toBe(0);
    const summary = JSON.parse(first.stdout.trim().split("\n").at(-1)!);
    expect(summary.threshold).toEqual({ value: 3, source: "--threshold" });
    expect(summary.clusterChoice).toBe("4 clusters: k = 4 (default rule min(64, ceil(sqrt(16 items)) = 4, 4 distinct feature signatures))");
    expect(summary.unplacedItems).toEqual({ [UNPLACED.noKeptFeature]: 1 });
    expect(summary.events).toMatchObject({ accepted: 4, skipReasons: { [UNPLACED.noKeptFeature]: 1 }, positives: 4 });
    const plain = freshrec("import", "events", events, "--items", items, "--store", store);
    expect(plain.stdout).toContain("positive engagement: signal >= 3 (the store's setting (--threshold not given))");
    expect(plain.stdout).toContain("clusters: the store's 4 clusters");

    const s = await openStore(store);
    const before = await s.version();
    await s.close();
    const refused = freshrec("import", "events", events, "--items", items, "--store", store, "--threshold", "5");
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("it was built with positive threshold 3, not 5");
    const after = await openStore(store);
    expect(await after.version()).toBe(before);
    await after.close();
  }, 120_000);

  it("replay documents its items file and takes --clusters and --threshold for recorded data only", () => {
    const help = freshrec("replay", "--help").stdout;
    expect(help).toMatch(/--items FILE +items file for --dataset events \(generic format: per item a clusterId, or features/);
    expect(help).toContain("--clusters N");
    expect(help).toContain("--threshold X");
    const bad = freshrec("replay", "--dataset", "events", events, "--items", items, "--clusters", "0");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--clusters "0": expected a positive integer');
    const synthetic = freshrec("replay", "--dataset", "synthetic", "tiny", "--threshold", "3");
    expect(synthetic.stderr).toContain("--clusters and --threshold apply to movielens and events");
  }, 120_000);

  it("replay refuses a model kind, text model or scoring it cannot use, before anything loads", () => {
    const kind = freshrec("replay", "--dataset", "synthetic", "tiny", "--model-kind", "words");
    expect(kind.stderr).toContain('--model-kind: expected cluster-token, text, both, got "words"');
    const lonely = freshrec("replay", "--dataset", "synthetic", "tiny", "--text-model", items);
    expect(lonely.stderr).toContain("--text-model needs --model-kind text or both");
    const notGguf = freshrec("replay", "--dataset", "synthetic", "tiny", "--model-kind", "text", "--text-model", items);
    expect(notGguf.stderr).toContain(items);
    const scoring = freshrec("replay", "--dataset", "synthetic", "tiny", "--model-kind", "text", "--text-scoring", "max");
    expect(scoring.stderr).toContain('--text-scoring: expected constrained, sum, mean, got "max"');
    for (const r of [kind, lonely, notGguf, scoring]) expect(r.status).not.toBe(0);
  }, 120_000);
});
