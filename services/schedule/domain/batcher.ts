/** Does many items' store work in one statement or transaction; answers one result per item, in order. */
export type WriteMany<T, R> = (items: readonly T[]) => Promise<R[]>;

interface Pending<T, R> {
  readonly items: readonly T[];
  resolve(results: R[]): void;
  reject(err: unknown): void;
}

/**
 * Gathers the store calls of one kind asked for in one turn of the event loop (a timer pass firing many
 * schedules at their shared due time, their jobs starting and ending together) into one store call, so a
 * burst of due windows costs a few statements and commits rather than several a window. While a call is out,
 * new items gather for the next one; a call holds at most `maxBatch` items (a caller's items are never split
 * between calls, so one asking for more than that goes alone).
 */
export class Batcher<T, R> {
  readonly #queue: Pending<T, R>[] = [];
  #scheduled = false;
  #writing = false;

  constructor(
    private readonly writeMany: WriteMany<T, R>,
    private readonly maxBatch: number,
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1)
      throw new RangeError(`maxBatch must be an integer >= 1, got ${maxBatch}`);
  }

  /** Sends the items with whatever else is asked for in this turn; answers their results, in order. */
  run(items: readonly T[]): Promise<R[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#queue.push({ items, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: the timers due at one instant all run in one timer phase before it.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const batch: Pending<T, R>[] = [this.#queue.shift()!];
        let size = batch[0]!.items.length;
        while (this.#queue.length > 0 && size + this.#queue[0]!.items.length <= this.maxBatch) {
          const next = this.#queue.shift()!;
          size += next.items.length;
          batch.push(next);
        }
        await this.#write(batch);
      }
    } finally {
      this.#writing = false;
    }
  }

  async #write(batch: readonly Pending<T, R>[]): Promise<void> {
    try {
      // A batch of one (every call when they come one at a time) is written and answered as it is, without copies.
      if (batch.length === 1) return batch[0]!.resolve(await this.writeMany(batch[0]!.items));
      const results = await this.writeMany(batch.flatMap((p) => p.items));
      let at = 0;
      for (const p of batch) {
        p.resolve(results.slice(at, at + p.items.length));
        at += p.items.length;
      }
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      // One caller's items must not fail the others': each is written again on its own.
      await Promise.all(
        batch.map((p) =>
          this.writeMany(p.items).then(
            (results) => p.resolve(results),
            (e: unknown) => p.reject(e),
          ),
        ),
      );
    }
  }
}
