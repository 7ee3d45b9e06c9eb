/**
 * At most `max` tasks at once; the rest wait in arrival order. The schedule service runs its FireDue calls
 * through one: arming 100,000 schedules at start asks for that many at once, and unbounded they would queue on
 * the store's connection pool until its wait runs out (the calls then fail UNAVAILABLE, start included).
 */
export class Limiter {
  #active = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #idle: (() => void)[] = [];

  constructor(private readonly max: number) {}

  /** Whether a task runs or waits. */
  get busy(): boolean {
    return this.#active > 0;
  }

  /** Resolves once no task runs or waits (at once when none does). */
  idle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#active++;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter, so #active counts it already.
      const next = this.#waiting.shift();
      if (next) next();
      else if (--this.#active === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }
}
