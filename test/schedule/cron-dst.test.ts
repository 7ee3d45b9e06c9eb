/**
 * Randomized cron expressions over DST transitions, checked against an independent oracle: every wall
 * minute around the span is matched by croner (in UTC, so croner does field matching only), each
 * matching wall time is converted by Sluice's rules through luxon (tests/helpers/wall-time.ts: gap →
 * forward by the gap, ambiguous → first occurrence), and the instants inside (start, end) are kept,
 * each once. Sluice's window edges must be exactly those.
 */
import test from 'ava';
import { Cron } from 'croner';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { windowSpec, windowsAfter } from '../../services/schedule/domain/windows.js';
import { firstOccurrence } from '../helpers/wall-time.js';

/** Zones whose transitions are not on the hour, not one hour long, at midnight, or over a whole day. */
const ZONES = [
  'Australia/Lord_Howe',
  'Pacific/Chatham',
  'Antarctica/Troll',
  'America/Santiago',
  'America/Nuuk',
  'Europe/Berlin',
  'America/New_York',
  'Asia/Tehran',
];

const transitionsCache = new Map<string, number[]>();

/** Instants (to the day) where the zone's offset changes in a year, found with luxon. */
function transitions(zone: string, year: number): number[] {
  const key = `${zone} ${year}`;
  let out = transitionsCache.get(key);
  if (!out) {
    out = [];
    let prev = DateTime.fromObject({ year }, { zone: 'UTC' }).setZone(zone);
    for (let d = 1; d <= 366; d++) {
      const next = prev.plus({ days: 1 });
      if (next.offset !== prev.offset) out.push(prev.toMillis());
      prev = next;
    }
    transitionsCache.set(key, out);
  }
  return out;
}

const minuteField = fc.oneof(
  fc.constantFrom('*/5', '*/10', '*/15', '*/20', '*/30', '0', '30', '45'),
  fc.uniqueArray(fc.integer({ min: 0, max: 59 }), { minLength: 1, maxLength: 3 }).map((xs) => xs.join(',')),
);
const hourField = fc.oneof(
  fc.constantFrom('*', '*/2', '*/3'),
  fc.uniqueArray(fc.integer({ min: 0, max: 23 }), { minLength: 1, maxLength: 4 }).map((xs) => xs.join(',')),
  fc
    .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 23 }))
    .map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
);
const domField = fc.constantFrom('*', '*', '*', 'L', '1-15', '15W', 'LW');
const dowField = fc.constantFrom('*', '*', '*', '1-5', 'SAT,SUN', '0L', 'SUN#1', 'MON#2');

const scenario = fc.record({
  expr: fc.tuple(minuteField, hourField, domField, dowField).map(([m, h, dom, dow]) => `${m} ${h} ${dom} * ${dow}`),
  zone: fc.constantFrom(...ZONES),
  year: fc.integer({ min: 2000, max: 2035 }),
  pick: fc.nat(),
  lead: fc.integer({ min: 0, max: 2 * 86_400_000 }),
  days: fc.integer({ min: 1, max: 3 }),
});

test('random expressions across DST transitions agree with croner field matching + luxon zone rules', (t) => {
  let checked = 0;
  fc.assert(
    fc.property(scenario, ({ expr, zone, year, pick, lead, days }) => {
      const ts = transitions(zone, year);
      if (ts.length === 0) return;
      const startTime = ts[pick % ts.length]! - lead;
      const endTime = startTime + days * 86_400_000;
      const spec = windowSpec({
        scheduleType: 1,
        scheduleUnit: '',
        scheduleInterval: 0,
        startTime,
        endTime,
        timeZone: zone,
        crontabExpression: expr,
      });
      const got = [...windowsAfter(spec)].slice(1).map((w) => w.start);

      const fields = new Cron(expr, { timezone: 'UTC', paused: true });
      const expected = new Set<number>();
      // Every wall minute from a day before the start's wall date to a day after the end's.
      const first = DateTime.fromMillis(startTime, { zone }).startOf('day').minus({ days: 1 });
      const wall0 = Date.UTC(first.year, first.month - 1, first.day);
      for (let m = 0; m < (days + 3) * 1440; m++) {
        const wall = new Date(wall0 + m * 60_000);
        if (!fields.match(wall)) continue;
        const at = firstOccurrence(
          {
            year: wall.getUTCFullYear(),
            month: wall.getUTCMonth() + 1,
            day: wall.getUTCDate(),
            hour: wall.getUTCHours(),
            minute: wall.getUTCMinutes(),
          },
          zone,
        );
        if (at > startTime && at < endTime) expected.add(at);
      }
      t.deepEqual(
        got,
        [...expected].sort((a, b) => a - b),
        `${expr} in ${zone} from ${new Date(startTime).toISOString()}`,
      );
      checked++;
    }),
    { numRuns: 100 },
  );
  t.true(checked > 50, `checked ${checked} schedules`);
});
