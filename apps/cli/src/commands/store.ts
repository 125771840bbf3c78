/**
 * `freshrec store check|repair`: verify a store table by table (and its derived tables against events), and
 * rebuild the derived tables from events. What cannot be rebuilt is reported with its remedy, never dropped.
 */
import { parseArgs } from "node:util";
import { FreshrecError } from "@freshrec/core";
import { StoreTableError, acquireStoreWriterLock, openStore, type ProgressFn, type Store, type StoreCheckReport, type StoreProblem, type StoreRepairReport, type WriterLock } from "@freshrec/retriever";
import { defaultStoreUri } from "../paths.js";
import { terminalProgress } from "../progress.js";

export const summary = "check a store (store check) or rebuild its derived tables from events (store repair)";

const HELP = `usage:
  freshrec store check [--store URI] [--json]
  freshrec store repair [--store URI] [--json]

check   reads every row of every table and checks the tables derived from events (transitions, user_state,
        folds, key_vectors) against it, batch by batch. Lists each problem with a remedy you can run.
        Exit status 0: no problems; 1: problems found.
repair  rebuilds the derived tables from events when they are missing, unreadable or inconsistent, then
        compacts. It takes the store's writer lock: stop \`freshrec serve\` and imports on the store first.
        Damage it cannot fix (events, meta, items, clusters, prediction tables) is listed with its remedy and
        left as it is. Exit status 0: the store checks clean afterwards; 1: problems remain.

options:
  --store URI   store location (default $FRESHREC_STORE or data/store under the repo root)
  --json        print the report as one JSON line`;

class UsageError extends FreshrecError {
  constructor(message: string) {
    super("usage", `${message}\n${HELP}`);
  }
}

/** Opens an existing store; a store whose meta table is damaged gives a report with that one problem instead. */
async function openExisting(uri: string): Promise<{ store: Store } | { unopenable: StoreCheckReport }> {
  try {
    return { store: await openStore(uri, { create: false }) };
  } catch (err) {
    if (!(err instanceof StoreTableError)) throw err;
    return { unopenable: { uri, ok: false, tables: [{ name: err.table, rows: null, ok: false }], watermark: 0, events: 0, pendingBatches: 0, problems: [err.problem] } };
  }
}

/** Check or repair, as the action asks. */
async function act(action: "check" | "repair", uri: string, onProgress: ProgressFn): Promise<StoreCheckReport | StoreRepairReport> {
  const opened = await openExisting(uri);
  if ("unopenable" in opened) {
    const report = opened.unopenable;
    return action === "check" ? report : { ok: false, rebuilt: [], unrecoverable: report.problems, before: report, after: report };
  }
  let lock: WriterLock | undefined;
  try {
    if (action === "check") return await opened.store.check({ onProgress });
    // Taken once the store is known to exist (taking it creates the folder).
    lock = await acquireStoreWriterLock(uri, { command: "freshrec store repair" });
    return await opened.store.repair({ onProgress });
  } finally {
    await opened.store.close();
    await lock?.release();
  }
}

function printProblems(problems: StoreProblem[]): void {
  for (const p of problems) console.log(`  [${p.code}] ${p.message}\n    remedy: ${p.remedy}`);
}

function printCheck(report: StoreCheckReport): void {
  console.log(`store ${report.uri}: ${report.events} events, ${report.watermark} folded batches${report.pendingBatches ? `, ${report.pendingBatches} stored but not yet folded (the next write folds them)` : ""}`);
  for (const t of report.tables) console.log(`  ${t.name.padEnd(18)} ${t.absent ? "absent (created later)" : t.ok ? `${t.rows} rows` : "UNREADABLE"}`);
  if (report.ok) console.log("no problems");
  else {
    console.log(`${report.problems.length} problem${report.problems.length > 1 ? "s" : ""}:`);
    printProblems(report.problems);
  }
}

function printRepair(report: StoreRepairReport): void {
  if (report.before.ok) console.log(`store ${report.before.uri}: no problems, nothing to repair`);
  else if (report.rebuilt.length) console.log(`rebuilt from ${report.after.events} events: ${report.rebuilt.join(", ")}`);
  else console.log("rebuilt nothing");
  if (report.unrecoverable.length) {
    console.log(`not repaired (${report.unrecoverable.length}):`);
    printProblems(report.unrecoverable);
  } else if (!report.before.ok) console.log("the store checks clean now");
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      store: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [action, extra] = positionals;
  if ((action !== "check" && action !== "repair") || extra !== undefined) throw new UsageError(`expected 'store check' or 'store repair', got 'store ${positionals.join(" ")}'`);
  const uri = values.store ?? defaultStoreUri();
  const progress = terminalProgress();
  try {
    const report = await act(action, uri, progress.report);
    progress.done();
    if (values.json) console.log(JSON.stringify(report));
    else if ("rebuilt" in report) printRepair(report);
    else printCheck(report);
    return report.ok ? 0 : 1;
  } finally {
    progress.done();
  }
}
