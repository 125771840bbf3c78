/**
 * Token bucket per key: `burst` tokens at most, refilled at `ratePerS`. One Map lookup and a little
 * arithmetic per request, no timers; idle buckets are evicted lazily once the map grows past `maxKeys`.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
    private readonly maxKeys = 10_000,
  ) {}

  /** Keys currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token for `key`; returns 0 when allowed, else the seconds until a token is available. */
  take(key: string): number {
    const t = this.now();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.evictFull(t);
      bucket = { tokens: this.burst, at: t };
      this.buckets.set(key, bucket);
    } else this.refill(bucket, t);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return this.secondsUntilToken(bucket);
  }

  /** Like take, without taking: 0 when `key` has a token, else the seconds until it has one. */
  wait(key: string): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return 0;
    this.refill(bucket, this.now());
    return bucket.tokens >= 1 ? 0 : this.secondsUntilToken(bucket);
  }

  private refill(bucket: { tokens: number; at: number }, t: number): void {
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((t - bucket.at) / 1000) * this.ratePerS);
    bucket.at = t;
  }

  private secondsUntilToken(bucket: { tokens: number }): number {
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.ratePerS));
  }

  /** Buckets that would be full again carry no state worth keeping. */
  private evictFull(t: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * this.ratePerS >= this.burst) this.buckets.delete(key);
    }
  }
}
