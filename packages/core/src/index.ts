export {
  clip,
  issuesFromZod,
  FreshrecError,
  MAX_LISTED_ISSUES,
  ValidationError,
  type ErrorCode,
  type FieldIssue,
} from "./errors.js";
export {
  parseOrThrow,
  ClusterIdSchema,
  TimestampSchema,
  EventSchema,
  ItemSchema,
  ClusterSchema,
  type ClusterId,
  type Event,
  type Item,
  type Cluster,
  type Transition,
} from "./schemas.js";
export {
  vocabulary,
  promptTokens,
  LAYOUT_VERSION,
  FIRST_CLUSTER_TOKEN,
  DEFAULT_K,
  DEFAULT_RAG_SLOTS,
  clusterToToken,
  promptLength,
  vocabSize,
  GGUF_META,
  type LayoutParams,
} from "./model/layout.js";
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
export {
  compareEvents,
  advanceRecent,
  parseHistoryKey,
  extractTransitions,
  emptyRecent,
  DEFAULT_POSITIVE_THRESHOLD,
  isPositive,
  historyKey,
  type RecentClusters,
  type ClusteredEvent,
} from "./sequences.js";
export { mulberry32, DAY_MS, type Rng } from "./rng.js";
// Importers
export { drain, ImportFailedError, ImportReport } from "./import/report.js";
export { csvRecords } from "./import/csv.js";
export { readLines } from "./import/lines.js";
export { parseMovieLensRatings, parseMovieLensTags, parseMovieLensMovies, MOVIELENS_FILES } from "./import/movielens.js";
export {
  formatOfPath,
  parseTimestamp,
  parseGenericEvents,
  parseGenericItems,
  type RecordFormat,
} from "./import/generic.js";
export { loadMovieLens } from "./import/movielens-dir.js";
export { loadGenericItems, loadGenericEvents } from "./import/generic-files.js";
export { numberOption, InvalidOptionError, parseThresholdOption } from "./import/options.js";
export { sameTimestampEvents } from "./import/order.js";
// Metrics and drift
export {
  hitAtK,
  ndcgAtK,
  reciprocalRank,
  mean,
  variance,
  coverage,
  novelty,
  bootstrapCI,
  bootstrapDiffCI,
  bootstrapPairedCI,
  mrr,
} from "./metrics.js";
export { streamTransitions } from "./transition-stream.js";
export {
  countSuccessors,
  topSuccessors,
  jaccard,
  keySimilarities,
  driftBetween,
  windowedDrift,
  eventDrift,
  parseDurationMs,
  DEFAULT_DRIFT_TOP_N,
  DEFAULT_DRIFT_MIN_SUPPORT,
  type WindowedDrift,
} from "./drift.js";
// Clustering
export { nearestCentroid, kmeans } from "./kmeans.js";
export { featureNames, buildFeatureSpace, vectorize } from "./clusters/features.js";
export { chooseClusterCount, CLUSTER_COUNT_RULE, parseClusterCountOption } from "./clusters/count.js";
export {
  buildClusters,
  assignToCluster,
  resolveClusters,
  countUnplaced,
  ClusterModelSchema,
  UNPLACED,
} from "./clusters/build.js";
// Synthetic data
export { SYNTHETIC_SIZES, SYNTHETIC_PRESETS, type SyntheticConfig, type SyntheticSize } from "./synthetic/config.js";
export { createSyntheticWorld, type SyntheticWorld } from "./synthetic/world.js";
export type { Trend } from "./synthetic/transition-model.js";
export { pidAlive } from "./process.js";
