import test from 'ava';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import {
  type Unit,
  type WindowSpec,
  edge,
  windowAt,
  windowSpec,
  windowsAfter,
} from '../../services/schedule/domain/windows.js';
import { firstOccurrence } from '../helpers/wall-time.js';

const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'America/Sao_Paulo'];
const UNIT_MS: Record<'S' | 'I' | 'H', number> = { S: 1000, I: 60_000, H: 3_600_000 };
/** Rough unit lengths, only to keep generated schedules to a few hundred windows. */
const APPROX_MS: Record<Unit, number> = {
  S: 1e3,
  I: 6e4,
  H: 3.6e6,
  D: 8.64e7,
  W: 6.048e8,
  M: 2.63e9,
  Y: 3.156e10,
  O: 1,
};

const all = (spec: WindowSpec) => [...windowsAfter(spec)];

function assertTiles(
  t: { is: (a: unknown, b: unknown, m?: string) => void; true: (v: boolean, m?: string) => void },
  spec: WindowSpec,
  windows: readonly { start: number; end: number }[],
) {
  t.true(windows.length > 0, 'at least one window');
  t.is(windows[0]!.start, spec.startTime, 'first window starts at startTime');
  t.is(windows[windows.length - 1]!.end, spec.endTime, 'last window is cut at endTime');
  for (let i = 0; i < windows.length; i++) {
    t.true(windows[i]!.start < windows[i]!.end, `window ${i} is not empty`);
    if (i > 0) t.is(windows[i]!.start, windows[i - 1]!.end, `no gap and no overlap at window ${i}`);
  }
}

/** Edge k computed independently with luxon: fixed durations, or calendar steps from the anchor. */
function luxonEdge(spec: WindowSpec, k: number): number {
  if (spec.unit === 'S' || spec.unit === 'I' || spec.unit === 'H')
    return spec.startTime + k * spec.interval * UNIT_MS[spec.unit];
  const anchor = DateTime.fromMillis(spec.startTime, { zone: spec.timeZone });
  const key = { D: 'days', W: 'weeks', M: 'months', Y: 'years' }[spec.unit as 'D' | 'W' | 'M' | 'Y'];
  // From the anchor's wall-clock fields, so DST gaps and clamping are luxon's own.
  if (k === 0) return spec.startTime;
  const target = anchor
    .toLocal()
    .setZone(spec.timeZone)
    .plus({ [key]: k * spec.interval });
  const wall = {
    year: target.year,
    month: target.month,
    day: target.day,
    hour: anchor.hour,
    minute: anchor.minute,
    second: anchor.second,
    millisecond: anchor.millisecond,
  };
  return firstOccurrence(wall, spec.timeZone);
}

const unitSchedule = fc
  .record({
    unit: fc.constantFrom<Unit>('S', 'I', 'H', 'D', 'W', 'M', 'Y'),
    interval: fc.integer({ min: 1, max: 5 }),
    // 1990..2060, any millisecond: anchors land on DST days, month ends and leap days.
    startTime: fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2060, 0, 1) }),
    windows: fc.integer({ min: 1, max: 120 }),
    cut: fc.double({ min: 0, max: 1, noNaN: true }),
    zone: fc.constantFrom(...ZONES),
  })
  .map(({ unit, interval, startTime, windows, cut, zone }) => {
    const span = Math.max(1, Math.floor((windows - cut) * APPROX_MS[unit] * interval));
    return windowSpec({
      scheduleType: 0,
      scheduleUnit: unit,
      scheduleInterval: interval,
      startTime,
      endTime: startTime + span,
      timeZone: zone,
      crontabExpression: '',
    });
  });

test('unit schedules: windows tile [start, end) and their edges agree with luxon', (t) => {
  fc.assert(
    fc.property(unitSchedule, (spec) => {
      const windows = all(spec);
      assertTiles(t, spec, windows);
      windows.forEach((w, k) => t.is(w.start, luxonEdge(spec, k), `edge ${k} of ${JSON.stringify(spec)}`));
    }),
    { numRuns: 500 },
  );
});

