/**
 * Plain objects next to a LanceDB store on S3 (the writer lease, the model registry): LanceDB reads and writes
 * its own datasets but exposes no access to other objects, so these go through the AWS SDK with the same settings.
 */
import { createWriteStream } from "node:fs";
import { Agent } from "node:http";
import { readFile } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { randomBytes } from "node:crypto";
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { FreshrecError } from "@freshrec/core";
import { parseObjectUri, type ObjectStorage } from "./storage-options.js";

export class ObjectStoreError extends FreshrecError {
  constructor(uri: string, what: string, cause: unknown) {
    super("object-store", `object store ${uri}: ${what} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** A write's precondition: the key must not exist yet, or must still be the version with this ETag. */
export type PutCondition = { ifNoneMatch: true } | { ifMatch: string };

export interface ObjectStore {
  /** The URI the keys are relative to. */
  readonly uri: string;
  /** null when the key does not exist. */
  get(key: string): Promise<{ body: Buffer; etag: string } | null>;
  /** "precondition-failed" when a condition did not hold (on a store that enforces conditions at all: see conditionalWrites). */
  put(key: string, body: Buffer | string, condition?: PutCondition): Promise<{ etag: string } | "precondition-failed">;
  /** Streams an object to a local file; false when the key does not exist. */
  download(key: string, path: string): Promise<boolean>;
  upload(key: string, path: string): Promise<void>;
  /** Keys under a prefix (relative to the store's URI), in lexical order. */
  list(prefix: string): Promise<string[]>;
  /** Total size in bytes of the objects under a prefix. */
  bytes(prefix: string): Promise<number>;
  delete(key: string): Promise<void>;
  /**
   * Whether the store refuses a PUT whose If-None-Match / If-Match precondition fails (AWS S3 since 2024, MinIO,
   * R2 do; s3rver ignores them). Probed once with a scratch object.
   */
  conditionalWrites(): Promise<boolean>;
}

// The SDK warns on every start that releases after January 2027 need Node 22; this pinned release runs on 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/** Small-object calls (pointer, lease, records, listings) give up after this, retries included: a stuck call must not hold a polling round for long. */
const SMALL_CALL_MS = 5_000;
const small = () => ({ abortSignal: AbortSignal.timeout(SMALL_CALL_MS) });

const statusOf = (err: unknown) => (err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined);

export function openObjectStore(uri: string, storage: ObjectStorage): ObjectStore {
  const { bucket, prefix } = parseObjectUri(uri);
  const client = new S3Client({
    region: storage.region,
    forcePathStyle: storage.pathStyle,
    ...(storage.endpoint ? { endpoint: storage.endpoint } : {}),
    ...(storage.accessKeyId && storage.secretAccessKey ? { credentials: { accessKeyId: storage.accessKeyId, secretAccessKey: storage.secretAccessKey } } : {}),
    // No request may hang a mirror or lease round forever (the SDK sets no timeout): a stalled socket fails the round, the next retries.
    // Plain-http endpoints (self-hosted servers on a LAN) get no keep-alive: measured against s3rver under load, a
    // request sent on a pooled socket that the server was closing hung until the abort instead of failing fast.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000, ...(storage.endpoint?.startsWith("http://") ? { httpAgent: new Agent({ keepAlive: false }) } : {}) },
    // Checksums only where S3 requires them: many S3-compatible servers reject the SDK's default CRC headers.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const full = (key: string) => (prefix ? `${prefix}/${key}` : key);
  const fail = (what: string, err: unknown): never => {
    throw new ObjectStoreError(uri, what, err);
  };
  let conditional: Promise<boolean> | undefined;

  async function listing(sub: string): Promise<Array<{ key: string; size: number }>> {
    const found: Array<{ key: string; size: number }> = [];
    let token: string | undefined;
    try {
      do {
        const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: full(sub), ...(token ? { ContinuationToken: token } : {}) }), small());
        for (const o of out.Contents ?? []) if (o.Key) found.push({ key: prefix ? o.Key.slice(prefix.length + 1) : o.Key, size: o.Size ?? 0 });
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      fail(`LIST ${sub}`, err);
    }
    return found;
  }

  const store: ObjectStore = {
    uri,
    async get(key) {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: full(key) }), small());
        return { body: Buffer.from(await out.Body!.transformToByteArray()), etag: out.ETag ?? "" };
      } catch (err) {
        if (statusOf(err) === 404) return null;
        return fail(`GET ${key}`, err);
      }
    },
    async put(key, body, condition) {
      try {
        const out = await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: full(key),
            Body: body,
            ...(condition && "ifNoneMatch" in condition ? { IfNoneMatch: "*" } : {}),
            ...(condition && "ifMatch" in condition ? { IfMatch: condition.ifMatch } : {}),
          }),
          small(),
        );
        return { etag: out.ETag ?? "" };
      } catch (err) {
        // 412: the precondition failed; 409: a concurrent conditional write won (AWS answers either).
        if (condition && (statusOf(err) === 412 || statusOf(err) === 409)) return "precondition-failed";
        return fail(`PUT ${key}`, err);
      }
    },
    async download(key, path) {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: full(key) }));
        await pipeline(out.Body as Readable, createWriteStream(path));
        return true;
      } catch (err) {
        if (statusOf(err) === 404) return false;
        return fail(`GET ${key} into ${path}`, err);
      }
    },
    async upload(key, path) {
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: full(key), Body: await readFile(path) }));
      } catch (err) {
        fail(`PUT ${key} from ${path}`, err);
      }
    },
    async list(sub) {
      return (await listing(sub)).map((o) => o.key).sort();
    },
    async bytes(sub) {
      return (await listing(sub)).reduce((sum, o) => sum + o.size, 0);
    },
    async delete(key) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: full(key) }), small());
      } catch (err) {
        if (statusOf(err) !== 404) fail(`DELETE ${key}`, err);
      }
    },
    conditionalWrites() {
      conditional ??= (async () => {
        const probe = `.conditional-probe-${randomBytes(6).toString("hex")}`;
        await store.put(probe, "1", { ifNoneMatch: true });
        const again = await store.put(probe, "2", { ifNoneMatch: true });
        await store.delete(probe);
        return again === "precondition-failed";
      })();
      return conditional;
    },
  };
  return store;
}
