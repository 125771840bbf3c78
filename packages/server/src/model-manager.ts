import type { Logger } from "pino";
import { FreshrecError, historyKey, type Cluster, type ClusterId } from "@freshrec/core";
import type { BlendWeights } from "@freshrec/scorer";
import { SwapSlot, type Lease } from "./swap-slot.js";
import { isUserBase, parseTableMeta, type ActiveSet, type ArtefactRecord, type RecordOfKind } from "@freshrec/registry";
import type { LoadModel, ModelPort, RegistryPort, ScorerPort, StorePort } from "./ports.js";
import type { ServerMetrics } from "./metrics.js";

/** A scorer being served, holding a lease on the model it was created from (the model outlives its scorers). */
export class ServingScorer {
  constructor(
    readonly scorer: ScorerPort,
    private readonly modelLease: Lease<ModelPort>,
    readonly baseId: string,
    readonly adapterId: string | null,
  ) {}

  get layout() {
    return this.modelLease.value.layout;
  }

  async dispose(): Promise<void> {
    try {
      await this.scorer.dispose();
    } finally {
      this.modelLease.release();
    }
  }
}

export interface TableRow {
  clusters: number[];
  probs: number[];
}

/**
 * The active prediction table, held in memory as history key -> ranked clusters, with the cluster keywords
 * of the world it was built for (clusters change only with a new world, which always brings a new table).
 */
export class ServingTable {
  constructor(
    readonly id: string,
    readonly rows: ReadonlyMap<string, TableRow>,
    /** Grows when clusters are added at run time (text models): live answers may rank them before the next table does. */
    readonly keywords: Map<ClusterId, string[]>,
    readonly baseId: string | null,
    readonly adapterId: string | null,
    readonly snapshotId: string | null,
    /** Blend the table was built with; live answers mix retrieval in the same way. */
    readonly blend: TableBlend,
  ) {}

  lookup(history: readonly number[]): TableRow | undefined {
    return this.rows.get(historyKey(history));
  }

  dispose(): void {}
}

export interface SwapOutcome {
  at: number;
  ok: boolean;
  what: string;
  reason?: string;
}

export interface ModelManagerOptions {
  registry: RegistryPort;
  store: StorePort;
  loadModel: LoadModel;
  metrics: ServerMetrics;
  log: Logger;
  /** Reload the base model once it caches this many adapter files: node-llama-cpp frees them only with the model. */
  reloadEvery: number;
  threads?: number;
  parallel?: number;
  /** A load that takes longer fails the swap (a truncated GGUF file can make llama.cpp's reader hang). */
  swapTimeoutMs: number;
  /** Called after every sync with the registry's active set (the experiment control follows its experiment). */
  onSynced?: (active: ActiveSet) => Promise<void>;
}


/**
 * Keeps the served scorer and table in step with the registry's active set. Each change builds the new
 * scorer or table beside the old one, warms it, then swaps it in atomically; a failure keeps what was
 * served and is recorded in `lastSwap` (shown by GET /v1/model). Syncs run one at a time.
 */
export class ModelManager {
  readonly models: SwapSlot<ModelPort>;
  readonly scorers: SwapSlot<ServingScorer>;
  readonly tables: SwapSlot<ServingTable>;
  lastSwap: SwapOutcome | null = null;
  /** The most recent failed swap, kept even when a later swap of another kind succeeded. */
  lastFailure: SwapOutcome | null = null;
  since: number | null = null;
  private modelBaseId: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private unwatch: (() => void) | undefined;
  /** Last ids that failed to load, so a registry poll does not retry a broken artefact forever. */
  private failed = new Set<string>();
  /**
   * Set while the active pointer names an artefact that does not load and an earlier one serves instead (a
   * restart after a file went bad): what failed, why, and what serves. Cleared once the active set loads.
   */
  degraded: { scorer?: string; table?: string } = {};

  constructor(private readonly o: ModelManagerOptions) {
    const onDisposeError = (what: string) => (err: unknown) => o.log.error({ err }, `disposing the previous ${what} failed`);
    this.models = new SwapSlot(onDisposeError("model"));
    this.scorers = new SwapSlot(onDisposeError("scorer"));
    this.tables = new SwapSlot(onDisposeError("table"));
  }

