/**
 * Local calendar time in an IANA time zone, from Intl alone (no tz database of our own). The two DST
 * rules every Sluice engine follows: a local time that does not exist (spring forward) moves forward
 * by the gap; an ambiguous local time (fall back) takes its first occurrence.
 */
import { DAY_MS, civilFromDays, daysFromCivil, monthLength } from './civil.js';
import { zoneOffsets } from './zone-offsets.js';

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

/** True when the zone is a time zone this runtime knows. */
export function isValidTimeZone(zone: string): boolean {
  if (zone === '') return false;
  try {
    zoneOffsets(zone);
    return true;
  } catch {
    return false;
  }
}

/** The fields of a wall-clock time given as its zone-free ordinal (see wallMs). */
export function fromWallMs(wall: number): LocalTime {
  const days = Math.floor(wall / DAY_MS);
  let rest = wall - days * DAY_MS;
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  return { ...civilFromDays(days), hour, minute, second, millisecond: rest - second * 1000 };
}

/** The wall-clock time at an instant in a zone. */
export function toLocal(epochMs: number, zone: string): LocalTime {
  return fromWallMs(epochMs + offsetAt(epochMs, zone));
}

/** Local fields read as if they were UTC: the zone-free ordinal of a wall-clock time. */
export function wallMs(t: LocalTime): number {
  return (
    daysFromCivil(t.year, t.month, t.day) * DAY_MS +
    t.hour * 3_600_000 +
    t.minute * 60_000 +
    t.second * 1000 +
    t.millisecond
  );
}

/** The zone's offset from UTC at an instant, in ms. */
export function offsetAt(epochMs: number, zone: string): number {
  return zoneOffsets(zone).offsetAt(epochMs);
}

/**
 * The instant of a wall-clock ordinal in a zone. A time in a spring-forward gap moves forward by the
 * gap (02:30 that never happens becomes 03:30); a time that happens twice takes the first occurrence.
 */
export function instantOfWall(wall: number, zone: string): number {
  return zoneOffsets(zone).instantOfWall(wall);
}

/** The instant of a wall-clock time in a zone, by the rules of instantOfWall. */
export function fromLocal(t: LocalTime, zone: string): number {
  return instantOfWall(wallMs(t), zone);
}

/** Days in a month (month 1-12) of the proleptic Gregorian calendar. */
export function daysInMonth(year: number, month: number): number {
  return monthLength(year, month);
}

/** ISO 8601 with the zone's offset, e.g. 2026-03-29T03:00:00.000+02:00. */
export function formatLocal(epochMs: number, zone: string): string {
  const offset = offsetAt(epochMs, zone);
  const t = fromWallMs(epochMs + offset);
  const off = offset / 60_000;
  const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');
  const sign = off < 0 ? '-' : '+';
  const year = t.year < 0 || t.year > 9999 ? `${t.year < 0 ? '-' : '+'}${pad(t.year, 6)}` : pad(t.year, 4);
  return `${year}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}.${pad(t.millisecond, 3)}${sign}${pad(Math.trunc(off / 60))}:${pad(Math.abs(off % 60))}`;
}
