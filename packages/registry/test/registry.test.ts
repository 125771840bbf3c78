import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { openRegistry, type ArtefactKind, type GateResult, type PublishInput, type RecordOfKind } from "../src/index.js";
import { sampleManifest } from "./sample-manifests.js";

const pass: GateResult = { passed: true, reasons: [], metrics: { recallAt1: 0.2 } };
const fail: GateResult = { passed: false, reasons: ["holdout recall@1 0.00 % < floor 1.50 %"], metrics: { recallAt1: 0 } };

function publishOne<K extends ArtefactKind>(reg: ReturnType<typeof openRegistry>, kind: K, manifest: Partial<RecordOfKind<K>["manifest"]> = {}, gate = pass) {
  const { id, dir } = reg.stage(kind);
  if (kind !== "table") writeFileSync(join(dir, `${kind}.gguf`), `weights of ${id}`);
  return reg.publish({ id, kind, ...(kind !== "table" ? { main: `${kind}.gguf` } : {}), manifest: sampleManifest(kind, manifest), gate } as PublishInput);
}

describe("registry", () => {
  it("publishes each version under its own path, promotes, logs who did it, and rolls back in order", () => {
    const reg = openRegistry(mkdtempSync(join(tmpdir(), "reg-")));
    const base = publishOne(reg, "base");
    const a1 = publishOne(reg, "adapter", { baseId: base.id });
    const a2 = publishOne(reg, "adapter", { baseId: base.id });
    expect(a1.path).not.toBe(a2.path);
    expect(readFileSync(a2.path!, "utf8")).toBe(`weights of ${a2.id}`);
    expect(reg.active()).toMatchObject({ base: null, adapter: null });

    reg.promote(a1.id, "job:test");
    // Promoting an adapter brings its base along.
    expect(reg.active()).toMatchObject({ base: base.id, adapter: a1.id });
    reg.promote(a2.id, "user:alice", "looks good");
    const a3 = publishOne(reg, "adapter", { baseId: base.id });
    reg.promote(a3.id, "scheduler:hybrid");
    expect(reg.get(a1.id).status).toBe("retired");
    expect(reg.get(a3.id).status).toBe("active");

    expect(reg.rollback("adapter", "user:bob").adapter).toBe(a2.id);
    expect(reg.rollback("adapter", "user:bob").adapter).toBe(a1.id);
    expect(() => reg.rollback("adapter", "user:bob")).toThrow(/no earlier adapter/);
    const log = reg.promotions();
    expect(log.map((e) => [e.action, e.kind, e.to, e.by])).toEqual([
      ["promote", "adapter", a1.id, "job:test"],
      ["promote", "base", base.id, "job:test"],
      ["promote", "adapter", a2.id, "user:alice"],
      ["promote", "adapter", a3.id, "scheduler:hybrid"],
      ["rollback", "adapter", a2.id, "user:bob"],
      ["rollback", "adapter", a1.id, "user:bob"],
    ]);
    expect(log[2]!.gate).toEqual(pass);
  });

  it("keeps failed candidates as rejected with their reasons; they can be promoted by hand", () => {
    const reg = openRegistry(mkdtempSync(join(tmpdir(), "reg-")));
    const t = publishOne(reg, "table", { tableId: "x" }, fail);
    expect(reg.get(t.id)).toMatchObject({ status: "rejected", gate: { passed: false, reasons: fail.reasons } });
    reg.promote(t.id, "user:carol");
    expect(reg.active().table).toBe(t.id);
    expect(reg.get(t.id).status).toBe("active");
  });

  it("retains the last N versions per kind but never an active one", () => {
    const reg = openRegistry(mkdtempSync(join(tmpdir(), "reg-")), { retain: 2 });
    const first = publishOne(reg, "table");
    reg.promote(first.id, "test");
    const ids = [1, 2, 3].map(() => publishOne(reg, "table").id);
    expect(reg.list("table").map((r) => r.id)).toEqual([first.id, ids[1], ids[2]]);
  });

  it("keeps the experiment in the pointer: logged, never retired, ended by promoting its candidate, refused for unknown ids", () => {
    const reg = openRegistry(mkdtempSync(join(tmpdir(), "reg-")), { retain: 1 });
    const active = publishOne(reg, "table");
    reg.promote(active.id, "test");
    const candidate = publishOne(reg, "table");
    expect(() => reg.startExperiment({ candidateTable: "table-nope", candidateAdapter: null, share: 0.5, salt: "s" }, "user:dan")).toThrow(/table-nope/);
    reg.startExperiment({ candidateTable: candidate.id, candidateAdapter: null, share: 0.2, salt: "s" }, "user:dan");
    expect(reg.active().experiment).toMatchObject({ candidateTable: candidate.id, share: 0.2, by: "user:dan" });
    // Newer tables would retire it (retain 1), but the running experiment needs it.
    publishOne(reg, "table");
    expect(reg.list("table").map((r) => r.id)).toContain(candidate.id);
    // Status and rollback read the log: experiment entries make nothing "retired" or a rollback target.
    expect(reg.get(candidate.id).status).toBe("candidate");
    reg.promote(candidate.id, "user:dan");
    expect(reg.active()).toMatchObject({ table: candidate.id, experiment: null });
    expect(reg.promotions().map((e) => [e.action, e.to, e.candidate])).toEqual([
      ["promote", active.id, undefined],
      ["experiment-start", null, candidate.id],
      ["promote", candidate.id, undefined],
      ["experiment-stop", null, candidate.id],
    ]);
    expect(reg.rollback("table", "user:dan").table).toBe(active.id);
    expect(reg.stopExperiment("user:dan").experiment).toBeNull(); // nothing running: a no-op
    expect(reg.promotions()).toHaveLength(5);
  });

  it("a killed job leaves nothing visible and its staging folder is swept by the next open", { timeout: 30_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), "reg-"));
    // A child stages and writes an artefact, then dies before publishing.
    const script = `
      import { openRegistry } from ${JSON.stringify(join(__dirname, "../src/registry.ts"))};
      import { writeFileSync } from "node:fs";
      const reg = openRegistry(${JSON.stringify(dir)});
      const { dir: d } = reg.stage("adapter");
      writeFileSync(d + "/adapter.gguf", "half");
      process.kill(process.pid, "SIGKILL");`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" });
    expect(r.signal).toBe("SIGKILL");
    expect(readdirSync(join(dir, ".staging"))).toHaveLength(1);
    const reg = openRegistry(dir);
    expect(reg.list()).toEqual([]);
    expect(readdirSync(join(dir, ".staging"))).toEqual([]);
  });

  it("watch() reports pointer switches made by another handle", async () => {
    const dir = mkdtempSync(join(tmpdir(), "reg-"));
    const writer = openRegistry(dir);
    const reader = openRegistry(dir);
    const t = publishOne(writer, "table");
    const seen: Array<string | null> = [];
    const stop = reader.watch((a) => seen.push(a.table), 20);
    writer.promote(t.id, "test");
    await new Promise((r) => setTimeout(r, 150));
    stop();
    expect(seen).toEqual([t.id]);
  });

  it("refuses to publish an id it did not stage or a missing main file", () => {
    const reg = openRegistry(mkdtempSync(join(tmpdir(), "reg-")));
    expect(() => reg.publish({ id: "adapter-x", kind: "adapter", manifest: sampleManifest("adapter"), gate: pass })).toThrow(/not staged/);
    const { id } = reg.stage("adapter");
    expect(() => reg.publish({ id, kind: "adapter", main: "adapter.gguf", manifest: sampleManifest("adapter"), gate: pass })).toThrow(/main file 'adapter.gguf'/);
  });

  it("types every manifest by kind: a malformed one is refused at publish, and a hand-edited record at read, naming the file and field", () => {
    const reg = openRegistry(mkdtempSync(join(tmpdir(), "reg-")));
    const { id, dir } = reg.stage("adapter");
    writeFileSync(join(dir, "adapter.gguf"), "w");
    const broken = { ...sampleManifest("adapter"), baseId: 7 } as unknown as RecordOfKind<"adapter">["manifest"];
    expect(() => reg.publish({ id, kind: "adapter", main: "adapter.gguf", manifest: broken, gate: pass })).toThrow(/manifest\.baseId/);
    const table = publishOne(reg, "table");
    expect(reg.getOf("table", table.id).manifest.lineage.baseId).toBe("base-x");
    expect(() => reg.getOf("adapter", table.id)).toThrow(/is a table, not a adapter/);
    const recordPath = join(reg.dir, "artefacts", table.id, "record.json");
    const stored = JSON.parse(readFileSync(recordPath, "utf8"));
    writeFileSync(recordPath, JSON.stringify({ ...stored, manifest: { ...stored.manifest, lineage: { baseId: "b" } } }));
    expect(() => reg.get(table.id)).toThrow(new RegExp(`${table.id}/record.json.*manifest\\.lineage\\.createdAt`));
  });
});
