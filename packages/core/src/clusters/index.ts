export * from "./features.js";
export * from "./build.js";
