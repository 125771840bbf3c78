import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  buildClusters,
  CLUSTER_COUNT_RULE,
  FreshrecError,
  loadGenericItems,
  loadMovieLens,
  numberOption,
  parseClusterCountOption,
  UNPLACED,
  type ImportReport,
  type Item,
} from "@freshrec/core";
import { z } from "zod";

export const summary = "build interest clusters from item metadata (k-means) and print sizes and keywords";

const HELP = `usage: freshrec clusters build --dataset movielens DIR | --dataset items FILE [options]

  --k N             number of clusters, capped at the items' distinct feature signatures
                    (default: ${CLUSTER_COUNT_RULE})
  --seed S          k-means seed (default 1)

Items with identical features always share a cluster, and no two clusters share a description
(packages/core/IMPORT-FORMAT.md, "Clusters").
  --no-balance      plain k-means instead of near-equal cluster sizes
  --out FILE        also write the cluster model (feature space, clusters, item assignment) as JSON`;

/** Items of a dataset argument pair: `movielens DIR` or `items FILE` (generic format). */
async function loadItems(dataset: string, path: string): Promise<{ items: Item[]; reports: ImportReport[] }> {
  if (dataset === "movielens") {
    const data = await loadMovieLens(path);
    return { items: data.items, reports: [data.reports.movies, ...(data.reports.tags ? [data.reports.tags] : [])] };
  }
  if (dataset === "items") {
    const { items, report } = await loadGenericItems(path);
    return { items, reports: [report] };
  }
  throw new FreshrecError("invalid-argument", `--dataset ${dataset}: expected movielens or items`);
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      dataset: { type: "string" },
      k: { type: "string" },
      seed: { type: "string", default: "1" },
      "no-balance": { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.dataset || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const k = values.k === undefined ? undefined : parseClusterCountOption(values.k, "--k");
  const seed = numberOption("--seed", values.seed, z.number().int().nonnegative(), "a non-negative integer");
  const { items, reports } = await loadItems(values.dataset, positionals[0]!);
  for (const r of reports) {
    if (r.fatal) throw new FreshrecError("import-failed", `${r.file}: ${r.fatal}`);
    if (r.skipped > 0) console.error(`${r.file}: skipped ${r.skipped} of ${r.rowsRead} rows (first: ${r.rejected[0]})`);
  }
  const started = Date.now();
  const built = buildClusters(items, { k, seed, balance: !values["no-balance"] });
  const sizes = built.model.clusters.map((c) => c.size);
  console.log(
    `${items.length} items, ${built.assignment.size} clustered into ${built.clusters.length} clusters over ${built.model.space.names.length} features in ${Date.now() - started} ms`,
  );
  console.log(`clusters: ${built.count.reason}`);
  const withoutFeatures = items.filter((i) => i.features === undefined).length;
  if (withoutFeatures > 0) console.log(`${withoutFeatures} items left out: ${UNPLACED.noFeatures}`);
  if (built.unclassified.length > 0)
    console.log(`${built.unclassified.length} items left out: ${UNPLACED.noKeptFeature}, e.g. ${built.unclassified.slice(0, 5).join(", ")}`);
  console.log(`cluster sizes: min ${Math.min(...sizes)}, median ${[...sizes].sort((a, b) => a - b)[Math.floor(sizes.length / 2)]}, max ${Math.max(...sizes)}`);
  for (const c of built.model.clusters) console.log(`  ${String(c.id).padStart(4)}  ${String(c.size).padStart(6)}  ${c.keywords.join(", ")}`);
  if (values.out) {
    writeFileSync(values.out, JSON.stringify({ model: built.model, assignment: Object.fromEntries(built.assignment) }));
    console.log(`wrote ${values.out}`);
  }
  return 0;
}
