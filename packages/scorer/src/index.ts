export { loadClusterModel, type ClusterModel, type ScorerOptions } from "./cluster-model.js";
export { loadScoringModel, type ScoringModel, type LoadScoringModelOptions } from "./scoring-model.js";
export type { Scorer, Prompt } from "./scorer.js";
export type { ClusterScore } from "./distribution.js";
export { clusterDistribution } from "./distribution.js";
export { readGgufMetadata, readAdapterMetadata, type ModelFileInfo, type AdapterFileInfo } from "./metadata.js";
export {
  ModelFileError,
  NotAFreshrecModelError,
  AdapterMismatchError,
  StaleAdapterError,
  ScorerDisposedError,
  ScoringError,
  UnusableModelError,
  AmbiguousDescriptionsError,
} from "./errors.js";
export { inspectModelFile, describeAssessment, type ModelFileAssessment } from "./text/inspect.js";
export { TextPromptEncoder } from "./text/prompt-encoder.js";
export { loadTextModel, loadTextEncoder, fileSha256, toDistribution, TEXT_SCORINGS, type TextModel, type TextScorer, type TextScorerOptions, type TextScoring } from "./text/text-model.js";
export type { AnswerScore, ReadMode } from "./text/branch-reader.js";
export { amxKernelsActive, decodeBatchLimit, readCpuFlags } from "./llama-cpp-workarounds.js";
export {
  blendWithRag,
  fitBlend,
  defaultBlendGrid,
  popularityOf,
  MODEL_ALONE,
  ragPrompt,
  type RagEvidence,
  type BlendWeights,
  type Popularity,
  type BlendCase,
  type BlendFit,
} from "./rag-blend.js";
