import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DAY_MS, mulberry32 } from "@freshrec/core";
import {
  SchedulerConfigSchema,
  decide,
  UpdateLoop,
  inProcessRunner,
  trainCandidateAdapter,
  trainingSetFor,
  type Decision,
  type JobContext,
} from "../src/index.js";
import type { AdapterRecord, ArtefactRecord } from "@freshrec/registry";
import { tinyContext, tinyWorldStore } from "./loop-fixtures.js";
import { createHash } from "node:crypto";

const DRIFT_DAY = 18;

/** An adapter trained on the bootstrap window with its next-cluster labels shuffled (seeded), gated like any other. */
async function shuffledLabelCandidate(ctx: JobContext): Promise<ArtefactRecord> {
  const first = ctx.registry.getOf("adapter", ctx.registry.active().adapter!);
  const { window, layout } = first.manifest.trainingSet;
  const set = await trainingSetFor(ctx, window, layout);
  expect(set.manifest.id).toBe(first.manifest.trainingSetId); // same data, rebuilt deterministically
  const rng = mulberry32(99);
  // Train and early-stopping examples alike: a bad training set is bad throughout.
  const labels = [...set.train, ...set.val].map((e) => e.next);
  for (let i = labels.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [labels[i], labels[j]] = [labels[j]!, labels[i]!];
  }
  const n = set.train.length;
  const shuffled = { ...set, train: set.train.map((e, i) => ({ ...e, next: labels[i]! })), val: set.val.map((e, i) => ({ ...e, next: labels[n + i]! })) };
  return trainCandidateAdapter({ ...ctx, by: "test:shuffled-labels" }, shuffled, { warmStart: false });
}

describe("update loop end to end (tiny synthetic world, simulated time)", () => {
  it("bootstraps, refreshes, fine-tunes early on a drift event, promotes with lineage, and refuses a bad candidate", { timeout: 300_000 }, async () => {
    // Little natural drift, then an abrupt one: from day 18 every cluster is relabelled.
    const { store, startMs, dir } = await tinyWorldStore({ driftDay: DRIFT_DAY, world: { drift: 0.1, users: 250 } });
    const config = SchedulerConfigSchema.parse({ strategy: "adaptive", adaptive: { finetuneBelowJaccard: 0.2, minFinetuneGapDays: 5 } });
    const decisions: Decision[] = [];
    const made: ArtefactRecord[] = [];
    let ctx = tinyContext(store, dir, startMs + 10 * DAY_MS);
    let bad: ArtefactRecord | undefined;
    const clock = { t: startMs + 10 * DAY_MS, now: () => clock.t };
    const loop = new UpdateLoop({
      store,
      registry: ctx.registry,
      scheduler: config,
      clock,
      jobContext: (asOf) => ({ ...ctx, asOf }),
      runner: inProcessRunner,
      driftEveryMs: DAY_MS,
      driftWindowMs: 4 * DAY_MS,
    });
    for (let day = 10; day <= 26; day++) {
      clock.t = startMs + day * DAY_MS;
      ctx = { ...ctx, asOf: clock.t };
      const step = await loop.step();
      decisions.push(...step.decisions);
      made.push(...step.artefacts.flatMap((a) => a.artefacts));
      if (day === 10) bad = await shuffledLabelCandidate(ctx);
      if (step.decisions.some((d) => d.action === "finetune")) break;
    }
    // The deliberately bad candidate (same window as the first adapter, labels shuffled) was refused and kept.
    expect(bad!.gate.passed).toBe(false);
    expect(bad!.gate.reasons.join(" ")).toMatch(/worse than the active artefact/);
    expect(ctx.registry.get(bad!.id).status).toBe("rejected");
    const reg = ctx.registry;
    const kinds = decisions.map((d) => d.action);
    expect(kinds[0]).toBe("bootstrap");
    expect(kinds.filter((k) => k === "refresh").length).toBeGreaterThanOrEqual(3);

    // The fine-tune came early (calendar: day 40), after the drift event, and names the drift figure behind it.
    const ft = decisions.find((d) => d.action === "finetune")!;
    expect(ft).toBeDefined();
    const ftDay = (ft.at - startMs) / DAY_MS;
    expect(ftDay).toBeGreaterThan(DRIFT_DAY);
    expect(ftDay).toBeLessThan(40);
    expect(ft.reason).toMatch(/^drift: Jaccard/);
    expect(ft.drift.adapterJaccard).toBeLessThan(0.2);
    // Same clock and drift, calendar-only hybrid policy: no fine-tune yet.
    const hybrid = SchedulerConfigSchema.parse({ strategy: "hybrid" });
    expect(decide(hybrid, { bootstrappedAt: startMs + 10 * DAY_MS, lastFinetune: startMs + 10 * DAY_MS, lastRefresh: ft.at }, ft.at, ft.drift).actions).toEqual([]);
    // Every decision is in the log with its drift figures.
    const logged = readFileSync(join(reg.dir, "scheduler.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(logged.map((l) => l.action)).toEqual(kinds);
    expect(logged.find((l) => l.action === "finetune").drift.adapterJaccard).toBe(ft.drift.adapterJaccard);

    // Lineage: base -> adapters -> tables, ids and hashes consistent end to end.
    const bases = reg.list("base");
    const adapters = reg.list("adapter").filter((a) => a.id !== bad!.id);
    expect(bases).toHaveLength(1);
    const base = bases[0]!;
    expect(base.status).toBe("active");
    const baseHash = createHash("sha256").update(readFileSync(base.files.find((f) => f.endsWith(base.manifest.trainFile))!)).digest("hex");
    expect(base.manifest.modelHash).toBe(baseHash);
    expect(adapters).toHaveLength(2);
    const [first, second] = adapters as [AdapterRecord, AdapterRecord];
    for (const a of adapters) {
      expect(a.manifest.baseId).toBe(base.id);
      expect(a.manifest.baseHash).toBe(baseHash);
      expect(a.manifest.trainingSetId).toBe(a.manifest.trainingSet.id);
      expect(a.gate.metrics.exactMatch).toBe(1);
    }
    expect(second.manifest.warmStartFrom).toBe(first.id);
    expect(second.status).toBe("active");
    expect(first.status).toBe("retired");
    const tables = reg.list("table");
    for (const t of tables) {
      const { lineage } = t.manifest;
      expect(lineage.baseId).toBe(base.id);
      expect([first.id, second.id]).toContain(lineage.adapterId);
      expect(lineage.snapshotId).toMatch(new RegExp(`:${lineage.createdAt - 7 * DAY_MS}-${lineage.createdAt}:`));
      const stored = await store.predictionTable(t.id);
      expect(stored?.meta).toMatchObject({ baseId: base.id, adapterId: lineage.adapterId, snapshotId: lineage.snapshotId, createdAt: lineage.createdAt });
      expect(stored?.rows.length).toBe(t.manifest.keys);
    }
    const active = reg.active();
    expect(active).toMatchObject({ base: base.id, adapter: second.id });
    const activeTable = reg.getOf("table", active.table!);
    expect(activeTable.manifest.lineage.adapterId).toBe(second.id); // the table rebuilt after the fine-tune
    expect(made.map((a) => a.id)).toEqual(expect.arrayContaining([base.id, first.id, second.id, activeTable.id]));
    expect(reg.promotions().filter((p) => p.kind === "adapter").map((p) => [p.to, p.by])).toEqual([
      [first.id, "scheduler:adaptive"],
      [second.id, "scheduler:adaptive"],
    ]);

    await store.close();
  });
});
