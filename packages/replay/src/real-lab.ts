import { cpSync } from "node:fs";
import { basename, join } from "node:path";
import { DAY_MS, historyKey, type ClusterId, type ModelKind } from "@freshrec/core";
import { isUserBase, openRegistry, parseTableMeta, type ArtefactRecord, type Registry } from "@freshrec/registry";
import { openStore, type Store } from "@freshrec/retriever";
import { loadScoringModel, type BlendWeights, type ScoringModel } from "@freshrec/scorer";
import {
  bootstrap,
  inProcessRunner,
  loadForScoring,
  LoopConfigSchema,
  nativeTrainer,
  refreshTable,
  SchedulerConfigSchema,
  UpdateLoop,
  writeSmallTextModel,
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

type ServedLineage = Pick<UpdateEntry, "table" | "base" | "adapter" | "snapshot" | "ragBlend" | "popularityBlend"> & { asOf: number; popularity?: number[]; live: BlendWeights };

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
 * One model kind of a replay: its own bootstrap registry and loop settings. Its strategies' names carry its suffix
 * ("" for cluster-token, the names replays always had; "-text" for text), so both kinds compare in one table.
 */
interface KindSetup {
  kind: ModelKind;
  suffix: string;
  loop: LoopConfig;
  shared: Registry;
  bootstrapS: number;
}

const KIND_SUFFIX: Record<ModelKind, string> = { "cluster-token": "", text: "-text" };

/**
 * One update strategy on the service's own UpdateLoop: its own registry (copied from the shared bootstrap), the
 * loop driven by the replay's clock with the dataset as its event source and the jobs run in process, and
 * predictions by lookup in its active table.
 */
class ModelStrategy implements Predictor {
  readonly kind = "model" as const;
  readonly name: string;
  private readonly clock: { t: number; now(): number };
  private readonly loop: UpdateLoop;
  private table = new Map<string, ClusterId[]>();
  /** Lineage of the table in use: base, adapter and RAG snapshot it was built from. */
  private served: ServedLineage = { table: "", base: "", adapter: "", snapshot: "", ragBlend: 0, popularityBlend: 0, asOf: 0, live: { rag: 0, popularity: 0 } };
  private readonly log: UpdateEntry[] = [];
  readonly registryDir: string;
  private readonly spent: StrategyCost = zeroCost();
  private live: LiveModel | undefined;
  /** End of the training data of the model behind the served table (see trainedThrough). */
  private trainedEnd = Number.NEGATIVE_INFINITY;
  misses = 0;

  constructor(
    readonly strategy: ModelStrategyName,
    private readonly lab: RealLab,
    private readonly setup: KindSetup,
    private readonly registry: Registry,
    start: number,
  ) {
    this.name = `${strategy}${setup.suffix}`;
    this.registryDir = registry.dir;
    const clock = { t: start, now: () => clock.t };
    this.clock = clock;
    // The registry holds the shared bootstrap: the loop adopts it at `start`, as a service adopts a bootstrapped registry.
    this.loop = new UpdateLoop({
      store: lab.store,
      registry,
      scheduler: lab.scheduler(strategy),
      clock,
      jobContext: (asOf) => lab.context(setup, registry, asOf, `replay:${this.name}`),
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
      const { asOf: _asOf, popularity: _popularity, live: _live, ...lineage } = this.served;
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
    this.trainedEnd = this.trainingEnd(meta.adapterId, meta.baseId);
    this.served = {
      table: id,
      base: meta.baseId,
      adapter: meta.adapterId,
      snapshot: meta.snapshotId,
      ragBlend: meta.ragBlend,
      popularityBlend: meta.popularityBlend,
      asOf: meta.createdAt,
      live: { rag: meta.liveRagBlend ?? meta.ragBlend, popularity: meta.livePopularityBlend ?? meta.popularityBlend },
      ...(meta.popularityShares ? { popularity: meta.popularityShares } : {}),
    };
  }

  /** Where the served model's training data ended: its adapter's window, else its base's (a text model a user brings saw none). */
  private trainingEnd(adapterId: string, baseId: string): number {
    if (adapterId) return this.registry.getOf("adapter", adapterId).manifest.trainingSet.window.end;
    const base = this.registry.getOf("base", baseId).manifest;
    if (!isUserBase(base)) return base.window.end;
    return base.trainedWeights?.window.end ?? Number.NEGATIVE_INFINITY;
  }

  trainedThrough(): number {
    return this.trainedEnd;
  }

  /** Loads a base of this strategy's kind for live scoring (a text model over the store's clusters). */
  loadModel(path: string): Promise<ScoringModel> {
    return loadForScoring(this.lab.context(this.setup, this.registry, this.clock.t, `replay:${this.name}`), path);
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
    this.live = { basePath: base.path!, ...(adapter?.path ? { adapter: { id: adapter.id, path: adapter.path } } : {}), blend: this.served.live };
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
  private readonly kinds: KindSetup[];
  private readonly made = new Map<string, ModelStrategy>();
  private firstTables: { noRag?: Map<string, ClusterId[]>; rag?: Map<string, ClusterId[]> } = {};

  constructor(
    readonly store: Store,
    readonly storeUri: string,
    private readonly dataset: ReplayDataset,
    private readonly config: ReplayConfig,
    private readonly workDir: string,
    private readonly text: { kinds: readonly ModelKind[]; model?: string },
    overrides: Record<string, unknown> = {},
    readonly onProgress: Progress = undefined,
  ) {
    this.feeder = new StoreFeeder(store, dataset.events);
    const sc = scaled(config);
    const first = dataset.transitions[0]!.ts;
    const loop = LoopConfigSchema.parse({
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
    this.kinds = text.kinds.map((kind) => ({ kind, suffix: KIND_SUFFIX[kind], loop, shared: openRegistry(join(workDir, "models", `shared${KIND_SUFFIX[kind]}`)), bootstrapS: 0 }));
  }

  context(setup: KindSetup, registry: Registry, asOf: number, by: string): JobContext {
    return { store: this.store, registry, trainer: nativeTrainer(), loadModel: loadScoringModel, config: setup.loop, asOf, by };
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
    for (const setup of this.kinds) {
      const started = performance.now();
      const ctx = { ...this.context(setup, setup.shared, t0, `replay:bootstrap${setup.suffix}`), ...(onProgress ? { onProgress } : {}) };
      if (setup.kind === "text") {
        // A file the user brings is fine-tuned as it is; without one, freshrec's own small text model learns the
        // domain's words on the pretraining window first, as the cluster-token base does (text.trainBase).
        const own = this.text.model === undefined;
        const baseModel = this.text.model ?? (await writeSmallTextModel(join(this.workDir, "text-base.gguf"), this.config.seed));
        setup.loop = { ...setup.loop, baseModel, text: { ...setup.loop.text, trainBase: own } };
        ctx.config = setup.loop;
      }
      await bootstrap(ctx, { rag: false });
      setup.bootstrapS = (performance.now() - started) / 1000;
    }
  }

  async strategies(names: ModelStrategyName[], onProgress?: Progress, live: ModelStrategyName[] = []): Promise<Predictor[]> {
    const t0 = this.config.testStart;
    const out: Predictor[] = [];
    for (const setup of this.kinds)
      for (const name of names) {
        const dir = join(this.workDir, "models", `${name}${setup.suffix}`);
        cpSync(setup.shared.dir, dir, { recursive: true });
        const registry = openRegistry(dir);
        const s = new ModelStrategy(name, this, setup, registry, t0);
        if (!["static", "finetune"].includes(name))
          await refreshTable({ ...this.context(setup, registry, t0, `replay:${s.name}`), ...(onProgress ? { onProgress } : {}) }, { rag: true });
        await s.loadActiveTable();
        if (setup.kind === "cluster-token" && name === "static") this.firstTables.noRag = new Map(s.activeTable());
        if (setup.kind === "cluster-token" && (name === "rag-frozen" || name === "rag")) this.firstTables.rag ??= new Map(s.activeTable());
        this.made.set(s.name, s);
        out.push(s);
        if (live.includes(name)) out.push(new LiveScoring(s, scaled(this.config).recentWindowMs));
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
    const kinds = Object.fromEntries(this.kinds.map((k) => [k.kind, { strategySuffix: k.suffix, loop: { ...k.loop, baseModel: k.loop.baseModel ? basename(k.loop.baseModel) : undefined } }]));
    return { modelKinds: kinds, tableMisses: Object.fromEntries([...this.made].map(([n, s]) => [n, s.misses])) };
  }

  timings(): Record<string, number> {
    return Object.fromEntries(
      this.kinds.map((k) => [`bootstrap${k.suffix.replace("-", "_")}_s`, k.bootstrapS]),
    );
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
  opts: { onProgress?: Progress; loop?: Record<string, unknown>; modelKinds?: readonly ModelKind[]; textModel?: string } = {},
): Promise<ModelLab> {
  const storeUri = join(workDir, "store");
  const store = await openStore(storeUri, { k: dataset.k, positiveThreshold: dataset.threshold });
  const text = { kinds: opts.modelKinds ?? ["cluster-token" as const], ...(opts.textModel ? { model: opts.textModel } : {}) };
  const lab = new RealLab(store, storeUri, dataset, config, workDir, text, opts.loop, opts.onProgress);
  try {
    await lab.init();
  } catch (err) {
    await store.close();
    throw err;
  }
  return lab;
}
