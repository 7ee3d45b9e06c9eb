import { invalidArgument } from 'sluice/sdk';
import { daysInMonth, fromLocal, offsetAt, toLocal, wallMs } from './zoned-time.js';

/**
 * A parsed cron expression: Quartz style `sec min hour day-of-month month day-of-week [year]`, or the
 * 5-field Unix style `min hour day-of-month month day-of-week` (seconds 0). Fire times are computed in
 * a time zone with the DST rules of zoned-time.ts, and each instant fires once.
 */
export interface Cron {
  readonly source: string;
  readonly seconds: ReadonlySet<number>;
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  readonly years?: ReadonlySet<number>;
  /** Day rules; a day matches when `dayMatches` says so. */
  readonly dom: DayRule;
  readonly dow: DayRule;
  /** Unix semantics when both are restricted: either may match. */
  readonly domOrDow: boolean;
}

type DayRule =
  | { readonly kind: 'any' }
  | { readonly kind: 'set'; readonly values: ReadonlySet<number> }
  | { readonly kind: 'last-day' }
  | { readonly kind: 'nth-weekday'; readonly weekday: number; readonly nth: number }
  | { readonly kind: 'last-weekday'; readonly weekday: number };

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

function fail(field: string, expected: string, got: string): never {
  throw invalidArgument('crontab_expression', `${expected} in the ${field} field`, got);
}

