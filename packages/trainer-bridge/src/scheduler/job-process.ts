import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { z } from "zod";
import { FreshrecError } from "@freshrec/core";
import { ArtefactKindSchema, GateResultSchema, type ArtefactRecord, type Registry } from "@freshrec/registry";
import type { ActionRunner, LoopLogger } from "./update-loop.js";

export const JOB_KINDS = ["bootstrap", "finetune", "refresh"] as const;
export const JobKindSchema = z.enum(JOB_KINDS);
export type JobKind = z.infer<typeof JobKindSchema>;

/** Exit codes of `freshrec jobs run`: the parent reads the outcome from them. */
export const JOB_EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** Finished, but a candidate failed its gate (it is published as rejected; the previous model keeps serving). */
  rejected: 3,
  /** The store is held by another writer. */
  locked: 4,
} as const;

export const JobProgressSchema = z.object({
  phase: z.string(),
  done: z.number(),
  total: z.number().optional(),
  /** NaN figures (a loss not yet known) arrive as null through JSON. */
  info: z.record(z.string(), z.union([z.number(), z.string(), z.null()])).optional(),
});
export type JobProgress = z.infer<typeof JobProgressSchema>;

export const JobResultSchema = z.object({
  job: JobKindSchema,
  asOf: z.number().int(),
  artefacts: z.array(z.object({ id: z.string(), kind: ArtefactKindSchema, status: z.string(), gate: GateResultSchema })),
});
export type JobResult = z.infer<typeof JobResultSchema>;

/** One JSON line on a job's stdout (with --json): a progress event, or the final result. */
export const JobMessageSchema = z.union([z.strictObject({ progress: JobProgressSchema }), z.strictObject({ result: JobResultSchema })]);
export type JobMessage = z.infer<typeof JobMessageSchema>;

/** Parses one stdout line of a job; undefined for lines that are not job messages (a library's stray print). */
export function parseJobMessage(line: string): JobMessage | undefined {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return undefined;
  }
  const parsed = JobMessageSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/** The line of a failed job's stderr that says why: the CLI's own one-line error, else an error line of a crash, else the last lines. */
function failureLine(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean).reverse();
  const said = lines.find((l) => l.startsWith("freshrec:")) ?? lines.find((l) => /^\w*Error\b/.test(l));
  return said ?? (lines.slice(0, 3).reverse().join(" | ") || "no output");
}

/** rejected: the job ran, but its candidate failed the quality gate and was not promoted. */
export type JobState = "running" | "succeeded" | "rejected" | "failed";

export interface JobInfo {
  id: string;
  kind: JobKind;
  state: JobState;
  startedAt: number;
  endedAt?: number;
  error?: string;
  progress?: JobProgress;
  result?: JobResult;
}

export class JobBusyError extends FreshrecError {
  constructor(readonly running: JobInfo) {
    super("job-busy", `job ${running.id} (${running.kind}) is still running; one job runs at a time`);
  }
}

export interface JobProcessesOptions {
  /** argv prefix that starts the freshrec CLI; `jobs run <kind> ...` is appended. */
  command: string[];
  storeUri: string;
  modelsDir: string;
  cwd: string;
  log: LoopLogger;
  /** Extra arguments for every job (e.g. a loop config file). */
  jobArgs?: string[];
  /** Extra environment (e.g. the writer lock's token, which lets a job write the store its parent holds). */
  env?: Record<string, string>;
  /** Finished jobs kept for listing. */
  keep?: number;
}

/**
 * Update jobs (`freshrec jobs run <kind> --json`) in child processes, so training never blocks an event loop
 * that serves. One job at a time: the cores are shared with serving. The job publishes its artefacts to the
 * registry itself; its last stdout line names them.
 */
export class JobProcesses {
  private readonly history: JobInfo[] = [];
  private child: ChildProcess | undefined;
  private seq = 0;
  private readonly listeners = new Set<(job: JobInfo, event: "start" | "progress" | "end") => void>();