test('windowsAfter and windowAt find the window holding any instant', (t) => {
  fc.assert(
    fc.property(unitSchedule, fc.double({ min: 0, max: 0.999, noNaN: true }), (spec, at) => {
      const instant = Math.floor(spec.startTime + at * (spec.endTime - spec.startTime));
      const w = windowAt(spec, instant)!;
      t.true(w.start <= instant && instant < w.end);
      t.deepEqual(
        w,
        all(spec).find((x) => x.start <= instant && instant < x.end),
      );
    }),
    { numRuns: 200 },
  );
});

test('one round is the single window [start, end)', (t) => {
  const spec = windowSpec({
    scheduleType: 0,
    scheduleUnit: 'O',
    scheduleInterval: 1,
    startTime: 1000,
    endTime: 5000,
    timeZone: '',
    crontabExpression: '',
  });
  t.deepEqual(all(spec), [{ start: 1000, end: 5000 }]);
});

test('a DST day has 23 or 25 hourly windows and a 23- or 25-hour daily window (Europe/Berlin)', (t) => {
  const zone = 'Europe/Berlin';
  const day = (y: number, m: number, d: number) =>
    DateTime.fromObject({ year: y, month: m, day: d }, { zone }).toMillis();
  const spring = windowSpec({
    scheduleType: 0,
    scheduleUnit: 'H',
    scheduleInterval: 1,
    startTime: day(2026, 3, 29),
    endTime: day(2026, 3, 30),
    timeZone: zone,
    crontabExpression: '',
  });
  t.is(all(spring).length, 23);
  const fall = windowSpec({
    scheduleType: 0,
    scheduleUnit: 'H',
    scheduleInterval: 1,
    startTime: day(2026, 10, 25),
    endTime: day(2026, 10, 26),
    timeZone: zone,
    crontabExpression: '',
  });
  t.is(all(fall).length, 25);
  const daily = windowSpec({
    scheduleType: 0,
    scheduleUnit: 'D',
    scheduleInterval: 1,
    startTime: day(2026, 3, 28),
    endTime: day(2026, 3, 31),
    timeZone: zone,
    crontabExpression: '',
  });
  t.deepEqual(
    all(daily).map((w) => (w.end - w.start) / 3_600_000),
    [24, 23, 24],
  );
});

test('months are calendar months, clamped to the month end from the anchor (Jan 31 → Feb 28 → Mar 31)', (t) => {
  const start = Date.UTC(2025, 0, 31, 6, 0);
  const spec = windowSpec({
    scheduleType: 0,
    scheduleUnit: 'M',
    scheduleInterval: 1,
    startTime: start,
    endTime: Date.UTC(2025, 4, 1),
    timeZone: 'UTC',
    crontabExpression: '',
  });
  t.deepEqual(
    all(spec).map((w) => new Date(w.start).toISOString()),
    ['2025-01-31T06:00:00.000Z', '2025-02-28T06:00:00.000Z', '2025-03-31T06:00:00.000Z', '2025-04-30T06:00:00.000Z'],
  );
  t.is(edge(spec, 13), Date.UTC(2026, 1, 28, 6, 0));
});

test('a local start time inside a spring-forward gap moves forward by the gap; an ambiguous one takes the first occurrence', (t) => {
  const zone = 'America/New_York';
  // Daily at 02:30 local from 2026-03-07: 2026-03-08 02:30 does not exist in New York.
  const start = DateTime.fromObject({ year: 2026, month: 3, day: 7, hour: 2, minute: 30 }, { zone }).toMillis();
  const end = DateTime.fromObject({ year: 2026, month: 3, day: 10, hour: 2, minute: 30 }, { zone }).toMillis();
  const spec = windowSpec({
    scheduleType: 0,
    scheduleUnit: 'D',
    scheduleInterval: 1,
    startTime: start,
    endTime: end,
    timeZone: zone,
    crontabExpression: '',
  });
  const starts = all(spec).map((w) => DateTime.fromMillis(w.start, { zone }).toISO());
  t.deepEqual(starts, [
    '2026-03-07T02:30:00.000-05:00',
    '2026-03-08T03:30:00.000-04:00',
    '2026-03-09T02:30:00.000-04:00',
  ]);
  const fallStart = DateTime.fromObject({ year: 2026, month: 10, day: 31, hour: 1, minute: 30 }, { zone }).toMillis();
  const fall = windowSpec({
    scheduleType: 0,
    scheduleUnit: 'D',
    scheduleInterval: 1,
    startTime: fallStart,
    endTime: fallStart + 2 * 86_400_000,
    timeZone: zone,
    crontabExpression: '',
  });
  t.is(DateTime.fromMillis(all(fall)[1]!.start, { zone }).toISO(), '2026-11-01T01:30:00.000-04:00');
});

