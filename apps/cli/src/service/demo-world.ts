/**
 * The demo's two pieces beside the production service: the synthetic world as an event source and a simulated
 * clock. Both persist in `<models>/demo-state.json`; the store carries a marker (`demo-world.json`) so that the
 * demo never streams synthetic events into a store it did not create.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { DAY_MS, FreshrecError, SYNTHETIC_SIZES, type Event, type SyntheticWorld } from "@freshrec/core";
import type { Store } from "@freshrec/retriever";
import { writeFileAtomic } from "@freshrec/registry";
import type { Clock, EventSource } from "@freshrec/trainer-bridge";

export const DemoStateSchema = z.strictObject({
  size: z.enum(SYNTHETIC_SIZES),
  /** Simulated time reached: every world event before it is in the store. */
  now: z.number().int(),
});
export type DemoState = z.infer<typeof DemoStateSchema>;

const StoreMarkerSchema = z.strictObject({ demo: z.literal(true), size: z.enum(SYNTHETIC_SIZES), createdAt: z.number().int() });

export const demoStateFile = (modelsDir: string) => join(modelsDir, "demo-state.json");
const markerFile = (storeUri: string) => join(storeUri, "demo-world.json");

function readJson<T>(schema: z.ZodType<T>, file: string): T | null {
  if (!existsSync(file)) return null;
  const parsed = schema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!parsed.success) throw new FreshrecError("config", `${file}: unexpected content (${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")})`);
  return parsed.data;
}

export const readDemoState = (modelsDir: string): DemoState | null => readJson(DemoStateSchema, demoStateFile(modelsDir));
export const saveDemoState = (modelsDir: string, state: DemoState): void => writeFileAtomic(demoStateFile(modelsDir), JSON.stringify(state));

/**
 * Claims a store for the demo: an empty store gets the world's clusters, items and the marker; a store that
 * already holds data must carry the marker of the same world, else the demo refuses to touch it.
 */
export async function claimDemoStore(store: Store, storeUri: string, world: SyntheticWorld, size: DemoState["size"]): Promise<"seeded" | "resumed"> {
  const marker = readJson(StoreMarkerSchema, markerFile(storeUri));
  if (marker) {
    if (marker.size !== size) throw new FreshrecError("usage", `store ${storeUri} holds the demo's '${marker.size}' world, not '${size}': pass --size ${marker.size} or another --store`);
    await assertSameWorld(store, storeUri, world);
    return "resumed";
  }
  const [clusters, range] = await Promise.all([store.clusters(), store.timeRange()]);
  if (clusters.length > 0 || range)
    throw new FreshrecError("usage", `store ${storeUri} holds data the demo did not create: the demo streams synthetic events only into its own store. Use --store with a new folder, or 'freshrec serve' to serve this data.`);
  await store.putClusters(world.clusters);
  await store.putItems(world.items.map((i) => ({ itemId: i.itemId, clusterId: i.clusterId! })));
  writeFileAtomic(markerFile(storeUri), JSON.stringify({ demo: true, size, createdAt: Date.now() }));
  return "seeded";
}

/** Positive engagements as comparable strings, sorted (the store keeps cluster ids, not item ids). */
const positiveKeys = (events: Iterable<{ userId: string; clusterId: number; ts: number }>) => [...events].map((e) => `${e.userId}|${e.clusterId}|${e.ts}`).sort();

/**
 * A store seeded by another version of the synthetic world (its code changed since) must not be resumed: the demo
 * would stream the new world's events after the old one's, and models would be trained and gated on data no
 * current world produces. The first simulated day identifies the world: the store must hold exactly its events.
 */
async function assertSameWorld(store: Store, storeUri: string, world: SyntheticWorld): Promise<void> {
  const range = await store.timeRange();
  if (!range) return;
  const end = Math.min(world.startMs + DAY_MS, range.max + 1);
  const expected: Array<{ userId: string; clusterId: number; ts: number }> = [];
  const clusterOf = new Map(world.items.map((i) => [i.itemId, i.clusterId!]));
  for (const e of world.events()) {
    if (e.ts >= end) break;
    // The world's signals are 4..5 (positive) or at most 2.5, so any positive threshold in between splits them alike.
    if (e.signal >= 4) expected.push({ userId: e.userId, clusterId: clusterOf.get(e.itemId)!, ts: e.ts });
  }
  const stored = positiveKeys(await store.positiveEvents({ start: world.startMs, end }));
  const want = positiveKeys(expected);
  const wanted = new Set(want);
  const differing = stored.filter((k) => !wanted.has(k)).length + Math.max(0, want.length - stored.length);
  if (differing > 0)
    throw new FreshrecError(
      "usage",
      `store ${storeUri} holds a demo world this version of freshrec does not generate (${differing} of the first day's ${want.length} positive events differ: the synthetic world changed since it was seeded): delete it and its models folder, or pass another --store and --models`,
    );
}

/** The simulated clock: stands still until the demo advances it (never while a job runs: steps do not overlap). */
export class SimulatedClock implements Clock {
  constructor(private t: number) {}
  now(): number {
    return this.t;
  }
  advanceTo(t: number): void {
    if (t > this.t) this.t = t;
  }
}

/** Streams the world's events into the store up to the clock, in batches (each store write is a LanceDB version). */
export class WorldSource implements EventSource {
  private readonly stream: Generator<Event>;
  private peeked: Event | undefined;

  constructor(
    world: SyntheticWorld,
    private readonly store: Store,
    /** Events before this are already stored (a restart): skipped, not ingested again. */
    resumeAt: number,
    private readonly onIngest: (events: Event[]) => void,
    private readonly batchSize = 20_000,
  ) {
    this.stream = world.events();
    for (let e = this.peek(); e && e.ts < resumeAt; e = this.peek()) this.peeked = undefined;
  }

  async syncTo(t: number): Promise<number> {
    let total = 0;
    let batch: Event[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      await this.store.ingest(batch);
      this.onIngest(batch);
      total += batch.length;
      batch = [];
    };
    for (let e = this.peek(); e && e.ts < t; e = this.peek()) {
      this.peeked = undefined;
      batch.push(e);
      if (batch.length >= this.batchSize) await flush();
    }
    await flush();
    return total;
  }

  private peek(): Event | undefined {
    this.peeked ??= this.stream.next().value ?? undefined;
    return this.peeked;
  }
}
