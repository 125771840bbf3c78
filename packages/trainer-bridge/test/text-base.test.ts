import { lstatSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DAY_MS } from "@freshrec/core";
import { isUserBase } from "@freshrec/registry";
import { fileSha256, loadScoringModel } from "@freshrec/scorer";
import { registerUserBase } from "../src/jobs/bootstrap.js";
import { writeSmallTextModel } from "../src/index.js";
import { tinyContext, tinyWorldStore } from "./loop-fixtures.js";

describe("registering freshrec's own small text model as the base", () => {
  it("with text.trainBase, trains every weight on the bootstrap window into a copy in the registry and records it; the source file is untouched", async () => {
    const { store, startMs, dir } = await tinyWorldStore();
    try {
      const source = await writeSmallTextModel(join(dir, "small-text.gguf"));
      const sourceHash = await fileSha256(source);
      const asOf = startMs + 8 * DAY_MS;
      // A budget of 160 examples, smaller than the window's set: one epoch on a seeded sample of 160, 10 steps of 16.
      const config = { baseModel: source, bootstrapDays: 6, text: { ragLines: 1, scoring: "constrained" as const, trainBase: true }, pretrain: { epochs: 3, batch: 16, exampleBudget: 160, threads: 2 } };
      const steps = new Set<number>();
      const onProgress = (e: { phase: string; total?: number }) => void (e.phase === "train-text" && e.total !== undefined && steps.add(e.total));
      const ctx = { ...tinyContext(store, dir, asOf, config), loadModel: loadScoringModel, onProgress };
      const base = await registerUserBase(ctx, source);
      expect([...steps]).toEqual([10]);

      expect(base.status).toBe("active");
      const m = base.manifest;
      if (!isUserBase(m)) throw new Error("expected a text base");
      const file = base.files.find((f) => f.endsWith("/small-text.gguf"))!;
      expect(lstatSync(file).isSymbolicLink()).toBe(false);
      expect(await fileSha256(source)).toBe(sourceHash);
      expect(m.modelHash).toBe(await fileSha256(file));
      expect(m.modelHash).not.toBe(sourceHash);
      expect(m.trainedWeights).toMatchObject({ fromHash: sourceHash });
      expect(m.trainedWeights!.examples).toBeGreaterThan(100);
      expect(m.trainedWeights!.window.end).toBeLessThanOrEqual(asOf);
      // The trained copy is what the loop scores: every holdout answer is one of the clusters (closed-set scoring).
      expect(m.holdout.exactMatch).toBe(1);
      expect(m.holdout.n).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  }, 300_000);

  it("without it, links the user's file unchanged and names it by its own hash", async () => {
    const { store, startMs, dir } = await tinyWorldStore();
    try {
      const source = await writeSmallTextModel(join(dir, "team-model.gguf"), 2);
      const ctx = { ...tinyContext(store, dir, startMs + 8 * DAY_MS, { baseModel: source, bootstrapDays: 6 }), loadModel: loadScoringModel };
      const base = await registerUserBase(ctx, source);
      const m = base.manifest;
      if (!isUserBase(m)) throw new Error("expected a text base");
      expect(lstatSync(base.files.find((f) => f.endsWith("/team-model.gguf"))!).isSymbolicLink()).toBe(true);
      expect(m.modelHash).toBe(await fileSha256(source));
      expect(m.trainedWeights).toBeUndefined();
    } finally {
      await store.close();
    }
  }, 120_000);
});
