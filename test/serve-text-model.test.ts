import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DAY_MS } from "@freshrec/core";
import { isUserBase, openRegistry } from "@freshrec/registry";
import { fileSha256 } from "@freshrec/scorer";
import { bundledVocab, initTextModel, loopPresetFor } from "@freshrec/trainer-bridge";
import { ADMIN_KEY, INGEST_KEY, READ_KEY, startFreshrec, type ServeProcess } from "./server-process.js";
import { cli, serveScratch, writeOwnData, writeServiceConfig } from "./own-data.js";

const BOOTSTRAP_MS = 8 * 60_000;

/**
 * `freshrec serve --model` on a text GGUF a team brings (here: a small llama-architecture model with StarCoder's
 * production tokenizer, written by the native trainer: nothing can be downloaded). The loop registers the file as the
 * base, fine-tunes a LoRA adapter on the team's data through its own prompt template, builds a table with RAG lines,
 * serves both modes with lineage naming the file's hash, and hot-swaps the next table.
 */
describe("freshrec serve --model <text.gguf>", () => {
  const { dir, store, models, serving } = serveScratch("freshrec-text-serve-");
  let s: ServeProcess;

  it("refuses a file it cannot use, naming the reason, before starting anything", () => {
    const data = writeOwnData(dir, DAY_MS);
    let stderr = "";
    try {
      cli("serve", "--store", store, "--models", models, "--model", data.itemsCsv, "--port", "0");
    } catch (err) {
      stderr = String((err as { stderr?: string }).stderr);
    }
    expect(stderr).toContain(data.itemsCsv);
    expect(stderr).toMatch(/not a GGUF|GGUF/);
  });

  it("bootstraps a LoRA adapter on the user's base, serves both modes with the base's hash in lineage, ranks a cluster added at run time, and swaps the next table", async () => {
    const data = writeOwnData(dir, DAY_MS);
    const base = join(dir, "team-model.gguf");
    await initTextModel({ vocab: bundledVocab("starcoder"), out: base, layout: { nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 128, nCtx: 256 }, seed: 1 });
    // One LoRA epoch keeps the bootstrap near a minute on 2 cores; the high rate makes it learn in that epoch.
    const jobs = { ...loopPresetFor("tiny"), lora: { epochs: 1, batch: 16, lr: 1e-2, rank: 8, threads: 2, exampleBudget: 1e9 } };
    const config = writeServiceConfig(dir, { refreshSeconds: 20, minTransitions: 300, extra: { jobs } });
    cli("import", "events", data.eventsCsv, "--items", data.itemsCsv, "--store", store);
    s = serving(await startFreshrec(["serve", "--store", store, "--models", models, "--config", config, "--model", base]));
    await s.waitFor("/readyz", 200, BOOTSTRAP_MS);

    const registry = openRegistry(models);
    const active = registry.active();
    const baseRecord = registry.getOf("base", active.base!);
    const sha = await fileSha256(base);
    expect(isUserBase(baseRecord.manifest) && baseRecord.manifest).toMatchObject({ modelKind: "text", sourcePath: base, modelHash: sha, architecture: "llama", promptStyle: "completion" });
    // The first adapter passed its gate against the bare base on the fine-tune window's holdout.
    expect(active.adapter).toBeTruthy();
    const adapter = registry.getOf("adapter", active.adapter!);
    expect(adapter.manifest).toMatchObject({ baseId: baseRecord.id, baseHash: sha });
    expect(adapter.manifest.holdout!.recallAt1).toBeGreaterThan(adapter.manifest.incumbent!.holdout!.recallAt1);
    expect(registry.getOf("table", active.table!).manifest.lineage).toMatchObject({ baseId: baseRecord.id, adapterId: adapter.id });

    const model = (await s.call("GET", "/v1/model", { key: READ_KEY })).json;
    expect(model.lineage).toMatchObject({ baseId: baseRecord.id, adapterId: adapter.id, tableId: active.table });
    const user = data.events[data.events.length - 1]!.userId;
    const table = await s.call("GET", `/v1/users/${user}/next-interests?k=5`, { key: READ_KEY });
    expect(table.status).toBe(200);
    expect(table.json.interests).toHaveLength(5);
    const live = await s.call("GET", `/v1/users/${user}/next-interests?k=5&mode=live`, { key: READ_KEY });
    expect(live.status).toBe(200);
    expect(live.json.lineage).toMatchObject({ mode: "live", baseId: baseRecord.id, adapterId: adapter.id });
    for (const answer of [table.json, live.json]) for (const i of answer.interests) expect(answer.history).not.toContain(i.clusterId);

    // A cluster born now: the text model ranks it from its keywords at once, no retraining; its items take events.
    const clusters = (await s.call("GET", "/v1/clusters", { key: READ_KEY })).json.clusters as Array<{ id: number }>;
    const born = clusters.length;
    const added = await s.call("POST", "/v1/admin/clusters", { key: ADMIN_KEY, body: { clusters: [{ id: born, keywords: ["sourdough", "baking"] }], items: [{ itemId: "born-i0", clusterId: born }] } });
    expect(added.status).toBe(200);
    expect(added.json).toEqual({ added: [born], clusters: born + 1, items: 1 });
    expect((await s.call("POST", "/v1/admin/clusters", { key: ADMIN_KEY, body: { clusters: [{ id: born, keywords: ["again"] }] } })).status).toBe(409);
    const ranked = await s.call("POST", "/v1/next-interests", { key: READ_KEY, body: { history: [3, 11], k: born, mode: "live" } });
    expect(ranked.status).toBe(200);
    expect(ranked.json.interests.find((i: { clusterId: number }) => i.clusterId === born)).toMatchObject({ keywords: ["sourdough", "baking"] });
    const withBorn = await s.call("POST", "/v1/next-interests", { key: READ_KEY, body: { history: [3, born], k: 3, mode: "live" } });
    expect(withBorn.status).toBe(200);

    // Fresh events, then the 20 s refresh cadence builds a new table with RAG lines and it is hot-swapped in.
    const now = Date.now();
    const fresh = [3, 7, 3, 11].map((c, i) => ({ eventId: `text-${i}`, userId: "text-user", itemId: `c${c}-i0`, ts: now - 60_000 + i * 1000, signal: 5 }));
    fresh.push({ eventId: "text-born", userId: "text-user", itemId: "born-i0", ts: now - 30_000, signal: 5 });
    expect((await s.call("POST", "/v1/events", { key: INGEST_KEY, body: { events: fresh } })).json).toMatchObject({ accepted: 5 });
    const until = Date.now() + 3 * 60_000;
    let swapped = model;
    while (Date.now() < until && swapped.lineage.tableId === active.table) {
      await new Promise((r) => setTimeout(r, 2_000));
      swapped = (await s.call("GET", "/v1/model", { key: READ_KEY })).json;
    }
    expect(swapped.lineage.tableId).not.toBe(active.table);
    expect(registry.getOf("table", swapped.lineage.tableId).manifest).toMatchObject({ rag: true, lineage: { baseId: baseRecord.id } });
    const after = await s.call("GET", "/v1/users/text-user/next-interests?k=3", { key: READ_KEY });
    expect(after.status).toBe(200);
    expect(after.json.history).toEqual([11, born]);
  }, BOOTSTRAP_MS + 5 * 60_000);
});
