export { ensureTrainer, llamaPaths, bundledVocab, TRAINER_PATH, type LlamaPaths } from "./native/build.js";
export {
  initTextModel,
  trainTextModel,
  trainTextLora,
  forwardText,
  measureLoraThroughput,
  TEXT_LAYOUT_PRESETS,
  TEXT_DTYPES,
  type TextLayoutPreset,
  type TextDtype,
  type TextLayout,
  type TextHparams,
  type InitTextModelOptions,
  type InitTextModelResult,
  type TextTrainMetrics,
  type TrainTextModelOptions,
  type TrainTextModelResult,
  type TrainTextLoraOptions,
  type TrainTextLoraResult,
  type ForwardTextOptions,
  type ForwardTextResult,
  type LoraThroughputOptions,
  type LoraThroughput,
} from "./native/text-trainer.js";
export { TrainerError, TrainerBuildError } from "./native/errors.js";
export { writeExamples, writeVocab, writeTextExamples, type Example, type TextExample } from "./native/files.js";
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
// Update loop: gates, training sets, jobs, scheduler, external trainer (the registry is @freshrec/registry).
export { GateConfigSchema, holdoutMetrics, evaluateGate, type GateConfig, type HoldoutPrediction } from "./gates/gates.js";
export { rankCounts, rankCounted, rollingRagSource, type RagSource } from "./training-set/rag-source.js";
export { TrainingSetConfigSchema, buildTrainingSet, exampleTokens, type TrainingSetConfig, type TrainingExample, type TrainingSet } from "./training-set/build.js";
export { textTokenExamples, type TextTokenExample } from "./training-set/text-examples.js";
export {
  STRATEGIES,
  StrategySchema,
  SchedulerConfigSchema,
  initialSchedulerState,
  refreshInterval,
  decide,
  type Strategy,
  type SchedulerConfig,
  type SchedulerState,
  type DriftReading,
  type Action,
  type Decision,
} from "./scheduler/decide.js";
export { LoopConfigSchema, JobError, loadForScoring, type LoopConfig, type JobContext } from "./jobs/context.js";
export { loopPresetFor } from "./jobs/presets.js";
export type { Trainer, TokenExample, PretrainInput, AdapterInput } from "./jobs/ports.js";
export { nativeTrainer, type NativePretrainHyper, type NativeLoraHyper } from "./jobs/native-trainer.js";
export { trainingSetFor, writeTrainingJsonl } from "./jobs/training-data.js";
export { finetune, trainCandidateAdapter } from "./jobs/finetune.js";
export { refreshTable } from "./jobs/refresh.js";
export { bootstrap, pretrainBase, type BootstrapResult } from "./jobs/bootstrap.js";
export { writeSmallTextModel } from "./jobs/text-base.js";
export { bootstrapWindow, DataTooThinError, finetuneWindow, tableHoldoutStart, type TrainingWindow, type WindowContext } from "./jobs/windows.js";
export { validateAdapter } from "./external/validate.js";
export {
  UpdateLoop,
  measureDrift,
  inProcessRunner,
  wallClock,
  loopStateFile,
  readLoopState,
  LoopStateSchema,
  DecisionLogLineSchema,
  type ActionRunner,
  type Clock,
  type EventSource,
  type AnchorMode,
  type Anchor,
  type LoopStatus,
  type LoopFailure,
  type StepOutcome,
  type UpdateLoopOptions,
  type DecisionLogLine,
  type LoopState,
} from "./scheduler/update-loop.js";
export {
  JobProcesses,
  JobBusyError,
  JOB_EXIT,
  JOB_KINDS,
  JobKindSchema,
  JobMessageSchema,
  parseJobMessage,
  type JobKind,
  type JobInfo,
  type JobState,
  type JobMessage,
  type JobResult,
  type JobProgress,
  type JobProcessesOptions,
} from "./scheduler/job-process.js";
export { externalTrainer, ExternalTrainerError } from "./external/command-trainer.js";
