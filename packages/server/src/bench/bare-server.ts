/**
 * The benchmark's reference servers, answering every GET with a fixed JSON body (the same body the real
 * server gave) on the port given as argv[2]: `express` (default) is the bare express handler the server is
 * compared with; `node` is node's http module alone, the ceiling of what one load process can drive.
 * Prints "ready" once listening.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import express from "express";

const [port, bodyFile, kind = "express"] = process.argv.slice(2);
const text = readFileSync(bodyFile!, "utf8");
const ready = () => console.log("ready");
if (kind === "node") {
  createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }).listen(Number(port), "127.0.0.1", ready);
} else {
  const body = JSON.parse(text) as unknown;
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.get("/{*path}", (_req, res) => {
    res.json(body);
  });
  app.listen(Number(port), "127.0.0.1", ready);
}
process.on("SIGTERM", () => process.exit(0));
