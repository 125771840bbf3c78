import { FreshrecError } from "@freshrec/core";
import { ServerConfigSchema, type ServerConfigInput } from "@freshrec/server";
import { StrategySchema, type Strategy } from "@freshrec/trainer-bridge";

/** The flags `serve` and `demo` share (parseArgs options). */
export const SERVICE_FLAGS = {
  config: { type: "string" },
  strategy: { type: "string" },
  port: { type: "string" },
  host: { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** Validates the shared flags: a strategy (if given) and the server settings they override. */
export function readServiceFlags(values: { strategy?: string; port?: string; host?: string; "log-level"?: string }): { strategy?: Strategy; overrides: Partial<ServerConfigInput> } {
  const usage = (flag: string, expected: string, got: string) => new FreshrecError("usage", `--${flag}: expected ${expected}, got ${JSON.stringify(got)}`);
  let strategy: Strategy | undefined;
  if (values.strategy !== undefined) {
    const parsed = StrategySchema.safeParse(values.strategy);
    if (!parsed.success) throw usage("strategy", `one of ${StrategySchema.options.join(", ")}`, values.strategy);
    strategy = parsed.data;
  }
  const overrides: Partial<ServerConfigInput> = {};
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) throw usage("port", "an integer 0..65535", values.port);
    overrides.port = port;
  }
  if (values.host) overrides.host = values.host;
  const level = values["log-level"];
  if (level !== undefined) {
    const parsed = ServerConfigSchema.shape.logLevel.safeParse(level);
    if (!parsed.success) throw usage("log-level", "fatal, error, warn, info, debug, trace or silent", level);
    overrides.logLevel = parsed.data;
  }
  return { ...(strategy ? { strategy } : {}), overrides };
}
