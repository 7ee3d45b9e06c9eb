import type { Clock } from './domain/clock.js';

/** setTimeout's limit (about 24.8 days): longer waits are chained. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * The wall clock, with one plain timer per wake-up. Timers longer than setTimeout's limit are chained,
 * and a timer that wakes early (the chain, or a clock step) checks Date.now() and waits again.
 *
 * Sluice used node-schedule here first; at 10,000 and 100,000 schedules it was the bottleneck:
 * arming timers due at the same instant took quadratic time (10,000 aligned schedules took 45-69 s to
 * fire), it fired one job per event-loop turn, and it did O(N) array work per fire. See
 * docs/benchmarks.md (schedule) for the figures.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  scheduleAt(at, fn) {
    let timer: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = () => {
      if (cancelled) return;
      const wait = at - Date.now();
      if (wait <= 0) {
        fn();
        return;
      }
      timer = setTimeout(arm, Math.min(wait, MAX_DELAY));
    };
    arm();
    return {
      cancel() {
        cancelled = true;
        clearTimeout(timer);
      },
    };
  },
};
