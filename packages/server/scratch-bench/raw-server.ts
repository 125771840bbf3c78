import { createServer } from "node:http";
const [port, kind] = process.argv.slice(2);
const body = JSON.stringify({ userId: "u1", history: [1, 2, 3], interests: Array.from({ length: 10 }, (_, i) => ({ clusterId: i, p: 0.1, keywords: ["alpha", "beta", "gamma", "delta"] })), lineage: { baseId: "base-x", adapterId: "adapter-y", tableId: "table-z", snapshotId: "snap", mode: "table" } });
if (kind === "express") {
  const express = (await import("express")).default;
  const app = express(); app.disable("x-powered-by"); app.disable("etag");
  const obj = JSON.parse(body);
  app.get("/{*path}", (_req, res) => { res.json(obj); });
  app.listen(Number(port), "127.0.0.1", () => console.log("ready"));
} else {
  createServer((_req, res) => { res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) }); res.end(body); }).listen(Number(port), "127.0.0.1", () => console.log("ready"));
}
