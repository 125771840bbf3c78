export {
  parseLive,
  parseStrategies,
  REPLAY_MODEL_SIZES,
  DEFAULT_REPLAY_MODEL,
  type ReplayModelSize,
} from "./config.js";
export { ReplayError } from "./errors.js";
export { reproducibleView, ResultsSchema, type UpdateEntry, type Results } from "./results.js";
export { loadDataset, type DatasetSpec } from "./dataset.js";
export { planReplay, runReplay, type ReplayOptions } from "./replay.js";
export type { ModelLab } from "./model-lab.js";
export { writeReport, svgToPng } from "./report/write.js";
export { reportCharts, type Chart } from "./report/charts.js";
export { realLab } from "./real-lab.js";
export { ServerAb, type AbArm, type AbOptions } from "./ab.js";
