/** `freshrec models list | promote ID | rollback`: inspect and steer the model registry by hand. */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseOrThrow } from "@freshrec/core";
import { ArtefactKindSchema, openRegistry, type ArtefactRecord } from "@freshrec/registry";
import { defaultModelsDir } from "../paths.js";

export const summary = "list registry artefacts, promote one by hand (even a failed candidate), or roll back";

const HELP = `usage: freshrec models list [--kind base|adapter|table] [--json]
       freshrec models promote ID [--by WHO] [--note TEXT]
       freshrec models rollback [--kind adapter|table|base] [--by WHO]

  --models DIR   model registry (default $FRESHREC_MODELS or models/ under the repo root)`;

const row = (r: ArtefactRecord) =>
  [
    r.id.padEnd(34),
    r.status.padEnd(9),
    new Date(r.createdAt).toISOString(),
    r.gate.metrics.recallAt1 === undefined ? "" : `recall@1=${r.gate.metrics.recallAt1.toFixed(4)}`,
    r.gate.reasons.join("; "),
  ].join("  ");

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      models: { type: "string" },
      kind: { type: "string" },
      by: { type: "string" },
      note: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  const [verb, id] = positionals;
  if (values.help || !verb) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const registry = openRegistry(resolve(values.models ?? defaultModelsDir()));
  const by = values.by ?? `user:${process.env.USER ?? "unknown"}`;
  const kind = values.kind === undefined ? undefined : parseOrThrow(ArtefactKindSchema, values.kind, "--kind");
  switch (verb) {
    case "list": {
      const records = kind ? registry.list(kind) : registry.list();
      if (values.json) console.log(JSON.stringify({ active: registry.active(), artefacts: records }));
      else {
        for (const r of records) console.log(row(r));
        console.log(`active: ${JSON.stringify(registry.active())}`);
      }
      return 0;
    }
    case "promote": {
      if (!id) break;
      const active = registry.promote(id, by, values.note);
      console.log(`promoted ${id}; active: ${JSON.stringify(active)}`);
      return 0;
    }
    case "rollback": {
      const active = registry.rollback(kind ?? "adapter", by);
      console.log(`rolled back ${kind ?? "adapter"}; active: ${JSON.stringify(active)}`);
      return 0;
    }
  }
  console.log(HELP);
  return 2;
}
