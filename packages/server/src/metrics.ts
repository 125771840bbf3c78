import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Prometheus metrics of one server instance (own registry, so tests can run several servers in a process). */
export class ServerMetrics {
  readonly registry = new Registry();

  readonly requestSeconds = new Histogram({
    name: "freshrec_http_request_duration_seconds",
    help: "HTTP request latency by route, serving mode and status",
    labelNames: ["method", "route", "mode", "status"] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });

  readonly swaps = new Counter({
    name: "freshrec_swaps_total",
    help: "Model and table swaps by what was swapped and outcome",
    labelNames: ["what", "outcome"] as const,
    registers: [this.registry],
  });

  readonly activeModel = new Gauge({
    name: "freshrec_active_model_info",
    help: "Lineage of the artefacts being served (value 1 on the active label set)",
    labelNames: ["base_id", "adapter_id", "table_id", "snapshot_id"] as const,
    registers: [this.registry],
  });

  readonly jobs = new Gauge({
    name: "freshrec_job_state",
    help: "Background jobs by kind and state (count)",
    labelNames: ["kind", "state"] as const,
    registers: [this.registry],
  });

  readonly ingested = new Counter({
    name: "freshrec_ingested_events_total",
    help: "Events received on POST /v1/events by outcome",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly ingestLagSeconds = new Gauge({
    name: "freshrec_ingest_lag_seconds",
    help: "Server clock minus the newest event time made durable (how far the store trails the clock)",
    registers: [this.registry],
  });

  readonly tableFallbacks = new Counter({
    name: "freshrec_table_fallbacks_total",
    help: "Table-mode requests whose history key was missing from the table and were scored live",
    registers: [this.registry],
  });

  readonly loopDecisions = new Counter({
    name: "freshrec_loop_decisions_total",
    help: "Update-loop decisions (bootstrap, finetune, refresh) by outcome",
    labelNames: ["action", "outcome"] as const,
    registers: [this.registry],
  });

  readonly loopFailures = new Gauge({
    name: "freshrec_loop_consecutive_failures",
    help: "Update jobs failed in a row (0 after a success); serving continues on the last good model meanwhile",
    registers: [this.registry],
  });

  readonly servedAnswers = new Counter({
    name: "freshrec_served_answers_total",
    help: "Served user answers by what became of their record: recorded (a new exposure), repeated (merged into the same user's identical answer in its repeat window), sampled_out, dropped (buffer full), forgotten (replica), stored, store_failed",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly onlineHitRate = new Gauge({
    name: "freshrec_online_hit_rate",
    help: "Share of settled served answers whose top-1 (at=top1) or any top-k cluster (at=topk) the user engaged with within the quality horizon",
    labelNames: ["table_id", "adapter_id", "mode", "arm", "at"] as const,
    registers: [this.registry],
  });

  readonly onlineSettledAnswers = new Gauge({
    name: "freshrec_online_settled_answers",
    help: "Served answers whose quality horizon has passed, in the quality window, by what answered",
    labelNames: ["table_id", "adapter_id", "mode", "arm"] as const,
    registers: [this.registry],
  });

  readonly ready = new Gauge({ name: "freshrec_ready", help: "1 once a model and a table are loaded", registers: [this.registry] });

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "freshrec_" });
  }

  /** Counts the listed jobs by kind and state. */
  setJobs(jobs: ReadonlyArray<{ kind: string; state: string }>): void {
    this.jobs.reset();
    const counts = new Map<string, { kind: string; state: string; n: number }>();
    for (const j of jobs) {
      const key = `${j.kind}|${j.state}`;
      const c = counts.get(key) ?? { kind: j.kind, state: j.state, n: 0 };
      c.n++;
      counts.set(key, c);
    }
    for (const c of counts.values()) this.jobs.set({ kind: c.kind, state: c.state }, c.n);
  }

  setActive(lineage: { baseId: string | null; adapterId: string | null; tableId: string | null; snapshotId: string | null }): void {
    this.activeModel.reset();
    this.activeModel.set(
      { base_id: lineage.baseId ?? "", adapter_id: lineage.adapterId ?? "", table_id: lineage.tableId ?? "", snapshot_id: lineage.snapshotId ?? "" },
      1,
    );
  }
}
