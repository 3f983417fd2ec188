/** Bounds concurrent work; a waiter whose deadline passes before a slot frees is dropped, never started. */
export class Semaphore {
  private active = 0;
  private readonly waiting = new Set<() => void>();

  constructor(private readonly limit: number) {}

  /** Runs `task` when a slot is free; resolves undefined (without running it) if `deadline` passes first. */
  run<T>(deadline: number, task: () => Promise<T>): Promise<T | undefined> {
    if (this.tryAcquire()) return this.runHolding(task);
    return this.acquire(deadline).then((started) => (started ? this.runHolding(task) : undefined));
  }

  /** Takes a slot if one is free: the caller must `release()` it. */
  tryAcquire(): boolean {
    if (this.active >= this.limit) return false;
    this.active++;
    return true;
  }

  /** Waits for a slot (then the caller must `release()` it); false, holding nothing, if `deadline` passes first. */
  acquire(deadline: number): Promise<boolean> {
    if (this.tryAcquire()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const start = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(
        () => {
          this.waiting.delete(start);
          resolve(false);
        },
        Math.max(0, deadline - performance.now()),
      );
      this.waiting.add(start);
    });
  }

  /** Runs `task` in a slot already taken, and passes the slot on when it settles. */
  private runHolding<T>(task: () => Promise<T>): Promise<T> {
    let running: Promise<T>;
    try {
      running = task();
    } catch (err) {
      this.release();
      return Promise.reject(err);
    }
    return running.finally(() => this.release());
  }

  /** Gives a slot back: the oldest waiter, if any, gets it. */
  release(): void {
    const next = this.waiting.values().next();
    if (next.done) {
      this.active--;
      return;
    }
    // The slot passes straight to the oldest waiter: `active` stays the same.
    this.waiting.delete(next.value);
    next.value();
  }

  get inUse(): number {
    return this.active;
  }
}
