import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { parseArgs } from "node:util";
import { createSyntheticWorld, DAY_MS, FreshrecError, SYNTHETIC_SIZES, type SyntheticSize } from "@freshrec/core";

export const summary = "describe the embedded synthetic world, or write its events and items as generic-format JSONL";

const HELP = `usage: freshrec world [SIZE] [--seed S] [--drift X] [--events FILE] [--items FILE]

  SIZE            ${SYNTHETIC_SIZES.join(", ")} (default: default)
  --seed S        world seed (default: the preset's)
  --drift X       drift multiplier (0 = stationary transition model)
  --events FILE   write the event stream as JSONL (streamed; fine for large)
  --items FILE    write the item catalogue (itemId, clusterId, title) as JSONL`;

/** Writes lines to a file, waiting for the stream to drain so memory stays bounded. */
async function writeLines(path: string, lines: Iterable<string>): Promise<number> {
  const out = createWriteStream(path);
  let n = 0;
  for (const line of lines) {
    if (!out.write(`${line}\n`)) await once(out, "drain");
    n++;
  }
  out.end();
  await once(out, "finish");
  return n;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      seed: { type: "string" },
      drift: { type: "string" },
      events: { type: "string" },
      items: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const size = positionals[0] ?? "default";
  if (!(SYNTHETIC_SIZES as readonly string[]).includes(size)) throw new FreshrecError("invalid-argument", `world size ${size}: expected ${SYNTHETIC_SIZES.join(", ")}`);
  const overrides: { seed?: number; drift?: number } = {};
  if (values.seed !== undefined) overrides.seed = Number(values.seed);
  if (values.drift !== undefined) overrides.drift = Number(values.drift);
  const world = createSyntheticWorld(size as SyntheticSize, overrides);
  const c = world.config;
  console.log(
    `synthetic ${size}: seed ${c.seed}, ${c.users} users, ${c.clusters} clusters (${c.newClusters} appear later), ${world.items.length} items, ${c.days} days from ${new Date(world.startMs).toISOString().slice(0, 10)}, drift ${c.drift}, ${world.trends.length} trends`,
  );
  for (const cl of world.clusters) {
    const born = world.clusterBirth(cl.id);
    console.log(`  ${String(cl.id).padStart(4)}  ${cl.keywords.join(" ")}${born > world.startMs ? `  (appears day ${(born - world.startMs) / DAY_MS})` : ""}`);
  }
  if (values.items) {
    const n = await writeLines(values.items, (function* () { for (const i of world.items) yield JSON.stringify(i); })());
    console.log(`wrote ${n} items to ${values.items}`);
  }
  if (values.events) {
    const n = await writeLines(values.events, (function* () { for (const e of world.events()) yield JSON.stringify(e); })());
    console.log(`wrote ${n} events to ${values.events}`);
  }
  return 0;
}
