import { createHash } from "node:crypto";
import { z } from "zod";
import { DAY_MS, FreshrecError, clusterToToken, historyKey, mulberry32, promptTokens, type ClusterId, type LayoutParams, type Transition } from "@freshrec/core";
import type { RagSource } from "./rag-source.js";

export const TrainingSetConfigSchema = z.object({
  /** Most training examples kept per history key. */
  perKeyCap: z.number().int().positive().default(400),
  /** Most training examples kept per (history key, next) pair. */
  perPairCap: z.number().int().positive().default(40),
  /** Share of training examples whose RAG slots are left empty, so the model works with and without retrieval. */
  ragDropout: z.number().min(0).max(1).default(0.2),
  /** The last days of the window are held out (time-ordered split) for the gates. */
  holdoutDays: z.number().positive().default(3),
  /** RAG statistics are counted over this many days before each example. */
  ragWindowDays: z.number().positive().default(14),
  seed: z.number().int().default(1),
});
export type TrainingSetConfig = z.infer<typeof TrainingSetConfigSchema>;

export interface TrainingExample {
  history: ClusterId[];
  next: ClusterId;
  ts: number;
  /** RAG successors as of ts (best first); null when dropped out. */
  rag: ClusterId[] | null;
}

export interface TrainingSetManifest {
  id: string;
  window: { start: number; end: number };
  holdoutStart: number;
  counts: { inWindow: number; train: number; holdout: number; droppedByPairCap: number; droppedByKeyCap: number; ragDropped: number; ragEmpty: number; keys: number };
  caps: { perKey: number; perPair: number };
  ragDropout: number;
  ragWindowDays: number;
  seed: number;
  storeVersion: number | string | null;
  layout: LayoutParams;
}

export interface TrainingSet {
  manifest: TrainingSetManifest;
  train: TrainingExample[];
  holdout: TrainingExample[];
}

/** Seeded subsample of `items` to at most `cap`, keeping their original order. */
function capped<T>(items: T[], cap: number, rng: () => number): T[] {
  if (items.length <= cap) return items;
  const idx = items.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, cap).sort((a, b) => a - b).map((i) => items[i]!);
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    const list = out.get(k);
    if (list) list.push(t);
    else out.set(k, [t]);
  }
  return out;
}

/**
 * Builds a training set from the positive transitions of a window. Training examples are capped per
 * (key, next) pair and then per key (seeded sampling); the holdout is the last `holdoutDays` of the
 * window, uncapped, so it reflects real traffic. RAG slots come from `rag` as of each example's own ts.
 */
export async function buildTrainingSet(input: {
  transitions: readonly Transition[];
  window: { start: number; end: number };
  rag: RagSource;
  layout: LayoutParams;
  config?: Partial<TrainingSetConfig>;
  storeVersion?: number | string | null;
}): Promise<TrainingSet> {
  const config = TrainingSetConfigSchema.parse(input.config ?? {});
  const { start, end } = input.window;
  if (!(end > start)) throw new FreshrecError("training-set", `training set window is empty: start ${start} >= end ${end}`);
  const inWindow = input.transitions.filter((t) => t.ts >= start && t.ts < end).sort((a, b) => a.ts - b.ts);
  const holdoutStart = Math.max(start, end - config.holdoutDays * DAY_MS);
  const trainPool = inWindow.filter((t) => t.ts < holdoutStart);
  const holdoutPool = inWindow.filter((t) => t.ts >= holdoutStart);

  const sample = mulberry32(config.seed);
  let droppedByPairCap = 0;
  let droppedByKeyCap = 0;
  const kept: Transition[] = [];
  for (const keyGroup of groupBy(trainPool, (t) => historyKey(t.history)).values()) {
    const pairKept = [...groupBy(keyGroup, (t) => String(t.next)).values()].flatMap((g) => capped(g, config.perPairCap, sample));
    droppedByPairCap += keyGroup.length - pairKept.length;
    const keyKept = capped(pairKept.sort((a, b) => a.ts - b.ts), config.perKeyCap, sample);
    droppedByKeyCap += pairKept.length - keyKept.length;
    kept.push(...keyKept);
  }
  kept.sort((a, b) => a.ts - b.ts);

  const dropout = mulberry32(config.seed ^ 0x5bd1e995);
  let ragDropped = 0;
  let ragEmpty = 0;
  const withRag = async (t: Transition, allowDropout: boolean): Promise<TrainingExample> => {
    const example = { history: [...t.history], next: t.next, ts: t.ts };
    if (allowDropout && dropout() < config.ragDropout) {
      ragDropped++;
      return { ...example, rag: null };
    }
    const rag = (await input.rag.top(t.history, t.ts)).slice(0, input.layout.ragSlots);
    if (rag.length === 0) ragEmpty++;
    return { ...example, rag };
  };
  // Visit in time order (train before holdout) so a rolling RAG source only moves forward.
  const train: TrainingExample[] = [];
  for (const t of kept) train.push(await withRag(t, true));
  const holdout: TrainingExample[] = [];
  for (const t of holdoutPool) holdout.push(await withRag(t, false));

  const body: Omit<TrainingSetManifest, "id"> = {
    window: { start, end },
    holdoutStart,
    counts: {
      inWindow: inWindow.length,
      train: train.length,
      holdout: holdout.length,
      droppedByPairCap,
      droppedByKeyCap,
      ragDropped,
      ragEmpty,
      keys: new Set(inWindow.map((t) => historyKey(t.history))).size,
    },
    caps: { perKey: config.perKeyCap, perPair: config.perPairCap },
    ragDropout: config.ragDropout,
    ragWindowDays: config.ragWindowDays,
    seed: config.seed,
    storeVersion: input.storeVersion ?? null,
    layout: { k: input.layout.k, ragSlots: input.layout.ragSlots, nClusters: input.layout.nClusters },
  };
  const id = `ts-${createHash("sha256").update(JSON.stringify(body)).update(JSON.stringify(train)).digest("hex").slice(0, 12)}`;
  return { manifest: { id, ...body }, train, holdout };
}

/** Model input for one example: the prompt's token ids (core's layout) and the target cluster's token id. */
export const exampleTokens = (e: TrainingExample, layout: LayoutParams): { tokens: number[]; target: number } => ({
  tokens: promptTokens(e.history, e.rag, layout),
  target: clusterToToken(e.next),
});
