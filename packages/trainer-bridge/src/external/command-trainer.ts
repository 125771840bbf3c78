import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { createInterface } from "node:readline";
import { FreshrecError } from "@freshrec/core";
import type { Trainer } from "../jobs/ports.js";

export class ExternalTrainerError extends FreshrecError {
  constructor(message: string) {
    super("external-trainer", message);
  }
}

const STDERR_TAIL = 2_000;

/**
 * A trainer backend that runs a user-configured command for adapters (contract in external/README.md):
 * inputs arrive as FRESHREC_* environment variables, the adapter GGUF must appear at FRESHREC_ADAPTER_OUT.
 * Bases are still pretrained by `base` (normally the native trainer). The jobs validate and gate the adapter
 * like any other.
 */
export function externalTrainer(argv: readonly string[], base: Trainer): Trainer {
  const [command, ...args] = argv;
  if (!command) throw new ExternalTrainerError("external trainer: empty command");
  return {
    name: `external:${basename(command)}`,
    pretrainBase: (input) => base.pretrainBase(input),
    trainAdapter(i) {
      const env = {
        ...process.env,
        FRESHREC_TRAIN_JSONL: i.examplesJsonl,
        FRESHREC_BASE_MODEL: i.basePath,
        FRESHREC_ADAPTER_OUT: i.outPath,
        FRESHREC_ADAPTER_ID: i.adapterId,
        FRESHREC_LAYOUT: JSON.stringify(i.layout),
        FRESHREC_HYPERPARAMS: JSON.stringify(i.hyper),
        FRESHREC_SEED: String(i.seed),
        ...(i.warmStartPath ? { FRESHREC_WARM_START: i.warmStartPath } : {}),
      };
      return new Promise<void>((resolve, reject) => {
        const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => {
          stderr = (stderr + d.toString()).slice(-STDERR_TAIL);
        });
        // Progress: stdout lines that are JSON objects with a phase and a done count; anything else is ignored.
        createInterface({ input: child.stdout }).on("line", (line) => {
          try {
            const e = JSON.parse(line) as { phase?: unknown; done?: unknown; total?: unknown };
            if (typeof e.phase === "string" && typeof e.done === "number")
              i.onProgress?.({ phase: e.phase, done: e.done, ...(typeof e.total === "number" ? { total: e.total } : {}) });
          } catch {
            /* plain log line */
          }
        });
        child.on("error", (err) => reject(new ExternalTrainerError(`external trainer '${command}' could not start: ${err.message}`)));
        child.on("close", (code, signal) => {
          if (code !== 0) return reject(new ExternalTrainerError(`external trainer '${argv.join(" ")}' failed (${signal ?? `exit ${code}`}): ${stderr.trim() || "no stderr"}`));
          if (!existsSync(i.outPath)) return reject(new ExternalTrainerError(`external trainer '${argv.join(" ")}' exited 0 but wrote no adapter at FRESHREC_ADAPTER_OUT=${i.outPath}`));
          resolve();
        });
      });
    },
  };
}
