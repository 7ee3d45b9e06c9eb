import { invalidArgument } from 'sluice/sdk';
import { type Cron, nextFireTime, parseCron } from './cron.js';
import { type LocalTime, daysInMonth, formatLocal, fromLocal, isValidTimeZone, toLocal } from './zoned-time.js';

/** Schedule units: years, months, weeks, days, hours, minutes (I), seconds, one round (O). */
export type Unit = 'Y' | 'M' | 'W' | 'D' | 'H' | 'I' | 'S' | 'O';
export const UNITS: readonly Unit[] = ['Y', 'M', 'W', 'D', 'H', 'I', 'S', 'O'];

/** What cuts a schedule's [startTime, endTime) into windows. */
export interface WindowSpec {
  /** 0: unit + interval; 1: cron. */
  readonly scheduleType: 0 | 1;
  readonly unit: Unit;
  readonly interval: number;
  readonly startTime: number;
  readonly endTime: number;
  readonly timeZone: string;
  readonly cron?: Cron;
}

export interface Window {
  readonly start: number;
  readonly end: number;
}

const FIXED_MS: Partial<Record<Unit, number>> = { S: 1000, I: 60_000, H: 3_600_000 };
/** A lower bound of one step, to jump near a time without walking from the anchor. */
const MIN_STEP_MS: Record<Unit, number> = {
  S: 1000,
  I: 60_000,
  H: 3_600_000,
  D: 23 * 3_600_000,
  W: 7 * 23 * 3_600_000,
  M: 28 * 23 * 3_600_000,
  Y: 365 * 23 * 3_600_000,
  O: 1,
};

/**
 * The latest instant a schedule may name (start_time, end_time), and the bound of every other time a request
 * gives (from_time, window_start, …) in either direction: JavaScript's Date range, ±8.64e15 ms (year 275760).
 * Past it no wall-clock time can be shown, so a window there could be claimed but never answered.
 */
export const MAX_TIME_MS = 8.64e15;

/** Builds a spec, checking every field; INVALID_ARGUMENT names the field. */
export function windowSpec(input: {
  scheduleType: number;
  scheduleUnit: string;
  scheduleInterval: number;
  startTime: number;
  endTime: number;
  timeZone: string;
  crontabExpression: string;
}): WindowSpec {
  const { scheduleType, startTime } = input;
  // InLong spells units in either case ("h", "H"); interval 0 is its default for one round (O).
  const scheduleUnit = input.scheduleUnit.toUpperCase();
  const scheduleInterval = scheduleUnit === 'O' && input.scheduleInterval === 0 ? 1 : input.scheduleInterval;
  const timeZone = input.timeZone === '' ? 'UTC' : input.timeZone;
  if (scheduleType !== 0 && scheduleType !== 1)
    throw invalidArgument('schedule_type', '0 (normal) or 1 (crontab)', scheduleType);
  if (!Number.isSafeInteger(startTime) || startTime < 0 || startTime >= MAX_TIME_MS)
    throw invalidArgument(
      'start_time',
      `epoch milliseconds from 0 to below ${MAX_TIME_MS} (the JavaScript date range)`,
      startTime,
    );
  if (!Number.isSafeInteger(input.endTime) || input.endTime <= startTime)
    throw invalidArgument('end_time', `epoch milliseconds after start_time (${startTime})`, input.endTime);
  // An end past the date range (a "never" such as 2^53 - 1, stored by earlier versions too) is the range's end:
  // no window past it could be shown or claimed.
  const endTime = Math.min(input.endTime, MAX_TIME_MS);
  if (!isValidTimeZone(timeZone))
    throw invalidArgument('time_zone', 'an IANA time zone such as Europe/Berlin', input.timeZone);
  if (scheduleType === 1) {
    return {
      scheduleType: 1,
      unit: 'O',
      interval: 1,
      startTime,
      endTime,
      timeZone,
      cron: parseCron(input.crontabExpression),
    };
  }
  if (!(UNITS as readonly string[]).includes(scheduleUnit))
    throw invalidArgument('schedule_unit', `one of ${UNITS.join(' ')} (either case)`, input.scheduleUnit);
  if (!Number.isSafeInteger(scheduleInterval) || scheduleInterval < 1)
    throw invalidArgument('schedule_interval', 'an integer >= 1 (0 only with unit O)', scheduleInterval);
  return { scheduleType: 0, unit: scheduleUnit as Unit, interval: scheduleInterval, startTime, endTime, timeZone };
}

