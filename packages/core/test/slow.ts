/** Whole-dataset tests take seconds, more on a loaded 2-core CI machine than vitest's 5 s default. */
export const SLOW_TEST_TIMEOUT_MS = 60_000;
