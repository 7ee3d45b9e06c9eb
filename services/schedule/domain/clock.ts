/** Time as the schedule service sees it; tests drive a ManualClock so a year of windows runs in seconds. */
export interface Clock {
  now(): number;
  /** Runs fn at `at` (epoch ms), or at once when `at` has passed. */
  scheduleAt(at: number, fn: () => void): { cancel(): void };
}

/** A clock the tests move by hand; due timers run in time order, each after the previous one's promises settle. */
export class ManualClock implements Clock {
  #now: number;
  #timers: { at: number; seq: number; fn: () => void; cancelled: boolean }[] = [];
  #seq = 0;

  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  scheduleAt(at: number, fn: () => void): { cancel(): void } {
    const timer = { at, seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Pending timers (not cancelled). */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /**
   * Moves time to `to`, running every timer due on the way at its own time. `settle` is awaited after
   * each timer so the work it started (store writes, dispatch) finishes before time moves on.
   */
  async advanceTo(to: number, settle: () => Promise<void> = flush): Promise<void> {
    // Work started before the call (e.g. an engine arming its first timer) lands before time moves.
    await settle();
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.at > to) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await settle();
    }
    this.#now = Math.max(this.#now, to);
    await settle();
  }

  advance(ms: number, settle?: () => Promise<void>): Promise<void> {
    return this.advanceTo(this.#now + ms, settle);
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}
