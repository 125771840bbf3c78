import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import { FreshrecError } from "@freshrec/core";
import { ResultsSchema, type Results } from "../results.js";
import { reportCharts } from "./charts.js";
import { reportHtml } from "./html.js";

export interface WrittenReport {
  dir: string;
  files: string[];
}

/** PNG copy of a chart; resvg draws text with the system fonts (DejaVu on this machine). */
export function svgToPng(svg: string): Buffer {
  return new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }, background: "white" }).render().asPng();
}

async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  await writeFile(`${path}.tmp`, data);
  await rename(`${path}.tmp`, path);
}

/** Writes reports/<runId>/: results.json, a self-contained index.html with inline SVG charts, and one PNG per chart. */
export async function writeReport(results: Results, reportsDir: string): Promise<WrittenReport> {
  const parsed = ResultsSchema.safeParse(results);
  if (!parsed.success) throw new FreshrecError("report", `results for run ${results.runId} do not match the results schema: ${parsed.error.message}`);
  const dir = join(reportsDir, results.runId);
  await mkdir(dir, { recursive: true });
  const charts = reportCharts(results);
  const files = ["results.json", "index.html", ...charts.map((c) => `${c.name}.png`)];
  await writeAtomic(join(dir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  await writeAtomic(join(dir, "index.html"), reportHtml(results, charts));
  for (const c of charts) await writeAtomic(join(dir, `${c.name}.png`), svgToPng(c.svg));
  return { dir, files: files.map((f) => join(dir, f)) };
}
