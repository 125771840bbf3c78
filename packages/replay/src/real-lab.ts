import { cpSync } from "node:fs";
import { join } from "node:path";
import { DAY_MS, historyKey, type ClusterId } from "@freshrec/core";
import { openRegistry, parseTableMeta, type ArtefactRecord, type Registry } from "@freshrec/registry";
import { openStore, type Store } from "@freshrec/retriever";
import { loadClusterModel } from "@freshrec/scorer";
import {
  bootstrap,
  inProcessRunner,
  LoopConfigSchema,
  nativeTrainer,
  refreshTable,
  SchedulerConfigSchema,
  UpdateLoop,
  type ActionRunner,
  type EventSource,
  type JobContext,
  type LoopConfig,
} from "@freshrec/trainer-bridge";
import { top1Agreement } from "./analyses.js";
import { scaled, type ModelStrategyName, type ReplayConfig } from "./config.js";
import type { ReplayDataset } from "./dataset.js";
import { ReplayError } from "./errors.js";
import type { ModelLab } from "./model-lab.js";
import { zeroCost, type Predictor, type StrategyCost } from "./predictor.js";
import type { WalkProgress } from "./walk.js";
import { ServerAb } from "./ab.js";
import type { UpdateEntry } from "./results.js";
import { LiveScoring, type LiveModel } from "./live-scoring.js";
import { CountsOnly, type ServedBlend } from "./counts-only.js";

/** Strategies whose tables blend retrieval into the model's scores and get a counts-only twin. */
const BLENDED: readonly ModelStrategyName[] = ["hybrid"];

type ServedLineage = Pick<UpdateEntry, "table" | "base" | "adapter" | "snapshot" | "ragBlend" | "popularityBlend"> & { asOf: number; popularity?: number[] };

type Progress = ((e: WalkProgress) => void) | undefined;

/** Feeds the dataset's events into the shared store up to the simulated clock (never ahead of it): the update loop's event source. */
class StoreFeeder implements EventSource {
  private next = 0;
  constructor(
    readonly store: Store,
    private readonly events: ReplayDataset["events"],
  ) {}
  async syncTo(t: number): Promise<number> {
    const start = this.next;
    while (this.next < this.events.length && this.events[this.next]!.ts < t) this.next++;
    for (let i = start; i < this.next; i += 50_000) await this.store.ingest(this.events.slice(i, Math.min(this.next, i + 50_000)));
    return this.next - start;
  }
}

/** Examples a fine-tune trained on, from its training-set manifest. */
const examplesOf = (r: ArtefactRecord): number => (r.kind === "adapter" ? r.manifest.trainingSet.counts.train : 0);

/**
 * One update strategy on the service's own UpdateLoop: its own registry (copied from the shared bootstrap), the
 * loop driven by the replay's clock with the dataset as its event source and the jobs run in process, and
 * predictions by lookup in its active table.
 */
class ModelStrategy implements Predictor {
  readonly kind = "model" as const;
  private readonly clock: { t: number; now(): number };
  private readonly loop: UpdateLoop;
  private table = new Map<string, ClusterId[]>();
  /** Lineage of the table in use: base, adapter and RAG snapshot it was built from. */
  private served: ServedLineage = { table: "", base: "", adapter: "", snapshot: "", ragBlend: 0, popularityBlend: 0, asOf: 0 };
  private readonly log: UpdateEntry[] = [];
  readonly registryDir: string;
  private readonly spent: StrategyCost = zeroCost();
  private live: LiveModel | undefined;
  misses = 0;

  constructor(
    readonly name: ModelStrategyName,
    private readonly lab: RealLab,
    private readonly registry: Registry,
    start: number,
  ) {
    this.registryDir = registry.dir;
    const clock = { t: start, now: () => clock.t };
    this.clock = clock;
    // The registry holds the shared bootstrap: the loop adopts it at `start`, as a service adopts a bootstrapped registry.
    this.loop = new UpdateLoop({
      store: lab.store,
      registry,
      scheduler: lab.scheduler(name),
      clock,
      jobContext: (asOf) => lab.context(registry, asOf, `replay:${name}`),
      runner: this.accounted,
      source: lab.feeder,
      sourceSync: "when-needed",
      anchor: "clock",
      driftEveryMs: lab.driftCheckMs,
      onFailure: "throw",
      // The loop's own decision lines name why each update ran: copied onto the update log of the results.
      onDecision: (line) => {
        const ids = new Set(line.artefacts.map((a) => a.id));
        for (const e of this.log) if (ids.has(e.candidate)) Object.assign(e, { reason: line.reason, drift: line.drift });
      },
    });
  }