  get ready(): boolean {
    return this.scorers.value !== undefined && this.tables.value !== undefined;
  }

  /** Subscribes to registry changes; each one triggers a sync. */
  watch(): void {
    this.unwatch ??= this.o.registry.watch(() => {
      void this.sync("registry").catch((err) => this.o.log.error({ err }, "sync after a registry change failed"));
    });
  }

  /** Brings the served artefacts in line with the registry's active set (serialized). */
  sync(trigger: string, opts: { retryFailed?: boolean } = {}): Promise<SwapOutcome[]> {
    const run = this.queue.then(() => this.syncNow(trigger, opts.retryFailed ?? false));
    this.queue = run.catch(() => {});
    return run;
  }

  private async syncNow(trigger: string, retryFailed: boolean): Promise<SwapOutcome[]> {
    if (retryFailed) this.failed.clear();
    const active = await this.o.registry.active();
    const outcomes: SwapOutcome[] = [];
    const current = this.scorers.value;
    const scorerKey = `${active.base}+${active.adapter}`;
    const scorerDue = !!active.base && (current?.baseId !== active.base || current.adapterId !== active.adapter) && !this.failed.has(scorerKey);
    const tableDue = !!active.table && this.tables.value?.id !== active.table && !this.failed.has(active.table);
    // Listing reads every record from disk: only when something is to be swapped (most syncs, e.g. the watch
    // firing after an admin call already swapped, have nothing to do).
    const records = scorerDue || tableDue ? new Map((await this.o.registry.list()).map((r) => [r.id, r])) : new Map<string, ArtefactRecord>();
    if (scorerDue) {
      const outcome = await this.attempt("scorer", scorerKey, trigger, () => this.swapScorer(active, records));
      outcomes.push(outcome);
      if (outcome.ok) delete this.degraded.scorer;
      else if (!this.scorers.value) await this.fallBack("scorer", outcome, active, records);
    }
    if (tableDue) {
      const outcome = await this.attempt("table", active.table!, trigger, () => this.swapTable(active.table!, records));
      outcomes.push(outcome);
      if (outcome.ok) delete this.degraded.table;
      else if (!this.tables.value) await this.fallBack("table", outcome, active, records);
    }
    if (outcomes.some((o) => o.ok)) {
      this.since = active.since;
      this.publishLineage();
    }
    this.o.metrics.ready.set(this.ready ? 1 : 0);
    await this.o.onSynced?.(active);
    return outcomes;
  }

  private async attempt(what: "scorer" | "table", id: string, trigger: string, fn: () => Promise<string>): Promise<SwapOutcome> {
    const at = Date.now();
    try {
      const detail = await fn();
      this.failed.delete(id);
      this.lastSwap = { at, ok: true, what: `${what} ${detail}` };
      this.o.metrics.swaps.inc({ what, outcome: "ok" });
      this.o.log.info({ what, id, trigger, ms: Date.now() - at }, `swapped ${what} to ${detail}`);
    } catch (err) {
      this.failed.add(id);
      const reason = err instanceof Error ? err.message : String(err);
      this.lastSwap = this.lastFailure = { at, ok: false, what: `${what} ${id}`, reason };
      this.o.metrics.swaps.inc({ what, outcome: "failed" });
      this.o.log.error({ err, what, id, trigger }, `swap of ${what} to ${id} failed; still serving the previous one`);
    }
    return this.lastSwap!;
  }

