import schedule from 'node-schedule';
import type { Clock } from './domain/clock.js';

/** The wall clock; timers through node-schedule, which keeps far-off dates (beyond setTimeout's 24.8 days) exact. */
export const systemClock: Clock = {
  now: () => Date.now(),
  scheduleAt(at, fn) {
    if (at <= Date.now()) {
      const t = setImmediate(fn);
      return { cancel: () => clearImmediate(t) };
    }
    const job = schedule.scheduleJob(new Date(at), fn);
    return { cancel: () => void job?.cancel() };
  },
};
