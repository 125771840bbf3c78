/**
 * The store's part of the API: readiness fails with the store's own reason and remedy when it cannot serve
 * or ingest (a table missing or unreadable, the disk full), and requests that hit a store fault get 503
 * with a message safe for clients (no paths) instead of a generic 500.
 */
import { FreshrecError } from "@freshrec/core";
import type { StoreFaultCode, StoreHealth } from "@freshrec/retriever";

/** The retriever's Store answers health(); other StorePort implementations (test doubles) may not. */
interface HealthSource {
  health(): Promise<StoreHealth>;
}

const hasHealth = (store: unknown): store is HealthSource => typeof (store as Partial<HealthSource> | null)?.health === "function";

/** Null when the store can serve and ingest; otherwise why not, each problem with its code, table and remedy. */
export async function storeUnreadyReason(store: unknown): Promise<string | null> {
  if (!hasHealth(store)) return null;
  let health: StoreHealth;
  try {
    health = await store.health();
  } catch (err) {
    return `store health probe failed: ${(err as Error).message}`;
  }
  if (health.ok) return null;
  return `store cannot serve or ingest: ${health.problems.map((p) => `[${p.code}] ${p.message}. ${p.remedy}`).join(" ")}`;
}

/** Seconds a client should wait before retrying a write that found the disk full. */
export const DISK_FULL_RETRY_S = 30;

const repairFirst = (t: string) => `the store's table '${t}' needs a repair before this can be served; /readyz names the remedy`;

const ANSWERS: Record<StoreFaultCode, { message: (table: string) => string; retryAfterS?: number }> = {
  "disk-full": {
    message: () => `the store's disk is full; writes resume by themselves once space is freed: retry in ${DISK_FULL_RETRY_S} s (ingest is idempotent by eventId)`,
    retryAfterS: DISK_FULL_RETRY_S,
  },
  "store-unavailable": { message: (t) => `the store could not be reached (table '${t}'); retry shortly`, retryAfterS: 5 },
  "store-derived-missing": { message: repairFirst },
  "store-derived-inconsistent": { message: repairFirst },
  "store-corrupt": { message: (t) => `the store's table '${t}' is damaged; /readyz names the remedy` },
};

/** The HTTP answer to a store fault (503, with Retry-After when waiting helps), or undefined for anything else. */
export function storeFaultAnswer(err: unknown): { status: number; headers: Record<string, string>; code: string; message: string } | undefined {
  if (!(err instanceof FreshrecError) || !Object.hasOwn(ANSWERS, err.code)) return undefined;
  const answer = ANSWERS[err.code as StoreFaultCode];
  const table = String((err as { table?: unknown }).table ?? "?");
  return { status: 503, headers: answer.retryAfterS ? { "retry-after": String(answer.retryAfterS) } : {}, code: err.code, message: answer.message(table) };
}
