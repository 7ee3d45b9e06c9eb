import { DAY_MS } from './civil.js';

/**
 * Probes stay a day inside JavaScript's date range (a Date holds instants within ±8.64e15 ms of the epoch):
 * the wall-clock time read back at an instant must fit in a Date too, whatever the zone's offset.
 */
const DATE_RANGE_MS = 8.64e15 - DAY_MS;

/**
 * A zone's UTC offsets, read from Intl and remembered per UTC day: the offset when it holds all day,
 * or the one transition inside the day (found to the second by bisection). Intl is asked a few times
 * per day first seen; after that an offset is a map lookup. A day with two transitions does not
 * occur in the tz database for the years Sluice schedules.
 */
export class ZoneOffsets {
  readonly #format: Intl.DateTimeFormat;
  /** UTC day number → offset (ms) for the whole day, or the day's transition. */
  readonly #days = new Map<number, number | { at: number; before: number; after: number }>();

  constructor(zone: string) {
    this.#format = new Intl.DateTimeFormat('en-US', {
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
  }

  /** The offset (wall minus UTC, ms) in force at an instant. */
  offsetAt(epochMs: number): number {
    const day = Math.floor(epochMs / DAY_MS);
    let entry = this.#days.get(day);
    if (entry === undefined) {
      entry = this.#learnDay(day);
      // Bounded memory: schedules look at a few years at a time.
      if (this.#days.size >= 200_000) this.#days.clear();
      this.#days.set(day, entry);
    }
    if (typeof entry === 'number') return entry;
    return epochMs < entry.at ? entry.before : entry.after;
  }

  /**
   * The instant of a wall-clock ordinal (local fields read as UTC). A wall time in a spring-forward
   * gap moves forward by the gap (read with the offset before it); one that happens twice takes the
   * first occurrence.
   */
  instantOfWall(wall: number): number {
    // Offsets a day around cover every transition near the wall time: at most two distinct values.
    const before = this.offsetAt(wall - DAY_MS);
    const after = this.offsetAt(wall + DAY_MS);
    if (before === after && this.offsetAt(wall - before) === before) return wall - before;
    let first: number | undefined;
    for (const o of [before, after, this.offsetAt(wall)]) {
      const u = wall - o;
      if (this.offsetAt(u) === o && (first === undefined || u < first)) first = u;
    }
    return first ?? wall - before;
  }

  #learnDay(day: number): number | { at: number; before: number; after: number } {
    const start = day * DAY_MS;
    const before = this.probe(start);
    const last = start + DAY_MS - 1000;
    const after = this.probe(last);
    if (before === after) return before;
    // The first whole second showing the new offset.
    let lo = start;
    let hi = last;
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (this.probe(mid) === before) lo = mid;
      else hi = mid;
    }
    return { at: hi, before, after };
  }

  /**
   * The offset at an instant straight from Intl (whole seconds). Near and past the end of JavaScript's date
   * range (±8.64e15 ms, which a day's probes or a window's due time may reach from a time inside it) the offset
   * a day inside the range holds: a Date out there cannot be made, and Intl would throw RangeError.
   */
  probe(epochMs: number): number {
    if (Number.isNaN(epochMs)) throw new RangeError('no time zone offset for NaN');
    const whole = Math.min(DATE_RANGE_MS, Math.max(-DATE_RANGE_MS, Math.floor(epochMs / 1000) * 1000));
    const parts = this.#format.formatToParts(new Date(whole));
    let year = 0;
    let month = 0;
    let day = 0;
    let hour = 0;
    let minute = 0;
    let second = 0;
    let bc = false;
    for (const p of parts) {
      switch (p.type) {
        case 'year':
          year = Number(p.value);
          break;
        case 'month':
          month = Number(p.value);
          break;
        case 'day':
          day = Number(p.value);
          break;
        case 'hour':
          hour = Number(p.value);
          break;
        case 'minute':
          minute = Number(p.value);
          break;
        case 'second':
          second = Number(p.value);
          break;
        case 'era':
          bc = p.value === 'BC' || p.value === 'B';
          break;
        default:
          break;
      }
    }
    const d = new Date(0);
    d.setUTCFullYear(bc ? 1 - year : year, month - 1, day);
    d.setUTCHours(hour, minute, second, 0);
    return d.getTime() - whole;
  }
}

const zones = new Map<string, ZoneOffsets>();

/** The shared offset cache of a zone; throws RangeError for a zone the runtime does not know. */
export function zoneOffsets(zone: string): ZoneOffsets {
  let z = zones.get(zone);
  if (!z) {
    z = new ZoneOffsets(zone);
    zones.set(zone, z);
  }
  return z;
}
