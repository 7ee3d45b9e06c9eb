/**
 * Local calendar time in an IANA time zone, from Intl alone (no tz database of our own). The two DST
 * rules every Sluice engine follows: a local time that does not exist (spring forward) moves forward
 * by the gap; an ambiguous local time (fall back) takes its first occurrence.
 */

/** A wall-clock time; month is 1-12. */
export interface LocalTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  readonly millisecond: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** True when the zone is a time zone this runtime knows. */
export function isValidTimeZone(zone: string): boolean {
  if (zone === '') return false;
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

/** The wall-clock time at an instant in a zone. */
export function toLocal(epochMs: number, zone: string): LocalTime {
  const whole = Math.floor(epochMs / 1000) * 1000;
  const parts = formatter(zone).formatToParts(new Date(whole));
  const get = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)?.value);
  const era = parts.find((p) => p.type === 'era')?.value;
  const y = get('year');
  return {
    year: era === 'BC' || era === 'B' ? 1 - y : y,
    month: get('month'),
    day: get('day'),
    hour: get('hour'),
    minute: get('minute'),
    second: get('second'),
    millisecond: epochMs - whole,
  };
}

/** Local fields read as if they were UTC: the zone-free ordinal of a wall-clock time. */
export function wallMs(t: LocalTime): number {
  const d = new Date(0);
  d.setUTCFullYear(t.year, t.month - 1, t.day);
  d.setUTCHours(t.hour, t.minute, t.second, t.millisecond);
  return d.getTime();
}

/** The zone's offset from UTC at an instant, in ms. */
export function offsetAt(epochMs: number, zone: string): number {
  const local = toLocal(epochMs, zone);
  return wallMs({ ...local, millisecond: 0 }) - Math.floor(epochMs / 1000) * 1000;
}

const HOUR = 3_600_000;

/**
 * The instant of a wall-clock time in a zone. A time in a spring-forward gap moves forward by the gap
 * (02:30 that never happens becomes 03:30); a time that happens twice takes the first occurrence.
 */
export function fromLocal(t: LocalTime, zone: string): number {
  const wall = wallMs(t);
  // Offsets a day around cover every transition near the wall time: at most two distinct values.
  const before = offsetAt(wall - 24 * HOUR, zone);
  const after = offsetAt(wall + 24 * HOUR, zone);
  const candidates = [...new Set([before, after, offsetAt(wall, zone)])]
    .map((o) => wall - o)
    .filter((u) => wall - offsetAt(u, zone) === u)
    .sort((a, b) => a - b);
  if (candidates.length > 0) return candidates[0]!;
  // In a gap: read the wall time with the offset in force before the transition.
  return wall - before;
}

/** Days in a month (month 1-12) of the proleptic Gregorian calendar. */
export function daysInMonth(year: number, month: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, 0);
  return d.getUTCDate();
}

/** ISO 8601 with the zone's offset, e.g. 2026-03-29T03:00:00.000+02:00. */
export function formatLocal(epochMs: number, zone: string): string {
  const t = toLocal(epochMs, zone);
  const off = offsetAt(epochMs, zone) / 60_000;
  const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');
  const sign = off < 0 ? '-' : '+';
  const year = t.year < 0 || t.year > 9999 ? `${t.year < 0 ? '-' : '+'}${pad(t.year, 6)}` : pad(t.year, 4);
  return `${year}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}.${pad(t.millisecond, 3)}${sign}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}
