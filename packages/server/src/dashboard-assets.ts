import { existsSync } from "node:fs";
import { join } from "node:path";
import express from "express";
import { DASHBOARD_DIR } from "@freshrec/dashboard";
import { HttpError } from "./errors.js";

/** The dashboard's built files (packages/dashboard); a clear 503 when they were never built. */
export function dashboardAssets(dir = DASHBOARD_DIR): express.RequestHandler {
  const assets = express.static(dir, { index: "index.html" });
  return (req, res, next) => {
    if (existsSync(join(dir, "index.html"))) return assets(req, res, next);
    next(new HttpError(503, "dashboard-not-built", "the dashboard is not built: run `npx -y pnpm@12.4.2 --filter @freshrec/dashboard build`"));
  };
}
