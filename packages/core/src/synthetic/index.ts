export * from "./config.js";
export * from "./world.js";
export type { Trend } from "./transition-model.js";
