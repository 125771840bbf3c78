import { join } from "node:path";
import { FreshrecError } from "@freshrec/core";
import { validateAdapter } from "../external/validate.js";
import { evaluateGate } from "../gates/gates.js";
import { isUserBase, type AdapterRecord, type BaseRecord, type HoldoutMetrics } from "@freshrec/registry";
import type { TrainingSet } from "../training-set/build.js";
import { baseLayout, JobError, loadForScoring, scoreOptions, type JobContext } from "./context.js";
import { scoreHoldout } from "./evaluate.js";
import { timed } from "./measure.js";
import { textExamples, tokenExamples, trainingSetFor, writeTrainingJsonl } from "./training-data.js";
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
  if (isUserBase(base.manifest) && !ctx.trainer.trainTextAdapter)
    throw new JobError("finetune", `base ${base.id} is a text model and trainer '${ctx.trainer.name}' trains cluster-token models only (use the native trainer)`);
  const layout = set.manifest.layout;
  const active = ctx.registry.active();
  const incumbent = active.adapter ? ctx.registry.getOf("adapter", active.adapter) : undefined;
  const warm = (opts.warmStart ?? ctx.config.warmStart) && incumbent?.manifest.baseId === base.id ? incumbent : undefined;
  const { id, dir } = ctx.registry.stage("adapter");
  const outPath = join(dir, ADAPTER_FILE);
  const common = { basePath: trainPath, outPath, adapterId: id, ...(warm?.path ? { warmStartPath: warm.path } : {}), hyper: ctx.config.lora, seed: ctx.config.seed, ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}) };
  const text = isUserBase(base.manifest);
  const trained = await timed(async () => {
    if (text) return ctx.trainer.trainTextAdapter!({ ...(await textExamples(ctx, set, trainPath)), ...common });
    const examplesJsonl = join(dir, "train.jsonl");
    writeTrainingJsonl(examplesJsonl, set, layout);
    return ctx.trainer.trainAdapter({ ...tokenExamples(set, layout), examplesJsonl, layout, ...common });
  });
  const lineage = {
    baseId: base.id,
    // The base's record holds the training file's sha256 (taken when it was pretrained or registered).
    baseHash: base.manifest.modelHash,
    trainingSetId: set.manifest.id,
    trainingSet: set.manifest,
    trainer: ctx.trainer.name,
    hyperparameters: ctx.config.lora,
    warmStartFrom: warm?.id ?? null,
    wallS: trained.wallS,
    cpuS: trained.cpuS,
    asOf: ctx.asOf,
  };
  // A text adapter is checked by llama.cpp as it loads on the base (below); the header check is the cluster-token contract's.
  const misfit = text ? undefined : await adapterMisfit(outPath, base.path!);
  if (misfit) {
    // Kept as a rejected candidate so the reason stays visible; it can never be loaded on this base.
    ctx.registry.publish({ id, kind: "adapter", main: ADAPTER_FILE, gate: { passed: false, reasons: [misfit], metrics: {} }, manifest: lineage });
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
    manifest: { ...lineage, holdout: candidate, incumbent: { id: incumbent?.id ?? null, holdout: incumbentMetrics } },
  });
  if (gate.passed && ctx.autoPromote !== false) ctx.registry.promote(id, ctx.by);
  return ctx.registry.getOf("adapter", id);
}

/** Fine-tune job: a LoRA adapter from the last `finetuneDays` before asOf. */
export async function finetune(ctx: JobContext): Promise<AdapterRecord> {
  const { record: base } = activeBase(ctx, "finetune");
  const layout = await baseLayout(ctx, base);
  const { start, end } = await finetuneWindow(ctx);
  const set = await trainingSetFor(ctx, { start, end }, layout);
  if (set.train.length === 0) throw new JobError("finetune", `no training examples in [${new Date(start).toISOString()}, ${new Date(end).toISOString()})`);
  return trainCandidateAdapter(ctx, set);
}
