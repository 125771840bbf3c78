import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { parseOrThrow, pidAlive } from "@freshrec/core";
import { scoredWith } from "./manifests.js";
import { RegistryError, fsyncPath, sha256File, withLock, writeFileAtomic } from "./atomic.js";
import {
  ActiveSetSchema,
  ExperimentSchema,
  PromotionEntrySchema,
  StoredRecordSchema,
  type ActiveSet,
  type ArtefactKind,
  type ArtefactRecord,
  type Experiment,
  type GateResult,
  type PromotionEntry,
  type RecordOfKind,
  type StoredRecord,
} from "./schemas.js";

interface PublishOf<K extends ArtefactKind> {
  /** The id handed out by `stage()`; its staging folder holds the files. */
  id: string;
  kind: K;
  /** File (inside the staging folder) that serving loads. */
  main?: string;
  manifest: RecordOfKind<K>["manifest"];
  gate: GateResult;
}
export type PublishInput = PublishOf<"base"> | PublishOf<"adapter"> | PublishOf<"table">;

export interface Registry {
  readonly dir: string;
  list(): ArtefactRecord[];
  list<K extends ArtefactKind>(kind: K): RecordOfKind<K>[];
  get(id: string): ArtefactRecord;
  /** The record of `id`, which must be of `kind` (a RegistryError names both otherwise). */
  getOf<K extends ArtefactKind>(kind: K, id: string): RecordOfKind<K>;
  active(): ActiveSet;
  /** Reserves a fresh id and an empty private folder to write the artefact's files into (invisible until publish). */
  stage(kind: ArtefactKind): { id: string; dir: string };
  /** Makes a staged artefact visible in one rename; files are fsynced first. Applies retention afterwards. */
  publish(input: PublishInput): ArtefactRecord;
  /** Switches the active artefact of the record's kind (an adapter also brings its base). Works for failed candidates too: that is promotion by hand. */
  promote(id: string, by: string, note?: string): ActiveSet;
  /** Returns to the artefact of `kind` that was active before the current one. */
  rollback(kind: ArtefactKind, by: string): ActiveSet;
  promotions(): PromotionEntry[];
  /** Starts (or replaces) the experiment every server of this registry runs; its candidates must be registered. */
  startExperiment(settings: Omit<Experiment, "since" | "by">, by: string): ActiveSet;
  /** Ends the running experiment (a no-op without one); promotion of its candidate stays a separate act. */
  stopExperiment(by: string): ActiveSet;
  /** Polls the active pointer; calls `onChange` after every switch. Returns an unsubscribe function. */
  watch(onChange: (active: ActiveSet) => void, intervalMs?: number): () => void;
}

export interface RegistryOptions {
  /** Versions kept per kind besides active ones (default 5). */
  retain?: number;
}

/** Where a registry folder keeps each part (the object-store mirror fills a local cache in the same layout). */
export function registryPaths(root: string) {
  return {
    artefactsDir: join(root, "artefacts"),
    stagingDir: join(root, ".staging"),
    activePath: join(root, "active.json"),
    logPath: join(root, "promotions.jsonl"),
    lockPath: join(root, ".lock"),
  };
}

export const EMPTY_ACTIVE: ActiveSet = { base: null, adapter: null, table: null, since: 0 };

const compactTime = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");

/**
 * The model registry under a models folder:
 *   artefacts/<id>/record.json + files   one folder per version (unique paths; never rewritten)
 *   active.json                          the pointer {base, adapter, table, since}, replaced atomically
 *   promotions.jsonl                     every promotion and rollback, with who triggered it
 *   .staging/<id>.<pid>/                 a job's unpublished output; removed at open once its process is gone
 * Status is derived from the pointer, the log and the gate, so a promotion is a single atomic pointer swap.
 */
