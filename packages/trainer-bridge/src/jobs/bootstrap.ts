import { symlinkSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { inspectModelFile } from "@freshrec/scorer";
import { evaluateGate } from "../gates/gates.js";
import type { AdapterRecord, BaseRecord, TableRecord } from "@freshrec/registry";
import { JobError, currentLayout, loadForScoring, scoreOptions, type JobContext } from "./context.js";
import { scoreHoldout } from "./evaluate.js";
import { finetune } from "./finetune.js";
import { fileSha256, timed } from "./measure.js";
import { refreshTable } from "./refresh.js";
import { trainTextBase } from "./text-base.js";
import { tokenExamples, trainingSetFor } from "./training-data.js";
import { bootstrapWindow } from "./windows.js";

export interface BootstrapResult {
  base: BaseRecord;
  adapter?: AdapterRecord;
  table?: TableRecord;
}

/** Pretrains a base model on the first `bootstrapDays` of data, gates it on that window's holdout, publishes it. */
export async function pretrainBase(ctx: JobContext): Promise<BaseRecord> {
  const { start, end } = await bootstrapWindow(ctx);
  const layout = await currentLayout(ctx);
  const window = { start, end };
  const set = await trainingSetFor(ctx, window, layout);
  if (set.train.length === 0) throw new JobError("bootstrap", `no training examples in [${window.start}, ${window.end})`);
  const { id, dir } = ctx.registry.stage("base");
  const trained = await timed(() =>
    ctx.trainer.pretrainBase({
      ...tokenExamples(set, layout),
      layout,
      outDir: dir,
      modelId: id,
      window,
      hyper: ctx.config.pretrain,
      seed: ctx.config.seed,
      ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
    }),
  );
  const { trainPath, servePath } = trained.value;
  const model = await loadForScoring(ctx, servePath);
  const holdout = await scoreHoldout(model, undefined, set.holdout, layout, scoreOptions(ctx)).finally(() => model.dispose());
  const gate = evaluateGate(holdout, undefined, ctx.config.gate);
  ctx.registry.publish({
    id,
    kind: "base",
    main: basename(servePath),
    gate,
    manifest: {
      modelHash: await fileSha256(trainPath),
      trainFile: basename(trainPath),
      trainingSetId: set.manifest.id,
      trainingSet: set.manifest,
      trainer: ctx.trainer.name,
      hyperparameters: ctx.config.pretrain,
      layout,
      window,
      wallS: trained.wallS,
      cpuS: trained.cpuS,
      holdout,
      asOf: ctx.asOf,
    },
  });
  if (gate.passed) ctx.registry.promote(id, ctx.by);
  return ctx.registry.getOf("base", id);
}

/**
 * Registers the text model a user brought (config.baseModel) as the base: the registry links the file (its folder holds
 * a symbolic link; the user's file is never copied or changed) and names it by its sha256. The bare base is scored on
 * the bootstrap window's holdout, the bar its first adapter must clear; the base itself is the user's choice, so it is
 * promoted whatever it scores (the figures stay in its record). With config.text.trainBase (freshrec's own small text
 * model only) every weight is first trained on the bootstrap window into a copy in the registry (jobs/text-base.ts).
 */
export async function registerUserBase(ctx: JobContext, path: string): Promise<BaseRecord> {
  const source = resolve(path);
  const assessment = await inspectModelFile(source);
  if (assessment.kind !== "text") throw new JobError("bootstrap", `${source} is a freshrec cluster-token model, not a text model: serve it with --models, or pass a text GGUF`);
  const window = await bootstrapWindow(ctx);
  const layout = { ...(await currentLayout(ctx)), ragSlots: ctx.config.text.ragLines };
  const set = await trainingSetFor(ctx, window, layout);
  const { id, dir } = ctx.registry.stage("base");
  const trainFile = basename(source);
  const file = join(dir, trainFile);
  const trained = ctx.config.text.trainBase ? await trainTextBase(ctx, set, { from: source, out: file }) : undefined;
  if (!trained) symlinkSync(source, file);
  const scored = await timed(async () => {
    const model = await loadForScoring(ctx, file);
    return scoreHoldout(model, undefined, set.holdout, layout, scoreOptions(ctx)).finally(() => model.dispose());
  });
  ctx.registry.publish({
    id,
    kind: "base",
    main: trainFile,
    gate: { passed: true, reasons: [], metrics: { recallAt1: scored.value.recallAt1, recallAt5: scored.value.recallAt5 } },
    manifest: {
      modelKind: "text",
      sourcePath: source,
      modelHash: await fileSha256(file),
      trainFile,
      architecture: assessment.architecture,
      promptStyle: assessment.promptStyle,
      training: assessment.training,
      layout,
      holdout: scored.value,
      ...(trained ? { trainedWeights: { fromHash: await fileSha256(source), window: { start: window.start, end: window.end }, examples: trained.examples } } : {}),
      wallS: scored.wallS + (trained?.wallS ?? 0),
      cpuS: scored.cpuS + (trained?.cpuS ?? 0),
      asOf: ctx.asOf,
    },
  });
  const how = trained ? `its weights trained on ${trained.examples} examples of the bootstrap window` : "registered";
  ctx.registry.promote(id, ctx.by, `text model ${source} (${assessment.architecture}, ${assessment.promptStyle} prompts), ${how} as the base`);
  return ctx.registry.getOf("base", id);
}

/**
 * First start: whatever is missing of base, adapter and table is built, in that order. Re-running after a
 * crash picks up where the last run stopped (published artefacts are complete; staged leftovers were swept).
 */
export async function bootstrap(ctx: JobContext, opts: { rag?: boolean } = {}): Promise<BootstrapResult> {
  const active = ctx.registry.active();
  const base = active.base ? ctx.registry.getOf("base", active.base) : ctx.config.baseModel ? await registerUserBase(ctx, ctx.config.baseModel) : await pretrainBase(ctx);
  if (base.status !== "active") throw new JobError("bootstrap", `base ${base.id} failed its gate: ${base.gate.reasons.join("; ")}`);
  const adapter = active.adapter ? ctx.registry.getOf("adapter", active.adapter) : await finetune(ctx);
  const table = active.table ? ctx.registry.getOf("table", active.table) : await refreshTable(ctx, opts);
  return { base, adapter, table };
}
