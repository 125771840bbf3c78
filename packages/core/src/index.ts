export * from "./errors.js";
export * from "./schemas.js";
export * from "./model/layout.js";
export { ModelKindSchema, type ModelKind } from "./model/model-kind.js";
export {
  TextTemplateSchema,
  DEFAULT_RAG_LINES,
  parseTextTemplate,
  loadTextTemplate,
  defaultTextTemplate,
  describeClusters,
  renderTextMessages,
  completionText,
  answerText,
  type TextTemplate,
  type PromptStyle,
  type TextPromptParams,
  type RagLine,
  type TextPromptInput,
  type TextMessages,
  type ClusterDescriptions,
} from "./model/text-prompt.js";
export * from "./sequences.js";
export * from "./rng.js";
export * from "./import/index.js";
export * from "./metrics.js";
export * from "./transition-stream.js";
export * from "./drift.js";
export * from "./kmeans.js";
export * from "./clusters/index.js";
export * from "./synthetic/index.js";
export { pidAlive } from "./process.js";