/** Parses one field into the set of values it allows. `names` map to min + index. */
function parseSet(
  text: string,
  field: string,
  min: number,
  max: number,
  names?: readonly string[],
  nameBase = min,
): Set<number> {
  const out = new Set<number>();
  const value = (s: string): number => {
    const upper = s.toUpperCase();
    const byName = names?.indexOf(upper) ?? -1;
    if (byName >= 0) return byName + nameBase;
    if (!/^\d+$/.test(s))
      fail(field, `a number from ${min} to ${max}${names ? ` or a name (${names.join(', ')})` : ''}`, s);
    const n = Number(s);
    if (n < min || n > max) fail(field, `a number from ${min} to ${max}`, s);
    return n;
  };
  for (const part of text.split(',')) {
    if (part === '') fail(field, 'a value', text);
    const [range, stepText] = part.split('/') as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (stepText !== undefined && (!/^\d+$/.test(stepText) || step < 1)) fail(field, 'a step of 1 or more', part);
    let lo: number;
    let hi: number;
    if (range === '*' || range === '?') {
      lo = min;
      hi = max;
    } else if (range.includes('-')) {
      const [a, b] = range.split('-') as [string, string];
      lo = value(a);
      hi = value(b);
      if (lo > hi) fail(field, 'a range low-high', part);
    } else {
      lo = value(range);
      hi = stepText === undefined ? lo : max;
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

/** Parses and checks a cron expression; INVALID_ARGUMENT naming crontab_expression otherwise. */
export function parseCron(source: string): Cron {
  const fields = source.trim().split(/\s+/);
  const quartz = fields.length === 6 || fields.length === 7;
  if (!quartz && fields.length !== 5) {
    throw invalidArgument(
      'crontab_expression',
      'a Quartz cron of 6 or 7 fields (sec min hour day-of-month month day-of-week [year]) or a 5-field cron',
      source,
    );
  }
  const [sec, min, hour, dom, month, dow, year] = quartz ? fields : ['0', ...fields];
  const domAny = dom === '*' || dom === '?';
  const dowAny = dow === '*' || dow === '?';
  if (quartz && !domAny && !dowAny) {
    fail('day-of-month/day-of-week', "'?' in one of them (Quartz does not combine both)", `${dom} ${dow}`);
  }
  // Quartz numbers weekdays 1-7 from Sunday; Unix cron 0-7 with 0 and 7 both Sunday.
  const toSunday0 = (n: number) => (quartz ? n - 1 : n % 7);
  const dowRule = (text: string): DayRule => {
    if (text === '*' || text === '?') return { kind: 'any' };
    const weekday = (s: string) => {
      const set = parseSet(s, 'day-of-week', quartz ? 1 : 0, 7, DAYS, quartz ? 1 : 0);
      if (set.size !== 1) fail('day-of-week', 'one weekday', s);
      return toSunday0([...set][0]!);
    };
    const nth = /^(\w+)#([1-5])$/.exec(text);
    if (nth) return { kind: 'nth-weekday', weekday: weekday(nth[1]!), nth: Number(nth[2]) };
    const last = /^(\w+)L$/i.exec(text);
    if (last) return { kind: 'last-weekday', weekday: weekday(last[1]!) };
    const set = parseSet(text, 'day-of-week', quartz ? 1 : 0, 7, DAYS, quartz ? 1 : 0);
    return { kind: 'set', values: new Set([...set].map(toSunday0)) };
  };
  const domRule = (text: string): DayRule => {
    if (text === '*' || text === '?') return { kind: 'any' };
    if (text.toUpperCase() === 'L') return { kind: 'last-day' };
    return { kind: 'set', values: parseSet(text, 'day-of-month', 1, 31) };
  };
  return {
    source,
    seconds: parseSet(sec!, 'seconds', 0, 59),
    minutes: parseSet(min!, 'minutes', 0, 59),
    hours: parseSet(hour!, 'hours', 0, 23),
    months: parseSet(month!, 'month', 1, 12, MONTHS, 1),
    ...(year !== undefined && year !== '*' && year !== '?' ? { years: parseSet(year, 'year', 1970, 2199) } : {}),
    dom: domRule(dom!),
    dow: dowRule(dow!),
    domOrDow: !quartz && !domAny && !dowAny,
  };
}

/** Whether a day rule holds; `value` is the day of month for day-of-month rules, the weekday (0 = Sunday) for day-of-week rules. */
function ruleMatches(rule: DayRule, value: number, year: number, month: number, day: number, weekday: number): boolean {
  switch (rule.kind) {
    case 'any':
      return true;
    case 'set':
      return rule.values.has(value);
    case 'last-day':
      return day === daysInMonth(year, month);
    case 'nth-weekday':
      return weekday === rule.weekday && Math.ceil(day / 7) === rule.nth;
    case 'last-weekday':
      return weekday === rule.weekday && day + 7 > daysInMonth(year, month);
  }
}

function dayMatches(cron: Cron, year: number, month: number, day: number): boolean {
  if (!cron.months.has(month) || (cron.years && !cron.years.has(year))) return false;
  const weekday = new Date(wallMs({ year, month, day, hour: 0, minute: 0, second: 0, millisecond: 0 })).getUTCDay();
  const domOk = ruleMatches(cron.dom, day, year, month, day, weekday);
  const dowOk = ruleMatches(cron.dow, weekday, year, month, day, weekday);
  return cron.domOrDow ? domOk || dowOk : domOk && dowOk;
}

const sorted = (s: ReadonlySet<number>) => [...s].sort((a, b) => a - b);

const DAY_MS = 86_400_000;

/** How far ahead a fire time is looked for before the expression is taken to never fire again. */
const SEARCH_DAYS = 366 * 30;

/**
 * The first fire time strictly after `after` (epoch ms) in the zone, or undefined when there is none
 * within the search horizon. Each wall-clock match is converted with the DST rules, so a time in a
 * spring-forward gap fires at the shifted instant, an ambiguous one at its first occurrence, and an
 * instant reached by two wall-clock times fires once.
 */
export function nextFireTime(cron: Cron, after: number, zone: string): number | undefined {
  const hours = sorted(cron.hours);
  const minutes = sorted(cron.minutes);
  const seconds = sorted(cron.seconds);
  const start = toLocal(after, zone);
  // Every instant near `after` is its wall time minus one of the offsets in force around it, so a wall
  // time at or below this one cannot be after `after`: those are skipped by arithmetic alone.
  const lowWall = after + Math.min(offsetAt(after - DAY_MS, zone), offsetAt(after + DAY_MS, zone));
  const firstDay = wallMs({ ...start, hour: 0, minute: 0, second: 0, millisecond: 0 });
  // The previous day too: a gap can move a wall time of the previous local day past `after`.
  for (let i = -1; i < SEARCH_DAYS; i++) {
    const dayWall = firstDay + i * DAY_MS;
    if (dayWall + DAY_MS <= lowWall) continue;
    const d = new Date(dayWall);
    const year = d.getUTCFullYear();
    const month = d.getUTCMonth() + 1;
    const day = d.getUTCDate();
    if (cron.years && year > Math.max(...cron.years)) return undefined;
    if (!dayMatches(cron, year, month, day)) continue;
    for (const hour of hours) {
      const hourWall = dayWall + hour * 3_600_000;
      if (hourWall + 3_600_000 <= lowWall) continue;
      for (const minute of minutes) {
        const minuteWall = hourWall + minute * 60_000;
        if (minuteWall + 60_000 <= lowWall) continue;
        for (const second of seconds) {
          if (minuteWall + second * 1000 <= lowWall) continue;
          const instant = fromLocal({ year, month, day, hour, minute, second, millisecond: 0 }, zone);
          if (instant > after) return instant;
        }
      }
    }
  }
  return undefined;
}