/** Adds calendar units to a wall-clock time, clamping the day to the month's end. */
function addCalendar(anchor: LocalTime, unit: 'D' | 'W' | 'M' | 'Y', amount: number): LocalTime {
  if (unit === 'D' || unit === 'W') {
    const d = new Date(0);
    d.setUTCFullYear(anchor.year, anchor.month - 1, anchor.day + amount * (unit === 'W' ? 7 : 1));
    return { ...anchor, year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
  }
  const months = anchor.year * 12 + (anchor.month - 1) + amount * (unit === 'Y' ? 12 : 1);
  const year = Math.floor(months / 12);
  const month = (months % 12) + 1;
  return { ...anchor, year, month, day: Math.min(anchor.day, daysInMonth(year, month)) };
}

/**
 * Edge k of a unit schedule (k >= 0), before cutting at endTime. S, I, H are fixed durations from the
 * start; D, W, M, Y are the start's wall-clock time plus k steps in the zone, computed from the anchor
 * each time (not by repeated addition), so a clamped Feb 28 does not drag March to the 28th.
 */
export function edge(spec: WindowSpec, k: number): number {
  const fixed = FIXED_MS[spec.unit];
  if (fixed !== undefined) return spec.startTime + k * spec.interval * fixed;
  if (spec.unit === 'O') return k === 0 ? spec.startTime : spec.endTime;
  // The first edge is the start itself, even when its wall time is ambiguous (the second pass of a
  // fall-back hour): reading it back through the wall clock would move it to the first pass.
  if (k === 0) return spec.startTime;
  const anchor = toLocal(spec.startTime, spec.timeZone);
  const local = addCalendar(anchor, spec.unit as 'D' | 'W' | 'M' | 'Y', k * spec.interval);
  // An edge past the years a date can hold (a huge interval) lies past any end_time.
  if (!Number.isFinite(local.year) || !Number.isFinite(local.day) || Math.abs(local.year) > CALENDAR_YEARS)
    return Number.POSITIVE_INFINITY;
  return fromLocal(local, spec.timeZone);
}

/** Years beyond which a calendar edge is past any end_time (MAX_TIME_MS is in year 275760). */
const CALENDAR_YEARS = 280_000;

/**
 * The windows that end after `after` (default: from the first), in order, each [start, end) with the
 * last cut at endTime: they tile [startTime, endTime) with no gap and no overlap. A cron schedule's
 * edges are its start, every fire time inside (start, end), and its end.
 */
export function* windowsAfter(spec: WindowSpec, after = Number.NEGATIVE_INFINITY): Generator<Window> {
  // No window ends after the schedule's end (and a time far past it need not be walked to).
  if (!(after < spec.endTime)) return;
  if (spec.cron) {
    let start = spec.startTime;
    // Jump to the window holding `after`: the last fire time at or before it is its start.
    if (after > start) start = lastEdgeAtOrBefore(spec, after);
    while (start < spec.endTime) {
      const next = nextFireTime(spec.cron, start, spec.timeZone, spec.endTime);
      const end = next === undefined || next > spec.endTime ? spec.endTime : next;
      if (end > after) yield { start, end };
      start = end;
    }
    return;
  }
  let k = 0;
  if (after > spec.startTime && spec.unit !== 'O') {
    // The last edge at or before `after`: at most this many steps away (a step is at least MIN_STEP_MS), and
    // edges grow with k, so bisect (a far `after` would otherwise be walked back step by step).
    let hi = Math.max(0, Math.floor((after - spec.startTime) / (MIN_STEP_MS[spec.unit] * spec.interval)));
    if (edge(spec, hi) <= after) k = hi;
    else
      while (hi - k > 1) {
        const mid = k + Math.floor((hi - k) / 2);
        if (edge(spec, mid) <= after) k = mid;
        else hi = mid;
      }
  }
  for (;;) {
    const start = edge(spec, k);
    if (start >= spec.endTime) return;
    const end = Math.min(edge(spec, k + 1), spec.endTime);
    if (end > after) yield { start, end };
    k++;
  }
}

/**
 * The last cron edge at or before t (the schedule's start when no fire time is in between), without listing
 * the fire times in between: "is there a fire time in (x, t]" is monotone in x (true up to the last fire time,
 * false from it on), and one nextFireTime call answers it. The search steps back from t over spans growing
 * fourfold until the answer is yes, then bisects the last step: at most about 2 × log2(t − start) calls
 * (< 120 for any time JavaScript's Date can hold), each bounded by nextFireTime's own search horizon, whether
 * the expression fires every second or once in centuries (a year field: "* * * * * ? 2020-2029" asked about
 * 2099 used to list every second of the decade).
 */
export function lastEdgeAtOrBefore(spec: WindowSpec, t: number): number {
  const cron = spec.cron!;
  const firesIn = (x: number): number | undefined => {
    const f = nextFireTime(cron, x, spec.timeZone, t);
    return f !== undefined && f <= t ? f : undefined;
  };
  if (t <= spec.startTime) return spec.startTime;
  // hi: no fire time in (hi, t]; lo: some fire time in (lo, t].
  let hi = t;
  let lo = t;
  for (let span = 3_600_000; ; span *= 4) {
    lo = Math.max(spec.startTime, t - span);
    if (firesIn(lo) !== undefined) break;
    if (lo === spec.startTime) return spec.startTime;
    hi = lo;
  }
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (firesIn(mid) !== undefined) lo = mid;
    else hi = mid;
  }
  // The first fire time after lo is in (lo, t] and none is in (lo + 1, t]: it is lo + 1, the last one.
  return firesIn(lo)!;
}

/** The window [start, end) holding t, or undefined outside [startTime, endTime). */
export function windowAt(spec: WindowSpec, t: number): Window | undefined {
  if (t < spec.startTime || t >= spec.endTime) return undefined;
  const first = windowsAfter(spec, t).next();
  return first.done ? undefined : first.value;
}

/** A window with its instants in the schedule's zone, for previews. */
export function describeWindow(
  spec: WindowSpec,
  w: Window,
  due: number,
): { start: number; end: number; dueTime: number; startLocal: string; endLocal: string; dueLocal: string } {
  return {
    start: w.start,
    end: w.end,
    dueTime: due,
    startLocal: formatLocal(w.start, spec.timeZone),
    endLocal: formatLocal(w.end, spec.timeZone),
    dueLocal: formatLocal(due, spec.timeZone),
  };
}
