/**
 * Table refreshes on a real bootstrapped tiny model. The retrieval blend: the weight is fitted on the holdout days
 * with the snapshot from before them and recorded in the registry and the stored table; at weight 1 the table leads
 * with retrieval's most frequent successor wherever retrieval has one. Retention: tables the registry retires
 * leave the store.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "@freshrec/core";
import type { Store } from "@freshrec/retriever";
import { bootstrap, refreshTable, type JobContext } from "../src/index.js";
import { tinyContext, tinyWorldStore } from "./loop-fixtures.js";

const AS_OF_DAY = 20;
// A 6-day holdout of the tiny world is ~500 transitions, enough for the fit (it needs 200).
const HOLDOUT_DAYS = 6;

describe("table refresh job", () => {
  let store: Store;
  let dir: string;
  let ctx: JobContext;

  beforeAll(async () => {
    const f = await tinyWorldStore();
    store = f.store;
    dir = f.dir;
    ctx = tinyContext(store, dir, f.startMs + AS_OF_DAY * DAY_MS, { trainingSet: { holdoutDays: HOLDOUT_DAYS } });
    await bootstrap(ctx, { rag: true });
  }, 300_000);
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tableOf = async (id: string) => {
    const rec = ctx.registry.getOf("table", id);
    const stored = await store.predictionTable(rec.manifest.tableId);
    return { rec, stored: stored! };
  };

  it("fits the weights on holdout transitions retrieval has not seen and records them with the table", async () => {
    const { rec, stored } = await tableOf(ctx.registry.active().table!);
    const blend = rec.manifest.ragBlend as Required<typeof rec.manifest.ragBlend>;
    expect(blend.reason).toMatch(/^fitted on \d+ holdout transitions/);
    expect(blend.fit.cases).toBeGreaterThanOrEqual(200);
    expect(blend.fit.grid).toHaveLength(66); // rag, popularity in 0, 0.1, .., 1 with rag + popularity <= 1
    const bestMrr = Math.max(...blend.fit.grid.map((g) => g.mrr));
    const chosen = blend.fit.grid.find((g) => g.rag === blend.weights.rag && g.popularity === blend.weights.popularity)!;
    expect(chosen.mrr).toBe(bestMrr);
    expect([stored.meta.ragBlend, stored.meta.popularityBlend]).toEqual([blend.weights.rag, blend.weights.popularity]);
    // Live answers' weights: fitted on the same holdout, each transition with the successors counted just before it.
    const live = blend.live as Required<NonNullable<typeof blend.live>>;
    const holdout = await store.transitions({ start: ctx.asOf - HOLDOUT_DAYS * DAY_MS, end: ctx.asOf });
    expect(live.fit.cases).toBe(Math.min(holdout.length, 2000));
    expect(live.fit.grid).toHaveLength(66);
    const liveChosen = live.fit.grid.find((g) => g.rag === live.weights.rag && g.popularity === live.weights.popularity)!;
    expect(liveChosen.mrr).toBe(Math.max(...live.fit.grid.map((g) => g.mrr)));
    expect([stored.meta.liveRagBlend, stored.meta.livePopularityBlend]).toEqual([live.weights.rag, live.weights.popularity]);
    if (blend.weights.popularity > 0 || live.weights.popularity > 0) expect(JSON.parse(String(stored.meta.popularity))).toHaveLength((await store.clusters()).length);
    else expect(stored.meta.popularity).toBeUndefined();
  });

  it("at rag weight 1 leads every key with retrieval's most frequent successor, and without RAG records the model alone", async () => {
    const asOne = await refreshTable({ ...ctx, config: { ...ctx.config, ragBlend: { rag: 1, popularity: 0 } }, autoPromote: false });
    const { stored } = await tableOf(asOne.id);
    expect([stored.meta.ragBlend, stored.meta.popularityBlend]).toEqual([1, 0]);
    // Configured weights serve live answers too.
    expect([stored.meta.liveRagBlend, stored.meta.livePopularityBlend]).toEqual([1, 0]);
    const snapshot = await store.snapshot({ start: ctx.asOf - ctx.config.ragWindowDays * DAY_MS, end: ctx.asOf, n: ctx.config.tableTopN });
    let checked = 0;
    for (const row of stored.rows) {
      const history = row.key.split(",").map(Number);
      const counts = new Map((snapshot.lookup(history)?.items ?? []).filter((i) => !history.includes(i.clusterId)).map((i) => [i.clusterId, i.count]));
      if (counts.size === 0) continue;
      expect(counts.get(row.clusters[0]!), `key ${row.key}`).toBe(Math.max(...counts.values()));
      checked++;
    }
    expect(checked).toBeGreaterThan(100);

    const noRag = await refreshTable({ ...ctx, autoPromote: false }, { rag: false });
    expect((await tableOf(noRag.id)).stored.meta.ragBlend).toBe(0);
    expect(noRag.manifest.ragBlend).toMatchObject({ weights: { rag: 0, popularity: 0 }, reason: "no RAG" });
  });

  it("at popularity weight 1 ranks every key by the window's popularity and stores it for live serving", async () => {
    const popular = await refreshTable({ ...ctx, config: { ...ctx.config, ragBlend: { rag: 0, popularity: 1 } }, autoPromote: false });
    const { stored } = await tableOf(popular.id);
    const shares = JSON.parse(String(stored.meta.popularity)) as number[];
    const recent = await store.transitions({ start: ctx.asOf - ctx.config.ragWindowDays * DAY_MS, end: ctx.asOf });
    const top = shares.indexOf(Math.max(...shares));
    expect(shares[top]).toBeCloseTo(recent.filter((t) => t.next === top).length / recent.length, 5);
    for (const row of stored.rows) {
      const history = row.key.split(",").map(Number);
      const best = Math.max(...shares.filter((_, c) => !history.includes(c)));
      expect(shares[row.clusters[0]!], `key ${row.key}`).toBeCloseTo(best, 5);
    }
  });

  it("drops the stored tables the registry's retention retires, and only those", async () => {
    await store.putPredictionTable({ id: "not-this-registrys", meta: {}, rows: [] });
    for (let i = 0; i < 6; i++) await refreshTable({ ...ctx, config: { ...ctx.config, ragBlend: { rag: 0, popularity: 0 } } }, { rag: false });
    const inRegistry = ctx.registry.list("table").map((r) => r.id);
    expect(inRegistry.length).toBeLessThan(9); // retention retired some of the 9 refreshes
    expect(await store.predictionTableIds()).toEqual([...inRegistry, "not-this-registrys"].sort());

    const before = await store.predictionTableIds();
    await refreshTable({ ...ctx, config: { ...ctx.config, ragBlend: { rag: 0, popularity: 0 }, dropRetiredTables: false } }, { rag: false });
    const after = await store.predictionTableIds();
    expect(after.length).toBe(before.length + 1);
  });
});
