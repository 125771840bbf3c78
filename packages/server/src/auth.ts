import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { ValidationError } from "@freshrec/core";
import { forbidden, unauthorized } from "./errors.js";

export const SCOPES = ["ingest", "read", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export const ApiKeySchema = z.object({
  /** Shown in logs and metrics instead of the key itself. */
  name: z.string().min(1).max(64),
  key: z.string().min(8, "an API key needs at least 8 characters"),
  scopes: z.array(z.enum(SCOPES)).min(1),
});
export type ApiKey = z.infer<typeof ApiKeySchema>;

/**
 * Parses `FRESHREC_API_KEYS`: entries separated by `;`, each `key:scope,scope` or `name=key:scope,scope`.
 * Example: "k3y-reader-01:read,ingest;ops=k3y-admin-01:admin". `admin` implies every other scope.
 */
export function parseApiKeys(spec: string, where = "FRESHREC_API_KEYS"): ApiKey[] {
  const entries = spec.split(";").map((s) => s.trim()).filter(Boolean);
  return entries.map((entry, i) => {
    const colon = entry.lastIndexOf(":");
    const left = colon < 0 ? entry : entry.slice(0, colon);
    const eq = left.indexOf("=");
    const key = eq < 0 ? left : left.slice(eq + 1);
    const raw = {
      name: eq < 0 ? `key${i + 1}` : left.slice(0, eq),
      key,
      scopes: colon < 0 ? [] : entry.slice(colon + 1).split(",").map((s) => s.trim()).filter(Boolean),
    };
    const parsed = ApiKeySchema.safeParse(raw);
    if (!parsed.success) {
      // Never echo the key itself: report the entry by position and name only.
      throw new ValidationError(`${where} entry ${i + 1} (${raw.name})`, parsed.error.issues.map((issue) => ({
        path: issue.path.join("."),
        message: issue.message,
        value: issue.path[0] === "key" ? undefined : (raw as Record<string, unknown>)[String(issue.path[0])],
      })));
    }
    return parsed.data;
  });
}

/** The auth scheme is case-insensitive (RFC 7235 §2.1): "Bearer", "bearer" and "BEARER" all introduce a key. */
const BEARER = /^bearer[ \t]+/i;
const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

export interface Principal {
  name: string;
  scopes: ReadonlySet<Scope>;
}

/**
 * Checks bearer keys. Keys are kept only as SHA-256 digests and compared with timingSafeEqual against
 * every configured key (no early exit), so neither the content nor the position of a match leaks timing.
 * With `enabled: false` every request is an anonymous admin (the explicit localhost demo mode).
 */
export class Authenticator {
  private readonly entries: Array<{ hash: Buffer; principal: Principal }>;

  constructor(keys: ApiKey[], readonly enabled: boolean) {
    this.entries = keys.map((k) => ({
      hash: digest(k.key),
      principal: { name: k.name, scopes: new Set<Scope>(k.scopes.includes("admin") ? SCOPES : k.scopes) },
    }));
  }

  /** Who sent this Authorization header (or x-api-key value); throws 401 when unknown or absent. */
  identify(header: string | undefined): Principal {
    if (!this.enabled) return ANONYMOUS_ADMIN;
    if (!header) throw unauthorized("missing API key: send 'Authorization: Bearer <key>'");
    const presented = digest(header.replace(BEARER, "").trim());
    let found: Principal | undefined;
    for (const entry of this.entries) if (timingSafeEqual(entry.hash, presented)) found = entry.principal;
    if (!found) throw unauthorized("invalid API key");
    return found;
  }

  /** Throws 403 unless the principal holds `scope`. */
  static require(principal: Principal, scope: Scope): void {
    if (!principal.scopes.has(scope)) throw forbidden(`API key '${principal.name}' lacks the '${scope}' scope`);
  }
}

const ANONYMOUS_ADMIN: Principal = { name: "anonymous", scopes: new Set(SCOPES) };
