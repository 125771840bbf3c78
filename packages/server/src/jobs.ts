import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Logger } from "pino";
import { conflict } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";

export type JobKind = "finetune" | "refresh" | "bootstrap";
/** rejected: the job ran, but its candidate failed the quality gate and was not promoted (exit code 3). */
export type JobState = "running" | "succeeded" | "rejected" | "failed";

export interface JobInfo {
  id: string;
  kind: JobKind;
  state: JobState;
  startedAt: number;
  endedAt?: number;
  error?: string;
  /** Last progress event the job printed (`{"progress": {...}}` JSON lines on stdout with --json). */
  progress?: { phase: string; done: number; total?: number; info?: Record<string, number | string> };
  /** The job's final JSON line (artefacts and their gate results). */
  result?: Record<string, unknown>;
}

/**
 * Runs update jobs (`freshrec jobs run <kind>`) in a child process so that training never blocks the
 * serving event loop. One job at a time: the machine's cores are shared with serving. The job writes its
 * artefacts to the registry; the server picks them up through the registry watch.
 */
export class JobRunner {
  private readonly history: JobInfo[] = [];
  private child: ChildProcess | undefined;
  private seq = 0;

  constructor(
    private readonly o: {
      command: string[];
      storeUri: string;
      modelsDir: string;
      cwd: string;
      log: Logger;
      metrics: ServerMetrics;
      /** Extra arguments for every job (e.g. a loop config file). */
      jobArgs?: string[];
      keep?: number;
    },
  ) {}

  private readonly listeners = new Set<(job: JobInfo, event: "progress" | "end") => void>();

  /** Follows every job's progress lines and its end; returns an unsubscribe function. */
  subscribe(fn: (job: JobInfo, event: "progress" | "end") => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get running(): JobInfo | undefined {
    return this.history.find((j) => j.state === "running");
  }

  list(): JobInfo[] {
    return [...this.history];
  }

  start(kind: JobKind, opts: { asOf?: number; args?: string[] } = {}): JobInfo {
    const running = this.running;
    if (running) throw conflict(`job ${running.id} (${running.kind}) is still running; one job runs at a time`);
    const job: JobInfo = { id: `job-${Date.now().toString(36)}-${++this.seq}`, kind, state: "running", startedAt: Date.now() };
    this.history.unshift(job);
    this.history.splice(this.o.keep ?? 20);
    const [cmd, ...prefix] = this.o.command;
    const args = [...prefix, "jobs", "run", kind, "--store", this.o.storeUri, "--models", this.o.modelsDir, "--json"];
    if (opts.asOf !== undefined) args.push("--as-of", String(opts.asOf));
    args.push(...(this.o.jobArgs ?? []), ...(opts.args ?? []));
    const child = spawn(cmd!, args, { cwd: this.o.cwd, stdio: ["ignore", "pipe", "pipe"], env: process.env });
    this.child = child;
    this.publish();
    this.o.log.info({ job: job.id, kind }, `job ${kind} started`);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.o.log.debug({ job: job.id, line }, "job output");
        return;
      }
      if (parsed.progress && typeof parsed.progress === "object") {
        job.progress = parsed.progress as JobInfo["progress"];
        for (const fn of this.listeners) fn(job, "progress");
      } else job.result = parsed;
    });
    let stderrTail = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString()).slice(-2000);
    });
    const finish = (code: number | null, error?: Error) => {
      if (job.state !== "running") return;
      job.endedAt = Date.now();
      job.state = error ? "failed" : code === 0 ? "succeeded" : code === 3 ? "rejected" : "failed";
      if (job.state === "failed") job.error = error?.message ?? `exit code ${code}: ${stderrTail.trim().split("\n").slice(-3).join(" | ")}`;
      this.child = undefined;
      this.publish();
      this.o.log[job.state === "failed" ? "error" : job.state === "rejected" ? "warn" : "info"]({ job: job.id, kind, error: job.error, ms: job.endedAt - job.startedAt }, `job ${kind} ${job.state}`);
      for (const fn of this.listeners) fn(job, "end");
    };
    child.on("error", (err) => finish(null, err));
    child.on("exit", (code) => finish(code));
    return job;
  }

  /** Starts a job and resolves with it once it ended (succeeded or failed). */
  run(kind: JobKind, opts: { asOf?: number; args?: string[] } = {}): Promise<JobInfo> {
    const job = this.start(kind, opts);
    return new Promise((resolve) => {
      const off = this.subscribe((j, event) => {
        if (j !== job || event !== "end") return;
        off();
        resolve(job);
      });
    });
  }

  /** Resolves when no job is running (used on shutdown, after `stop`). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  }

  private publish(): void {
    this.o.metrics.jobs.reset();
    const counts = new Map<string, number>();
    for (const j of this.history) counts.set(`${j.kind}|${j.state}`, (counts.get(`${j.kind}|${j.state}`) ?? 0) + 1);
    for (const [key, n] of counts) {
      const [kind, state] = key.split("|");
      this.o.metrics.jobs.set({ kind: kind!, state: state! }, n);
    }
  }
}
