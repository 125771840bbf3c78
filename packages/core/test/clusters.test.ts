import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { assignToCluster, buildClusters, buildFeatureSpace, ClusterModelSchema, featureNames, loadMovieLens, resolveClusters, vectorize, type Item } from "../src/index.js";
import { SLOW_TEST_TIMEOUT_MS } from "./slow.js";

const item = (itemId: string, genres: string[], decade: string, tags: string[] = []): Item => ({ itemId, features: { categorical: { genres, decade }, tags } });
const catalogue: Item[] = [
  ...Array.from({ length: 6 }, (_, i) => item(`h${i}`, ["Horror", "Thriller"], "1980s", i % 2 ? ["gore"] : [])),
  ...Array.from({ length: 6 }, (_, i) => item(`a${i}`, ["Animation", "Children"], "2000s", i % 2 ? ["pixar"] : [])),
  ...Array.from({ length: 6 }, (_, i) => item(`d${i}`, ["Documentary"], "2010s", ["nature"])),
];

describe("featurisation", () => {
  it("names categorical values and tags, keeps tags seen on enough items, unit-length vectors", () => {
    expect(featureNames(catalogue[1]!.features!)).toEqual(["genres=Horror", "genres=Thriller", "decade=1980s", "tag=gore"]);
    const space = buildFeatureSpace([...catalogue.map((i) => i.features!), { categorical: {}, tags: ["once"] }]);
    expect(space.names).toContain("tag=pixar");
    expect(space.names).not.toContain("tag=once");
    const v = vectorize(catalogue[0]!.features!, space);
    expect(v.reduce((s, x) => s + x * x, 0)).toBeCloseTo(1);
    expect(v[space.names.indexOf("genres=Documentary")]).toBe(0);
  });
});

describe("buildClusters", () => {
  it("groups items by their features, describes clusters by keywords, and places new items", () => {
    const built = buildClusters(catalogue, { k: 3, seed: 1 });
    const of = (id: string) => built.assignment.get(id);
    for (const p of ["h", "a", "d"]) for (let i = 1; i < 6; i++) expect(of(`${p}${i}`)).toBe(of(`${p}0`));
    expect(new Set([of("h0"), of("a0"), of("d0")]).size).toBe(3);
    const horror = built.clusters[of("h0")!]!;
    expect(horror.keywords).toEqual(expect.arrayContaining(["Horror", "Thriller", "1980s"]));
    expect(horror.keywords).not.toContain("Documentary");
    expect(ClusterModelSchema.parse(JSON.parse(JSON.stringify(built.model)))).toEqual(built.model);
    expect(assignToCluster({ categorical: { genres: ["Documentary"], mood: "calm" }, tags: ["nature"] }, built.model)).toBe(of("d0"));
  });
  it("uses given cluster ids when every item has one", () => {
    expect(resolveClusters([{ itemId: "x", clusterId: 4 }], { k: 2, seed: 1 }).assignment.get("x")).toBe(4);
  });

  const ML_DIR = join(import.meta.dirname, "../../../../shared/datasets/movielens-latest-small");
  it.skipIf(!existsSync(ML_DIR))("clusters all MovieLens movies into near-equal clusters", async () => {
    const { items } = await loadMovieLens(ML_DIR);
    const built = buildClusters(items, { k: 32, seed: 1 });
    expect(built.assignment.size).toBe(9_125);
    const sizes = built.model.clusters.map((c) => c.size);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(Math.ceil(9_125 / 32));
    const genres = new Set(items.flatMap((i) => i.features!.categorical.genres as string[]));
    // every cluster is described, and mostly by genres or decades
    for (const c of built.clusters) expect(c.keywords.some((w) => genres.has(w) || /^\d{4}s$/.test(w))).toBe(true);
  }, SLOW_TEST_TIMEOUT_MS);
});
