import { runLoad as newLoad } from "../src/bench/load.js";
import { runLoad as oldLoad } from "./old-load.js";
const [url, which, conns, secs] = process.argv.slice(2);
const f = which === "old" ? oldLoad : newLoad;
const r = await f({ url, paths: ["/v1/users/u1/next-interests?k=10"], connections: Number(conns ?? 32), seconds: Number(secs ?? 5), maxRequests: 1_000_000, headers: { authorization: "Bearer abcdefabcdef" } });
console.log(which, conns, JSON.stringify({ rps: Math.round(r.rps), p50: r.p50Ms.toFixed(2), p99: r.p99Ms.toFixed(2), errors: r.errors }));