  /** Runs the loop's jobs in process, counting their cost; fine-tunes show progress named by strategy. */
  private readonly accounted: ActionRunner = async (action, ctx) => {
    if (action.kind === "bootstrap") throw new ReplayError(`strategy ${this.name}: the scheduler asked for a bootstrap after the shared one`);
    const progress = this.lab.onProgress;
    const started = performance.now();
    const made = await inProcessRunner(action, action.kind === "finetune" && progress ? { ...ctx, onProgress: (e) => progress({ ...e, phase: `${this.name} ${e.phase}` }) } : ctx);
    if (action.kind === "refresh") {
      this.spent.refreshS += (performance.now() - started) / 1000;
      this.spent.refreshes++;
    }
    for (const rec of made) {
      if (action.kind === "finetune") {
        this.spent.trainCpuS += rec.manifest.cpuS;
        this.spent.examplesTrained += examplesOf(rec);
        this.spent.finetunes++;
      }
      await this.loadActiveTable();
      const { asOf: _asOf, popularity: _popularity, ...lineage } = this.served;
      this.log.push({ at: ctx.asOf, action: action.kind, candidate: rec.id, promoted: rec.status === "active", ...lineage, reason: "", drift: {} });
    }
    return made;
  };

  async loadActiveTable(): Promise<void> {
    this.live = undefined; // an update ran: the active adapter may have changed too
    const id = this.registry.active().table;
    if (!id) throw new ReplayError(`strategy ${this.name}: no active table in ${this.registry.dir}`);
    if (this.served.table === id) return;
    const { tableId } = this.registry.getOf("table", id).manifest;
    const t = await this.lab.store.predictionTable(tableId);
    if (!t) throw new ReplayError(`strategy ${this.name}: table ${tableId} is in the registry but not in the store`);
    this.table = new Map(t.rows.map((r) => [r.key, r.clusters]));
    const meta = parseTableMeta(tableId, t.meta);
    this.served = {
      table: id,
      base: meta.baseId,
      adapter: meta.adapterId,
      snapshot: meta.snapshotId,
      ragBlend: meta.ragBlend,
      popularityBlend: meta.popularityBlend,
      asOf: meta.createdAt,
      ...(meta.popularityShares ? { popularity: meta.popularityShares } : {}),
    };
  }

  activeTable(): ReadonlyMap<string, ClusterId[]> {
    return this.table;
  }

  /** What live scoring for this strategy uses now: its active base and adapter files and its table's blend weights (read from the registry once per update). */
  liveModel(): LiveModel {
    if (this.live) return this.live;
    const active = this.registry.active();
    const base = this.registry.get(active.base!);
    const adapter = active.adapter ? this.registry.get(active.adapter) : undefined;
    this.live = { basePath: base.path!, ...(adapter?.path ? { adapter: { id: adapter.id, path: adapter.path } } : {}), blend: { rag: this.served.ragBlend, popularity: this.served.popularityBlend } };
    return this.live;
  }

  servedBlend(): ServedBlend {
    const s = this.served;
    return { tableId: s.table, asOf: s.asOf, weights: { rag: s.ragBlend, popularity: s.popularityBlend }, popularity: s.popularity };
  }

  /** Registry id of the table this strategy answers from (the A/B checks its server serves the same one). */
  servedTableId(): string {
    return this.served.table;
  }

  updates(): UpdateEntry[] {
    return this.log.map((e) => ({ ...e }));
  }

  async advanceTo(t: number): Promise<void> {
    this.clock.t = t;
    await this.loop.step();
  }

  /** Table lookup; with at most allKeysUpTo keys every key is in the table, so a miss is recorded as an empty list. */
  async predict(history: readonly ClusterId[], n: number): Promise<ClusterId[]> {
    const row = this.table.get(historyKey(history));
    if (!row) {
      this.misses++;
      return [];
    }
    return row.slice(0, n);
  }

  observe(): void {}

  cost(): StrategyCost {
    return { ...this.spent };
  }
}

class RealLab implements ModelLab {
  readonly feeder: StoreFeeder;
  readonly driftCheckMs: number;
  private readonly loop: LoopConfig;
  private readonly shared: Registry;
  private readonly made = new Map<string, ModelStrategy>();
  private bootstrapS = 0;
  private firstTables: { noRag?: Map<string, ClusterId[]>; rag?: Map<string, ClusterId[]> } = {};

  constructor(
    readonly store: Store,
    readonly storeUri: string,
    private readonly dataset: ReplayDataset,
    private readonly config: ReplayConfig,
    private readonly workDir: string,
    overrides: Record<string, unknown> = {},
    readonly onProgress: Progress = undefined,
  ) {
    this.feeder = new StoreFeeder(store, dataset.events);
    const sc = scaled(config);
    const first = dataset.transitions[0]!.ts;
    this.loop = LoopConfigSchema.parse({
      k: dataset.k,
      bootstrapDays: (config.testStart - first) / DAY_MS + 1,
      finetuneDays: sc.finetuneWindowMs / DAY_MS,
      tableSupportDays: sc.finetuneWindowMs / DAY_MS,
      ragWindowDays: sc.recentWindowMs / DAY_MS,
      trainingSet: { holdoutDays: 3 * config.timeScale, ragWindowDays: sc.recentWindowMs / DAY_MS, seed: config.seed },
      seed: config.seed,
      threads: 2,
      // Every strategy's registry starts as a copy of the shared bootstrap one, first table included.
      dropRetiredTables: false,
      ...overrides,
    });
    this.driftCheckMs = sc.refreshEveryMs / 2;
    this.shared = openRegistry(join(workDir, "models", "shared"));
  }

