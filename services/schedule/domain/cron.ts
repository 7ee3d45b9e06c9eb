import { DAY_MS, civilFromDays, daysFromCivil, monthLength, weekdayOfDays } from './civil.js';
import { type CronFields, type DomRule, type DowRule, parseCronFields } from './cron-syntax.js';
import { zoneOffsets } from './zone-offsets.js';

/**
 * A parsed cron expression (the language is in cron-syntax.ts and docs/schedules.md), compiled to
 * lookup tables. Fire times are wall-clock matches in a time zone, converted with Sluice's DST rules:
 * a wall time in a spring-forward gap fires moved forward by the gap, an ambiguous one at its first
 * occurrence, and an instant reached by two wall times fires once.
 */
export interface Cron extends CronFields {
  /** next[x]: the smallest allowed value >= x, or -1 (one slot past the field's end). */
  readonly nextSecond: Int8Array;
  readonly nextMinute: Int8Array;
  readonly nextHour: Int8Array;
  readonly nextMonth: Int8Array;
  /** Bit d (1-31) set when day d of the month fires; the latest month asked for. */
  readonly dayMasks: Map<number, number>;
}

function nextTable(values: readonly number[], size: number): Int8Array {
  const table = new Int8Array(size + 1).fill(-1);
  let next = -1;
  const allowed = new Set(values);
  for (let x = size - 1; x >= 0; x--) {
    if (allowed.has(x)) next = x;
    table[x] = next;
  }
  return table;
}

export function parseCron(source: string): Cron {
  const f = parseCronFields(source);
  return {
    ...f,
    nextSecond: nextTable(f.seconds, 60),
    nextMinute: nextTable(f.minutes, 60),
    nextHour: nextTable(f.hours, 24),
    nextMonth: nextTable(f.months, 13),
    dayMasks: new Map(),
  };
}

/** Quartz's W: the weekday nearest the day, not leaving the month (1st on a Saturday: Monday the 3rd). */
function nearestWeekday(day: number, weekday: number, last: number): number {
  if (weekday === 6) return day === 1 ? 3 : day - 1;
  if (weekday === 0) return day === last ? day - 2 : day + 1;
  return day;
}

function domMask(rule: DomRule, last: number, firstWeekday: number): number {
  let mask = 0;
  for (const d of rule.days) if (d <= last) mask |= 1 << d;
  for (const n of rule.fromLast) if (last - n >= 1) mask |= 1 << (last - n);
  const weekdayOf = (d: number) => (firstWeekday + d - 1) % 7;
  for (const d of rule.nearestWeekday) if (d <= last) mask |= 1 << nearestWeekday(d, weekdayOf(d), last);
  for (const n of rule.nearestWeekdayFromLast) {
    const d = last - n;
    if (d >= 1) mask |= 1 << nearestWeekday(d, weekdayOf(d), last);
  }
  return mask;
}

function dowMask(rule: DowRule, last: number, firstWeekday: number): number {
  let mask = 0;
  for (const w of rule.weekdays) for (let d = 1 + ((w - firstWeekday + 7) % 7); d <= last; d += 7) mask |= 1 << d;
  for (const { weekday, nth } of rule.nth) {
    const d = 1 + ((weekday - firstWeekday + 7) % 7) + 7 * (nth - 1);
    if (d <= last) mask |= 1 << d;
  }
  for (const w of rule.last) {
    const lastWeekday = (firstWeekday + last - 1) % 7;
    mask |= 1 << (last - ((lastWeekday - w + 7) % 7));
  }
  return mask;
}

/** The days of a month that fire, as bits 1-31. */
function dayMask(cron: Cron, year: number, month: number): number {
  const key = year * 16 + month;
  const known = cron.dayMasks.get(key);
  if (known !== undefined) return known;
  const last = monthLength(year, month);
  const all = (2 ** (last + 1) - 2) | 0;
  const first = weekdayOfDays(daysFromCivil(year, month, 1));
  const dom = cron.dom ? domMask(cron.dom, last, first) : all;
  const dow = cron.dow ? dowMask(cron.dow, last, first) : all;
  const mask = cron.domOrDow ? dom | dow : dom & dow;
  if (cron.dayMasks.size >= 256) cron.dayMasks.clear();
  cron.dayMasks.set(key, mask);
  return mask;
}

/** Calendar years a search covers before an expression is taken to never fire (the calendar repeats every 400). */
const SEARCH_YEARS = 401;