  /**
   * Nothing serves and the active artefact does not load (a restart after its file went bad): serve the most
   * recently promoted earlier version that loads, without moving the pointer (replicas cannot), and say so.
   */
  private async fallBack(what: "scorer" | "table", failure: SwapOutcome, active: ActiveSet, records: Map<string, ArtefactRecord>): Promise<void> {
    const kind = what === "scorer" ? (active.adapter ? "adapter" : "base") : "table";
    const current = active[kind];
    const earlier = [...new Set((await this.o.registry.promotions()).filter((e) => e.kind === kind && e.to && e.to !== current).map((e) => e.to!).reverse())];
    for (const id of earlier) {
      const rec = records.get(id);
      if (!rec || rec.kind !== kind) continue;
      const set: ActiveSet = what === "table" ? { ...active, table: id } : rec.kind === "adapter" ? { ...active, base: rec.manifest.baseId, adapter: id } : { ...active, base: id, adapter: null };
      try {
        const detail = what === "table" ? await this.swapTable(id, records) : await this.swapScorer(set, records);
        this.degraded[what] = `active ${kind} '${current}' does not load (${failure.reason}); serving ${detail}, the last earlier version that loads, until a working one is promoted`;
        this.o.log.warn({ what, failed: current, serving: id }, this.degraded[what]!);
        return;
      } catch (err) {
        this.o.log.warn({ err, what, id }, `fallback ${kind} '${id}' does not load either`);
      }
    }
  }

  private record<K extends ArtefactRecord["kind"]>(records: Map<string, ArtefactRecord>, id: string, kind: K): RecordOfKind<K> {
    const rec = records.get(id);
    if (!rec) throw new FreshrecError("not-found", `the registry lists no ${kind} '${id}'`);
    if (rec.kind !== kind) throw new FreshrecError("wrong-kind", `artefact '${id}' is a ${rec.kind}, not a ${kind}`);
    return rec as RecordOfKind<K>;
  }

  private async swapScorer(active: ActiveSet, records: Map<string, ArtefactRecord>): Promise<string> {
    const { base, adapter } = this.scorerRecords(records, active.base!, active.adapter);
    const cached = this.models.value?.adapterLoads ?? 0;
    if (this.modelBaseId !== base.id || cached >= this.o.reloadEvery || !this.models.value) {
      // The previous model stays alive through the lease its serving scorer holds, and is disposed after that scorer.
      const fresh = await this.bounded(`loading base '${base.id}'`, this.loadBase(base), (m) => m.dispose());
      void this.models.swap(fresh);
      this.modelBaseId = base.id;
    }
    const serving = await this.scorerOn(this.models.acquire()!, base.id, adapter);
    void this.scorers.swap(serving);
    return `${base.id}${adapter ? ` + ${adapter.id}` : ""} (${this.models.value!.adapterLoads} adapter files cached by this model)`;
  }

  private scorerRecords(records: Map<string, ArtefactRecord>, baseId: string, adapterId: string | null) {
    const base = this.record(records, baseId, "base");
    const adapter = adapterId ? this.record(records, adapterId, "adapter") : undefined;
    if (!base.path) throw new FreshrecError("no-file", `base '${base.id}' has no model file in the registry`);
    if (adapter && !adapter.path) throw new FreshrecError("no-file", `adapter '${adapter.id}' has no file in the registry`);
    if (adapter && adapter.manifest.baseId !== base.id) throw new FreshrecError("adapter-mismatch", `adapter '${adapter.id}' was trained on base '${adapter.manifest.baseId}', not '${base.id}'`);
    return { base, adapter };
  }

  /**
   * A scorer for base + adapter beside the served one (an experiment's candidate arm): on the served model when it
   * is that base, else on a model of its own that is freed with the scorer. Never swapped in.
   */
  async loadScorer(baseId: string | null, adapterId: string | null): Promise<ServingScorer> {
    if (baseId === null) throw new FreshrecError("not-found", "the candidate names no base model to score with");
    const { base, adapter } = this.scorerRecords(new Map((await this.o.registry.list()).map((r) => [r.id, r])), baseId, adapterId);
    if (this.modelBaseId === base.id && this.models.value) return this.scorerOn(this.models.acquire()!, base.id, adapter);
    const own = new SwapSlot<ModelPort>((err) => this.o.log.error({ err }, "disposing a candidate's model failed"));
    await own.swap(await this.bounded(`loading base '${base.id}'`, this.loadBase(base), (m) => m.dispose()));
    const lease = own.acquire()!;
    void own.close(); // the model goes once the scorer's lease is released
    return this.scorerOn(lease, base.id, adapter);
  }

