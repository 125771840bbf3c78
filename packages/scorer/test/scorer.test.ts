import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FreshrecError } from "@freshrec/core";
import {
  AdapterMismatchError, loadClusterModel, ModelFileError, NotAFreshrecModelError, ScorerDisposedError, StaleAdapterError, type ClusterModel,
} from "../src/index.js";
import { LAYOUT, randomPrompts, trainTinyModels, type TinyModels } from "./fixtures.js";

describe("scorer", () => {
  let m: TinyModels;
  let model: ClusterModel;
  beforeAll(async () => {
    m = await trainTinyModels();
    model = await loadClusterModel({ path: m.f32 });
  }, 240_000);
  afterAll(async () => {
    await model?.dispose();
    await m?.cleanup();
  });

  it("reads the model id, layout and trained window from the GGUF metadata", () => {
    expect(model.modelId).toBe("tiny-base");
    expect(model.layout).toEqual(LAYOUT);
    expect(model.trainedWindow).toEqual({ start: 1_700_000_000_000, end: 1_700_086_400_000 });
  });

  it("returns a closed-set distribution: clusters only, history excluded, sums to 1, sorted", async () => {
    const scorer = await model.createScorer({ parallel: 4 });
    const prompts = randomPrompts(30, 5);
    const dists = await scorer.scoreNext(prompts);
    dists.forEach((d, i) => {
      const ids = d.map((s) => s.clusterId);
      expect(new Set(ids).size).toBe(LAYOUT.nClusters - new Set(prompts[i]!.history).size);
      for (const h of prompts[i]!.history) expect(ids).not.toContain(h);
      // renormalised in float64 over <= 24 terms: 1 within ~1e-14 on any CPU; toBeCloseTo(1, 9) allows 5e-10
      expect(d.reduce((s, x) => s + x.p, 0)).toBeCloseTo(1, 9);
      for (let j = 1; j < d.length; j++) expect(d[j - 1]!.p).toBeGreaterThanOrEqual(d[j]!.p);
    });
    await scorer.dispose();
  });

  it("learned the synthetic world: top-1 is the planted successor", async () => {
    const scorer = await model.createScorer();
    const prompts = randomPrompts(100, 9);
    const dists = await scorer.scoreNext(prompts);
    const hits = prompts.filter((p, i) => dists[i]![0]!.clusterId === (p.history[1]! * 7 + 3) % LAYOUT.nClusters).length;
    expect(hits).toBeGreaterThanOrEqual(90);
    await scorer.dispose();
  });

  it("rejects prompts with clusters outside the vocabulary, naming them", async () => {
    const scorer = await model.createScorer({ parallel: 2 });
    await expect(scorer.scoreNext([{ history: [1, 99], rag: null }])).rejects.toThrow(/cluster 99 is not in the model's vocabulary of 24/);
    await scorer.dispose();
  });

  it("reports base and adapter ids and counts adapter loads", async () => {
    const before = model.adapterLoads;
    const s = await model.createScorer({ adapterPath: m.adapter });
    expect(s.baseId).toBe("tiny-base");
    expect(s.adapterId).toBe("tiny-adapter");
    const again = await model.createScorer({ adapterPath: m.adapter, adapterId: "custom" });
    expect(again.adapterId).toBe("custom");
    expect(model.adapterLoads).toBe(before + 1);
    expect((await model.createScorer()).adapterId).toBeNull();
    await Promise.all([s.dispose(), again.dispose()]);
  });

  it("dispose waits for in-flight prompts, then refuses new ones", async () => {
    const scorer = await model.createScorer({ parallel: 2 });
    const pending = scorer.scoreNext(randomPrompts(50, 4));
    await scorer.dispose();
    expect(await pending).toHaveLength(50);
    await expect(scorer.scoreNext(randomPrompts(1, 4))).rejects.toBeInstanceOf(ScorerDisposedError);
  });

  describe("typed errors", () => {
    it("missing model file", async () => {
      await expect(loadClusterModel({ path: join(m.dir, "nope.gguf") })).rejects.toBeInstanceOf(ModelFileError);
    });
    it("a file that is not GGUF", async () => {
      const bad = join(m.dir, "bad.gguf");
      await writeFile(bad, "definitely not a model");
      await expect(loadClusterModel({ path: bad })).rejects.toThrow(ModelFileError);
    });
    it("a file that starts with GGUF but is not GGUF (node-llama-cpp's reader would never return)", async () => {
      const bad = join(m.dir, "fake.gguf");
      await writeFile(bad, "GGUF but not really");
      await expect(loadClusterModel({ path: bad })).rejects.toThrow(/not a (readable )?GGUF file/);
    });
    it("an adapter passed as a base model", async () => {
      await expect(loadClusterModel({ path: m.adapter })).rejects.toThrow(/is not a freshrec cluster model: it is a LoRA adapter/);
    });
    it("a llama GGUF without freshrec metadata", async () => {
      // Same-length rename of one key: still valid GGUF, no longer a freshrec model.
      const bytes = await readFile(m.f32);
      const at = bytes.indexOf("freshrec.model_id");
      bytes.write("freshrex", at);
      const foreign = join(m.dir, "foreign.gguf");
      await writeFile(foreign, bytes);
      const err = await loadClusterModel({ path: foreign }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotAFreshrecModelError);
      expect((err as Error).message).toMatch(/model_id/);
    });
    it("missing adapter file", async () => {
      await expect(model.createScorer({ adapterPath: join(m.dir, "missing-adapter.gguf") })).rejects.toMatchObject({ code: "adapter-file" });
    });
    it("an adapter trained for a differently shaped base", async () => {
      const err = await model.createScorer({ adapterPath: m.otherAdapter }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AdapterMismatchError);
      expect((err as Error).message).toMatch(/\.weight: A \[/);
    });
    it("an adapter rewritten in place after llama.cpp cached it", async () => {
      const path = join(m.dir, "served.gguf");
      await copyFile(m.adapter, path);
      await (await model.createScorer({ adapterPath: path })).dispose();
      const other = await readFile(m.adapter);
      other.writeFloatLE(0.5, other.length - 4); // any change to the file counts
      await writeFile(path, other);
      await expect(model.createScorer({ adapterPath: path })).rejects.toBeInstanceOf(StaleAdapterError);
    });
    it("all of them are FreshrecErrors with stable codes", () => {
      for (const E of [ModelFileError, NotAFreshrecModelError, AdapterMismatchError, StaleAdapterError, ScorerDisposedError]) expect(E.prototype).toBeInstanceOf(FreshrecError);
    });
  });
});
