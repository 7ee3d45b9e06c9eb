import type { InstanceRecord, InstanceState, InstanceTrigger } from './model.js';
import { type Window, type WindowSpec, windowsAfter } from './windows.js';

export interface FiringRules {
  readonly spec: WindowSpec;
  readonly delayMs: number;
  /** END: due when the window has closed (default); START: InLong's Quartz behaviour. */
  readonly alignment: 'END' | 'START';
  readonly catchUp: { readonly mode: 'ALL' | 'LATEST' | 'NONE'; readonly windowMs: number };
  /** 0 independent, 1 each waits for the previous to succeed, 2 up to parallelism at once. */
  readonly selfDepend: 0 | 1 | 2;
  readonly parallelism: number;
}

export interface PlanInput {
  readonly rules: FiringRules;
  readonly now: number;
  /**
   * The group's latest window the schedule itself fired or skipped (trigger SCHEDULE or CATCH_UP): the
   * watermark. A window run ahead of it (TriggerWindow, Backfill, an external submission) does not move it.
   */
  readonly last?: InstanceRecord;
  /**
   * The windows after `last` that have a row already (run ahead of the schedule), by start, in order, with
   * their states: not fired again; under selfDepend 1 the one just before the next window counts as its previous.
   */
  readonly claimed?: ReadonlyMap<number, InstanceState>;
  /** Instances of the group that are scheduled, dispatched or running. */
  readonly active: number;
  /** How late a window may fire and still count as on time rather than missed. */
  readonly graceMs: number;
  /**
   * At most this many due windows per plan (default: no limit): the rest are due at once (nextDueTime is
   * `now`), so a long catch-up is fired in bounded batches rather than in one call.
   */
  readonly maxFire?: number;
}

export interface PlannedWindow extends Window {
  readonly dueTime: number;
  readonly trigger: InstanceTrigger;
}

export interface Plan {
  /** Windows to claim and dispatch now, oldest first. */
  readonly fire: readonly PlannedWindow[];
  /** Missed windows the catch-up policy leaves out: recorded as SKIPPED (at most MAX_SKIP_ROWS of them, the newest). */
  readonly skip: readonly PlannedWindow[];
  /** How many windows were skipped in all (may exceed skip.length). */
  readonly skippedCount: number;
  /** When to look again: the next window's due time; undefined when the schedule is exhausted or waits for a job to end. */
  readonly nextDueTime?: number;
  /** True when due windows wait for running ones (selfDepend 1 or 2): a job's end should trigger another plan. */
  readonly waiting: boolean;
}

/** Skipped windows beyond this many are not written one by one; Backfill MISSING still finds them. */
export const MAX_SKIP_ROWS = 1000;

export function dueTime(rules: FiringRules, w: Window): number {
  return (rules.alignment === 'START' ? w.start : w.end) + rules.delayMs;
}

/**
 * Decides what a schedule fires now. Pure: the caller claims the windows in the ledger, and only the
 * caller that claims a window dispatches it, so running this on several replicas at once is safe.
 */
export function planDue(input: PlanInput): Plan {
  const { rules, now, last, active, graceMs } = input;
  // LATEST keeps only the newest due window, so it has to see them all.
  const maxFire =
    rules.catchUp.mode === 'LATEST' ? Number.POSITIVE_INFINITY : (input.maxFire ?? Number.POSITIVE_INFINITY);
  const { spec } = rules;
  const watermark = last ? last.windowEnd : spec.startTime;
  const due: PlannedWindow[] = [];
  let nextDueTime: number | undefined;
  let skippedCount = 0;
  const skipped: PlannedWindow[] = [];

  // Windows whose due time is before `keepFrom` are missed and left out by the policy; find the first
  // window worth looking at without walking every window of a long downtime.
  const onTimeFrom = now - graceMs;
  // The policy is for missed windows only: a window on time fires whatever catch_up.window_ms says.
  const keepFrom =
    rules.catchUp.mode === 'ALL'
      ? rules.catchUp.windowMs > 0
        ? Math.min(now - rules.catchUp.windowMs, onTimeFrom)
        : Number.NEGATIVE_INFINITY
      : rules.catchUp.mode === 'NONE'
        ? onTimeFrom
        : Number.NEGATIVE_INFINITY;

  const plan = (w: Window): PlannedWindow => {
    const d = dueTime(rules, w);
    return { ...w, dueTime: d, trigger: d < onTimeFrom ? 'CATCH_UP' : 'SCHEDULE' };
  };

  for (const w of windowsAfter(spec, watermark)) {
    if (w.start < watermark) continue; // an update moved the edges: never re-read a fired slice
    if (input.claimed?.has(w.start)) continue; // run already, ahead of the schedule
    const p = plan(w);
    if (p.dueTime > now) {
      nextDueTime = p.dueTime;
      break;
    }
    if (due.length >= maxFire) {
      nextDueTime = now; // more is due: the next batch
      break;
    }
    if (p.dueTime < keepFrom) {
      skippedCount++;
      skipped.push(p);
      if (skipped.length > MAX_SKIP_ROWS) skipped.shift();
      continue;
    }
    due.push(p);
  }
  if (rules.catchUp.mode === 'LATEST' && due.length > 1) {
    // Missed windows give way to the newest due one; windows on time all fire.
    const firstOnTime = due.findIndex((p) => p.dueTime >= onTimeFrom);
    const older = due.splice(0, firstOnTime === -1 ? due.length - 1 : firstOnTime);
    skippedCount += older.length;
    skipped.push(...older.slice(-MAX_SKIP_ROWS));
    skipped.splice(0, Math.max(0, skipped.length - MAX_SKIP_ROWS));
  }

  let fire: PlannedWindow[];
  if (rules.selfDepend === 1) {
    // The previous window: the schedule's last, or a window run ahead of it just before the next one.
    let previous = last?.state;
    const next = due[0];
    if (next && input.claimed)
      for (const [start, state] of input.claimed) {
        if (start >= next.start) break;
        previous = state;
      }
    const blocked = active > 0 || (previous !== undefined && previous !== 'SUCCEEDED' && previous !== 'SKIPPED');
    fire = blocked ? [] : due.slice(0, 1);
  } else if (rules.selfDepend === 2) {
    fire = due.slice(0, Math.max(0, rules.parallelism - active));
  } else {
    fire = due;
  }
  const waiting = fire.length < due.length;
  return {
    fire,
    skip: skipped,
    skippedCount,
    ...(waiting ? {} : nextDueTime !== undefined ? { nextDueTime } : {}),
    waiting,
  };
}
