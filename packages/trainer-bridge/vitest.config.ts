import { defineConfig } from "vitest/config";

// native/build holds a checkout of llama.cpp (for headers) whose own tests must not be collected.
export default defineConfig({ test: { include: ["test/**/*.test.ts"] } });
