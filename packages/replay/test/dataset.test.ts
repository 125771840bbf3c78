import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UNPLACED } from "@freshrec/core";
import { loadDataset } from "../src/dataset.js";

const dir = mkdtempSync(join(tmpdir(), "freshrec-replay-dataset-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const DAY = 86_400_000;
/** One user's engagement, one event a day: [itemId, signal]. */
const eventsCsv = (rows: Array<[string, number]>) =>
  `eventId,userId,itemId,ts,signal\n${rows.map(([itemId, signal], i) => `e${i},u1,${itemId},${(i + 1) * DAY},${signal}`).join("\n")}\n`;

describe("replay datasets from generic files", () => {
  it("describes given clusters by the items' categorical values, and takes the positive threshold", async () => {
    const items = write("given.csv", "itemId,clusterId,genre\na,0,jazz\nb,0,jazz\nc,1,rock\nd,2,pop\ne,3,\n");
    const events = write("given-events.csv", eventsCsv([["a", 5], ["c", 5], ["d", 4], ["e", 5]]));
    const byDefault = await loadDataset({ kind: "events", file: events, items }, 1);
    expect(byDefault.clusters).toEqual([
      { id: 0, keywords: ["jazz"] },
      { id: 1, keywords: ["rock"] },
      { id: 2, keywords: ["pop"] },
      { id: 3, keywords: ["cluster-3"] },
    ]);
    expect(byDefault.transitions.map((t) => `${t.history.join(",")}->${t.next}`)).toEqual(["0,1->2", "1,2->3"]);
    expect(byDefault.threshold).toBe(4);
    expect(byDefault.notes).toContain("positive engagement: signal >= 4 (default)");
    // signal 4 is no longer positive at 4.5: d drops out of the history.
    const strict = await loadDataset({ kind: "events", file: events, items, threshold: 4.5, clusters: 7 }, 1);
    expect(strict.transitions.map((t) => `${t.history.join(",")}->${t.next}`)).toEqual(["0,1->3"]);
    expect(strict.threshold).toBe(4.5);
    expect(strict.notes).toContain("positive engagement: signal >= 4.5 (--threshold)");
    expect(strict.notes[0]).toMatch(/^clusters: 4 clusters from the items' clusterId .*; --clusters 7 does not apply: every item carries a clusterId$/);
  });

  it("builds clusters by the default rule or --clusters, and reports the events of unclassified items", async () => {
    const genres = ["jazz", "rock", "pop", "folk"];
    const rows = genres.flatMap((g) => [1, 2, 3, 4].map((i) => `${g}${i},${g},`));
    const items = write("features.csv", `itemId,genre,tags\n${rows.join("\n")}\nodd,,seen-once\n`);
    const events = write("features-events.csv", eventsCsv([["jazz1", 5], ["rock1", 5], ["pop1", 5], ["odd", 5], ["folk1", 5], ["jazz2", 5]]));
    const d = await loadDataset({ kind: "events", file: events, items }, 1);
    // 16 clustered items -> ceil(sqrt(16)) = 4 = the 4 signatures
    expect(d.clusters).toHaveLength(4);
    expect(d.notes[0]).toBe("clusters: 4 clusters: k = 4 (default rule min(64, ceil(sqrt(16 items)) = 4, 4 distinct feature signatures))");
    expect(d.notes).toContain(`events in no cluster, left out: ${UNPLACED.noKeptFeature}: 1`);
    expect(d.events.map((e) => e.itemId)).not.toContain("odd");
    const two = await loadDataset({ kind: "events", file: events, items, clusters: 3 }, 1);
    expect(two.notes[0]).toMatch(/^clusters: \d clusters: k = 3 \(3 requested\)/);
  });
});
