import { request, type Agent, type IncomingHttpHeaders } from "node:http";

export interface RawRequest {
  method: string;
  /** Sent as is: no normalisation or escaping (node refuses only bytes outside 0x21-0xff). */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** A keep-alive agent to reuse connections; default: one connection per request. */
  agent?: Agent;
  /** The client address to connect from (any 127.x.y.z is loopback). */
  localAddress?: string;
  /** Called once the whole request has been handed to the connection, saying whether it was a reused keep-alive one. */
  onSent?: (reusedSocket: boolean) => void;
}

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: any;
}

/** One HTTP request exactly as given (odd paths, headers and bodies that fetch would refuse or rewrite); rejects on a socket error. */
export function rawRequest(url: string, r: RawRequest): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    // An explicit length: node's client frames no body on GET, HEAD, DELETE or OPTIONS by itself.
    const length = r.body === undefined ? {} : { "content-length": String(Buffer.byteLength(r.body)) };
    const req = request({ host: hostname, port, method: r.method, path: r.path, headers: { ...length, ...r.headers }, agent: r.agent ?? false, localAddress: r.localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    if (r.onSent) req.on("finish", () => r.onSent!(req.reusedSocket));
    req.end(r.body);
  });
}
