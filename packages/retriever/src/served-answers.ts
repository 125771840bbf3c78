/**
 * The served-answers log (online quality): what the server answered, to whom and when, with the lineage of the
 * artefacts that answered. Append-only, written in batches by the writer; created on its first batch, so stores
 * that never record one do not have it. Not a derived table: `store check` and the health probe leave it out,
 * and losing it loses only the online figures.
 */
import { z } from "zod";
import { ValidationError, issuesFromZod } from "@freshrec/core";
import type { ArrowTable, Connection, LanceTable } from "./lance.js";
import { float64, numbers, schema, strings, table, utf8 } from "./columns.js";
import { failureKind, StoreTableError } from "./errors.js";
import { storeFault } from "./tables.js";

export const SERVED_ANSWERS_TABLE = "served_answers";

export const ServedAnswerSchema = z.strictObject({
  userId: z.string().min(1),
  /** Serving clock at the answer (ms). */
  ts: z.number().finite(),
  mode: z.enum(["table", "live", "table_fallback"]),
  /** The answer's clusters, best first (top-k as served). */
  clusters: z.array(z.number().int().nonnegative()).min(1),
  baseId: z.string().nullable(),
  adapterId: z.string().nullable(),
  tableId: z.string().nullable(),
  /** Experiment arm that answered: "active" without an experiment. */
  arm: z.enum(["active", "candidate"]),
  /** Requests this row stands for: identical answers to the user within one repeat window are one exposure (see the recorder). */
  served: z.number().int().positive(),
});
export type ServedAnswer = z.infer<typeof ServedAnswerSchema>;

const SCHEMA = schema({ userId: "utf8", ts: "float64", mode: "utf8", clusters: "utf8", baseId: "utf8?", adapterId: "utf8?", tableId: "utf8?", arm: "utf8", served: "float64" });

export class ServedAnswerLog {
  private handle?: Promise<LanceTable>;

  constructor(
    private readonly uri: string,
    private readonly db: Connection,
  ) {}

  /** Appends one batch (one LanceDB version): callers batch, the table is compacted with the store's maintenance. */
  async append(rows: readonly ServedAnswer[]): Promise<void> {
    if (rows.length === 0) return;
    const parsed = z.array(ServedAnswerSchema).safeParse(rows);
    if (!parsed.success) throw new ValidationError("served answers batch", issuesFromZod(parsed.error, rows));
    const data = toArrow(parsed.data);
    await this.on(async (t) => t.add(data), true);
  }

  /** Answers served in [from, to), in no particular order; none when nothing was ever recorded. */
  async read(opts: { from: number; to: number }): Promise<ServedAnswer[]> {
    const t = await this.on((h) => h.query().where(`ts >= ${opts.from} AND ts < ${opts.to}`).toArrow(), false);
    return t ? fromArrow(t) : [];
  }

  /** How many answers were served in [from, to) (an index-free count, far cheaper than reading them). */
  async count(opts: { from: number; to: number }): Promise<number> {
    return (await this.on((h) => h.countRows(`ts >= ${opts.from} AND ts < ${opts.to}`), false)) ?? 0;
  }

  /** Deletes answers served before `before` (the log is kept for a bounded time). */
  async prune(before: number): Promise<void> {
    await this.on((h) => h.delete(`ts < ${before}`), false);
  }

  close(): void {
    void this.handle?.then((h) => h.close()).catch(() => undefined);
    this.handle = undefined;
  }

  /** The table, created on the first batch; a log written before exposures were counted gains its count column (1 per row). */
  private async openForAppend(): Promise<LanceTable> {
    let t: LanceTable;
    try {
      t = await this.db.openTable(SERVED_ANSWERS_TABLE);
    } catch (err) {
      if (failureKind(err) !== "missing") throw err;
      return this.db.createEmptyTable(SERVED_ANSWERS_TABLE, SCHEMA, { mode: "create", existOk: true });
    }
    if (!(await t.schema()).fields.some((f) => f.name === "served")) await t.addColumns([{ name: "served", valueSql: "CAST(1 AS DOUBLE)" }]);
    return t;
  }

  /** Runs fn on the table (creating it first when `create`); undefined when it does not exist and is not created. */
  private async on<T>(fn: (t: LanceTable) => Promise<T>, create: boolean): Promise<T | undefined> {
    try {
      // Opened by name, not looked up in a listing: listing tables is unreliable on object storage.
      this.handle ??= create ? this.openForAppend() : this.db.openTable(SERVED_ANSWERS_TABLE);
      return await fn(await this.handle);
    } catch (err) {
      this.handle = undefined;
      const fault = storeFault(this.uri, SERVED_ANSWERS_TABLE, err);
      if (!create && fault instanceof StoreTableError && failureKind(fault.cause) === "missing") return undefined;
      throw fault;
    }
  }
}

function toArrow(rows: readonly ServedAnswer[]): ArrowTable {
  return table({
    userId: utf8(rows.map((r) => r.userId)),
    ts: float64(rows.map((r) => r.ts)),
    mode: utf8(rows.map((r) => r.mode)),
    clusters: utf8(rows.map((r) => r.clusters.join(","))),
    baseId: utf8(rows.map((r) => r.baseId)),
    adapterId: utf8(rows.map((r) => r.adapterId)),
    tableId: utf8(rows.map((r) => r.tableId)),
    arm: utf8(rows.map((r) => r.arm)),
    served: float64(rows.map((r) => r.served)),
  });
}

/** Rows read back are validated like rows written: a damaged row is an error naming it, not a silent miscount. */
function fromArrow(t: ArrowTable): ServedAnswer[] {
  const [userId, mode, clusters, baseId, adapterId, tableId, arm] = ["userId", "mode", "clusters", "baseId", "adapterId", "tableId", "arm"].map((c) => strings(t, c));
  const ts = numbers(t, "ts");
  // Logs written before exposures were merged have no count: each row was one request.
  const served = t.schema.fields.some((f) => f.name === "served") ? numbers(t, "served") : null;
  const raw = ts.map((at, i) => ({
    userId: userId![i],
    ts: at,
    mode: mode![i],
    clusters: clusters![i]!.split(",").map(Number),
    baseId: baseId![i] ?? null,
    adapterId: adapterId![i] ?? null,
    tableId: tableId![i] ?? null,
    arm: arm![i],
    served: served?.[i] ?? 1,
  }));
  const parsed = z.array(ServedAnswerSchema).safeParse(raw);
  if (!parsed.success) throw new ValidationError(`table '${SERVED_ANSWERS_TABLE}'`, issuesFromZod(parsed.error, raw));
  return parsed.data;
}
