import { z } from "zod";

/** Knobs of the synthetic platform. Every random choice derives from `seed`. */
export const SyntheticConfigSchema = z.object({
  seed: z.number().int(),
  users: z.number().int().positive(),
  /** Clusters in total, including those that appear later. */
  clusters: z.number().int().min(4),
  /** How many of the clusters appear during the simulated period rather than at its start. */
  newClusters: z.number().int().nonnegative(),
  itemsPerCluster: z.number().int().positive(),
  days: z.number().int().positive(),
  /** Simulated time of day 0, ms since the epoch. */
  startMs: z.number().int().nonnegative(),
  /** Mean probability that a user has a session on a given day (users differ around it). */
  activity: z.number().gt(0).max(1),
  /** Mean events per session. */
  sessionEvents: z.number().min(1),
  /** Probability that the next positive engagement stays in the current cluster. */
  stay: z.number().min(0).max(1),
  /** Probability that it goes back to the older cluster of the history instead. */
  revisit: z.number().min(0).max(1),
  /** Share of events that are negative engagement (signal below 4). */
  negativeRate: z.number().min(0).max(1),
  /** Scales trend arrival rate and strength; 0 makes the transition model stationary (apart from new clusters). */
  drift: z.number().min(0),
  /** Trends starting per day at drift 1. */
  trendsPerDay: z.number().min(0),
  /** Peak logit boost of a trend at drift 1. */
  trendStrength: z.number().min(0),
  trendRiseDays: z.number().positive(),
  trendDecayDays: z.number().positive(),
  /** Share of trends that lift a cluster for every history (the rest lift it after one source cluster). */
  globalTrendShare: z.number().min(0).max(1),
  /** Spread of per-history preferences (logit noise per (history, next)): larger = more distinct keys. */
  pairNoise: z.number().min(0),
  /** Logit boost from cluster a to cluster b per keyword they share (0: affinities ignore descriptions). */
  keywordAffinity: z.number().min(0),
  /** History length k. */
  k: z.number().int().min(1).max(4),
  /** Acceptance of a recommendation whose ground-truth probability is high (see acceptProbability). */
  maxAccept: z.number().gt(0).max(1),
});
export type SyntheticConfig = z.infer<typeof SyntheticConfigSchema>;

export type SyntheticSize = "tiny" | "default" | "large";
export const SYNTHETIC_SIZES: readonly SyntheticSize[] = ["tiny", "default", "large"];

const BASE: Omit<SyntheticConfig, "users" | "clusters" | "newClusters" | "itemsPerCluster" | "days"> = {
  seed: 7,
  startMs: Date.UTC(2024, 0, 1),
  activity: 0.3,
  sessionEvents: 3,
  stay: 0.35,
  revisit: 0.1,
  negativeRate: 0.12,
  drift: 1,
  trendsPerDay: 2.5,
  trendStrength: 4,
  trendRiseDays: 4,
  trendDecayDays: 10,
  globalTrendShare: 0.3,
  pairNoise: 0.8,
  keywordAffinity: 1.5,
  k: 2,
  maxAccept: 0.6,
};

/** tiny: tests (a few thousand events); default: the demo (a few hundred thousand over 120 days); large: benchmarks (over 5 million). */
export const SYNTHETIC_PRESETS: Record<SyntheticSize, SyntheticConfig> = {
  tiny: { ...BASE, users: 150, clusters: 20, newClusters: 2, itemsPerCluster: 10, days: 30 },
  default: { ...BASE, users: 3000, clusters: 64, newClusters: 8, itemsPerCluster: 50, days: 120 },
  large: { ...BASE, users: 45_000, clusters: 128, newClusters: 16, itemsPerCluster: 100, days: 180 },
};
