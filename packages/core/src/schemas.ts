import { z } from "zod";
import { ValidationError, issuesFromZod } from "./errors.js";

/** Cluster ids are dense non-negative integers 0..C-1; token ids derive from them (see model/layout.ts). */
export const ClusterIdSchema = z.number().int().nonnegative();
export type ClusterId = z.infer<typeof ClusterIdSchema>;

/** The latest instant a JS Date can hold (year 275760): a timestamp past it is garbage, not a time. */
export const MAX_TIMESTAMP_MS = 8.64e15;

/** Timestamps are integer milliseconds since the Unix epoch (simulated time uses the same unit). */
export const TimestampSchema = z.number().int().nonnegative().max(MAX_TIMESTAMP_MS, { message: `must be at most ${MAX_TIMESTAMP_MS} ms (the latest time a Date can hold)`, abort: true });

export const EventSchema = z.object({
  eventId: z.string().min(1).max(256),
  userId: z.string().min(1).max(256),
  itemId: z.string().min(1).max(256),
  ts: TimestampSchema,
  /** Engagement strength; positive engagement is signal >= a configured threshold. */
  signal: z.number().finite(),
});
export type Event = z.infer<typeof EventSchema>;

export const ItemFeaturesSchema = z.object({
  /** Categorical fields, e.g. { genre: ["Drama", "War"], decade: "1990s" }. */
  categorical: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
  /** Free-text tags. */
  tags: z.array(z.string()).default([]),
});
export type ItemFeatures = z.infer<typeof ItemFeaturesSchema>;

export const ItemSchema = z
  .object({
    itemId: z.string().min(1).max(256),
    clusterId: ClusterIdSchema.optional(),
    features: ItemFeaturesSchema.optional(),
    title: z.string().optional(),
  })
  .refine((item) => item.clusterId !== undefined || item.features !== undefined, {
    message: "an item needs a clusterId or features",
    path: ["clusterId"],
  });
export type Item = z.infer<typeof ItemSchema>;

export const ClusterSchema = z.object({
  id: ClusterIdSchema,
  keywords: z.array(z.string().min(1)).min(1),
  centroid: z.array(z.number().finite()).optional(),
});
export type Cluster = z.infer<typeof ClusterSchema>;

/** A user's last k distinct clusters (oldest first) followed by a novel next cluster. */
export const TransitionSchema = z.object({
  userId: z.string().optional(),
  history: z.array(ClusterIdSchema).min(1),
  next: ClusterIdSchema,
  ts: TimestampSchema,
});
export type Transition = z.infer<typeof TransitionSchema>;

/** Parses or throws a ValidationError naming `where` (e.g. "ratings.csv:17" or "POST /v1/events") and each bad field. */
export function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown, where: string): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(where, issuesFromZod(result.error, input));
  return result.data;
}
