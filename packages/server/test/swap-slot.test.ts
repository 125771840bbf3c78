import { describe, expect, it } from "vitest";
import { SwapSlot } from "../src/swap-slot.js";

class Resource {
  disposed = 0;
  constructor(readonly name: string, private readonly failOnDispose = false) {}
  dispose(): void {
    this.disposed++;
    if (this.failOnDispose) throw new Error(`cannot dispose ${this.name}`);
  }
}

describe("SwapSlot", () => {
  it("hands out nothing before the first value", () => {
    const slot = new SwapSlot<Resource>();
    expect(slot.acquire()).toBeUndefined();
    expect(slot.generation).toBe(0);
  });

  it("disposes a replaced value at once when nobody holds it", async () => {
    const slot = new SwapSlot<Resource>();
    const a = new Resource("a");
    await slot.swap(a);
    await slot.swap(new Resource("b"));
    expect(a.disposed).toBe(1);
    expect(slot.value?.name).toBe("b");
    expect(slot.generation).toBe(2);
  });

  it("keeps a replaced value alive until its last lease is released, then disposes it once", async () => {
    const slot = new SwapSlot<Resource>();
    const a = new Resource("a");
    void slot.swap(a);
    const first = slot.acquire()!;
    const second = slot.acquire()!;
    let swapped = false;
    const done = slot.swap(new Resource("b")).then(() => (swapped = true));
    // New requests see the new value immediately while the old one drains.
    expect(slot.acquire()!.value.name).toBe("b");
    expect(first.value.name).toBe("a");
    expect(slot.draining).toBe(1);
    first.release();
    first.release(); // a double release must not count twice
    await Promise.resolve();
    expect(a.disposed).toBe(0);
    expect(swapped).toBe(false);
    second.release();
    await done;
    expect(a.disposed).toBe(1);
    expect(slot.draining).toBe(0);
  });

  it("use() holds a lease for the whole async call", async () => {
    const slot = new SwapSlot<Resource>();
    const a = new Resource("a");
    void slot.swap(a);
    let release!: () => void;
    const inFlight = slot.use(async (r) => {
      await new Promise<void>((resolve) => (release = resolve));
      return r.name;
    });
    void slot.swap(new Resource("b"));
    expect(a.disposed).toBe(0);
    release();
    expect(await inFlight).toBe("a");
    await Promise.resolve();
    expect(a.disposed).toBe(1);
  });

  it("reports a failing dispose and still drains", async () => {
    const errors: string[] = [];
    const slot = new SwapSlot<Resource>((err) => errors.push((err as Error).message));
    void slot.swap(new Resource("bad", true));
    await slot.swap(new Resource("b"));
    expect(errors).toEqual(["cannot dispose bad"]);
    expect(slot.draining).toBe(0);
  });

  it("close() waits for leases on every value and empties the slot", async () => {
    const slot = new SwapSlot<Resource>();
    const a = new Resource("a");
    const b = new Resource("b");
    void slot.swap(a);
    const leaseA = slot.acquire()!;
    void slot.swap(b);
    const leaseB = slot.acquire()!;
    let closed = false;
    const closing = slot.close().then(() => (closed = true));
    expect(slot.acquire()).toBeUndefined();
    leaseB.release();
    await new Promise((r) => setImmediate(r));
    expect(b.disposed).toBe(1);
    expect(closed).toBe(false);
    leaseA.release();
    await closing;
    expect(a.disposed).toBe(1);
  });
});
