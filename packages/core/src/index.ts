export * from "./errors.js";
export * from "./schemas.js";
export * from "./model/layout.js";
