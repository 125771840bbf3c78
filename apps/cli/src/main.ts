#!/usr/bin/env -S npx tsx
/**
 * The `freshrec` command. Each command lives in commands/<name>.ts (or commands/<name>-<sub>.ts for
 * `freshrec <name> <sub>`) and exports `run(args: string[]): Promise<number>` plus a one-line `summary`.
 */
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { FreshrecError } from "@freshrec/core";
import { JOB_EXIT } from "@freshrec/trainer-bridge";

/** Exit codes of failures a caller may act on (the rest exit 1). */
const EXIT_BY_CODE: Record<string, number> = { usage: JOB_EXIT.usage, "store-locked": JOB_EXIT.locked };

export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), "commands");
const available = () => readdirSync(commandsDir).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3)).sort();

async function load(name: string): Promise<Command> {
  return (await import(join(commandsDir, `${name}.ts`))) as Command;
}

async function usage(): Promise<void> {
  const lines = await Promise.all(available().map(async (n) => `  ${n.replace("-", " ").padEnd(22)} ${(await load(n)).summary}`));
  console.log(`usage: freshrec <command> [options]\n\ncommands:\n${lines.join("\n")}\n\nRun 'freshrec <command> --help' for a command's options.`);
}

async function main(argv: string[]): Promise<number> {
  const [first, second, ...rest] = argv;
  if (!first || first === "--help" || first === "-h" || first === "help") {
    await usage();
    return first ? 0 : 2;
  }
  const names = available();
  if (second && names.includes(`${first}-${second}`)) return (await load(`${first}-${second}`)).run(rest);
  if (names.includes(first)) return (await load(first)).run(argv.slice(1));
  console.error(`freshrec: unknown command '${[first, second].filter(Boolean).join(" ")}'`);
  await usage();
  return 2;
}

// `freshrec ... | head` closes stdout early: that is a normal end, not a crash.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      // A mistyped option is a usage error, not a crash: say which one, no stack trace. Node's hint after an unknown
      // option ("... as in '-- \"--x\"") is about positionals and leaves its quote open: keep its first sentence.
      console.error(`freshrec: ${(err as Error).message.replace(/\. To specify a positional argument.*$/s, "")} (see --help)`);
      process.exitCode = 2;
      return;
    }
    if (err instanceof FreshrecError) console.error(`freshrec: ${err.message}`);
    else console.error(err);
    // Exit now: a command that failed half way (a server listening, a timer armed) must not keep the process alive.
    process.exit(err instanceof FreshrecError ? (EXIT_BY_CODE[err.code] ?? 1) : 1);
  },
);
