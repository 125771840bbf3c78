/**
 * The benchmark's baseline: a bare express app answering every GET with a fixed JSON body (the same body
 * the real server gave), on the port given as argv[2]. Prints "ready" once listening.
 */
import express from "express";

const [port, bodyFile] = process.argv.slice(2);
const { readFileSync } = await import("node:fs");
const body = JSON.parse(readFileSync(bodyFile!, "utf8")) as unknown;
const app = express();
app.disable("x-powered-by");
app.disable("etag");
app.get("/{*path}", (_req, res) => {
  res.json(body);
});
app.listen(Number(port), "127.0.0.1", () => console.log("ready"));
process.on("SIGTERM", () => process.exit(0));
