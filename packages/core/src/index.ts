export * from "./errors.js";
export * from "./schemas.js";
export * from "./model/layout.js";
export * from "./sequences.js";
export * from "./rng.js";
