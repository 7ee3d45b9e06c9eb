import type { InstanceRecord } from './model.js';

/** Writes many claims at once; answers, in order, each row inserted or undefined where the window was taken. */
export type ClaimMany = (instances: readonly InstanceRecord[]) => Promise<(InstanceRecord | undefined)[]>;

interface Pending {
  readonly instances: readonly InstanceRecord[];
  resolve(rows: (InstanceRecord | undefined)[]): void;
  reject(err: unknown): void;
}

/**
 * Gathers the claims asked for in one turn of the event loop (a timer pass firing many schedules at their
 * shared due time) into one store write, so a burst of due windows costs a few transactions rather than one
 * each. While a write is out, new claims gather for the next one; a write holds at most `maxBatch` windows
 * (a caller's claims are never split between writes, so one asking for more than that writes alone).
 */
export class ClaimBatcher {
  readonly #queue: Pending[] = [];
  #scheduled = false;
  #writing = false;

  constructor(
    private readonly claimMany: ClaimMany,
    private readonly maxBatch: number,
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1)
      throw new RangeError(`maxBatch must be an integer >= 1, got ${maxBatch}`);
  }

  /** Claims the windows together with whatever else is claimed in this turn. */
  claim(instances: readonly InstanceRecord[]): Promise<(InstanceRecord | undefined)[]> {
    if (instances.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#queue.push({ instances, resolve, reject });
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
        const batch: Pending[] = [this.#queue.shift()!];
        let size = batch[0]!.instances.length;
        while (this.#queue.length > 0 && size + this.#queue[0]!.instances.length <= this.maxBatch) {
          const next = this.#queue.shift()!;
          size += next.instances.length;
          batch.push(next);
        }
        await this.#write(batch);
      }
    } finally {
      this.#writing = false;
    }
  }

  async #write(batch: readonly Pending[]): Promise<void> {
    try {
      const rows = await this.claimMany(batch.flatMap((p) => p.instances));
      let at = 0;
      for (const p of batch) {
        p.resolve(rows.slice(at, at + p.instances.length));
        at += p.instances.length;
      }
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      // One caller's claims must not fail the others': each is written again on its own.
      await Promise.all(
        batch.map((p) =>
          this.claimMany(p.instances).then(
            (rows) => p.resolve(rows),
            (e: unknown) => p.reject(e),
          ),
        ),
      );
    }
  }
}
