/** The progress callback shape every long job takes (docs/ARCHITECTURE.md). */
export type ProgressFn = (e: { phase: string; done: number; total?: number; info?: Record<string, number | string> }) => void;
