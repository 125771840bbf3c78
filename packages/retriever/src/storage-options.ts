/**
 * Where an object store is and how to reach it: one schema read from a config file's `storage` section or the
 * usual AWS environment variables, turned into LanceDB's storage options and into an S3 client's settings.
 */
import { z } from "zod";
import { FreshrecError, parseOrThrow } from "@freshrec/core";

export const ObjectStorageSchema = z.strictObject({
  /** An S3-compatible server (MinIO, Ceph, s3rver...); absent: AWS itself. http:// endpoints are allowed as given. */
  endpoint: z.url().optional(),
  region: z.string().min(1).default("us-east-1"),
  /** Absent: the SDK's and LanceDB's own credential chains (instance roles, profiles). */
  accessKeyId: z.string().min(1).optional(),
  secretAccessKey: z.string().min(1).optional(),
  /** Path-style addressing (http://host/bucket/key), what most self-hosted servers need. */
  pathStyle: z.boolean().default(false),
});
export type ObjectStorage = z.infer<typeof ObjectStorageSchema>;
export type ObjectStorageInput = z.input<typeof ObjectStorageSchema>;

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** True for s3:// (and other scheme) URIs; plain paths and file:// are local. */
export const isObjectStoreUri = (uri: string): boolean => SCHEME.test(uri) && !uri.startsWith("file://");

/** Bucket and key prefix (no leading or trailing slash) of an `s3://bucket/prefix` URI. */
export function parseObjectUri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m || m[1] === "") throw new FreshrecError("usage", `'${uri}' is not an object-store URI freshrec can open: expected s3://bucket/prefix`);
  return { bucket: m[1]!, prefix: m[2]!.replace(/\/+$/, "") };
}

/**
 * The settings in effect: the config file's values over the environment's (AWS_ENDPOINT_URL, AWS_REGION or
 * AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, FRESHREC_S3_PATH_STYLE=1). `where` names the source in errors.
 */
export function resolveObjectStorage(file: ObjectStorageInput | undefined, env: NodeJS.ProcessEnv = process.env, where = "storage"): ObjectStorage {
  const fromEnv: Record<string, unknown> = {
    endpoint: env.AWS_ENDPOINT_URL || undefined,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    accessKeyId: env.AWS_ACCESS_KEY_ID || undefined,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY || undefined,
    pathStyle: env.FRESHREC_S3_PATH_STYLE === undefined ? undefined : env.FRESHREC_S3_PATH_STYLE === "1",
  };
  const merged = Object.fromEntries(Object.entries({ ...fromEnv, ...file }).filter(([, v]) => v !== undefined));
  return parseOrThrow(ObjectStorageSchema, merged, where);
}

/** The same settings as environment variables, for child processes (jobs) that must reach the same store. */
export function objectStorageEnv(s: ObjectStorage): Record<string, string> {
  return {
    AWS_REGION: s.region,
    FRESHREC_S3_PATH_STYLE: s.pathStyle ? "1" : "0",
    ...(s.endpoint ? { AWS_ENDPOINT_URL: s.endpoint } : {}),
    ...(s.accessKeyId ? { AWS_ACCESS_KEY_ID: s.accessKeyId } : {}),
    ...(s.secretAccessKey ? { AWS_SECRET_ACCESS_KEY: s.secretAccessKey } : {}),
  };
}

/** LanceDB's `storageOptions` (its object_store keys) for these settings. */
export function lanceStorageOptions(s: ObjectStorage): Record<string, string> {
  return {
    region: s.region,
    virtualHostedStyleRequest: s.pathStyle ? "false" : "true",
    ...(s.endpoint ? { endpoint: s.endpoint, allowHttp: String(s.endpoint.startsWith("http://")) } : {}),
    ...(s.accessKeyId ? { awsAccessKeyId: s.accessKeyId } : {}),
    ...(s.secretAccessKey ? { awsSecretAccessKey: s.secretAccessKey } : {}),
  };
}
