import { describe, expect, it } from "vitest";
import { GateConfigSchema, evaluateGate, holdoutMetrics } from "../src/index.js";

const config = GateConfigSchema.parse({});

describe("gates", () => {
  it("computes exact match as the share of valid cluster outputs and recall from the ranking", () => {
    const m = holdoutMetrics(
      [
        { next: 3, ranked: [3, 1] },
        { next: 2, ranked: [1, 2] },
        { next: 0, ranked: [99, 0] }, // 99 is not a cluster of a 10-cluster model
        { next: 4, ranked: [] },
      ],
      10,
    );
    expect(m).toEqual({ n: 4, exactMatch: 2 / 3, recallAt1: 0.25, recallAt5: 0.75 });
  });

  it("passes a good candidate and names every failed condition", () => {
    const good = { n: 100, exactMatch: 1, recallAt1: 0.3, recallAt5: 0.6 };
    expect(evaluateGate(good, { ...good, recallAt1: 0.305 }, config)).toMatchObject({ passed: true, reasons: [] });
    const bad = evaluateGate({ n: 100, exactMatch: 0.8, recallAt1: 0.01, recallAt5: 0.1 }, good, config);
    expect(bad.passed).toBe(false);
    expect(bad.reasons).toHaveLength(3);
    expect(bad.reasons.join("\n")).toMatch(/exact match 80\.00 %[\s\S]*recall@1 1\.00 % < floor 1\.50 %[\s\S]*worse than the active/);
    expect(bad.metrics.activeRecallAt1).toBe(0.3);
  });

  it("refuses an empty holdout", () => {
    expect(evaluateGate({ n: 0, exactMatch: 0, recallAt1: 0, recallAt5: 0 }, undefined, { ...config, minExactMatch: 0, minRecallAt1: 0 }).passed).toBe(false);
  });
});
