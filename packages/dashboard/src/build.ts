/**
 * Builds the dashboard's static files into dist/: the page and its styles as written, app.ts compiled by tsc
 * (no bundler: the page's only library, echarts, ships a browser build that is copied beside it). Nothing is
 * fetched at run time.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { DASHBOARD_DIR } from "./index.js";

const web = join(import.meta.dirname, "web");
const require = createRequire(import.meta.url);
rmSync(DASHBOARD_DIR, { recursive: true, force: true });
mkdirSync(DASHBOARD_DIR, { recursive: true });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", join(web, "tsconfig.json")], { stdio: "inherit" });
for (const file of ["index.html", "style.css"]) copyFileSync(join(web, file), join(DASHBOARD_DIR, file));
copyFileSync(require.resolve("echarts/dist/echarts.min"), join(DASHBOARD_DIR, "echarts.min.js"));
console.log(`dashboard built in ${DASHBOARD_DIR}`);
