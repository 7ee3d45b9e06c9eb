// Calendar days in an IANA time zone, with the browser's Intl only: where each day starts and how long it is.

const formats = new Map();
function format(zone) {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formats.set(zone, f);
  }
  return f;
}

/** The zone's offset from UTC at an instant, in ms. */
export function offsetAt(ms, zone) {
  const p = Object.fromEntries(
    format(zone)
      .formatToParts(new Date(ms))
      .map((x) => [x.type, x.value]),
  );
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The local calendar date (y, m, d) of an instant in the zone. */
export function localDate(ms, zone) {
  const offset = offsetAt(ms, zone);
  const d = new Date(ms + offset);
  return { y: d.getUTCFullYear(), m: d.getUTCMonth(), d: d.getUTCDate() };
}

/** The instant local midnight of a date begins in the zone. */
export function midnight({ y, m, d }, zone) {
  const wall = Date.UTC(y, m, d);
  let guess = wall - offsetAt(wall, zone);
  guess = wall - offsetAt(guess, zone);
  return guess;
}

/**
 * The calendar days in the zone that end after `from` and start before `to`, each with its start,
 * its end and its length in hours: 23 or 25 on the days the clocks change.
 */
export function daysBetween(from, to, zone) {
  const days = [];
  let date = localDate(from, zone);
  for (let i = 0; i < 400; i++) {
    const start = midnight(date, zone);
    if (start >= to) break;
    const next = { y: date.y, m: date.m, d: date.d + 1 };
    const end = midnight(next, zone);
    days.push({
      label: `${date.y}-${String(date.m + 1).padStart(2, '0')}-${String(date.d).padStart(2, '0')}`,
      start,
      end,
      hours: Math.round((end - start) / 360_000) / 10,
    });
    const n = new Date(Date.UTC(next.y, next.m, next.d));
    date = { y: n.getUTCFullYear(), m: n.getUTCMonth(), d: n.getUTCDate() };
  }
  return days;
}

/** An instant as "YYYY-MM-DD HH:MM" in the zone. */
export function localText(ms, zone) {
  const p = Object.fromEntries(
    format(zone)
      .formatToParts(new Date(ms))
      .map((x) => [x.type, x.value]),
  );
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

/**
 * The end of a span (exclusive) as "YYYY-MM-DD HH:MM" in the zone; an end at local midnight reads as
 * "24:00" of the day before, the last day the span touches (and the last day row of the timeline).
 */
export function localEndText(ms, zone) {
  const day = localDate(ms - 1, zone);
  if (midnight({ y: day.y, m: day.m, d: day.d + 1 }, zone) !== ms) return localText(ms, zone);
  return `${localText(ms - 1, zone).slice(0, 10)} 24:00`;
}
