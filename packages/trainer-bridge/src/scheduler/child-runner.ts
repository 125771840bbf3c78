import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { JobError } from "../jobs/context.js";
import type { ActionRunner } from "./loop.js";

export interface ChildRunnerOptions {
  /** argv that starts the freshrec CLI, e.g. [process.execPath, "--import", "tsx", "apps/cli/src/main.ts"]. */
  cli: string[];
  storeUri: string;
  modelsDir: string;
  /** Loop config JSON file passed as --config. */
  configPath?: string;
}

/**
 * Runs each scheduler action as `freshrec jobs run ... --json` in a child process, so training never competes
 * with serving for the event loop; progress lines are forwarded to ctx.onProgress. The child publishes to the
 * registry itself; the records it reports are read back from there.
 */
export function childProcessRunner(opts: ChildRunnerOptions): ActionRunner {
  return (action, ctx) =>
    new Promise((resolve, reject) => {
      const [command, ...prefix] = opts.cli;
      const job = action.kind === "bootstrap" ? "bootstrap" : action.kind === "finetune" ? "finetune" : "refresh";
      const args = [
        ...prefix,
        "jobs", "run", job,
        "--json", "--store", opts.storeUri, "--models", opts.modelsDir, "--as-of", String(ctx.asOf), "--by", ctx.by,
        ...("rag" in action && !action.rag ? ["--no-rag"] : []),
        ...(opts.configPath ? ["--config", opts.configPath] : []),
      ];
      const child = spawn(command!, args, { stdio: ["ignore", "pipe", "pipe"] });
      let result: { artefacts?: Array<{ id: string }> } | undefined;
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      createInterface({ input: child.stdout }).on("line", (line) => {
        try {
          const msg = JSON.parse(line) as { progress?: Parameters<NonNullable<typeof ctx.onProgress>>[0]; artefacts?: Array<{ id: string }> };
          if (msg.progress) ctx.onProgress?.(msg.progress);
          else if (msg.artefacts) result = msg;
        } catch {
          /* not a JSON line */
        }
      });
      child.on("error", (err) => reject(new JobError(job, `could not start '${opts.cli.join(" ")}': ${err.message}`)));
      child.on("close", (code) => {
        // Exit 3: finished, but a candidate failed its gate (it is published as rejected).
        if ((code === 0 || code === 3) && result?.artefacts) return resolve(result.artefacts.map((a) => ctx.registry.get(a.id)));
        reject(new JobError(job, `child process exited ${code}: ${stderr.trim() || "no output"}`));
      });
    });
}
