/// <reference path="./s3rver.d.ts" />
/**
 * A local S3-compatible server (s3rver) on 127.0.0.1, started in-process: what the object-storage benchmark and
 * tests run against, nothing downloaded. It keeps objects as files under `directory` and, like any S3 server
 * without conditional PUT, allows one writer per store (FIELD-NOTES, "Object storage").
 */
import { mkdirSync } from "node:fs";
import type { ObjectStorage } from "./storage-options.js";

export interface LocalS3 {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Settings that reach it (s3rver's fixed credentials, path-style). */
  storage: ObjectStorage;
  close(): Promise<void>;
}

export async function startLocalS3(opts: { directory: string; buckets: string[]; port?: number }): Promise<LocalS3> {
  const { default: S3rver } = await import("s3rver");
  mkdirSync(opts.directory, { recursive: true });
  const server = new S3rver({ address: "127.0.0.1", port: opts.port ?? 0, directory: opts.directory, silent: true, configureBuckets: opts.buckets.map((name) => ({ name })) });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    storage: { endpoint, region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER", pathStyle: true },
    close: () => server.close(),
  };
}
