/** Anything the server serves from and must release when done: a scorer, a model, a table. */
export interface Disposable {
  dispose(): void | Promise<void>;
}

interface Entry<T> {
  value: T;
  generation: number;
  refs: number;
  retired: boolean;
  disposed?: Promise<void>;
}

/** A reference to the value that was current when it was taken; release it exactly once. */
export interface Lease<T> {
  readonly value: T;
  readonly generation: number;
  release(): void;
}

/**
 * Holds the current value of something that is replaced while requests use it. `acquire()` pins the
 * current value; `swap()` installs a new one at once (later requests see it) and disposes the old one
 * only after every lease on it has been released, so in-flight requests finish on what they started with.
 */
export class SwapSlot<T extends Disposable> {
  private current: Entry<T> | undefined;
  private readonly retiring = new Set<Entry<T>>();
  private generations = 0;

  constructor(private readonly onDisposeError: (err: unknown, value: T) => void = () => {}) {}

  get value(): T | undefined {
    return this.current?.value;
  }

  get generation(): number {
    return this.current?.generation ?? 0;
  }

  /** Retired values still waiting for their last lease. */
  get draining(): number {
    return this.retiring.size;
  }

  acquire(): Lease<T> | undefined {
    const entry = this.current;
    if (!entry) return undefined;
    entry.refs++;
    let released = false;
    return {
      value: entry.value,
      generation: entry.generation,
      release: () => {
        if (released) return;
        released = true;
        entry.refs--;
        if (entry.retired && entry.refs === 0) void this.disposeEntry(entry);
      },
    };
  }

  /** Runs `fn` on the current value, holding a lease for its whole duration. */
  async use<R>(fn: (value: T) => R | Promise<R>): Promise<R | undefined> {
    const lease = this.acquire();
    if (!lease) return undefined;
    try {
      return await fn(lease.value);
    } finally {
      lease.release();
    }
  }

  /** Installs `next` atomically; resolves once the previous value is disposed (after its leases drain). */
  swap(next: T): Promise<void> {
    const previous = this.current;
    this.current = { value: next, generation: ++this.generations, refs: 0, retired: false };
    return previous ? this.retire(previous) : Promise.resolve();
  }

  /** Empties the slot and waits until every value it ever held is disposed. */
  async close(): Promise<void> {
    const previous = this.current;
    this.current = undefined;
    if (previous) void this.retire(previous);
    await Promise.all([...this.retiring].map((e) => this.whenDisposed(e)));
  }

  private retire(entry: Entry<T>): Promise<void> {
    entry.retired = true;
    this.retiring.add(entry);
    if (entry.refs === 0) return this.disposeEntry(entry);
    return this.whenDisposed(entry);
  }

  private readonly waiters = new Map<Entry<T>, Array<() => void>>();

  private whenDisposed(entry: Entry<T>): Promise<void> {
    if (entry.disposed) return entry.disposed;
    return new Promise((resolve) => {
      const list = this.waiters.get(entry) ?? [];
      list.push(resolve);
      this.waiters.set(entry, list);
    });
  }

  private disposeEntry(entry: Entry<T>): Promise<void> {
    if (entry.disposed) return entry.disposed;
    entry.disposed = (async () => {
      try {
        await entry.value.dispose();
      } catch (err) {
        this.onDisposeError(err, entry.value);
      } finally {
        this.retiring.delete(entry);
      }
    })();
    const waiting = this.waiters.get(entry) ?? [];
    this.waiters.delete(entry);
    for (const resolve of waiting) void entry.disposed.then(resolve);
    return entry.disposed;
  }
}