export function openRegistry(dir: string, opts: RegistryOptions = {}): Registry {
  const root = resolve(dir);
  const { artefactsDir, stagingDir, activePath, logPath, lockPath } = registryPaths(root);
  const retain = opts.retain ?? 5;
  mkdirSync(artefactsDir, { recursive: true });
  mkdirSync(stagingDir, { recursive: true });
  sweepStaging();

  function sweepStaging(): void {
    for (const name of readdirSync(stagingDir)) {
      const pid = Number(name.split(".").pop());
      if (!Number.isInteger(pid) || !pidAlive(pid) || name.endsWith(".trash")) rmSync(join(stagingDir, name), { recursive: true, force: true });
    }
  }

  function readActive(): ActiveSet {
    if (!existsSync(activePath)) return EMPTY_ACTIVE;
    return parseOrThrow(ActiveSetSchema, JSON.parse(readFileSync(activePath, "utf8")), activePath);
  }

  function promotions(): PromotionEntry[] {
    if (!existsSync(logPath)) return [];
    return readFileSync(logPath, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l, i) => parseOrThrow(PromotionEntrySchema, JSON.parse(l), `${logPath}:${i + 1}`));
  }

  function readStored(id: string): StoredRecord | undefined {
    const path = join(artefactsDir, id, "record.json");
    if (!existsSync(path)) return undefined;
    return parseOrThrow(StoredRecordSchema, JSON.parse(readFileSync(path, "utf8")), path);
  }

  function toRecord(s: StoredRecord, active: ActiveSet, everActive: Set<string>): ArtefactRecord {
    const folder = join(artefactsDir, s.id);
    const status = active[s.kind] === s.id ? "active" : everActive.has(s.id) ? "retired" : s.gate.passed ? "candidate" : "rejected";
    const { main, files, sha256: _hashes, ...rest } = s;
    return { ...rest, ...(main ? { path: join(folder, main) } : {}), files: files.map((f) => join(folder, f)), status };
  }

  function list(kind?: ArtefactKind): ArtefactRecord[] {
    const active = readActive();
    const everActive = new Set(promotions().flatMap((e) => (e.to ? [e.to] : [])));
    return readdirSync(artefactsDir)
      .map(readStored)
      .filter((s): s is StoredRecord => s !== undefined && (kind === undefined || s.kind === kind))
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
      .map((s) => toRecord(s, active, everActive));
  }

  function get(id: string): ArtefactRecord {
    const s = readStored(id);
    if (!s) throw new RegistryError(`no artefact '${id}' in ${artefactsDir}`);
    return toRecord(s, readActive(), new Set(promotions().flatMap((e) => (e.to ? [e.to] : []))));
  }

  function getOf<K extends ArtefactKind>(kind: K, id: string): RecordOfKind<K> {
    const r = get(id);
    if (r.kind !== kind) throw new RegistryError(`artefact '${id}' is a ${r.kind}, not a ${kind}`);
    return r as RecordOfKind<K>;
  }

  function stage(kind: ArtefactKind): { id: string; dir: string } {
    const id = `${kind}-${compactTime(Date.now())}-${randomBytes(3).toString("hex")}`;
    const folder = join(stagingDir, `${id}.${process.pid}`);
    mkdirSync(folder, { recursive: true });
    return { id, dir: folder };
  }

  function retire(kind: ArtefactKind): void {
    const active = readActive();
    const records = readdirSync(artefactsDir)
      .map(readStored)
      .filter((s): s is StoredRecord => s !== undefined && s.kind === kind)
      .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    const inUse = new Set([active.base, active.adapter, active.table]);
    // The active adapter's base stays too, or that adapter could not be loaded.
    for (const s of list("adapter") as RecordOfKind<"adapter">[]) if (s.status === "active") inUse.add(s.manifest.baseId);
    // So do the experiment's candidates and what scores them (an adapter's base, a table's lineage).
    for (const id of [active.experiment?.candidateTable, active.experiment?.candidateAdapter]) {
      const stored = id ? readStored(id) : undefined;
      if (!stored) continue;
      inUse.add(stored.id);
      for (const dep of scoredWith(stored.manifest)) inUse.add(dep);
    }
    for (const s of records.slice(retain)) {
      if (inUse.has(s.id)) continue;
      const trash = join(stagingDir, `${s.id}.trash`);
      renameSync(join(artefactsDir, s.id), trash); // leave the listing atomically, then delete at leisure
      rmSync(trash, { recursive: true, force: true });
    }
  }

  function publish(input: PublishInput): ArtefactRecord {
    const folder = join(stagingDir, `${input.id}.${process.pid}`);
    if (!existsSync(folder)) throw new RegistryError(`artefact '${input.id}' was not staged by this process (no ${folder})`);
    const files = readdirSync(folder).sort();
    if (input.main && !files.includes(input.main)) throw new RegistryError(`artefact '${input.id}': main file '${input.main}' is not in ${folder} (has ${files.join(", ") || "nothing"})`);
    for (const f of files) fsyncPath(join(folder, f));
    const stored: StoredRecord = parseOrThrow(
      StoredRecordSchema,
      {
        id: input.id,
        kind: input.kind,
        ...(input.main ? { main: input.main } : {}),
        files,
        sha256: Object.fromEntries(files.map((f) => [f, sha256File(join(folder, f))])),
        createdAt: Date.now(),
        manifest: input.manifest,
        gate: input.gate,
      },
      `artefact ${input.id}`,
    );
    writeFileAtomic(join(folder, "record.json"), `${JSON.stringify(stored, null, 2)}\n`);
    withLock(lockPath, () => {
      renameSync(folder, join(artefactsDir, input.id));
      fsyncPath(artefactsDir);
      retire(input.kind);
    });
    return get(input.id);
  }

  function appendLog(entry: PromotionEntry): void {
    appendFileSync(logPath, `${JSON.stringify(entry)}\n`);
    const fd = openSync(logPath, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  function switchTo(record: ArtefactRecord, action: PromotionEntry["action"], by: string, note?: string): ActiveSet {
    const current = readActive();
    const next: ActiveSet = { ...current, [record.kind]: record.id, since: Date.now() };
    const entries: PromotionEntry[] = [
      { at: next.since, action, kind: record.kind, from: current[record.kind], to: record.id, by, gate: record.gate, ...(note ? { note } : {}) },
    ];
    const baseId = record.kind === "adapter" ? record.manifest.baseId : undefined;
    if (baseId !== undefined && baseId !== current.base) {
      const base = get(baseId);
      next.base = base.id;
      entries.push({ at: next.since, action, kind: "base", from: current.base, to: base.id, by, gate: base.gate, note: `base of adapter ${record.id}` });
    }
    // Promoting the experiment's candidate settles the experiment: both arms would now serve the same.
    const e = current.experiment;
    if (e && (e.candidateTable === record.id || e.candidateAdapter === record.id)) {
      next.experiment = null;
      entries.push({ at: next.since, action: "experiment-stop", ...candidateEntry(e), by, note: `its candidate ${record.id} was promoted` });
    }
    writeFileAtomic(activePath, `${JSON.stringify(next)}\n`);
    entries.forEach(appendLog);
    return next;
  }

  function promote(id: string, by: string, note?: string): ActiveSet {
    return withLock(lockPath, () => switchTo(get(id), "promote", by, note));
  }

  function rollback(kind: ArtefactKind, by: string): ActiveSet {
    return withLock(lockPath, () => {
      // Replay the log as a stack per kind: promotions push, rollbacks pop.
      const stack: string[] = [];
      for (const e of promotions()) {
        if (e.kind !== kind) continue;
        if (e.action === "promote" && e.to) stack.push(e.to);
        else if (e.action === "rollback") stack.pop();
      }
      const current = readActive()[kind];
      if (stack.at(-1) === current) stack.pop();
      const target = stack.reverse().find((id) => id !== current && readStored(id) !== undefined);
      if (!target) throw new RegistryError(`rollback ${kind}: no earlier ${kind} to return to (active: ${current ?? "none"})`);
      return switchTo(get(target), "rollback", by, `rollback from ${current ?? "none"}`);
    });
  }

  /** The experiment's candidate as the log names it: its table, else its adapter. */
  function candidateEntry(e: Experiment): Pick<PromotionEntry, "kind" | "from" | "to" | "candidate"> {
    return { kind: e.candidateTable !== null ? "table" : "adapter", from: null, to: null, candidate: (e.candidateTable ?? e.candidateAdapter)! };
  }

  function startExperiment(settings: Omit<Experiment, "since" | "by">, by: string): ActiveSet {
    return withLock(lockPath, () => {
      if (settings.candidateTable !== null) getOf("table", settings.candidateTable);
      if (settings.candidateAdapter !== null) getOf("adapter", settings.candidateAdapter);
      const current = readActive();
      const since = Date.now();
      const experiment = parseOrThrow(ExperimentSchema, { ...settings, since, by }, "experiment");
      const next: ActiveSet = { ...current, since, experiment };
      writeFileAtomic(activePath, `${JSON.stringify(next)}\n`);
      appendLog({ at: since, action: "experiment-start", ...candidateEntry(experiment), by, note: `${(experiment.share * 100).toFixed(1)} % of users (salt '${experiment.salt}')` });
      return next;
    });
  }

  function stopExperiment(by: string): ActiveSet {
    return withLock(lockPath, () => {
      const current = readActive();
      if (!current.experiment) return current;
      const since = Date.now();
      const next: ActiveSet = { ...current, since, experiment: null };
      writeFileAtomic(activePath, `${JSON.stringify(next)}\n`);
      appendLog({ at: since, action: "experiment-stop", ...candidateEntry(current.experiment), by });
      return next;
    });
  }

  function watch(onChange: (active: ActiveSet) => void, intervalMs = 250): () => void {
    let last = JSON.stringify(readActive());
    const timer = setInterval(() => {
      let now: ActiveSet;
      try {
        now = readActive();
      } catch {
        return; // unreadable mid-replace cannot happen with rename, but a hand-edited file might be broken: keep the last good one
      }
      const text = JSON.stringify(now);
      if (text !== last) {
        last = text;
        onChange(now);
      }
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  return { dir: root, list: list as Registry["list"], get, getOf, active: readActive, stage, publish, promote, rollback, promotions, startExperiment, stopExperiment, watch };
}
