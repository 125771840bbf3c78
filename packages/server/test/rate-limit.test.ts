import { describe, expect, it } from "vitest";
import { RateLimiter } from "../src/rate-limit.js";

describe("RateLimiter", () => {
  it("allows a burst, then refuses with the wait until the next token, then refills", () => {
    let now = 0;
    const limiter = new RateLimiter(2, 3, () => now);
    expect([limiter.take("a"), limiter.take("a"), limiter.take("a")]).toEqual([0, 0, 0]);
    expect(limiter.take("a")).toBe(1);
    // Another key has its own bucket.
    expect(limiter.take("b")).toBe(0);
    now += 500; // half a second at 2/s = one token
    expect(limiter.take("a")).toBe(0);
    expect(limiter.take("a")).toBeGreaterThan(0);
    now += 10_000; // refill is capped at the burst size
    expect([0, 1, 2, 3].map(() => limiter.take("a"))).toEqual([0, 0, 0, 1]);
  });

  it("tells the wait for a token without taking one", () => {
    let now = 0;
    const limiter = new RateLimiter(1, 2, () => now);
    expect(limiter.wait("a")).toBe(0); // unknown key: a full bucket
    expect([limiter.take("a"), limiter.wait("a"), limiter.wait("a"), limiter.take("a")]).toEqual([0, 0, 0, 0]);
    expect(limiter.wait("a")).toBe(1);
    now += 1_000;
    expect([limiter.wait("a"), limiter.take("a"), limiter.wait("a")]).toEqual([0, 0, 1]);
  });

  it("evicts idle buckets once it holds too many keys", () => {
    let now = 0;
    const limiter = new RateLimiter(1, 1, () => now, 2);
    limiter.take("a");
    limiter.take("b");
    limiter.take("c"); // at the cap, but a and b are still refilling: nothing to evict
    expect(limiter.size).toBe(3);
    now += 5_000;
    limiter.take("d"); // a, b and c are full again and get evicted
    expect(limiter.size).toBe(1);
  });
});
