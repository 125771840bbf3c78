import { z } from "zod";
import type { TableRecord } from "@freshrec/registry";
import { notFound } from "./errors.js";
import type { RegistryPort, StorePort } from "./ports.js";

/**
 * What a new prediction table changed against an earlier one: the history keys whose top-1 moved, and what
 * differs in their lineage. Same base and adapter with another RAG snapshot means retrieval alone moved them
 * (the paper's analysis: only 7.8 % of RAG answers equalled the no-RAG answer for the same pair).
 */

const TableSideSchema = z.object({ id: z.string(), baseId: z.string(), adapterId: z.string().nullable(), snapshotId: z.string().nullable(), createdAt: z.number(), keys: z.number().int() });

export const TableDiffAnswerSchema = z.object({
  from: TableSideSchema,
  to: TableSideSchema,
  commonKeys: z.number().int().describe("history keys both tables answer"),
  top1Changed: z.number().int(),
  top1ChangedShare: z.number().nullable().describe("top1Changed / commonKeys"),
  cause: z.enum(["rag", "model", "model+rag", "none"]).describe("rag: same base and adapter, another RAG snapshot; model: another base or adapter, same snapshot"),
  changes: z.array(z.object({ key: z.string(), from: z.number().int(), to: z.number().int() })).describe("the changed keys (at most 100, by key)"),
});
export type TableDiffAnswer = z.infer<typeof TableDiffAnswerSchema>;

export const TableDiffQuerySchema = z.strictObject({
  from: z.string().min(1).max(128).optional().describe("registry id of the earlier table (default: the table active before `to`)"),
  to: z.string().min(1).max(128).optional().describe("registry id of the later table (default: the active table)"),
});

const MAX_LISTED = 100;

export class TableDiffs {
  /** Tables never change once registered: a diff is computed once per pair (the few latest pairs kept). */
  private readonly cache = new Map<string, Promise<TableDiffAnswer>>();

  constructor(private readonly o: { store: Pick<StorePort, "predictionTable">; registry: Pick<RegistryPort, "list" | "active" | "promotions"> }) {}

  async diff(query: { from?: string; to?: string }): Promise<TableDiffAnswer> {
    const to = query.to ?? (await this.o.registry.active()).table;
    if (!to) throw notFound("no table is active yet");
    const from = query.from ?? (await this.previous(to));
    if (!from) throw notFound(`no table was active before '${to}' to compare it with`);
    const key = `${from}>${to}`;
    let answer = this.cache.get(key);
    if (!answer) {
      answer = this.compute(from, to);
      this.cache.set(key, answer);
      answer.catch(() => this.cache.delete(key));
      if (this.cache.size > 8) this.cache.delete(this.cache.keys().next().value!);
    }
    return answer;
  }

  /** The table that was active just before `id` became active (or the latest one promoted before it). */
  private async previous(id: string): Promise<string | null> {
    const entries = (await this.o.registry.promotions()).filter((e) => e.kind === "table");
    let at = entries.length - 1;
    while (at >= 0 && entries[at]!.to !== id) at--;
    if (at >= 0 && entries[at]!.from) return entries[at]!.from;
    const earlier = entries.slice(0, at < 0 ? entries.length : at).reverse().find((e) => e.to && e.to !== id);
    return earlier?.to ?? null;
  }

  private async compute(fromId: string, toId: string): Promise<TableDiffAnswer> {
    const [from, to] = await Promise.all([this.side(fromId), this.side(toId)]);
    const changes: TableDiffAnswer["changes"] = [];
    let common = 0;
    for (const [key, top] of to.top1) {
      const before = from.top1.get(key);
      if (before === undefined) continue;
      common++;
      if (before !== top) changes.push({ key, from: before, to: top });
    }
    changes.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const model = from.info.baseId !== to.info.baseId || from.info.adapterId !== to.info.adapterId;
    const rag = from.info.snapshotId !== to.info.snapshotId;
    return {
      from: from.info,
      to: to.info,
      commonKeys: common,
      top1Changed: changes.length,
      top1ChangedShare: common === 0 ? null : changes.length / common,
      cause: model && rag ? "model+rag" : model ? "model" : rag ? "rag" : "none",
      changes: changes.slice(0, MAX_LISTED),
    };
  }

  private async side(id: string): Promise<{ info: z.infer<typeof TableSideSchema>; top1: Map<string, number> }> {
    const rec = (await this.o.registry.list()).find((r): r is TableRecord => r.id === id && r.kind === "table");
    if (!rec) throw notFound(`the registry has no table '${id}'`);
    const stored = await this.o.store.predictionTable(rec.manifest.tableId);
    if (!stored) throw notFound(`prediction table '${rec.manifest.tableId}' of '${id}' is not in the store (retired?)`);
    const top1 = new Map<string, number>();
    for (const row of stored.rows) if (row.clusters.length > 0) top1.set(row.key, row.clusters[0]!);
    const { lineage } = rec.manifest;
    return { info: { id, baseId: lineage.baseId, adapterId: lineage.adapterId, snapshotId: lineage.snapshotId, createdAt: lineage.createdAt, keys: top1.size }, top1 };
  }
}
