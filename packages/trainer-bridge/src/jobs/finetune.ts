import { join } from "node:path";
import { FreshrecError } from "@freshrec/core";
import { readGgufMetadata } from "@freshrec/scorer";
import { validateAdapter } from "../external/validate.js";
import { evaluateGate } from "../gates/gates.js";
import type { AdapterRecord, BaseRecord, HoldoutMetrics } from "@freshrec/registry";
import type { TrainingSet } from "../training-set/build.js";
import { JobError, loadForScoring, scoreOptions, type JobContext } from "./context.js";
import { scoreHoldout } from "./evaluate.js";
import { fileSha256, timed } from "./measure.js";
import { tokenExamples, trainingSetFor, writeTrainingJsonl } from "./training-data.js";
import { finetuneWindow } from "./windows.js";

const ADAPTER_FILE = "adapter.gguf";

/** The active base's record and its F32 training file; jobs that need a base fail clearly without one. */
export function activeBase(ctx: JobContext, job: string): { record: BaseRecord; trainPath: string } {
  const id = ctx.registry.active().base;
  if (!id) throw new JobError(job, `no active base model in ${ctx.registry.dir}: run 'freshrec jobs run bootstrap' first`);
  const record = ctx.registry.getOf("base", id);
  const trainFile = record.manifest.trainFile;
  const trainPath = record.files.find((f) => f.endsWith(`/${trainFile}`)) ?? record.path;
  if (!trainPath) throw new JobError(job, `base ${id} has no model file`);
  return { record, trainPath };
}

/** Why an adapter cannot be applied to the base (from GGUF headers), or undefined when it fits. */
async function adapterMisfit(adapterPath: string, basePath: string): Promise<string | undefined> {
  try {
    await validateAdapter(adapterPath, basePath);
    return undefined;
  } catch (err) {
    if (err instanceof FreshrecError) return err.message;
    throw err;
  }
}

/**
 * Trains a LoRA adapter on the active base from `set` (any backend), checks it fits the base, scores it and the
 * incumbent (active adapter, else the bare base) on the set's holdout, gates it, publishes it, and promotes it
 * when it passes (unless autoPromote is off). Candidates that fail are published as rejected, with reasons.
 */
export async function trainCandidateAdapter(ctx: JobContext, set: TrainingSet, opts: { warmStart?: boolean } = {}): Promise<AdapterRecord> {
  const { record: base, trainPath } = activeBase(ctx, "finetune");
  const layout = set.manifest.layout;
  const active = ctx.registry.active();
  const incumbent = active.adapter ? ctx.registry.getOf("adapter", active.adapter) : undefined;
  const warm = (opts.warmStart ?? ctx.config.warmStart) && incumbent?.manifest.baseId === base.id ? incumbent : undefined;
  const { id, dir } = ctx.registry.stage("adapter");
  const outPath = join(dir, ADAPTER_FILE);
  const examplesJsonl = join(dir, "train.jsonl");
  writeTrainingJsonl(examplesJsonl, set, layout);
  const trained = await timed(() =>
    ctx.trainer.trainAdapter({
      ...tokenExamples(set, layout),
      examplesJsonl,
      layout,
      basePath: trainPath,
      outPath,
      adapterId: id,
      ...(warm?.path ? { warmStartPath: warm.path } : {}),
      hyper: ctx.config.lora,
      seed: ctx.config.seed,
      ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
    }),
  );
  const common = {
    baseId: base.id,
    baseHash: await fileSha256(trainPath),
    trainingSetId: set.manifest.id,
    trainingSet: set.manifest,
    trainer: ctx.trainer.name,
    hyperparameters: ctx.config.lora,
    warmStartFrom: warm?.id ?? null,
    wallS: trained.wallS,
    cpuS: trained.cpuS,
    asOf: ctx.asOf,
  };
  const misfit = await adapterMisfit(outPath, base.path!);
  if (misfit) {
    // Kept as a rejected candidate so the reason stays visible; it can never be loaded on this base.
    ctx.registry.publish({ id, kind: "adapter", main: ADAPTER_FILE, gate: { passed: false, reasons: [misfit], metrics: {} }, manifest: common });
    return ctx.registry.getOf("adapter", id);
  }
  const model = await loadForScoring(ctx, base.path!);
  let candidate: HoldoutMetrics;
  let incumbentMetrics: HoldoutMetrics;
  try {
    candidate = await scoreHoldout(model, { path: outPath, id }, set.holdout, layout, scoreOptions(ctx));
    incumbentMetrics =
      incumbent && incumbent.manifest.baseId === base.id
        ? await scoreHoldout(model, { path: incumbent.path!, id: incumbent.id }, set.holdout, layout, scoreOptions(ctx))
        : await scoreHoldout(model, undefined, set.holdout, layout, scoreOptions(ctx));
  } finally {
    await model.dispose();
  }
  const gate = evaluateGate(candidate, incumbentMetrics, ctx.config.gate);
  ctx.registry.publish({
    id,
    kind: "adapter",
    main: ADAPTER_FILE,
    gate,
    manifest: { ...common, holdout: candidate, incumbent: { id: incumbent?.id ?? null, holdout: incumbentMetrics } },
  });
  if (gate.passed && ctx.autoPromote !== false) ctx.registry.promote(id, ctx.by);
  return ctx.registry.getOf("adapter", id);
}

/** Fine-tune job: a LoRA adapter from the last `finetuneDays` before asOf. */
export async function finetune(ctx: JobContext): Promise<AdapterRecord> {
  const { record: base } = activeBase(ctx, "finetune");
  const { layout } = await readGgufMetadata(base.path!);
  const { start, end } = await finetuneWindow(ctx);
  const set = await trainingSetFor(ctx, { start, end }, layout);
  if (set.train.length === 0) throw new JobError("finetune", `no training examples in [${new Date(start).toISOString()}, ${new Date(end).toISOString()})`);
  return trainCandidateAdapter(ctx, set);
}
