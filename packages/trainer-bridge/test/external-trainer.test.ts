import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { DAY_MS } from "@freshrec/core";
import { ExternalTrainerError, JobProcesses, exampleTokens, externalTrainer, nativeTrainer, pretrain, pretrainBase, trainCandidateAdapter, trainLora, trainingSetFor } from "../src/index.js";
import { loadScoringModel } from "@freshrec/scorer";
import { registerUserBase } from "../src/jobs/bootstrap.js";
import { writeSmallTextModel } from "../src/index.js";
import { TINY_LORA, TINY_MODEL, tinyContext, tinyWorldStore } from "./loop-fixtures.js";

const FIXTURE = join(__dirname, "fixtures", "native-lora-command.ts");
const TEXT_FIXTURE = join(__dirname, "fixtures", "native-text-lora-command.ts");

describe("external trainer backend", () => {
  it("runs a command under the contract, validates its adapter against the base, and gates it; a misfit or failing command is refused", { timeout: 240_000 }, async () => {
    const { store, startMs, dir } = await tinyWorldStore();
    const asOf = startMs + 10 * DAY_MS;
    const ctx = tinyContext(store, dir, asOf, { pretrain: { ...TINY_MODEL, epochs: 2 }, lora: { ...TINY_LORA, epochs: 1 } });
    const base = await pretrainBase(ctx);
    ctx.registry.promote(base.id, "test"); // the gate of a 2-epoch base is not what this test is about
    const layout = base.manifest.layout as { k: number; ragSlots: number; nClusters: number };
    const set = await trainingSetFor(ctx, { start: startMs, end: asOf }, layout);

    // 1. A real trainer behind the contract: the native LoRA trainer run as a separate command.
    const external = externalTrainer([process.execPath, "--import", "tsx", FIXTURE], nativeTrainer());
    const good = await trainCandidateAdapter({ ...ctx, trainer: external }, set);
    expect(good.manifest.trainer).toBe("external:node");
    expect(good.manifest.baseId).toBe(base.id);
    expect(good.gate.metrics.n).toBe(set.holdout.length);
    expect(good.gate.metrics.exactMatch).toBe(1);
    expect(good.status === "active" || good.status === "rejected").toBe(true);

    // The same job runner the wall-clock scheduler uses: `freshrec jobs run refresh` in a child process.
    const cli = [process.execPath, "--import", "tsx", join(__dirname, "..", "..", "..", "apps", "cli", "src", "main.ts")];
    const quiet = { info() {}, warn() {}, error() {} };
    const jobs = new JobProcesses({ command: cli, storeUri: join(dir, "store"), modelsDir: ctx.registry.dir, cwd: process.cwd(), log: quiet });
    const [table] = await jobs.actionRunner(ctx.registry)({ kind: "refresh", rag: true }, { ...ctx, by: "test:child" });
    expect(jobs.list()[0]).toMatchObject({ kind: "refresh", state: "succeeded", result: { job: "refresh" } });
    const stored = ctx.registry.getOf("table", table!.id);
    expect(stored.manifest.lineage.baseId).toBe(base.id);
    expect((await store.predictionTable(table!.id))?.rows.length).toBe(stored.manifest.keys);

    // 2. An adapter trained for a different base (n_embd 64 instead of 32) is rejected with the shape mismatch.
    const otherBase = join(dir, "other-base.gguf");
    const misfit = join(dir, "misfit-adapter.gguf");
    const examples = set.train.slice(0, 64).map((e) => exampleTokens(e, layout));
    await pretrain({ examples, layout, modelId: "other", outF32: otherBase, size: { nEmbd: 64, nLayer: 1, nHead: 2, nFf: 64 }, epochs: 1, threads: 2 });
    await trainLora({ examples, base: otherBase, out: misfit, adapterId: "misfit", epochs: 1, rank: 4, threads: 2 });
    const copyMisfit = externalTrainer(["sh", "-c", `cp "${misfit}" "$FRESHREC_ADAPTER_OUT"`], nativeTrainer());
    const rejected = await trainCandidateAdapter({ ...ctx, trainer: copyMisfit }, set);
    expect(rejected.status).toBe("rejected");
    expect(rejected.gate.reasons.join(" ")).toMatch(/does not fit base model/);
    expect(ctx.registry.active().adapter).not.toBe(rejected.id);

    // 3. A failing command fails the job with its stderr and publishes nothing.
    const failing = externalTrainer(["sh", "-c", "echo out of GPU memory >&2; exit 3"], nativeTrainer());
    const before = ctx.registry.list().length;
    await expect(trainCandidateAdapter({ ...ctx, trainer: failing }, set)).rejects.toThrow(ExternalTrainerError);
    await expect(trainCandidateAdapter({ ...ctx, trainer: failing }, set)).rejects.toThrow(/exit 3\): out of GPU memory/);
    expect(ctx.registry.list()).toHaveLength(before);
    await store.close();
  });

  it("trains a text base's adapter through the command (prompt and answer token ids per line), then gates it like a native one", { timeout: 240_000 }, async () => {
    const { store, startMs, dir } = await tinyWorldStore();
    const asOf = startMs + 10 * DAY_MS;
    const source = await writeSmallTextModel(join(dir, "team-model.gguf"));
    const ctx = { ...tinyContext(store, dir, asOf, { baseModel: source, bootstrapDays: 5, lora: { epochs: 1, batch: 16, lr: 1e-2, rank: 4, threads: 2 } }), loadModel: loadScoringModel };
    const base = await registerUserBase(ctx, source);
    // The last 4 days keep the command's training and the gate's scoring short.
    const set = await trainingSetFor(ctx, { start: asOf - 4 * DAY_MS, end: asOf }, base.manifest.layout as { k: number; ragSlots: number; nClusters: number });
    const phases = new Set<string>();
    const external = externalTrainer([process.execPath, "--import", "tsx", TEXT_FIXTURE], nativeTrainer());
    const adapter = await trainCandidateAdapter({ ...ctx, trainer: external, onProgress: (e) => void phases.add(e.phase) }, set);
    expect(adapter.manifest).toMatchObject({ trainer: "external:node", baseId: base.id });
    expect(adapter.gate.metrics.n).toBe(set.holdout.length);
    expect(adapter.gate.metrics.exactMatch).toBe(1);
    // The command's own progress lines reached the job.
    expect(phases.has("lora-text")).toBe(true);
    const failing = externalTrainer(["sh", "-c", 'test "$FRESHREC_MODEL_KIND" = text && wc -l < "$FRESHREC_TRAIN_JSONL" >&2; exit 4'], nativeTrainer());
    await expect(trainCandidateAdapter({ ...ctx, trainer: failing }, set)).rejects.toThrow(new RegExp(`exit 4\\): ${set.train.length}`));
    await store.close();
  });
});