  context(registry: Registry, asOf: number, by: string): JobContext {
    return { store: this.store, registry, trainer: nativeTrainer(), loadModel: loadClusterModel, config: this.loop, asOf, by };
  }

  /** Scheduler settings of a strategy, with every cadence scaled to the dataset's traffic. */
  scheduler(name: ModelStrategyName) {
    const s = this.config.timeScale;
    return SchedulerConfigSchema.parse({
      strategy: name,
      finetuneEveryDays: this.config.finetuneEveryDays * s,
      refreshEveryDays: this.config.refreshEveryDays * s,
      adaptive: { minFinetuneGapDays: 5 * s, minRefreshDays: 1 * s, maxRefreshDays: 6 * s },
    });
  }

  async init(): Promise<void> {
    const onProgress = this.onProgress;
    await this.store.putClusters(this.dataset.clusters);
    const t0 = this.config.testStart;
    await this.feeder.syncTo(t0);
    const started = performance.now();
    const ctx = { ...this.context(this.shared, t0, "replay:bootstrap"), ...(onProgress ? { onProgress } : {}) };
    await bootstrap(ctx, { rag: false });
    this.bootstrapS = (performance.now() - started) / 1000;
  }

  async strategies(names: ModelStrategyName[], onProgress?: Progress, live: ModelStrategyName[] = []): Promise<Predictor[]> {
    const t0 = this.config.testStart;
    const out: Predictor[] = [];
    for (const name of names) {
      const dir = join(this.workDir, "models", name);
      cpSync(this.shared.dir, dir, { recursive: true });
      const registry = openRegistry(dir);
      const s = new ModelStrategy(name, this, registry, t0);
      if (!["static", "finetune"].includes(name)) await refreshTable({ ...this.context(registry, t0, `replay:${name}`), ...(onProgress ? { onProgress } : {}) }, { rag: true });
      await s.loadActiveTable();
      if (name === "static") this.firstTables.noRag = new Map(s.activeTable());
      if (name === "rag-frozen" || name === "rag") this.firstTables.rag ??= new Map(s.activeTable());
      this.made.set(name, s);
      out.push(s);
      if (live.includes(name)) out.push(new LiveScoring(s, scaled(this.config).recentWindowMs, 1));
      // The model's own contribution: the blended RAG strategies once more with the model's weight at 0.
      if (BLENDED.includes(name)) out.push(new CountsOnly(s, this.store, scaled(this.config).recentWindowMs, this.dataset.clusters.length));
    }
    return out;
  }

  async ragAgreement() {
    const { noRag, rag } = this.firstTables;
    if (!noRag || !rag) return undefined;
    const changed = top1Agreement(rag, noRag);
    // Our scorer is deterministic over a closed set: the same adapter and prompts give the same table twice.
    const repeated = top1Agreement(noRag, noRag);
    return {
      keys: changed.keys,
      ragEqualsNoRag: changed.agreement,
      repeatedNoRag: repeated.agreement,
      note: "Tables of the first adapter. Two no-RAG runs agree 100 % by construction here (deterministic scoring over the closed cluster set, no sampling); the paper's 37.5 % comes from sampling an LLM's free text.",
    };
  }

  async startAb(o: { arms: string[]; requestsPerArm: number; testTransitions: number; seed: number }): Promise<ServerAb> {
    const world = this.dataset.world;
    if (!world) throw new ReplayError(`--ab needs ground truth, so the synthetic world (--dataset synthetic SIZE); ${this.dataset.name} has none`);
    const arms = o.arms.map((name) => {
      const s = this.made.get(name);
      if (!s) throw new ReplayError(`--ab arm ${name} is not among the replayed strategies (${[...this.made.keys()].join(", ")})`);
      return { name, modelsDir: s.registryDir, servedTableId: () => s.servedTableId() };
    });
    return ServerAb.start({ storeUri: this.storeUri, world, arms, requestsPerArm: o.requestsPerArm, testTransitions: o.testTransitions, seed: o.seed });
  }

  describe(): Record<string, unknown> {
    return { loop: this.loop, tableMisses: Object.fromEntries([...this.made].map(([n, s]) => [n, s.misses])) };
  }

  timings(): Record<string, number> {
    return { bootstrap_s: this.bootstrapS };
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}

/** The update loop of freshrec behind the replay's model strategies. */
export async function realLab(
  dataset: ReplayDataset,
  config: ReplayConfig,
  workDir: string,
  opts: { onProgress?: Progress; loop?: Record<string, unknown> } = {},
): Promise<ModelLab> {
  const storeUri = join(workDir, "store");
  const store = await openStore(storeUri, { k: dataset.k, positiveThreshold: dataset.threshold });
  const lab = new RealLab(store, storeUri, dataset, config, workDir, opts.loop, opts.onProgress);
  try {
    await lab.init();
  } catch (err) {
    await store.close();
    throw err;
  }
  return lab;
}
