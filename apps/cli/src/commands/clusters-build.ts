import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { buildClusters, FreshrecError, loadGenericItems, loadMovieLens, type ImportReport, type Item } from "@freshrec/core";

export const summary = "build interest clusters from item metadata (k-means) and print sizes and keywords";

const HELP = `usage: freshrec clusters build --dataset movielens DIR | --dataset items FILE [options]

  --k N             number of clusters (default 64)
  --seed S          k-means seed (default 1)
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
      k: { type: "string", default: "64" },
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
  const k = Number(values.k);
  const seed = Number(values.seed);
  if (!Number.isInteger(k) || k < 1) throw new FreshrecError("invalid-argument", `--k ${values.k}: expected a positive integer`);
  const { items, reports } = await loadItems(values.dataset, positionals[0]!);
  for (const r of reports) {
    if (r.fatal) throw new FreshrecError("import-failed", `${r.file}: ${r.fatal}`);
    if (r.skipped > 0) console.error(`${r.file}: skipped ${r.skipped} of ${r.rowsRead} rows (first: ${r.rejected[0]})`);
  }
  const started = Date.now();
  const built = buildClusters(items, { k, seed, balance: !values["no-balance"] });
  const sizes = built.model.clusters.map((c) => c.size);
  console.log(
    `${items.length} items, ${built.assignment.size} clustered into ${k} clusters over ${built.model.space.names.length} features in ${Date.now() - started} ms`,
  );
  console.log(`cluster sizes: min ${Math.min(...sizes)}, median ${[...sizes].sort((a, b) => a - b)[Math.floor(sizes.length / 2)]}, max ${Math.max(...sizes)}`);
  for (const c of built.model.clusters) console.log(`  ${String(c.id).padStart(4)}  ${String(c.size).padStart(6)}  ${c.keywords.join(", ")}`);
  if (values.out) {
    writeFileSync(values.out, JSON.stringify({ model: built.model, assignment: Object.fromEntries(built.assignment) }));
    console.log(`wrote ${values.out}`);
  }
  return 0;
}