  /** Loads a base: a text model over the store's clusters, with the prompt layout it was registered with. */
  private async loadBase(base: RecordOfKind<"base">): Promise<ModelPort> {
    const m = base.manifest;
    if (!isUserBase(m)) return this.o.loadModel({ path: base.path!, threads: this.o.threads });
    return this.o.loadModel({ path: base.path!, threads: this.o.threads, clusters: await this.o.store.clusters(), text: { k: m.layout.k, ragLines: m.layout.ragSlots } });
  }

  /** The base an adapter was trained on. */
  async adapterBase(adapterId: string): Promise<string> {
    return this.record(new Map((await this.o.registry.list()).map((r) => [r.id, r])), adapterId, "adapter").manifest.baseId;
  }

  /** Creates and warms a scorer with `adapter` on the leased model; the scorer holds the lease (released here if it fails). */
  private async scorerOn(lease: Lease<ModelPort>, baseId: string, adapter: RecordOfKind<"adapter"> | undefined): Promise<ServingScorer> {
    const building = (async () => {
      const created = await lease.value.createScorer({ adapterPath: adapter?.path, adapterId: adapter?.id, parallel: this.o.parallel });
      try {
        await warm(created, lease.value.layout.nClusters);
      } catch (err) {
        await created.dispose();
        throw err;
      }
      return created;
    })();
    let scorer: ScorerPort;
    try {
      scorer = await this.bounded(`loading adapter '${adapter?.id ?? "(none)"}'`, building, (late) => late.dispose());
    } catch (err) {
      // After a timeout the lease is released once the stuck load settles (see bounded), else now.
      if (!(err instanceof SwapTimeoutError)) lease.release();
      else void building.then(() => lease.release(), () => lease.release());
      throw err;
    }
    return new ServingScorer(scorer, lease, baseId, adapter?.id ?? null);
  }

  /**
   * Clusters added at run time: a text model scores them from their keywords from now on (no retraining), and the
   * served tables describe them. Throws, changing nothing, where the served model cannot take them (cluster-token).
   */
  addClusters(all: readonly Cluster[], added: readonly Cluster[], alsoDescribe: ReadonlyArray<ServingTable | null | undefined> = []): void {
    const model = this.models.value;
    if (!model) throw new FreshrecError("not-ready", "no model is loaded yet");
    if (!model.setClusters)
      throw new FreshrecError(
        "conflict",
        `the served model ${this.modelBaseId} is a cluster-token model: its vocabulary has one token per cluster (${model.layout.nClusters}), so a new cluster needs a new base pretrained with it (add the cluster with 'freshrec import items', then bootstrap a fresh registry) or a text model ('freshrec serve --model FILE.gguf'), which ranks a new cluster from its keywords without retraining`,
      );
    model.setClusters(all);
    for (const table of [this.tables.value, ...alsoDescribe]) for (const c of added) table?.keywords.set(c.id, c.keywords);
  }