test('a start in the second pass of a fall-back hour is the first edge itself (found by the property test)', (t) => {
  // 2032-04-04 01:45:19 +10:30 in Lord Howe, the second pass: 01:45 happened at +11:00 half an hour before.
  const start = 1964618119709;
  const spec = windowSpec({
    scheduleType: 0,
    scheduleUnit: 'D',
    scheduleInterval: 1,
    startTime: start,
    endTime: start + 3 * 86_400_000,
    timeZone: 'Australia/Lord_Howe',
    crontabExpression: '',
  });
  const windows = all(spec);
  t.is(windows[0]!.start, start);
  t.is(windows[1]!.start - windows[0]!.start, 86_400_000, 'the next day at the same wall time, both at +10:30');
});

const dailyCron = fc.record({
  hour: fc.integer({ min: 0, max: 23 }),
  minute: fc.constantFrom(0, 15, 30, 45),
  startTime: fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2040, 0, 1) }),
  days: fc.integer({ min: 1, max: 60 }),
  zone: fc.constantFrom(...ZONES),
  quartz: fc.boolean(),
});

test('cron schedules: fire times are the window edges, tile [start, end) and agree with luxon', (t) => {
  fc.assert(
    fc.property(dailyCron, ({ hour, minute, startTime, days, zone, quartz }) => {
      const crontabExpression = quartz ? `0 ${minute} ${hour} * * ?` : `${minute} ${hour} * * *`;
      const endTime = startTime + days * 86_400_000;
      const spec = windowSpec({
        scheduleType: 1,
        scheduleUnit: '',
        scheduleInterval: 0,
        startTime,
        endTime,
        timeZone: zone,
        crontabExpression,
      });
      const windows = all(spec);
      assertTiles(t, spec, windows);
      // Independent: the wall time on every local day, through luxon, once each, inside (start, end).
      const expected = new Set<number>();
      let day = DateTime.fromMillis(startTime, { zone }).startOf('day').minus({ days: 1 });
      for (let i = 0; i < days + 3; i++, day = day.plus({ days: 1 })) {
        const fire = firstOccurrence({ year: day.year, month: day.month, day: day.day, hour, minute }, zone);
        if (fire > startTime && fire < endTime) expected.add(fire);
      }
      t.deepEqual(
        windows.slice(1).map((w) => w.start),
        [...expected].sort((a, b) => a - b),
        crontabExpression,
      );
    }),
    { numRuns: 150 },
  );
});

test('cron: seconds field, steps, ranges, lists, names, L and #', (t) => {
  const fires = (expr: string, from: string, n: number, zone = 'UTC') => {
    const start = Date.parse(from);
    const spec = windowSpec({
      scheduleType: 1,
      scheduleUnit: '',
      scheduleInterval: 0,
      startTime: start,
      endTime: start + 400 * 86_400_000,
      timeZone: zone,
      crontabExpression: expr,
    });
    const out: string[] = [];
    for (const w of windowsAfter(spec)) {
      if (w.start !== start) out.push(new Date(w.start).toISOString());
      if (out.length === n) break;
    }
    return out;
  };
  t.deepEqual(fires('*/20 * * * * ?', '2026-01-01T00:00:00Z', 3), [
    '2026-01-01T00:00:20.000Z',
    '2026-01-01T00:00:40.000Z',
    '2026-01-01T00:01:00.000Z',
  ]);
  t.deepEqual(fires('0 0 12 ? * MON-FRI', '2026-01-02T13:00:00Z', 2), [
    '2026-01-05T12:00:00.000Z',
    '2026-01-06T12:00:00.000Z',
  ]);
  t.deepEqual(fires('0 0 0 L * ?', '2026-01-15T00:00:00Z', 2), [
    '2026-01-31T00:00:00.000Z',
    '2026-02-28T00:00:00.000Z',
  ]);
  t.deepEqual(fires('0 0 9 ? * 6#2', '2026-01-01T00:00:00Z', 2), [
    '2026-01-09T09:00:00.000Z',
    '2026-02-13T09:00:00.000Z',
  ]);
  t.deepEqual(fires('0 0 9 ? * 6L', '2026-01-01T00:00:00Z', 1), ['2026-01-30T09:00:00.000Z']);
  t.deepEqual(fires('0 1,13 * * *', '2026-01-01T00:00:00Z', 3), [
    '2026-01-01T01:00:00.000Z',
    '2026-01-01T13:00:00.000Z',
    '2026-01-02T01:00:00.000Z',
  ]);
  t.deepEqual(
    fires('0 30 2 * * ?', '2026-03-28T12:00:00Z', 2, 'Europe/Berlin'),
    ['2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z'],
    '02:30 on the spring-forward day fires once, at 03:30 local',
  );
});

