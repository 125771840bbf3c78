export * from "./report.js";
export * from "./csv.js";
export * from "./lines.js";
export * from "./movielens.js";
export * from "./generic.js";
export * from "./movielens-dir.js";
export * from "./generic-files.js";
