import type { ClusterId } from "@freshrec/core";
import type { ServingTable, TableRow } from "./model-manager.js";
import { JsonText } from "./json-text.js";
import type { Arm } from "./experiment.js";

/**
 * Table-mode answers of one ServingTable as JSON text. A row's interests (cluster, probability, keywords) and
 * the table's lineage never change while the table is served, so each is serialised once (a row on its first
 * use) and an answer is a few string joins. The text is exactly what JSON.stringify gives for the answer object
 * { userId?, history, interests, lineage }.
 */
export class RenderedTable {
  private readonly lineage: string;
  private readonly interests = new Map<TableRow, string[]>();

  constructor(
    readonly table: ServingTable,
    /** The experiment arm named in the lineage (none outside experiments). */
    readonly arm?: Arm,
  ) {
    const lineage = { baseId: table.baseId, adapterId: table.adapterId, tableId: table.id, snapshotId: table.snapshotId, ragBlend: table.blend.weights.rag, popularityBlend: table.blend.weights.popularity, mode: "table" };
    this.lineage = JSON.stringify(arm ? { ...lineage, arm } : lineage);
  }

  answer(userId: string | undefined, history: readonly ClusterId[], row: TableRow, k: number): JsonText {
    const interests = this.rowInterests(row).slice(0, k).join(",");
    const user = userId === undefined ? "" : `"userId":${JSON.stringify(userId)},`;
    return new JsonText(`{${user}"history":${JSON.stringify(history)},"interests":[${interests}],"lineage":${this.lineage}}`);
  }

  private rowInterests(row: TableRow): string[] {
    let rendered = this.interests.get(row);
    if (!rendered) {
      const { keywords } = this.table;
      rendered = row.clusters.map((clusterId, i) => JSON.stringify({ clusterId, p: row.probs[i], keywords: keywords.get(clusterId) ?? [] }));
      this.interests.set(row, rendered);
    }
    return rendered;
  }
}
