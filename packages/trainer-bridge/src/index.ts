export { ensureTrainer, llamaPaths, TRAINER_PATH, type LlamaPaths } from "./native/build.js";
export { TrainerError, TrainerBuildError } from "./native/errors.js";
export { writeExamples, writeVocab, type Example } from "./native/files.js";
export {
  pretrain,
  trainLora,
  forward,
  llamaOptBaseline,
  DEFAULT_MODEL_SIZE,
  type ProgressFn,
  type TrainSettings,
  type TrainInput,
  type ModelSize,
  type PretrainOptions,
  type PretrainResult,
  type LoraTarget,
  type LoraOptions,
  type LoraResult,
  type TrainMetrics,
  type EpochMetrics,
  type ForwardOptions,
  type ForwardResult,
  type LlamaOptBaselineOptions,
  type LlamaOptBaselineResult,
} from "./native/trainer.js";
// Update loop: registry, gates, training sets, jobs, scheduler, external trainer.
export * from "./registry/schemas.js";
export { openRegistry, type Registry, type RegistryOptions, type PublishInput } from "./registry/registry.js";
export { RegistryError, writeFileAtomic } from "./registry/atomic.js";
export * from "./gates/gates.js";
export * from "./training-set/rag-source.js";
export * from "./training-set/build.js";
export * from "./scheduler/decide.js";
export { LoopConfigSchema, JobError, type LoopConfig, type JobContext } from "./jobs/context.js";
export type { Trainer, TokenExample, PretrainInput, AdapterInput } from "./jobs/ports.js";
export { nativeTrainer, type NativePretrainHyper, type NativeLoraHyper } from "./jobs/native-trainer.js";
export { trainingSetFor, writeTrainingJsonl } from "./jobs/training-data.js";
export { finetune, trainCandidateAdapter } from "./jobs/finetune.js";
export { refreshTable } from "./jobs/refresh.js";
export { bootstrap, pretrainBase, type BootstrapResult } from "./jobs/bootstrap.js";
export { validateAdapter } from "./external/validate.js";
export { measureDrift, schedulerStep, inProcessRunner, type ActionRunner, type StepResult } from "./scheduler/loop.js";
export { externalTrainer, ExternalTrainerError } from "./external/command-trainer.js";
export { childProcessRunner, type ChildRunnerOptions } from "./scheduler/child-runner.js";
