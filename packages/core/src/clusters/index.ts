export * from "./features.js";
export * from "./count.js";
export * from "./build.js";
