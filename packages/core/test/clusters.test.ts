import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  assignToCluster,
  buildClusters,
  buildFeatureSpace,
  chooseClusterCount,
  ClusterModelSchema,
  featureNames,
  InvalidOptionError,
  loadMovieLens,
  parseClusterCountOption,
  resolveClusters,
  countUnplaced,
  UNPLACED,
  vectorize,
  type Item,
} from "../src/index.js";
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
    expect(resolveClusters([{ itemId: "x", clusterId: 1 }], { k: 2, seed: 1 }).assignment.get("x")).toBe(1);
  });

  it("never splits items with identical features, and no two clusters share a description", () => {
    // The shape: many "Drama, 1990s" twins. Balanced k-means used to cut them into several clusters,
    // each described "Drama, 1990s".
    const movies: Item[] = [
      ...Array.from({ length: 40 }, (_, i) => item(`dr${i}`, ["Drama"], "1990s")),
      ...Array.from({ length: 10 }, (_, i) => item(`co${i}`, ["Comedy"], "1990s")),
      ...Array.from({ length: 10 }, (_, i) => item(`ho${i}`, ["Horror"], "1980s")),
      ...Array.from({ length: 10 }, (_, i) => item(`cd${i}`, ["Comedy", "Drama"], "2000s")),
    ];
    const built = buildClusters(movies, { k: 4, seed: 1 });
    const twins = new Set(Array.from({ length: 40 }, (_, i) => built.assignment.get(`dr${i}`)));
    expect(twins.size).toBe(1);
    const descriptions = built.clusters.map((c) => [...c.keywords].sort().join(","));
    expect(new Set(descriptions).size).toBe(built.clusters.length);
    // The twins' cluster exceeds the balance capacity ceil(70 / 4) = 18 only because it holds one signature.
    expect(built.model.clusters[[...twins][0]!]!.size).toBe(40);
    expect(built.count).toMatchObject({ clusters: 4, k: 4, requested: 4, items: 70, signatures: 4, merged: 0 });
  });

  it("caps a requested count at the distinct feature signatures and says so", () => {
    const built = buildClusters(catalogue, { k: 10, seed: 1 });
    // h: two signatures (with and without "gore"), a: two, d: one
    expect(built.count).toMatchObject({ k: 5, requested: 10, signatures: 5 });
    expect(built.count.reason).toBe("5 clusters: k = 5 (10 requested, capped at the 5 distinct feature signatures)");
    expect(new Set(built.clusters.map((c) => c.keywords.join(","))).size).toBe(5);
  });

  it("chooses the count by the documented rule unless given: min(64, ceil(sqrt(items)), signatures)", () => {
    expect(chooseClusterCount({ items: 9_125, signatures: 2_532 }).k).toBe(64);
    expect(chooseClusterCount({ items: 50, signatures: 30 }).k).toBe(8);
    expect(chooseClusterCount({ items: 50, signatures: 3 }).k).toBe(3);
    expect(chooseClusterCount({ items: 50, signatures: 3, requested: 2 })).toEqual({ k: 2, reason: "2 requested" });
    const built = buildClusters(catalogue, { seed: 1 });
    // 18 items -> ceil(sqrt(18)) = 5, 5 signatures
    expect(built.count.reason).toBe("5 clusters: k = 5 (default rule min(64, ceil(sqrt(18 items)) = 5, 5 distinct feature signatures))");
  });

  it("folds clusters whose descriptions coincide into one, described again", () => {
    // Four signatures, one keyword each: (Drama, en) and (Drama, de) are both described "Drama".
    const lang = (itemId: string, genre: string, language: string): Item => ({ itemId, features: { categorical: { genre, language }, tags: [] } });
    const items = [
      ...Array.from({ length: 10 }, (_, i) => lang(`den${i}`, "Drama", "en")),
      ...Array.from({ length: 10 }, (_, i) => lang(`dde${i}`, "Drama", "de")),
      ...Array.from({ length: 20 }, (_, i) => lang(`cen${i}`, "Comedy", "en")),
      ...Array.from({ length: 20 }, (_, i) => lang(`cde${i}`, "Comedy", "de")),
    ];
    const built = buildClusters(items, { k: 4, seed: 1, keywords: 1 });
    expect(built.count).toMatchObject({ clusters: 3, k: 4, merged: 1 });
    expect(built.count.reason).toContain("1 folded into clusters with the same description");
    expect(built.clusters.map((c) => c.keywords).sort()).toEqual([["Drama"], ["de"], ["en"]]);
    expect(built.clusters.map((c) => c.id)).toEqual([0, 1, 2]);
    expect(built.assignment.get("den0")).toBe(built.assignment.get("dde0"));
    expect(built.model.clusters.map((c) => c.size).reduce((a, b) => a + b)).toBe(60);
  });

  it("leaves items with no kept feature out, with a reason, instead of placing them anywhere", () => {
    const items: Item[] = [...catalogue, { itemId: "rare", features: { categorical: {}, tags: ["seen-once"] } }, { itemId: "ided", clusterId: 0 }];
    const resolved = resolveClusters(items, { seed: 1 });
    expect(resolved.built!.unclassified).toEqual(["rare"]);
    expect(resolved.assignment.has("rare")).toBe(false);
    expect(resolved.unplaced).toEqual(new Map([["ided", UNPLACED.noFeatures], ["rare", UNPLACED.noKeptFeature]]));
    expect(resolved.built!.count.items).toBe(18);
    const events = ["h0", "rare", "rare", "ided", "gone"].map((itemId) => ({ itemId }));
    expect(countUnplaced(events, resolved)).toEqual({ [UNPLACED.noKeptFeature]: 2, [UNPLACED.noFeatures]: 1, [UNPLACED.unknownItem]: 1 });
  });

  it("describes given clusters by their items' categorical values and tags, cluster-N only when there is nothing", () => {
    const given = (itemId: string, clusterId: number, genre?: string, tags: string[] = []): Item =>
      genre ? { itemId, clusterId, features: { categorical: { genre }, tags } } : { itemId, clusterId };
    const items = [
      ...["a", "b", "c"].map((id) => given(`j${id}`, 0, "jazz", ["piano"])),
      ...["a", "b", "c"].map((id) => given(`r${id}`, 1, "rock")),
      ...["a", "b"].map((id) => given(`x${id}`, 3)),
    ];
    const resolved = resolveClusters(items, { seed: 1 });
    expect(resolved.clusters).toEqual([
      { id: 0, keywords: ["jazz", "piano"] },
      { id: 1, keywords: ["rock"] },
      { id: 2, keywords: ["cluster-2"] },
      { id: 3, keywords: ["cluster-3"] },
    ]);
    expect(resolved.summary).toBe("4 clusters from the items' clusterId (ids 0..3; 1 ids without items; keywords from the items' categorical values and tags; 2 with none: cluster-N)");
    // One cluster alone: nothing is more frequent than in the catalogue, so its most frequent values describe it.
    expect(resolveClusters(items.slice(0, 3), { seed: 1 }).clusters).toEqual([{ id: 0, keywords: ["jazz", "piano"] }]);
    // Given clusters that look alike keep distinct descriptions.
    const twins = resolveClusters([given("p", 0, "pop"), given("q", 1, "pop"), given("s", 2, "soul")], { seed: 1 });
    expect(twins.clusters.map((c) => c.keywords)).toEqual([["pop", "cluster-0"], ["pop", "cluster-1"], ["soul"]]);
    expect(() => resolveClusters([given("p", 0), given("q", 9)], { seed: 1 })).toThrow("2 distinct ids reach up to 9");
  });

  it("parses --clusters / --k as a positive integer, naming the option and value", () => {
    expect(parseClusterCountOption("12")).toBe(12);
    for (const bad of ["0", "-3", "2.5", "ten", ""]) expect(() => parseClusterCountOption(bad, "--k")).toThrow(InvalidOptionError);
    expect(() => parseClusterCountOption("ten", "--k")).toThrow('--k "ten": expected a positive integer (number of clusters)');
  });

  const ML_DIR = join(import.meta.dirname, "../../../../shared/datasets/movielens-latest-small");
  if (!existsSync(ML_DIR)) console.warn(`skipping the MovieLens clustering test: ${ML_DIR} not found`);
  it.skipIf(!existsSync(ML_DIR))("clusters all MovieLens movies into near-equal, distinctly described clusters", async () => {
    const { items } = await loadMovieLens(ML_DIR);
    const built = buildClusters(items, { k: 32, seed: 1 });
    // Two movies have neither genres, year nor a kept tag: unclassified, not placed at random.
    expect(built.unclassified).toHaveLength(2);
    expect(built.assignment.size).toBe(9_123);
    expect(new Set(built.clusters.map((c) => [...c.keywords].sort().join(","))).size).toBe(32);
    // Within the balance capacity, except a cluster holding a single signature larger than it ("Drama, 1990s": 308 movies).
    const capacity = Math.ceil(9_123 / 32);
    const kept = new Set(built.model.space.names);
    const byId = new Map(items.map((i) => [i.itemId, i]));
    for (const c of built.model.clusters.filter((c) => c.size > capacity)) {
      const members = [...built.assignment].filter(([, id]) => id === c.id).map(([itemId]) => byId.get(itemId)!);
      expect(new Set(members.map((m) => featureNames(m.features!).filter((n) => kept.has(n)).sort().join("|"))).size).toBe(1);
    }
    const genres = new Set(items.flatMap((i) => i.features!.categorical.genres as string[]));
    // every cluster is described, and mostly by genres or decades
    for (const c of built.clusters) expect(c.keywords.some((w) => genres.has(w) || /^\d{4}s$/.test(w))).toBe(true);
    expect(buildClusters(items, { seed: 1 }).count.k).toBe(64);
  }, SLOW_TEST_TIMEOUT_MS);
});