  constructor(private readonly o: JobProcessesOptions) {}

  /** Follows every job's start, progress and end; returns an unsubscribe function. */
  subscribe(fn: (job: JobInfo, event: "start" | "progress" | "end") => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get running(): JobInfo | undefined {
    return this.history.find((j) => j.state === "running");
  }

  list(): JobInfo[] {
    return [...this.history];
  }

  /** Starts a job; throws JobBusyError while another one runs. */
  start(kind: JobKind, opts: { asOf?: number; args?: string[]; by?: string } = {}): JobInfo {
    const running = this.running;
    if (running) throw new JobBusyError(running);
    const job: JobInfo = { id: `job-${Date.now().toString(36)}-${++this.seq}`, kind, state: "running", startedAt: Date.now() };
    this.history.unshift(job);
    this.history.splice(this.o.keep ?? 20);
    const [cmd, ...prefix] = this.o.command;
    const args = [...prefix, "jobs", "run", kind, "--store", this.o.storeUri, "--models", this.o.modelsDir, "--json"];
    if (opts.asOf !== undefined) args.push("--as-of", String(opts.asOf));
    if (opts.by) args.push("--by", opts.by);
    args.push(...(this.o.jobArgs ?? []), ...(opts.args ?? []));
    const child = spawn(cmd!, args, { cwd: this.o.cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...this.o.env } });
    this.child = child;
    this.emit(job, "start");
    this.o.log.info({ job: job.id, kind }, `job ${kind} started`);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const msg = parseJobMessage(line);
      if (!msg) return;
      if ("progress" in msg) {
        job.progress = msg.progress;
        this.emit(job, "progress");
      } else job.result = msg.result;
    });
    let stderrTail = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString()).slice(-2000);
    });
    const finish = (code: number | null, error?: Error) => {
      if (job.state !== "running") return;
      job.endedAt = Date.now();
      job.state = error ? "failed" : code === JOB_EXIT.ok && job.result ? "succeeded" : code === JOB_EXIT.rejected && job.result ? "rejected" : "failed";
      if (job.state === "failed") job.error = error?.message ?? `exit code ${code}: ${failureLine(stderrTail)}`;
      this.child = undefined;
      const level = job.state === "failed" ? "error" : job.state === "rejected" ? "warn" : "info";
      this.o.log[level]({ job: job.id, kind, error: job.error, ms: job.endedAt - job.startedAt }, `job ${kind} ${job.state}`);
      this.emit(job, "end");
    };
    child.on("error", (err) => finish(null, err));
    child.on("exit", (code) => finish(code));
    return job;
  }

  /** Starts a job and resolves with it once it ended. */
  run(kind: JobKind, opts: { asOf?: number; args?: string[]; by?: string } = {}): Promise<JobInfo> {
    const job = this.start(kind, opts);
    return new Promise((resolve) => {
      const off = this.subscribe((j, event) => {
        if (j !== job || event !== "end") return;
        off();
        resolve(job);
      });
    });
  }

  /** The update loop's runner: each action as a job process; resolves with the artefacts it registered. */
  actionRunner(registry: Registry): ActionRunner {
    return async (action, ctx) => {
      const args = action.kind !== "finetune" && !action.rag ? ["--no-rag"] : [];
      const job = await this.run(action.kind, { asOf: ctx.asOf, args, by: ctx.by });
      if (job.state === "failed" || !job.result) throw new FreshrecError("job-failed", `${action.kind} job ${job.id} failed: ${job.error ?? "no result"}`);
      return job.result.artefacts.map((a): ArtefactRecord => registry.get(a.id));
    };
  }

  /** Stops the running job (SIGTERM) and resolves once it exited; a killed job publishes nothing. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  }

  private emit(job: JobInfo, event: "start" | "progress" | "end"): void {
    for (const fn of this.listeners) fn(job, event);
  }
}
