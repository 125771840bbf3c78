import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { FreshrecError } from "@freshrec/core";
import type { AdapterInput, TextAdapterInput, Trainer } from "../jobs/ports.js";
import type { ProgressFn } from "../native/trainer.js";

export class ExternalTrainerError extends FreshrecError {
  constructor(message: string) {
    super("external-trainer", message);
  }
}

const STDERR_TAIL = 2_000;

/** Runs the command with `env` added; resolves once it exited 0 having written `outPath`. */
function runContract(argv: readonly string[], env: Record<string, string>, outPath: string, onProgress: ProgressFn | undefined): Promise<void> {
  const [command, ...args] = argv as [string, ...string[]];
  return new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-STDERR_TAIL);
    });
    // Progress: stdout lines that are JSON objects with a phase and a done count; anything else is ignored.
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        const e = JSON.parse(line) as { phase?: unknown; done?: unknown; total?: unknown };
        if (typeof e.phase === "string" && typeof e.done === "number") onProgress?.({ phase: e.phase, done: e.done, ...(typeof e.total === "number" ? { total: e.total } : {}) });
      } catch {
        /* plain log line */
      }
    });
    child.on("error", (err) => reject(new ExternalTrainerError(`external trainer '${command}' could not start: ${err.message}`)));
    child.on("close", (code, signal) => {
      if (code !== 0) return reject(new ExternalTrainerError(`external trainer '${argv.join(" ")}' failed (${signal ?? `exit ${code}`}): ${stderr.trim() || "no stderr"}`));
      if (!existsSync(outPath)) return reject(new ExternalTrainerError(`external trainer '${argv.join(" ")}' exited 0 but wrote no adapter at FRESHREC_ADAPTER_OUT=${outPath}`));
      resolve();
    });
  });
}

/** What both kinds pass: the base, where the adapter goes and its id, the loop's hyperparameters, seed, warm start. */
const commonEnv = (i: TextAdapterInput | AdapterInput): Record<string, string> => ({
  FRESHREC_BASE_MODEL: i.basePath,
  FRESHREC_ADAPTER_OUT: i.outPath,
  FRESHREC_ADAPTER_ID: i.adapterId,
  FRESHREC_HYPERPARAMS: JSON.stringify(i.hyper),
  FRESHREC_SEED: String(i.seed),
  ...(i.warmStartPath ? { FRESHREC_WARM_START: i.warmStartPath } : {}),
});

/**
 * A trainer backend that runs a user-configured command for adapters (contract in external/README.md):
 * inputs arrive as FRESHREC_* environment variables, the adapter GGUF must appear at FRESHREC_ADAPTER_OUT.
 * Bases are still trained by `base` (normally the native trainer): cluster-token pretraining and freshrec's own small
 * text base (text.trainBase). A text base of any architecture gets its adapters from the command
 * (FRESHREC_MODEL_KIND=text, prompt and answer token ids per line). The jobs gate the adapter like any other.
 */
export function externalTrainer(argv: readonly string[], base: Trainer): Trainer {
  const [command] = argv;
  if (!command) throw new ExternalTrainerError("external trainer: empty command");
  return {
    name: `external:${basename(command)}`,
    pretrainBase: (input) => base.pretrainBase(input),
    ...(base.trainTextBase ? { trainTextBase: base.trainTextBase.bind(base) } : {}),
    trainAdapter(i) {
      const env = { ...commonEnv(i), FRESHREC_MODEL_KIND: "cluster-token", FRESHREC_TRAIN_JSONL: i.examplesJsonl, FRESHREC_LAYOUT: JSON.stringify(i.layout) };
      return runContract(argv, env, i.outPath, i.onProgress);
    },
    trainTextAdapter(i) {
      // Beside the adapter in its staging folder: the registry sweeps it with the rest of a failed or published stage.
      const jsonl = join(dirname(i.outPath), "train-text.jsonl");
      const val = join(dirname(i.outPath), "val-text.jsonl");
      const lines = (xs: TextAdapterInput["examples"]) => xs.map((e) => `${JSON.stringify({ prompt: e.prompt, answer: e.answer })}\n`).join("");
      writeFileSync(jsonl, lines(i.examples));
      writeFileSync(val, lines(i.valExamples));
      const env = { ...commonEnv(i), FRESHREC_MODEL_KIND: "text", FRESHREC_TRAIN_JSONL: jsonl, FRESHREC_VAL_JSONL: val };
      return runContract(argv, env, i.outPath, i.onProgress);
    },
  };
}
