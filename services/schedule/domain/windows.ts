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
  const { scheduleType, startTime, endTime } = input;
  // InLong spells units in either case ("h", "H"); interval 0 is its default for one round (O).
  const scheduleUnit = input.scheduleUnit.toUpperCase();
  const scheduleInterval = scheduleUnit === 'O' && input.scheduleInterval === 0 ? 1 : input.scheduleInterval;
  const timeZone = input.timeZone === '' ? 'UTC' : input.timeZone;
  if (scheduleType !== 0 && scheduleType !== 1)
    throw invalidArgument('schedule_type', '0 (normal) or 1 (crontab)', scheduleType);
  if (!Number.isSafeInteger(startTime) || startTime < 0)
    throw invalidArgument('start_time', 'epoch milliseconds >= 0', startTime);
  if (!Number.isSafeInteger(endTime) || endTime <= startTime)
    throw invalidArgument('end_time', `epoch milliseconds after start_time (${startTime})`, endTime);
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
  return fromLocal(addCalendar(anchor, spec.unit as 'D' | 'W' | 'M' | 'Y', k * spec.interval), spec.timeZone);
}

/**
 * The windows that end after `after` (default: from the first), in order, each [start, end) with the
 * last cut at endTime: they tile [startTime, endTime) with no gap and no overlap. A cron schedule's
 * edges are its start, every fire time inside (start, end), and its end.
 */
export function* windowsAfter(spec: WindowSpec, after = Number.NEGATIVE_INFINITY): Generator<Window> {
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
    // Jump close to `after`, then step back until edge k is at or before it.
    k = Math.max(0, Math.floor((after - spec.startTime) / (MIN_STEP_MS[spec.unit] * spec.interval)));
    while (k > 0 && edge(spec, k) > after) k--;
  }
  for (;;) {
    const start = edge(spec, k);
    if (start >= spec.endTime) return;
    const end = Math.min(edge(spec, k + 1), spec.endTime);
    if (end > after) yield { start, end };
    k++;
  }
}

/** The last cron edge at or before t (the schedule's start when no fire time is in between). */
function lastEdgeAtOrBefore(spec: WindowSpec, t: number): number {
  const cron = spec.cron!;
  // Fire times are found forward only: look back over growing spans until one lies in [from, t].
  for (let span = 3_600_000; ; span *= 4) {
    const from = Math.max(spec.startTime, t - span);
    let last: number | undefined;
    for (
      let f = nextFireTime(cron, from, spec.timeZone, t);
      f !== undefined && f <= t;
      f = nextFireTime(cron, f, spec.timeZone, t)
    )
      last = f;
    if (last !== undefined) return last;
    if (from === spec.startTime) return spec.startTime;
  }
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
