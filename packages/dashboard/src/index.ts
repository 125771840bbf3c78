import { fileURLToPath } from "node:url";

/** The built dashboard (index.html, app.js, echarts): `pnpm --filter @freshrec/dashboard build` writes it; the server serves it at /dashboard. */
export const DASHBOARD_DIR = fileURLToPath(new URL("../dist", import.meta.url));
