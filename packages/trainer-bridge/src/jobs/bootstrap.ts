import { basename } from "node:path";
import { evaluateGate } from "../gates/gates.js";
import type { AdapterRecord, BaseRecord, TableRecord } from "@freshrec/registry";
import { JobError, currentLayout, loadForScoring, scoreOptions, type JobContext } from "./context.js";
import { scoreHoldout } from "./evaluate.js";
import { finetune } from "./finetune.js";
import { fileSha256, timed } from "./measure.js";
import { refreshTable } from "./refresh.js";
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
 * First start: whatever is missing of base, adapter and table is built, in that order. Re-running after a
 * crash picks up where the last run stopped (published artefacts are complete; staged leftovers were swept).
 */
export async function bootstrap(ctx: JobContext, opts: { rag?: boolean } = {}): Promise<BootstrapResult> {
  const active = ctx.registry.active();
  const base = active.base ? ctx.registry.getOf("base", active.base) : await pretrainBase(ctx);
  if (base.status !== "active") throw new JobError("bootstrap", `base ${base.id} failed its gate: ${base.gate.reasons.join("; ")}`);
  const adapter = active.adapter ? ctx.registry.getOf("adapter", active.adapter) : await finetune(ctx);
  const table = active.table ? ctx.registry.getOf("table", active.table) : await refreshTable(ctx, opts);
  return { base, adapter, table };
}
