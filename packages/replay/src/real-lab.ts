import { cpSync } from "node:fs";
import { join } from "node:path";
import { DAY_MS, driftBetween, historyKey, type ClusterId, type Transition } from "@freshrec/core";
import { openStore, type Store } from "@freshrec/retriever";
import { loadClusterModel } from "@freshrec/scorer";
import {
  bootstrap,
  decide,
  finetune,
  LoopConfigSchema,
  nativeTrainer,
  openRegistry,
  refreshTable,
  SchedulerConfigSchema,
  type ArtefactRecord,
  type DriftReading,
  type JobContext,
  type LoopConfig,
  type Registry,
  type SchedulerState,
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

type ServedLineage = Pick<UpdateEntry, "table" | "base" | "adapter" | "snapshot" | "ragBlend" | "popularityBlend">;

type Progress = ((e: WalkProgress) => void) | undefined;

/** Feeds the dataset's events into the shared store up to the simulated clock (never ahead of it). */
class StoreFeeder {
  private next = 0;
  constructor(
    readonly store: Store,
    private readonly events: ReplayDataset["events"],
  ) {}
  async ingestBefore(t: number): Promise<void> {
    const start = this.next;
    while (this.next < this.events.length && this.events[this.next]!.ts < t) this.next++;
    for (let i = start; i < this.next; i += 50_000) await this.store.ingest(this.events.slice(i, Math.min(this.next, i + 50_000)));
  }
}

const manifestNumber = (r: ArtefactRecord, key: string): number => {
  const v = r.manifest[key];
  return typeof v === "number" ? v : 0;
};

/** Examples a fine-tune trained on, from its training-set manifest. */
const examplesOf = (r: ArtefactRecord): number => {
  const ts = r.manifest.trainingSet as { counts?: { train?: number } } | undefined;
  return ts?.counts?.train ?? 0;
};

/**
 * One update strategy on the real update loop: its own registry (copied from the shared bootstrap), the
 * scheduler's pure `decide` driven by the simulated clock, the jobs `finetune` and `refreshTable` run in
 * process, and predictions by lookup in its active table.
 */
class ModelStrategy implements Predictor {
  readonly kind = "model" as const;
  private state: SchedulerState;
  private table = new Map<string, ClusterId[]>();
  /** Lineage of the table in use: base, adapter and RAG snapshot it was built from. */
  private served: ServedLineage = { table: "", base: "", adapter: "", snapshot: "", ragBlend: 0, popularityBlend: 0 };
  private readonly log: UpdateEntry[] = [];
  readonly registryDir: string;
  private readonly spent: StrategyCost = zeroCost();
  private adapterWindowEnd: number;
  private nextDriftCheck = 0;
  private drift: DriftReading = {};
  private live: LiveModel | undefined;
  misses = 0;

  constructor(
    readonly name: ModelStrategyName,
    private readonly lab: RealLab,
    private readonly registry: Registry,
    start: number,
  ) {
    this.registryDir = registry.dir;
    this.state = { bootstrappedAt: start, lastFinetune: start, lastRefresh: start };
    this.adapterWindowEnd = start;
  }

  async loadActiveTable(): Promise<void> {
    this.live = undefined; // an update ran: the active adapter may have changed too
    const id = this.registry.active().table;
    if (!id) throw new ReplayError(`strategy ${this.name}: no active table in ${this.registry.dir}`);
    const rec = this.registry.get(id);
    const tableId = (rec.manifest.tableId as string | undefined) ?? id;
    if (this.served.table === id) return;
    const t = await this.lab.store.predictionTable(tableId);
    if (!t) throw new ReplayError(`strategy ${this.name}: table ${tableId} is in the registry but not in the store`);
    this.table = new Map(t.rows.map((r) => [r.key, r.clusters]));
    const meta = (k: string) => String(t.meta[k] ?? "");
    this.served = { table: id, base: meta("baseId"), adapter: meta("adapterId"), snapshot: meta("snapshotId"), ragBlend: Number(t.meta.ragBlend ?? 0), popularityBlend: Number(t.meta.popularityBlend ?? 0) };
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

  /** Registry id of the table this strategy answers from (the A/B checks its server serves the same one). */
  servedTableId(): string {
    return this.served.table;
  }

  updates(): UpdateEntry[] {
    return this.log.map((e) => ({ ...e }));
  }

  async advanceTo(t: number): Promise<void> {
    if (this.name === "adaptive" && t >= this.nextDriftCheck) {
      this.drift = this.lab.driftReading(t, this.adapterWindowEnd);
      this.nextDriftCheck = t + this.lab.driftCheckMs;
    }
    const { actions, state } = decide(this.lab.scheduler(this.name), this.state, t, this.drift);
    this.state = state;
    if (actions.length === 0) return;
    await this.lab.feeder.ingestBefore(t);
    const ctx = this.lab.context(this.registry, t, `replay:${this.name}`);
    for (const a of actions) {
      let rec: ArtefactRecord;
      if (a.kind === "finetune") {
        // Fine-tunes take tens of seconds inside the walk: their progress shows, named by strategy (refreshes take ~1 s).
        const progress = this.lab.onProgress;
        rec = await finetune(progress ? { ...ctx, onProgress: (e) => progress({ ...e, phase: `${this.name} ${e.phase}` }) } : ctx);
        this.spent.trainCpuS += manifestNumber(rec, "cpuS");
        this.spent.examplesTrained += examplesOf(rec);
        this.spent.finetunes++;
        if (rec.status === "active") this.adapterWindowEnd = t;
      } else if (a.kind === "refresh") {
        const started = performance.now();
        rec = await refreshTable(ctx, { rag: a.rag });
        this.spent.refreshS += (performance.now() - started) / 1000;
        this.spent.refreshes++;
      } else throw new ReplayError(`strategy ${this.name}: the scheduler asked for ${a.kind} after the bootstrap`);
      await this.loadActiveTable();
      this.log.push({ at: t, action: a.kind, candidate: rec.id, promoted: rec.status === "active", ...this.served });
    }
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

  /** Jaccard of top-5 successors: recent window vs the active adapter's window, and recent vs the window before. */
  driftReading(t: number, adapterEnd: number): DriftReading {
    const w = scaled(this.config).finetuneWindowMs;
    const inWin = (a: number, b: number) => this.dataset.transitions.filter((x: Transition) => x.ts >= a && x.ts < b);
    const recent = inWin(t - w, t);
    const adapter = driftBetween(inWin(adapterEnd - w, adapterEnd), recent);
    const previous = driftBetween(inWin(t - 2 * w, t - w), recent);
    const out: DriftReading = {};
    if (adapter.keys > 0) out.adapterJaccard = adapter.mean;
    if (previous.keys > 0) out.recentJaccard = previous.mean;
    return out;
  }

  async init(): Promise<void> {
    const onProgress = this.onProgress;
    await this.store.putClusters(this.dataset.clusters);
    const t0 = this.config.testStart;
    await this.feeder.ingestBefore(t0);
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
  const store = await openStore(storeUri, { k: dataset.k });
  const lab = new RealLab(store, storeUri, dataset, config, workDir, opts.loop, opts.onProgress);
  try {
    await lab.init();
  } catch (err) {
    await store.close();
    throw err;
  }
  return lab;
}
