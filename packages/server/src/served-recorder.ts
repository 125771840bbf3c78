import type { Logger } from "pino";
import { mulberry32 } from "@freshrec/core";
import type { ServedAnswer } from "@freshrec/retriever";
import type { ServerConfig } from "./config.js";
import type { ServerMetrics } from "./metrics.js";
import type { StorePort } from "./ports.js";

/**
 * Records served answers off the request path: `record` only samples and pushes onto an in-memory buffer.
 * On the writer a timer appends the buffer to the store's served-answers table in one batch; when the buffer
 * is full new answers are dropped and counted (a slow store must not grow the heap or slow answers). A replica
 * opens the store read-only: it keeps its latest answers in the buffer (the older half forgotten when it is full) and its own
 * /v1/quality reports on them; its traffic does not reach the writer's figures.
 *
 * Repeats are merged as they arrive: an answer equal to the user's latest buffered one, in the same repeat window,
 * only raises that row's `served` count. What it does not merge (a window cut by a flush, answers alternating
 * within a window) `mergeExposures` joins on read, which defines an exposure.
 */
const PRUNE_EVERY_MS = 3_600_000;

export class ServedAnswerRecorder {
  private buffer: ServedAnswer[] = [];
  /** Each user's latest row in the buffer, for merging repeats (emptied with the buffer). */
  private latest = new Map<string, ServedAnswer>();
  /** Outcomes counted here and added to the Prometheus counter on each timer tick: a labelled inc per answer costs more than the recording itself. */
  private readonly counts = { recorded: 0, repeated: 0, sampled_out: 0, dropped: 0, forgotten: 0 };
  private readonly draw: () => number;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: {
      settings: ServerConfig["recording"];
      /** The writer's store; absent on replicas (nothing is persisted). */
      sink?: Pick<StorePort, "servedAnswers">;
      metrics: ServerMetrics;
      log: Logger;
    },
  ) {
    this.draw = mulberry32(o.settings.seed);
  }

  record(answer: ServedAnswer): void {
    const { enabled, sampleRate, bufferSize, repeatWindowMs } = this.o.settings;
    if (!enabled) return;
    if (sampleRate < 1 && this.draw() >= sampleRate) {
      this.counts.sampled_out++;
      return;
    }
    const last = this.latest.get(answer.userId);
    if (last && repeatWindowMs > 0 && sameExposure(last, answer, repeatWindowMs)) {
      last.served += answer.served;
      this.counts.repeated++;
      return;
    }
    if (this.buffer.length >= bufferSize) {
      if (this.o.sink) {
        this.counts.dropped++;
        return;
      }
      // A replica forgets its older half at once (amortised O(1) per answer, unlike a shift per answer).
      const forget = Math.ceil(bufferSize / 2);
      this.buffer = this.buffer.slice(forget);
      this.latest = new Map();
      this.counts.forgotten += forget;
    }
    this.buffer.push(answer);
    this.latest.set(answer.userId, answer);
    this.counts.recorded++;
  }

  /** Adds the outcomes counted since the last call to freshrec_served_answers_total. */
  publishCounts(): void {
    for (const outcome of Object.keys(this.counts) as Array<keyof typeof this.counts>) {
      if (this.counts[outcome] > 0) this.o.metrics.servedAnswers.inc({ outcome }, this.counts[outcome]);
      this.counts[outcome] = 0;
    }
  }

  /** Answers not in the store (yet, on the writer; ever, on a replica). */
  pending(): readonly ServedAnswer[] {
    return this.buffer;
  }

  /**
   * Runs `read` between flushes, with the answers not yet stored: every recorded answer is then either in the
   * store as `read` sees it or in `pending`, never in both or neither (a batch being appended is in flight).
   */
  between<T>(read: (pending: readonly ServedAnswer[]) => Promise<T>): Promise<T> {
    const run = this.flushing.then(() => read(this.buffer.slice()));
    this.flushing = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Appends what is buffered to the store (writer only); a failed batch is counted, logged and dropped. */
  flush(): Promise<void> {
    const sink = this.o.sink;
    if (!sink) return this.flushing;
    this.flushing = this.flushing.then(async () => {
      // Taken when its turn comes, not when called: until then the answers stay visible as pending.
      const batch = this.buffer;
      if (batch.length === 0) return;
      this.buffer = [];
      this.latest = new Map();
      try {
        await sink.servedAnswers.append(batch);
        this.o.metrics.servedAnswers.inc({ outcome: "stored" }, batch.length);
      } catch (err) {
        this.o.metrics.servedAnswers.inc({ outcome: "store_failed" }, batch.length);
        this.o.log.error({ err, answers: batch.length }, "storing served answers failed; this batch is lost to the online quality figures");
      }
    });
    return this.flushing;
  }

  /** Every flushEveryMs: publishes the counts and, on the writer, flushes and (hourly) prunes answers past `recording.retentionMs` of the serving clock. */
  start(clock: () => number): void {
    if (!this.o.settings.enabled || this.timer) return;
    const sink = this.o.sink;
    let prunedAt = -Infinity;
    this.timer = setInterval(() => {
      this.publishCounts();
      void this.flush();
      if (!sink || performance.now() - prunedAt < PRUNE_EVERY_MS) return;
      prunedAt = performance.now();
      this.flushing = this.flushing.then(() =>
        sink.servedAnswers.prune(clock() - this.o.settings.retentionMs).catch((err: unknown) => this.o.log.warn({ err }, "pruning old served answers failed; retrying in an hour")),
      );
    }, this.o.settings.flushEveryMs);
    this.timer.unref();
  }

  /** Stops the timer and stores what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.publishCounts();
    await this.flush();
  }
}

/** Whether `b` repeats `a`: the same answer to the same user (same artefacts, mode and arm) in the same repeat window. */
function sameExposure(a: ServedAnswer, b: ServedAnswer, repeatWindowMs: number): boolean {
  if (a.userId !== b.userId || a.mode !== b.mode || a.tableId !== b.tableId || a.adapterId !== b.adapterId || a.baseId !== b.baseId || a.arm !== b.arm) return false;
  if (Math.floor(a.ts / repeatWindowMs) !== Math.floor(b.ts / repeatWindowMs) || a.clusters.length !== b.clusters.length) return false;
  for (let i = 0; i < a.clusters.length; i++) if (a.clusters[i] !== b.clusters[i]) return false;
  return true;
}

/**
 * Joins the rows of one exposure that a flush split in two (or that a replica and the buffer both hold): rows of the
 * same user, answer and repeat window become one, at the earliest time, with their counts summed.
 */
export function mergeExposures(rows: readonly ServedAnswer[], repeatWindowMs: number): ServedAnswer[] {
  if (repeatWindowMs === 0) return [...rows];
  const byKey = new Map<string, ServedAnswer>();
  for (const r of rows) {
    const key = `${r.userId}\u0000${Math.floor(r.ts / repeatWindowMs)}\u0000${r.mode}\u0000${r.tableId}\u0000${r.adapterId}\u0000${r.baseId}\u0000${r.arm}\u0000${r.clusters.join(",")}`;
    const seen = byKey.get(key);
    if (!seen) byKey.set(key, { ...r });
    else {
      seen.served += r.served;
      seen.ts = Math.min(seen.ts, r.ts);
    }
  }
  return [...byKey.values()];
}