/**
 * The first wall time (zone-free ordinal, whole seconds) at or after `wall` that the expression
 * matches, or undefined past `limit` (a wall ordinal).
 */
export function nextWall(cron: Cron, wall: number, limit: number): number | undefined {
  let days = Math.floor(wall / DAY_MS);
  let rest = Math.ceil((wall - days * DAY_MS) / 1000);
  let { year, month, day } = civilFromDays(days);
  let hour = Math.floor(rest / 3600);
  rest -= hour * 3600;
  let minute = Math.floor(rest / 60);
  let second = rest - minute * 60;
  // A wall time of 24:00:00 (rounded up) is handled by the hour table: next day.
  const lastYear = Math.min(year + SEARCH_YEARS, cron.years ? cron.years[cron.years.length - 1]! : Infinity);
  for (;;) {
    if (year > lastYear) return undefined;
    if (cron.years && !cron.years.includes(year)) {
      const y = cron.years.find((v) => v > year);
      if (y === undefined) return undefined;
      year = y;
      month = 1;
      day = 1;
      hour = minute = second = 0;
    }
    const m = cron.nextMonth[month]!;
    if (m < 0) {
      year++;
      month = 1;
      day = 1;
      hour = minute = second = 0;
      continue;
    }
    if (m !== month) {
      month = m;
      day = 1;
      hour = minute = second = 0;
    }
    days = daysFromCivil(year, month, day);
    if (days * DAY_MS > limit) return undefined;
    const mask = day > 31 ? 0 : dayMask(cron, year, month) >>> day;
    if (mask === 0) {
      if (++month > 12) {
        year++;
        month = 1;
      }
      day = 1;
      hour = minute = second = 0;
      continue;
    }
    if ((mask & 1) === 0) {
      day += 31 - Math.clz32(mask & -mask);
      hour = minute = second = 0;
    }
    const h = cron.nextHour[hour]!;
    if (h < 0) {
      day++;
      hour = minute = second = 0;
      continue;
    }
    if (h !== hour) {
      hour = h;
      minute = second = 0;
    }
    const mi = cron.nextMinute[minute]!;
    if (mi < 0) {
      hour++;
      minute = second = 0;
      continue;
    }
    if (mi !== minute) {
      minute = mi;
      second = 0;
    }
    const s = cron.nextSecond[second]!;
    if (s < 0) {
      minute++;
      second = 0;
      continue;
    }
    return daysFromCivil(year, month, day) * DAY_MS + hour * 3_600_000 + minute * 60_000 + s * 1000;
  }
}

/**
 * The first fire time strictly after `after` (epoch ms) in the zone, or undefined when there is none
 * before `until` (epoch ms; default: the search horizon of 400 years).
 *
 * Wall times are walked in order and converted; the earliest instant wins. A wall time in a gap is
 * moved forward by the gap, past later wall times that exist (Lord Howe at 02:20 on its 30-minute
 * gap day becomes 02:50, after 02:40): those are looked at too before the earliest is returned.
 */
export function nextFireTime(
  cron: Cron,
  after: number,
  zone: string,
  until = Number.POSITIVE_INFINITY,
): number | undefined {
  const z = zoneOffsets(zone);
  // A wall time at or below after + the offset now cannot fire after `after`, except right after a
  // spring forward: a wall time in that gap, moved forward by it, can. While that can be, start from
  // after + the offset before the gap.
  const now = z.offsetAt(after);
  const before = z.offsetAt(after - DAY_MS);
  const low = before < now && z.offsetAt(after - (now - before)) !== now ? after + before : after + now;
  // Offsets stay within a day of UTC.
  const limit = until + 2 * DAY_MS;
  let wall = Math.floor(low / 1000) * 1000 + 1000;
  let best: number | undefined;
  let scanTo = Number.POSITIVE_INFINITY;
  for (;;) {
    const w = nextWall(cron, wall, limit);
    if (w === undefined || w >= scanTo) return best;
    const instant = z.instantOfWall(w);
    if (instant > after && (best === undefined || instant < best)) {
      if (best === undefined) {
        // How far a gap moved this wall time; later wall times within that distance may fire earlier.
        const moved = instant + z.offsetAt(instant) - w;
        if (moved <= 0) return instant;
        scanTo = w + moved;
      }
      best = instant;
    }
    wall = w + 1000;
  }
}
