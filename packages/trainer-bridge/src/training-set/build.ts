import { createHash } from "node:crypto";
import { z } from "zod";
import { DAY_MS, FreshrecError, clusterToToken, historyKey, mulberry32, promptTokens, type ClusterId, type LayoutParams, type Transition } from "@freshrec/core";
import type { TrainingSetManifest } from "@freshrec/registry";
import type { RagSource } from "./rag-source.js";

export const TrainingSetConfigSchema = z.object({
  /** Most training examples kept per history key. */
  perKeyCap: z.number().int().positive().default(400),
  /** Most training examples kept per (history key, next) pair. */
  perPairCap: z.number().int().positive().default(40),
  /**
   * Share of kept transitions that are also trained with `<none>` RAG slots, as an extra copy, so the model works
   * with and without retrieval. A copy rather than a replacement: the no-RAG path then learns P(next | key) from
   * all the data (with a 20 % replacement it saw a fifth of it and fell far below a count table).
   */
  ragDropout: z.number().min(0).max(1).default(1),
  /**
   * Relabelled copies per transition with RAG slots: history, RAG slots and target mapped through one random
   * permutation of the cluster ids. In such a copy the ids mean nothing, only how the target relates to the RAG
   * slots does, so the model learns to read retrieval as a skill. Without them it memorises the window (whose
   * own traffic it sees, unlike point-in-time RAG) and ignores the slots, so a fresh RAG snapshot changes nothing.
   */
  relabelCopies: z.number().min(0).max(4).default(1),
  /** Share of kept transitions (random, seeded) held back for the trainer's early stopping. */
  valFraction: z.number().min(0).max(0.5).default(0.1),
  /** The last days of the window are held out (time-ordered split) for the gates... */
  holdoutDays: z.number().positive().default(3),
  /** ...or longer, to hold at least this many transitions when those days are sparse... */
  minHoldoutTransitions: z.number().int().nonnegative().default(100),
  /** ...but never more than this share of the window's transitions: the newest data is the most worth training on. */
  maxHoldoutShare: z.number().gt(0).max(1).default(0.2),
  /** RAG statistics are counted over this many days before each example. */
  ragWindowDays: z.number().positive().default(14),
  seed: z.number().int().default(1),
});
export type TrainingSetConfig = z.infer<typeof TrainingSetConfigSchema>;

export interface TrainingExample {
  history: ClusterId[];
  next: ClusterId;
  ts: number;
  /** RAG successors as of ts (best first); null in a no-RAG copy. */
  rag: ClusterId[] | null;
  /** How often each RAG successor followed in the window (same order as rag); text prompts print them. */
  ragCounts?: number[];
  /** Set on a relabelled copy (cluster ids permuted; see relabelCopies). */
  relabelled?: true;
}


export interface TrainingSet {
  manifest: TrainingSetManifest;
  train: TrainingExample[];
  /** Early-stopping examples: transitions drawn from the same window as train (never copied into train), with their no-RAG copies. */
  val: TrainingExample[];
  holdout: TrainingExample[];
}