  /** Waits for `work` at most swapTimeoutMs; a result that arrives later is handed to `discard`. */
  private bounded<T>(what: string, work: Promise<T>, discard: (late: T) => unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(new SwapTimeoutError(what, this.o.swapTimeoutMs));
      }, this.o.swapTimeoutMs);
      work.then(
        (value) => {
          clearTimeout(timer);
          if (timedOut) void Promise.resolve(discard(value)).catch((err) => this.o.log.warn({ err }, `discarding a late result of ${what} failed`));
          else resolve(value);
        },
        (err) => {
          clearTimeout(timer);
          if (!timedOut) reject(err);
        },
      );
    });
  }

  private async swapTable(id: string, records: Map<string, ArtefactRecord>): Promise<string> {
    const table = await this.buildTable(id, records);
    // Clusters added since the model loaded (here or, on a replica, by the writer) reach a text model with the table.
    const model = this.models.value;
    if (model?.setClusters && table.keywords.size !== model.layout.nClusters) model.setClusters([...table.keywords].map(([id, keywords]) => ({ id, keywords })));
    void this.tables.swap(table);
    return `${id} (${table.rows.size} keys)`;
  }

  /** A registered table loaded beside the active one (an experiment's candidate arm); not swapped in. */
  async loadTable(id: string): Promise<ServingTable> {
    return this.buildTable(id, new Map((await this.o.registry.list()).map((r) => [r.id, r])));
  }

  private async buildTable(id: string, records: Map<string, ArtefactRecord>): Promise<ServingTable> {
    const rec = this.record(records, id, "table");
    const { tableId, lineage } = rec.manifest;
    const stored = await this.o.store.predictionTable(tableId);
    if (!stored) throw new FreshrecError("not-found", `prediction table '${tableId}' is not in the store`);
    if (stored.rows.length === 0) throw new FreshrecError("empty-table", `prediction table '${tableId}' has no rows`);
    const nClusters = this.scorers.value?.layout.nClusters;
    const rows = new Map<string, TableRow>();
    for (const row of stored.rows) {
      if (row.clusters.length !== row.probs.length)
        throw new FreshrecError("bad-table", `table '${tableId}' key '${row.key}': ${row.clusters.length} clusters but ${row.probs.length} probabilities`);
      if (nClusters !== undefined && row.clusters.some((c) => c >= nClusters))
        throw new FreshrecError("bad-table", `table '${tableId}' key '${row.key}' names a cluster outside the model's ${nClusters}`);
      rows.set(row.key, { clusters: Array.from(row.clusters), probs: Array.from(row.probs) });
    }
    const keywords = new Map((await this.o.store.clusters()).map((c) => [c.id, c.keywords]));
    // Lineage as the refresh job records it in the registry manifest; the blend as stored beside the rows.
    const meta = parseTableMeta(tableId, stored.meta);
    const weights = { rag: meta.ragBlend, popularity: meta.popularityBlend };
    const liveWeights = { rag: meta.liveRagBlend ?? meta.ragBlend, popularity: meta.livePopularityBlend ?? meta.popularityBlend };
    const blend: TableBlend = { weights, liveWeights, ...(meta.popularityShares ? { popularity: meta.popularityShares } : {}) };
    return new ServingTable(rec.id, rows, keywords, lineage.baseId, lineage.adapterId, lineage.snapshotId, blend);
  }

  private publishLineage(): void {
    const s = this.scorers.value;
    const t = this.tables.value;
    this.o.metrics.setActive({ baseId: s?.baseId ?? null, adapterId: s?.adapterId ?? null, tableId: t?.id ?? null, snapshotId: t?.snapshotId ?? null });
  }

  /** Stops watching and disposes everything once in-flight requests are done with it. */
  async close(): Promise<void> {
    this.unwatch?.();
    await this.queue;
    await this.scorers.close();
    await this.tables.close();
    await this.models.close();
  }
}

/** Blend weights of a table and the popularity vector behind `popularity` (when that weight is not 0). */
export interface TableBlend {
  weights: BlendWeights;
  /** What live answers mix in: fitted with fresh retrieval (the table's weights for tables written before them). */
  liveWeights: BlendWeights;
  popularity?: number[];
}
export class SwapTimeoutError extends FreshrecError {
  constructor(what: string, ms: number) {
    super("swap-timeout", `${what} did not finish within ${ms} ms; the file may be truncated or corrupt`);
  }
}

/** Scores one prompt so the first real request does not pay for lazy setup; also proves the adapter loads. */
async function warm(scorer: ScorerPort, nClusters: number): Promise<void> {
  const [dist] = await scorer.scoreNext([{ history: [0], rag: null }]);
  if (!dist || dist.length === 0) throw new FreshrecError("bad-model", "warm-up scoring returned no distribution");
  const total = dist.reduce((s, d) => s + d.p, 0);
  if (!Number.isFinite(total) || dist.some((d) => d.clusterId >= nClusters))
    throw new FreshrecError("bad-model", `warm-up scoring returned an invalid distribution (sum ${total})`);
}
