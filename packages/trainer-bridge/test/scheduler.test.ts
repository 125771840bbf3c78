import { describe, expect, it } from "vitest";
import { DAY_MS } from "@freshrec/core";
import { SchedulerConfigSchema, decide, initialSchedulerState, type DriftReading, type Strategy } from "../src/index.js";

/** Drives the pure policy on a simulated clock, one tick per 12 h, and returns the days each action ran. */
function simulate(strategy: Strategy, days: number, drift: (day: number) => DriftReading = () => ({})) {
  const config = SchedulerConfigSchema.parse({ strategy });
  let state = initialSchedulerState();
  const runs: Array<[number, string]> = [];
  for (let t = 0; t <= days * DAY_MS; t += DAY_MS / 2) {
    const out = decide(config, state, t, drift(t / DAY_MS));
    state = out.state;
    for (const a of out.actions) runs.push([t / DAY_MS, a.kind === "refresh" ? `refresh${a.rag ? "+rag" : ""}` : a.kind]);
  }
  return runs;
}

describe("scheduler policy", () => {
  it("hybrid follows the paper's calendar: refresh every 2 days, fine-tune every 30", () => {
    const runs = simulate("hybrid", 61);
    expect(runs.filter(([, k]) => k === "finetune").map(([d]) => d)).toEqual([30, 60]);
    const refreshDays = runs.filter(([, k]) => k === "refresh+rag").map(([d]) => d);
    expect(refreshDays.slice(0, 3)).toEqual([2, 4, 6]);
    expect(refreshDays).toContain(30); // the table is rebuilt after each fine-tune
    expect(runs[0]).toEqual([0, "bootstrap"]);
  });

  it("each strategy does only what it names", () => {
    expect(simulate("static", 40)).toEqual([[0, "bootstrap"]]);
    expect(simulate("rag-frozen", 40)).toEqual([[0, "bootstrap"]]);
    expect(simulate("rag", 40).some(([, k]) => k === "finetune")).toBe(false);
    const ft = simulate("finetune", 40);
    expect(ft.filter(([, k]) => k.startsWith("refresh"))).toEqual([[30, "refresh"]]);
  });

  it("adaptive fine-tunes early on drift and logs the figure that caused it", () => {
    const config = SchedulerConfigSchema.parse({ strategy: "adaptive" });
    let state = decide(config, initialSchedulerState(), 0).state;
    const calm = decide(config, state, 6 * DAY_MS, { adapterJaccard: 0.8, recentJaccard: 0.7 });
    expect(calm.actions).toEqual([{ kind: "refresh", rag: true }]);
    state = calm.state;
    const drifted = decide(config, state, 10 * DAY_MS, { adapterJaccard: 0.1, recentJaccard: 0.7 });
    expect(drifted.actions.map((a) => a.kind)).toEqual(["finetune", "refresh"]);
    expect(drifted.decisions[0]!.reason).toMatch(/Jaccard 0\.100/);
    expect(drifted.decisions[0]!.drift.adapterJaccard).toBe(0.1);
    // Too soon after a fine-tune: no second one, whatever the drift.
    expect(decide(config, drifted.state, 11 * DAY_MS, { adapterJaccard: 0.05 }).actions.map((a) => a.kind)).not.toContain("finetune");
  });

  it("adaptive refreshes faster under short-term drift and slower when flat", () => {
    const count = (recentJaccard: number) => simulate("adaptive", 24, () => ({ recentJaccard })).filter(([, k]) => k === "refresh+rag").length;
    const high = count(0.2);
    const normal = count(0.7);
    const flat = count(0.95);
    expect(high).toBeGreaterThan(normal);
    expect(normal).toBeGreaterThan(flat);
  });
});