/** 0..n-1 in a seeded random order (Fisher-Yates). */
function shuffledIndices(n: number, rng: () => number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

/** Seeded subsample of `items` to at most `cap`, keeping their original order. */
function capped<T>(items: T[], cap: number, rng: () => number): T[] {
  if (items.length <= cap) return items;
  return shuffledIndices(items.length, rng).slice(0, cap).sort((a, b) => a - b).map((i) => items[i]!);
}

/** `e` with every cluster id mapped through `perm`. */
const relabel = (e: TrainingExample, perm: readonly ClusterId[]): TrainingExample => ({
  history: e.history.map((c) => perm[c]!),
  next: perm[e.next]!,
  ts: e.ts,
  rag: e.rag === null ? null : e.rag.map((c) => perm[c]!),
  ...(e.ragCounts ? { ragCounts: e.ragCounts } : {}),
  relabelled: true,
});

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
 * Builds a training set from the positive transitions of a window. Training transitions are capped per
 * (key, next) pair and then per key (seeded sampling); the holdout is the last `holdoutDays` of the window (longer
 * when they hold fewer than `minHoldoutTransitions`; at most `maxHoldoutShare` of it), uncapped, so it reflects real traffic. RAG slots come from `rag` as of each
 * example's own ts. A seeded `valFraction` of the kept transitions is set aside for early stopping; the rest are
 * trained on with their no-RAG copies (`ragDropout`) and relabelled copies (`relabelCopies`).
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
  const shareStart = inWindow[Math.floor(inWindow.length * (1 - config.maxHoldoutShare))]?.ts ?? end;
  const countStart = config.minHoldoutTransitions === 0 ? end : (inWindow[inWindow.length - config.minHoldoutTransitions]?.ts ?? start);
  const holdoutStart = Math.max(start, Math.min(end - config.holdoutDays * DAY_MS, countStart), shareStart);
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

  // Visit in time order (train before holdout) so a rolling RAG source only moves forward.
  let ragEmpty = 0;
  const withRag = async (t: Transition): Promise<TrainingExample> => {
    const lines = (await input.rag.topCounted(t.history, t.ts)).slice(0, input.layout.ragSlots);
    if (lines.length === 0) ragEmpty++;
    return { history: [...t.history], next: t.next, ts: t.ts, rag: lines.map((r) => r.clusterId), ...(lines.length ? { ragCounts: lines.map((r) => r.count) } : {}) };
  };
  const real: TrainingExample[] = [];
  for (const t of kept) real.push(await withRag(t));
  const holdout: TrainingExample[] = [];
  for (const t of holdoutPool) holdout.push(await withRag(t));

  const split = mulberry32(config.seed ^ 0x2545f491);
  const isVal = new Uint8Array(real.length);
  for (const i of shuffledIndices(real.length, split).slice(0, Math.floor(config.valFraction * real.length))) isVal[i] = 1;
  const dropout = mulberry32(config.seed ^ 0x5bd1e995);
  const permute = mulberry32(config.seed ^ 0x27d4eb2f);
  const train: TrainingExample[] = [];
  const val: TrainingExample[] = [];
  let ragDropped = 0;
  let relabelled = 0;
  real.forEach((e, i) => {
    const into = isVal[i] ? val : train;
    into.push(e);
    if (dropout() < config.ragDropout) {
      into.push({ ...e, rag: null });
      ragDropped++;
    }
    // Validation stays real traffic: relabelled copies are a training device only.
    if (isVal[i] || !e.rag?.length) return;
    for (let r = 0; r < config.relabelCopies; r++) {
      if (r + 1 > config.relabelCopies && permute() >= config.relabelCopies - r) break;
      train.push(relabel(e, shuffledIndices(input.layout.nClusters, permute)));
      relabelled++;
    }
  });

  const body: Omit<TrainingSetManifest, "id"> = {
    window: { start, end },
    holdoutStart,
    counts: {
      inWindow: inWindow.length,
      kept: kept.length,
      train: train.length,
      val: val.length,
      holdout: holdout.length,
      droppedByPairCap,
      droppedByKeyCap,
      ragDropped,
      relabelled,
      ragEmpty,
      keys: new Set(inWindow.map((t) => historyKey(t.history))).size,
    },
    caps: { perKey: config.perKeyCap, perPair: config.perPairCap },
    ragDropout: config.ragDropout,
    relabelCopies: config.relabelCopies,
    ragWindowDays: config.ragWindowDays,
    seed: config.seed,
    storeVersion: input.storeVersion ?? null,
    layout: { k: input.layout.k, ragSlots: input.layout.ragSlots, nClusters: input.layout.nClusters },
  };
  const id = `ts-${createHash("sha256").update(JSON.stringify(body)).update(JSON.stringify(train)).update(JSON.stringify(val)).digest("hex").slice(0, 12)}`;
  return { manifest: { id, ...body }, train, val, holdout };
}

/** Model input for one example: the prompt's token ids (core's layout) and the target cluster's token id. */
export const exampleTokens = (e: TrainingExample, layout: LayoutParams): { tokens: number[]; target: number } => ({
  tokens: promptTokens(e.history, e.rag, layout),
  target: clusterToToken(e.next),
});