test('bad fields are INVALID_ARGUMENT naming the field', (t) => {
  const base = {
    scheduleType: 0,
    scheduleUnit: 'D',
    scheduleInterval: 1,
    startTime: 1000,
    endTime: 2000,
    timeZone: 'UTC',
    crontabExpression: '',
  };
  const cases: [Partial<typeof base>, string][] = [
    [{ scheduleType: 2 }, 'schedule_type'],
    [{ scheduleUnit: 'Q' }, 'schedule_unit'],
    [{ scheduleInterval: 0 }, 'schedule_interval'],
    [{ startTime: -1 }, 'start_time'],
    [{ endTime: 1000 }, 'end_time'],
    [{ timeZone: 'Mars/Olympus' }, 'time_zone'],
    [{ scheduleType: 1, crontabExpression: '0 0 25 * * ?' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '* * *' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '0 0 12 1 * MON' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '0 0 12 * * 1-5' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '0 ? * * * ?' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '0 0 0 1-5W * ?' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '0 0 0 L-31 * ?' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '0 0 0 ? * 2#6' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '0 0 0 ? * 2#1,3' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '0 0 0 1 * ? 2100-2050' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '@reboot' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '0 0 * * L' }, 'crontab_expression'],
  ];
  for (const [change, field] of cases) {
    const err = t.throws(() => windowSpec({ ...base, ...change }));
    t.is((err as unknown as { code: string }).code, 'INVALID_ARGUMENT');
    t.is((err as unknown as { details: { field: string } }).details.field, field, JSON.stringify(change));
  }
});

test('cron errors say which field, what was expected and what came', (t) => {
  const message = (expr: string) =>
    t.throws(() =>
      windowSpec({
        scheduleType: 1,
        scheduleUnit: '',
        scheduleInterval: 0,
        startTime: 1000,
        endTime: 2000,
        timeZone: 'UTC',
        crontabExpression: expr,
      }),
    )!.message;
  t.regex(message('0 0 12 * * 1-5'), /'\?' when day-of-week is restricted .* in the day-of-month field, got .*\* 1-5/);
  t.regex(message('0 ? * * * ?'), /'\?' is allowed only in day-of-month and day-of-week.* in the minutes field/);
  t.regex(message('0 0 0 1-5W * ?'), /'W' after a single day .* in the day-of-month field, got .*1-5W/);
  t.regex(message('0 0 0 ? * 2#6'), /a number from 1 to 5 after '#' in the day-of-week field, got .*2#6/);
  t.regex(message('@reboot'), /one of the macros @yearly .* got .*@reboot/);
  t.regex(message('0 0 25 * * ?'), /a number from 0 to 23 in the hours field, got .*25/);
});

test('Sluice reads * and ? alike when neither day field is restricted, and * in day-of-week beside a day of month', (t) => {
  const ends = (expr: string) => {
    const start = Date.UTC(2026, 0, 1);
    const spec = windowSpec({
      scheduleType: 1,
      scheduleUnit: '',
      scheduleInterval: 0,
      startTime: start,
      endTime: start + 40 * 86_400_000,
      timeZone: 'UTC',
      crontabExpression: expr,
    });
    return all(spec).map((w) => w.end);
  };
  t.deepEqual(ends('0 0 * * * *'), ends('0 0 * ? * ?'));
  t.deepEqual(ends('0 0 * * * *'), ends('0 0 * * * ?'));
  t.deepEqual(ends('0 0 12 15 * *'), ends('0 0 12 15 * ?'));
  t.is(ends('0 0 12 15 * *')[0], Date.UTC(2026, 0, 15, 12));
});
