/**
 * The covering cron external schedulers tick on (EngineContext.coveringCron): every due time that
 * PreviewWindows lists has a tick in [due, due + resolution) by Sluice's own cron evaluator, and the
 * cron is the coarsest the dialect allows.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { type CoveringCron, type CronDialect, type ScheduleInfo, isSluiceError } from 'sluice/sdk';
import { coveringCron } from '../../services/schedule/domain/covering-cron.js';
import { type Cron, nextFireTime, nextWall, parseCron } from '../../services/schedule/domain/cron.js';
import { firingRules, normalizeInfo } from '../../services/schedule/domain/info.js';
import { dueTime } from '../../services/schedule/domain/plan.js';
import { windowsAfter } from '../../services/schedule/domain/windows.js';
import { instantOfWall, offsetAt, toLocal, wallMs } from '../../services/schedule/domain/zoned-time.js';
import { ROOT } from '../helpers/process.js';
import { DAY, info } from '../helpers/schedule.js';

const FAR = Date.UTC(2099, 0, 1);
const at = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0) => Date.UTC(y, mo - 1, d, h, mi, s, ms);

/** The due times ScheduleService.preview lists, from the start, at most `count` of them. */
function dues(s: ScheduleInfo, count: number): number[] {
  const rules = firingRules(normalizeInfo(s));
  const out: number[] = [];
  for (const w of windowsAfter(rules.spec)) {
    if (out.length >= count) break;
    out.push(dueTime(rules, w));
  }
  return out;
}

/** Due times no wall time reaches (the second pass of a repeated hour): no cron can tick there. */
const secondPass = (t: number, zone: string, r: number) => {
  const tick = Math.ceil(t / r) * r;
  return instantOfWall(wallMs(toLocal(tick, zone)), zone) !== tick;
};

/** The due times of `s` without a tick in [due, due + resolution); empty when covered. */
function uncovered(s: ScheduleInfo, c: CoveringCron, count: number): string[] {
  const cron = parseCron(c.expression);
  const missed: string[] = [];
  const all = dues(s, count);
  for (const d of all) {
    // Documented: a last window cut short by an end over four years ahead gets no tick of its own.
    if (d === all[all.length - 1] && d === s.endTime + s.delayTime * 60_000 && d - all[0]! > 1461 * DAY) continue;
    if (secondPass(d, c.timeZone, c.resolutionMs)) continue;
    const tick = nextFireTime(cron, d - 1, c.timeZone, d + c.resolutionMs);
    if (tick === undefined || tick >= d + c.resolutionMs)
      missed.push(`${new Date(d).toISOString()} → ${tick === undefined ? 'none' : new Date(tick).toISOString()}`);
    if (missed.length >= 5) break;
  }
  return missed;
}

/** The seconds field is a fixed value or list unless every second of a minute has a due time. */
const fixedSeconds = (expression: string) => /^\d+(,\d+)*$|^\d+\/\d+$/.test(expression.split(' ')[0]!);

interface Row {
  readonly name: string;
  readonly schedule: Partial<ScheduleInfo>;
  readonly quartz: string;
  readonly unix: string;
  readonly zone?: string;
  readonly exact?: { quartz: boolean; unix: boolean };
}

const ROWS: Row[] = [
  {
    name: 'every 15 minutes from :00',
    schedule: { scheduleUnit: 'I', scheduleInterval: 15 },
    quartz: '0 0/15 * * * ? *',
    unix: '*/15 * * * *',
  },
  {
    name: 'every 10 seconds',
    schedule: { scheduleUnit: 'S', scheduleInterval: 10 },
    quartz: '0/10 * * * * ? *',
    unix: '* * * * *',
  },
  {
    name: 'every 7 minutes: the finer field, every minute',
    schedule: { scheduleUnit: 'I', scheduleInterval: 7 },
    quartz: '0 * * * * ? *',
    unix: '* * * * *',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'every 90 minutes: the hours it reaches, each half hour',
    schedule: { scheduleUnit: 'I', scheduleInterval: 90 },
    quartz: '0 0/30 0,1,3,4,6,7,9,10,12,13,15,16,18,19,21,22 * * ? *',
    unix: '*/30 0,1,3,4,6,7,9,10,12,13,15,16,18,19,21,22 * * *',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'every 6 hours from 00:00 Berlin, in UTC',
    schedule: { scheduleUnit: 'H', scheduleInterval: 6, timeZone: 'Europe/Berlin', startTime: at(2025, 12, 31, 23) },
    quartz: '0 0 5/6 * * ? *',
    unix: '0 5-23/6 * * *',
    zone: 'UTC',
  },
  {
    name: 'every 5 hours: hourly',
    schedule: { scheduleUnit: 'H', scheduleInterval: 5 },
    quartz: '0 0 * * * ? *',
    unix: '0 * * * *',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'every 48 hours: daily',
    schedule: { scheduleUnit: 'H', scheduleInterval: 48, startTime: at(2026, 1, 1, 3) },
    quartz: '0 0 3 * * ? *',
    unix: '0 3 * * *',
    zone: 'UTC',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'daily at 02:30 in Berlin: the spring gap day happens at 03:30 (held too); the autumn one in a first pass (Unix: every hour)',
    schedule: { scheduleUnit: 'D', scheduleInterval: 1, timeZone: 'Europe/Berlin', startTime: at(2026, 1, 1, 1, 30) },
    quartz: '0 30 2,3 * * ? *',
    unix: '30 * * * *',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'daily at 02:30 in New York',
    schedule: {
      scheduleUnit: 'D',
      scheduleInterval: 1,
      timeZone: 'America/New_York',
      startTime: at(2026, 1, 1, 7, 30),
    },
    quartz: '0 30 2,3 * * ? *',
    unix: '30 2,3 * * *',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'daily at 02:15 on Lord Howe (30-minute DST)',
    schedule: {
      scheduleUnit: 'D',
      scheduleInterval: 1,
      timeZone: 'Australia/Lord_Howe',
      startTime: at(2026, 1, 1, 15, 15),
    },
    quartz: '0 15,45 2 * * ? *',
    unix: '15,45 2 * * *',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'every 5 days: daily at that time',
    schedule: { scheduleUnit: 'D', scheduleInterval: 5, startTime: at(2026, 1, 1, 7, 30) },
    quartz: '0 30 7 * * ? *',
    unix: '30 7 * * *',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'every 7 days from a Saturday: weekly on Saturday',
    schedule: { scheduleUnit: 'D', scheduleInterval: 7, startTime: at(2026, 1, 3, 7, 30) },
    quartz: '0 30 7 ? * 7 *',
    unix: '30 7 * * 6',
  },
  {
    name: 'weekly from a Wednesday',
    schedule: { scheduleUnit: 'W', scheduleInterval: 1, startTime: at(2026, 1, 7, 9) },
    quartz: '0 0 9 ? * 4 *',
    unix: '0 9 * * 3',
  },
  {
    name: 'every 2 weeks: weekly',
    schedule: { scheduleUnit: 'W', scheduleInterval: 2, startTime: at(2026, 1, 7, 9) },
    quartz: '0 0 9 ? * 4 *',
    unix: '0 9 * * 3',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'monthly on the 15th',
    schedule: { scheduleUnit: 'M', scheduleInterval: 1, startTime: at(2026, 1, 15, 6) },
    quartz: '0 0 6 15 * ? *',
    unix: '0 6 15 * *',
  },
  {
    name: 'monthly on the 31st, clamped: L in Quartz, 28-31 in Unix',
    schedule: { scheduleUnit: 'M', scheduleInterval: 1, startTime: at(2026, 1, 31, 6) },
    quartz: '0 0 6 L * ? *',
    unix: '0 6 28-31 * *',
    exact: { quartz: true, unix: false },
  },
  {
    name: 'quarterly on the 1st',
    schedule: { scheduleUnit: 'M', scheduleInterval: 3, startTime: at(2026, 2, 1) },
    quartz: '0 0 0 1 2/3 ? *',
    unix: '0 0 1 2-12/3 *',
  },
  {
    name: 'every 5 months: monthly',
    schedule: { scheduleUnit: 'M', scheduleInterval: 5, startTime: at(2026, 1, 10) },
    quartz: '0 0 0 10 * ? *',
    unix: '0 0 10 * *',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'yearly on Feb 29: the last day of February',
    schedule: { scheduleUnit: 'Y', scheduleInterval: 1, startTime: at(2024, 2, 29) },
    quartz: '0 0 0 L 2 ? *',
    unix: '0 0 28,29 2 *',
    exact: { quartz: true, unix: false },
  },
  {
    name: 'one round: one tick, year pinned in Quartz',
    schedule: { scheduleUnit: 'O', scheduleInterval: 0, startTime: at(2026, 3, 1), endTime: at(2026, 6, 1, 12, 0, 30) },
    quartz: '30 0 12 1 6 ? 2026',
    unix: '1 12 1 6 *',
  },
  {
    name: 'a Quartz cron kept as written',
    schedule: { scheduleType: 1, crontabExpression: '0 0 12 ? * MON-FRI', timeZone: 'Europe/Berlin' },
    quartz: '0 0 12 ? * MON-FRI *',
    unix: '0 12 * * 1-5',
  },
  {
    name: 'a Unix cron in Quartz',
    schedule: { scheduleType: 1, crontabExpression: '*/10 8-18 * * 1-5', timeZone: 'America/New_York' },
    quartz: '0 0/10 8-18 ? * 2-6 *',
    unix: '*/10 8-18 * * 1-5',
  },
  {
    name: 'a Quartz L cron in Unix: 28-31',
    schedule: { scheduleType: 1, crontabExpression: '0 0 12 L * ?', timeZone: 'Europe/Berlin' },
    quartz: '0 0 12 L * ? *',
    unix: '0 12 28-31 * *',
    exact: { quartz: true, unix: false },
  },
  {
    name: 'a seconds cron in Unix: rounded up to the minute',
    schedule: { scheduleType: 1, crontabExpression: '30 15 * * * ?' },
    quartz: '30 15 * * * ? *',
    unix: '16 * * * *',
  },
  {
    name: 'a delay moves the time of day',
    schedule: { scheduleUnit: 'D', scheduleInterval: 1, startTime: at(2026, 1, 1, 2), delayTime: 45 },
    quartz: '0 45 2 * * ? *',
    unix: '45 2 * * *',
  },
  {
    name: 'START alignment: due at the window start',
    schedule: { scheduleUnit: 'H', scheduleInterval: 1, startTime: at(2026, 1, 1, 0, 20), alignment: 'START' },
    quartz: '0 20 * * * ? *',
    unix: '20 * * * *',
  },
  {
    name: 'an end cutting the last window adds its due time',
    schedule: { scheduleUnit: 'I', scheduleInterval: 15, endTime: at(2026, 1, 2, 10, 7) },
    quartz: '0 0,7,15,30,45 * * * ? *',
    unix: '0,7,15,30,45 * * * *',
    exact: { quartz: false, unix: false },
  },
  {
    name: 'a start with milliseconds rounds up',
    schedule: { scheduleUnit: 'I', scheduleInterval: 30, startTime: at(2026, 1, 1, 0, 0, 10, 250) },
    quartz: '11 0/30 * * * ? *',
    unix: '1,31 * * * *',
  },
];

for (const row of ROWS) {
  for (const dialect of ['quartz', 'unix'] as const) {
    test(`${row.name} (${dialect})`, (t) => {
      const s = info('g', { startTime: at(2026, 1, 1), endTime: FAR, ...row.schedule });
      const c = coveringCron(s, dialect);
      t.is(c.expression, row[dialect]);
      t.is(
        c.timeZone,
        row.zone ??
          (s.timeZone === '' ? 'UTC' : s.scheduleType === 0 && 'SIH'.includes(s.scheduleUnit) ? 'UTC' : s.timeZone),
      );
      t.is(c.exact, row.exact?.[dialect] ?? true);
      t.is(c.resolutionMs, dialect === 'quartz' ? 1000 : 60_000);
      t.deepEqual(uncovered(s, c, 3000), []);
      if (dialect === 'quartz') t.true(fixedSeconds(c.expression), c.expression);
    });
  }
}

test('first and last due times bound the external schedule', (t) => {
  const s = info('g', {
    scheduleUnit: 'D',
    scheduleInterval: 1,
    startTime: at(2026, 1, 1),
    endTime: at(2026, 1, 10, 12),
    delayTime: 5,
  });
  const c = coveringCron(s, 'quartz');
  t.is(c.firstDue, at(2026, 1, 2, 0, 5));
  t.is(c.lastDue, at(2026, 1, 10, 12, 5));
  const one = coveringCron(
    info('o', { scheduleUnit: 'O', scheduleInterval: 0, startTime: at(2026, 1, 1), endTime: at(2026, 1, 3) }),
    'unix',
  );
  t.is(one.firstDue, at(2026, 1, 3));
  t.is(one.lastDue, one.firstDue);
  t.false('lastDue' in coveringCron(info('n', { endTime: 253_402_300_800_000 }), 'quartz'), 'no end: no last due');
});

test('DST days: every due time of gap and overlap days in three zones is covered', (t) => {
  for (const timeZone of ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe']) {
    for (const [unit, interval] of [
      ['D', 1],
      ['H', 1],
      ['I', 30],
      ['W', 1],
    ] as const) {
      for (const hour of [0, 1, 2, 3]) {
        for (const dialect of ['quartz', 'unix'] as const) {
          // Local midnight-ish starts: 00:00 to 03:00 wall time on Jan 1 in the zone.
          const startTime = instantOfWall(Date.UTC(2026, 0, 1, hour, 30), timeZone);
          const s = info('g', { scheduleUnit: unit, scheduleInterval: interval, timeZone, startTime, endTime: FAR });
          const c = coveringCron(s, dialect);
          t.deepEqual(
            uncovered(s, c, unit === 'I' ? 20_000 : 800),
            [],
            `${timeZone} ${unit}${interval} ${hour}:30 ${dialect}: ${c.expression}`,
          );
        }
      }
    }
  }
});

test('an invalid schedule is INVALID_ARGUMENT naming the field', (t) => {
  const cases: [Partial<ScheduleInfo>, string][] = [
    [{ scheduleUnit: 'X' }, 'schedule_unit'],
    [{ scheduleInterval: 0 }, 'schedule_interval'],
    [{ timeZone: 'Mars/Base' }, 'time_zone'],
    [{ scheduleType: 1, crontabExpression: '61 * * * *' }, 'crontab_expression'],
    [{ endTime: 0 }, 'end_time'],
    [{ delayTime: -1 }, 'delay_time'],
  ];
  for (const [overrides, field] of cases) {
    const err = t.throws(() => coveringCron(info('g', overrides), 'quartz'));
    t.true(isSluiceError(err) && err.code === 'INVALID_ARGUMENT', String(err));
    t.regex(err!.message, new RegExp(`^${field}`));
  }
  t.throws(() => coveringCron(info('g'), 'cron4j' as CronDialect), { message: /^dialect/ });
});

const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'Asia/Kathmandu'];
const CRONS = [
  '0 0 * * *',
  '*/20 * * * *',
  '0 30 2 * * ?',
  '0 0 12 ? * MON-FRI',
  '15 10 L * ?',
  '0 0 9 ? * 6#3',
  '0 45 1,2,3 * * ?',
  '@hourly',
];

const schedules = fc.record({
  kind: fc.constantFrom('unit', 'unit', 'unit', 'cron'),
  unit: fc.constantFrom('S', 'I', 'H', 'D', 'W', 'M', 'Y', 'O'),
  interval: fc.integer({ min: 1, max: 40 }),
  cron: fc.constantFrom(...CRONS),
  start: fc.integer({ min: at(2025, 1, 1), max: at(2030, 1, 1) }),
  roundStart: fc.boolean(),
  span: fc.option(fc.integer({ min: 1, max: 3 * 365 * DAY }), { nil: undefined }),
  delay: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 180 })),
  alignment: fc.constantFrom('END', 'START'),
  zone: fc.constantFrom(...ZONES),
});

test('property: for random schedules every due time has a tick in [due, due + resolution)', (t) => {
  fc.assert(
    fc.property(schedules, fc.constantFrom<CronDialect>('quartz', 'unix'), (p, dialect) => {
      const startTime = p.roundStart ? Math.floor(p.start / 60_000) * 60_000 : p.start;
      const s = info('g', {
        scheduleType: p.kind === 'cron' ? 1 : 0,
        scheduleUnit: p.unit,
        scheduleInterval: p.unit === 'S' ? p.interval * 3 : p.interval,
        crontabExpression: p.cron,
        startTime,
        endTime: p.span === undefined ? FAR : startTime + p.span,
        delayTime: p.delay,
        alignment: p.alignment as 'END' | 'START',
        timeZone: p.zone,
      });
      const c = coveringCron(s, dialect);
      const missed = uncovered(s, c, 1500);
      if (missed.length > 0) throw new Error(`${c.expression} in ${c.timeZone} misses ${missed.join(', ')}`);
      if (dialect === 'quartz' && !fixedSeconds(c.expression) && !(p.kind === 'unit' && p.unit === 'S'))
        throw new Error(`seconds not fixed: ${c.expression}`);
    }),
    // A fixed seed by default, so a run is repeatable; SLUICE_PROPERTY_SEED explores others. Seed
    // 1301100188 found a due time first landing in a spring-forward gap beyond the four-year sample
    // (every 23 days in Europe/Berlin with a 120-min delay): a fixed case below.
    { numRuns: 60, seed: Number(process.env.SLUICE_PROPERTY_SEED ?? 20261206) },
  );
  t.pass('fast-check found no counterexample');
});

/**
 * The due times of `s` that the scheduler itself does not tick in [due, due + resolution): Quartz by
 * quartzNext, Airflow by airflowNext, each from just before the due time (the worst start). Second
 * passes of a repeated hour are left out (no wall time of their own); under Quartz a first pass must
 * be ticked exactly in its second pass instead (Quartz ticks no first pass).
 */
function missedByScheduler(s: ScheduleInfo, c: CoveringCron, count: number): string[] {
  const cron = parseCron(c.expression);
  const zone = c.timeZone;
  const r = c.resolutionMs;
  const all = dues(s, count);
  const missed: string[] = [];
  for (const d of all) {
    if (d === all[all.length - 1] && d === s.endTime + s.delayTime * 60_000 && d - all[0]! > 1461 * DAY) continue;
    if (secondPass(d, zone, r)) continue;
    const tick = Math.ceil(d / r) * r;
    let got: number | undefined;
    let want = [d, d + r];
    if (c.resolutionMs === 1000) {
      got = quartzNext(cron, tick - 1000, zone, tick + 2 * DAY);
      const second = lastInstantOfWall(wallMs(toLocal(tick, zone)), zone)!;
      if (second !== tick) want = [second, second + 1];
    } else {
      // From a second before; an earlier tick in between (a due time with milliseconds) is not it.
      got = airflowNext(c.expression, d - 1000, zone);
      while (got !== undefined && got < d) got = airflowNext(c.expression, got, zone);
    }
    if (got === undefined || got < want[0]! || got >= want[1]!)
      missed.push(`${new Date(d).toISOString()} → ${got === undefined ? 'none' : new Date(got).toISOString()}`);
    if (missed.length >= 5) break;
  }
  return missed;
}

test('property: for random schedules the scheduler itself ticks every due time (Quartz, Airflow stand-ins)', (t) => {
  fc.assert(
    fc.property(schedules, fc.constantFrom<CronDialect>('quartz', 'unix'), (p, dialect) => {
      const startTime = p.roundStart ? Math.floor(p.start / 60_000) * 60_000 : p.start;
      const s = info('g', {
        scheduleType: p.kind === 'cron' ? 1 : 0,
        scheduleUnit: p.unit,
        scheduleInterval: p.unit === 'S' ? p.interval * 3 : p.interval,
        crontabExpression: p.cron,
        startTime,
        endTime: p.span === undefined ? FAR : startTime + p.span,
        delayTime: p.delay,
        alignment: p.alignment as 'END' | 'START',
        timeZone: p.zone,
      });
      const c = coveringCron(s, dialect);
      const missed = missedByScheduler(s, c, 1500);
      if (missed.length > 0) throw new Error(`${c.expression} in ${c.timeZone} misses ${missed.join(', ')}`);
    }),
    // Fixed by default (SLUICE_PROPERTY_SEED explores others); this seed reaches a first-pass due time
    // in Berlin, which a covering cron without the every-hour Unix hour field misses under Airflow.
    { numRuns: 60, seed: Number(process.env.SLUICE_PROPERTY_SEED ?? 42) },
  );
  t.pass('fast-check found no counterexample');
});

// croniter, which Airflow's cron timetables run on the naive wall time in the DAG's zone, against
// Sluice's evaluator: each result localised as Sluice reads a wall time (fold 0: a gap time moves
// forward, a repeated one takes its first pass; Airflow's own localisation, fold=1, is modelled in
// AIRFLOW_NEXT below). A sample of the generated expressions, evaluated from before a spring-forward and
// before a fall-back, must tick at the instants Sluice's evaluator gives.
const croniter = spawnSync('/usr/bin/python3', ['-c', 'import croniter'], { encoding: 'utf8' });
const haveCroniter = croniter.status === 0;
const croniterTest = haveCroniter || process.env.SLUICE_REQUIRE_INTEGRATION === '1' ? test : test.skip;
croniterTest(
  `Unix expressions tick where python croniter says${haveCroniter ? '' : ' (skipped: /usr/bin/python3 has no croniter module; apt-get install python3-croniter)'}`,
  (t) => {
    const samples = ROWS.map((r) =>
      coveringCron(info('g', { startTime: at(2026, 1, 1), endTime: FAR, ...r.schedule }), 'unix'),
    );
    const starts = [at(2026, 3, 20), at(2026, 10, 20)];
    const script = `
import json, sys
from datetime import datetime
from zoneinfo import ZoneInfo
from croniter import croniter
out = []
for expr, zone, start in json.load(sys.stdin):
    tz = ZoneInfo(zone)
    it = croniter(expr, datetime.fromtimestamp(start / 1000, tz).replace(tzinfo=None))
    ticks = []
    while len(ticks) < 40:
        t = int(it.get_next(datetime).replace(tzinfo=tz).timestamp() * 1000)
        if t > start and (not ticks or t > ticks[-1]):
            ticks.append(t)
    out.append(ticks)
print(json.dumps(out))`;
    const jobs = samples.flatMap((c) => starts.map((from) => ({ c, from })));
    const input = JSON.stringify(jobs.map(({ c, from }) => [c.expression, c.timeZone, from]));
    const theirs = JSON.parse(
      execFileSync('/usr/bin/python3', ['-c', script], { input, encoding: 'utf8' }),
    ) as number[][];
    jobs.forEach(({ c, from }, i) => {
      const cron = parseCron(c.expression);
      const ours: number[] = [];
      for (
        let x = nextFireTime(cron, from, c.timeZone);
        x !== undefined && ours.length < 40;
        x = nextFireTime(cron, x, c.timeZone)
      )
        ours.push(x);
      t.deepEqual(ours, theirs[i], `${c.expression} in ${c.timeZone} from ${new Date(from).toISOString()}`);
    });
  },
);

// DST gaps under each scheduler's own evaluation. Sluice moves a nonexistent wall time forward; the
// schedulers do not reliably: Quartz's CronExpression.getTimeAfter never fires at a nonexistent wall
// time (setCalendarHour bumps the hour and the search goes on to the next day), and Airflow's cron
// timetables run croniter on the naive wall time after the point they start from, so from a start
// date or an unpause between the regular wall time and the moved instant the nonexistent time is
// walked past. Each due time is looked for from one second before it, the worst start.
const GAP_CASES: { name: string; schedule: Partial<ScheduleInfo> }[] = [
  {
    name: 'Lord Howe, cron 02:10:30 (30-minute gap on 2026-10-04)',
    schedule: {
      scheduleType: 1,
      crontabExpression: '30 10 2 * * ?',
      timeZone: 'Australia/Lord_Howe',
      startTime: at(2026, 9, 1),
      endTime: at(2026, 10, 31),
    },
  },
  {
    name: 'Lord Howe, daily at 02:15',
    schedule: {
      scheduleUnit: 'D',
      scheduleInterval: 1,
      timeZone: 'Australia/Lord_Howe',
      startTime: instantOfWall(at(2026, 9, 1, 2, 15), 'Australia/Lord_Howe'),
      endTime: at(2026, 10, 31),
    },
  },
  {
    name: 'Berlin, daily at 02:30 (gap on 2026-03-29)',
    schedule: {
      scheduleUnit: 'D',
      scheduleInterval: 1,
      timeZone: 'Europe/Berlin',
      startTime: instantOfWall(at(2026, 3, 1, 2, 30), 'Europe/Berlin'),
      endTime: at(2026, 4, 30),
    },
  },
  {
    name: 'New York, weekly on Sunday at 02:30 (gap on Sunday 2026-03-08)',
    schedule: {
      scheduleUnit: 'W',
      scheduleInterval: 1,
      timeZone: 'America/New_York',
      startTime: instantOfWall(at(2026, 2, 1, 2, 30), 'America/New_York'),
      endTime: at(2026, 8, 31),
    },
  },
  {
    name: 'New York, cron 02:45 on weekdays and Sundays',
    schedule: {
      scheduleType: 1,
      crontabExpression: '0 45 2 ? * SUN-FRI',
      timeZone: 'America/New_York',
      startTime: at(2026, 3, 1),
      endTime: at(2026, 3, 31),
    },
  },
];

/**
 * Quartz's next fire time after `after` (CronExpression.getTimeAfter in a trigger's zone): the next
 * wall time the cron holds from the whole second after `after` that exists in the zone, read as Java's
 * GregorianCalendar reads a wall time (computeTime: "we assume standard time"), so a wall time that
 * happens twice is its second pass. getTimeAfter sets and reads back calendar fields, so even a start
 * inside a first pass is re-read as the second: no Quartz cron ticks in the first pass of a repeated
 * hour. Checked against Quartz 2.3.2 itself below (Quartz's ticks, when /usr/share/java/quartz2.jar is
 * there).
 */
function quartzNext(expression: string | Cron, after: number, zone: string, limit: number): number | undefined {
  const cron = typeof expression === 'string' ? parseCron(expression) : expression;
  const wallLimit = wallMs(toLocal(limit, zone));
  const from = Math.floor((after + 1000) / 1000) * 1000;
  for (let w = nextWall(cron, wallMs(toLocal(from, zone)), wallLimit); w !== undefined;) {
    const instant = lastInstantOfWall(w, zone);
    if (instant !== undefined) return instant;
    w = nextWall(cron, w + 1000, wallLimit);
  }
  return undefined;
}

/** The last instant showing a wall time in a zone (its second pass when repeated); none in a gap. */
function lastInstantOfWall(wall: number, zone: string): number | undefined {
  let last: number | undefined;
  for (const o of [offsetAt(wall - DAY, zone), offsetAt(wall + DAY, zone)]) {
    const u = wall - o;
    if (offsetAt(u, zone) === o && (last === undefined || u > last)) last = u;
  }
  return last;
}

// Airflow 3's CronMixin._get_next with pendulum's localisation (make_aware sets fold=1; a gap time
// moves forward by the gap), evaluated with croniter from one second before each due time.
const AIRFLOW_NEXT = `
import json, sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from croniter import croniter
def localise(naive, tz):
    before = naive.replace(fold=0, tzinfo=tz).utcoffset()
    after = naive.replace(fold=1, tzinfo=tz).utcoffset()
    if after > before:
        naive = naive + (after - before)
    return naive.replace(fold=1, tzinfo=tz)
out = []
for expr, zone, dues in json.load(sys.stdin):
    tz = ZoneInfo(zone)
    misses = []
    for due in dues:
        current = datetime.fromtimestamp((due - 1000) / 1000, timezone.utc)
        naive = current.astimezone(tz).replace(tzinfo=None)
        it = croniter(expr, start_time=naive)
        scheduled = it.get_next(datetime)
        if it.expanded[1] == ["*"]:
            tick = current + (scheduled - naive)
        else:
            tick = localise(scheduled, tz)
        ms = int(round(tick.timestamp() * 1000))
        if not (due <= ms < due + 60000):
            misses.append([due, ms])
    out.append(misses)
print(json.dumps(out))`;

/**
 * Airflow 3's CronMixin._get_next as AIRFLOW_NEXT models it, in TypeScript for the property test:
 * croniter's next naive wall time after the naive `after` (whole minutes, strictly later), then either
 * that naive step added to `after` (a cron whose hour field is every hour, _covers_every_hour) or the
 * wall time localised as pendulum does with fold=1 (a gap time moved forward by the gap, a repeated one
 * its second pass). The python version is checked against croniter itself in the tests around it.
 */
function airflowNext(expression: string, after: number, zone: string): number | undefined {
  const cron = parseCron(expression);
  const naive = wallMs(toLocal(after, zone));
  const w = nextWall(cron, Math.floor(naive / 60_000) * 60_000 + 60_000, naive + 400 * DAY);
  if (w === undefined) return undefined;
  if (expression.split(' ')[1] === '*') return after + (w - naive);
  return lastInstantOfWall(w, zone) ?? w - offsetAt(w - DAY, zone);
}

for (const g of GAP_CASES) {
  test(`DST gap under Quartz's evaluation: ${g.name}`, (t) => {
    const s = info('g', g.schedule);
    const c = coveringCron(s, 'quartz');
    const all = dues(s, 400);
    t.true(all.length > 20);
    const missed = all.filter((d) => {
      const tick = quartzNext(c.expression, d - 1000, c.timeZone, d + 1000);
      return tick === undefined || tick < d || tick >= d + 1000;
    });
    t.deepEqual(
      missed.map((d) => new Date(d).toISOString()),
      [],
      `${c.expression} in ${c.timeZone}`,
    );
    t.false(c.exact, 'the gap day needs a wall time the other days do not');
  });
}

croniterTest(
  `DST gaps under Airflow's evaluation (croniter, pendulum's localisation)${haveCroniter ? '' : ' (skipped: /usr/bin/python3 has no croniter module)'}`,
  (t) => {
    const jobs = GAP_CASES.map((g) => {
      const s = info('g', g.schedule);
      return { name: g.name, c: coveringCron(s, 'unix'), all: dues(s, 400) };
    });
    const input = JSON.stringify(jobs.map(({ c, all }) => [c.expression, c.timeZone, all]));
    const misses = JSON.parse(execFileSync('/usr/bin/python3', ['-c', AIRFLOW_NEXT], { input, encoding: 'utf8' })) as [
      number,
      number,
    ][][];
    jobs.forEach(({ name, c, all }, i) => {
      t.true(all.length > 20, name);
      t.deepEqual(
        misses[i]!.map(([d, tick]) => `${new Date(d).toISOString()} → ${new Date(tick).toISOString()}`),
        [],
        `${name}: ${c.expression} in ${c.timeZone}`,
      );
      t.false(c.exact, `${name}: the gap day needs a wall time the other days do not`);
    });
  },
);

test('the regular wall time alone misses the gap day under both schedulers (what the extra values are for)', (t) => {
  // 02:30 in Berlin on 2026-03-29 happens at 03:30 CEST; a cron of 02:30 alone has no tick then.
  const due = instantOfWall(at(2026, 3, 29, 3, 30), 'Europe/Berlin');
  t.is(quartzNext('0 30 2 * * ?', due - 1000, 'Europe/Berlin', due + 2 * DAY), due + DAY - 3_600_000);
  t.is(quartzNext('0 30 2,3 * * ?', due - 1000, 'Europe/Berlin', due + 2 * DAY), due);
});

// fast-check seed 1301100188 found it: every 23 days from 01:00 in Berlin with a 120-minute delay is due
// at 03:00, and at 04:00 when its window ends in a spring-forward gap, which first happens in 2039,
// past the four-year sample. Due times near every later offset change are looked at too.
test('a due time that first meets a DST gap after the four-year sample is covered (fast-check seed 1301100188)', (t) => {
  const s = info('g', {
    scheduleUnit: 'D',
    scheduleInterval: 23,
    timeZone: 'Europe/Berlin',
    startTime: at(2025, 1, 1),
    endTime: FAR,
    delayTime: 120,
  });
  const all = dues(s, 1500);
  const hourOf = (d: number) => toLocal(d, 'Europe/Berlin').hour;
  const moved = all.filter((d) => hourOf(d) === 4);
  t.true(moved.length > 0 && moved[0]! - s.startTime > 1461 * DAY, 'the first moved due time is past the sample');
  for (const dialect of ['quartz', 'unix'] as const) {
    const c = coveringCron(s, dialect);
    t.is(c.expression, dialect === 'quartz' ? '0 0 3,4 * * ? *' : '0 3,4 * * *');
    t.false(c.exact);
    t.deepEqual(uncovered(s, c, 1500), [], `${dialect}: ${c.expression}`);
    if (dialect === 'quartz')
      for (const d of moved)
        t.is(quartzNext(c.expression, d - 1000, c.timeZone, d + DAY), d, new Date(d).toISOString());
  }
});

// A first pass of a repeated hour. Sluice gives a wall time that happens twice its first pass. Airflow
// localises a cron's wall time with fold=1 (its second pass) unless the cron's hour field is every hour
// (CronMixin._get_next's fold-hour workaround, airflow-core/src/airflow/timetables/_cron.py), so the Unix
// covering cron of such a schedule ticks every hour. Quartz ticks no first pass at all (see quartzNext):
// there the due time is ticked an hour late, in the second pass, and FireDue fires it then.
const FOLD_CASES: { name: string; schedule: Partial<ScheduleInfo> }[] = [
  {
    name: 'Berlin, daily at 02:30 (fall-back on 2026-10-25)',
    schedule: {
      scheduleUnit: 'D',
      scheduleInterval: 1,
      timeZone: 'Europe/Berlin',
      startTime: instantOfWall(at(2026, 10, 1, 2, 30), 'Europe/Berlin'),
      endTime: at(2026, 11, 30),
    },
  },
  {
    name: 'Berlin, daily from 00:00 with a 150-minute delay',
    schedule: {
      scheduleUnit: 'D',
      scheduleInterval: 1,
      timeZone: 'Europe/Berlin',
      startTime: instantOfWall(at(2026, 10, 1), 'Europe/Berlin'),
      endTime: at(2026, 11, 30),
      delayTime: 150,
    },
  },
  {
    name: 'Berlin, cron 02:40:30',
    schedule: {
      scheduleType: 1,
      crontabExpression: '30 40 2 * * ?',
      timeZone: 'Europe/Berlin',
      startTime: at(2026, 10, 1),
      endTime: at(2026, 11, 30),
    },
  },
  {
    name: 'Lord Howe, daily at 01:45 (01:30-02:00 repeated on 2026-04-05)',
    schedule: {
      scheduleUnit: 'D',
      scheduleInterval: 1,
      timeZone: 'Australia/Lord_Howe',
      startTime: instantOfWall(at(2026, 3, 20, 1, 45), 'Australia/Lord_Howe'),
      endTime: at(2026, 5, 30),
    },
  },
  {
    name: 'New York, weekly on Sunday at 01:30 (fall-back on Sunday 2026-11-01)',
    schedule: {
      scheduleUnit: 'W',
      scheduleInterval: 1,
      timeZone: 'America/New_York',
      startTime: instantOfWall(at(2026, 9, 6, 1, 30), 'America/New_York'),
      endTime: at(2027, 2, 28),
    },
  },
];

/** Due times in the first pass of a repeated hour (the wall time happens again later). */
const firstPass = (d: number, zone: string) => lastInstantOfWall(wallMs(toLocal(d, zone)), zone) !== d;

for (const f of FOLD_CASES) {
  test(`first pass of a repeated hour: ${f.name}: Unix ticks every hour, Quartz ticks the second pass`, (t) => {
    const s = info('g', f.schedule);
    const all = dues(s, 400);
    const zone = s.timeZone;
    const early = all.filter((d) => firstPass(d, zone));
    t.is(early.length, 1, 'one due time in a first pass');
    const unix = coveringCron(s, 'unix');
    t.is(unix.expression.split(' ')[1], '*', `hour field every hour: ${unix.expression}`);
    t.deepEqual(unix.expression.split(' ').slice(2), ['*', '*', '*'], 'every day (see coveringCron)');
    t.false(unix.exact);
    const quartz = coveringCron(s, 'quartz');
    t.false(quartz.exact, 'under Quartz the first-pass due time has no tick in [due, due + 1 s)');
    t.not(quartz.expression.split(' ')[2], '*', `Quartz keeps its hours: ${quartz.expression}`);
    for (const d of all) {
      const tick = quartzNext(quartz.expression, d - 1000, zone, d + 2 * DAY);
      // The second pass of the same wall time: the offset change later.
      const expected = early.includes(d) ? lastInstantOfWall(wallMs(toLocal(d, zone)), zone) : d;
      t.is(tick, expected, `${new Date(d).toISOString()}: ${quartz.expression}`);
    }
  });
}

croniterTest(
  `first pass of a repeated hour under Airflow's evaluation: every due time ticked in its minute${haveCroniter ? '' : ' (skipped: /usr/bin/python3 has no croniter module)'}`,
  (t) => {
    const jobs = FOLD_CASES.map((f) => {
      const s = info('g', f.schedule);
      return { name: f.name, c: coveringCron(s, 'unix'), all: dues(s, 400) };
    });
    // The regular wall time alone, for contrast: Airflow ticks the fall-back day's due time an hour late.
    const daily = jobs[0]!;
    jobs.push({ name: 'contrast', c: { ...daily.c, expression: '30 2 * * *' }, all: daily.all });
    const input = JSON.stringify(jobs.map(({ c, all }) => [c.expression, c.timeZone, all]));
    const misses = JSON.parse(execFileSync('/usr/bin/python3', ['-c', AIRFLOW_NEXT], { input, encoding: 'utf8' })) as [
      number,
      number,
    ][][];
    jobs.slice(0, -1).forEach(({ name, c }, i) => {
      t.deepEqual(
        misses[i]!.map(([d, tick]) => `${new Date(d).toISOString()} → ${new Date(tick).toISOString()}`),
        [],
        `${name}: ${c.expression} in ${c.timeZone}`,
      );
    });
    const fallBack = instantOfWall(at(2026, 10, 25, 2, 30), 'Europe/Berlin');
    // (Its last window, cut short by the end at 01:00, is due off the 02:30 grid.)
    const cutEnd = daily.all[daily.all.length - 1];
    t.deepEqual(
      misses[misses.length - 1]!.filter(([d]) => d !== cutEnd),
      [[fallBack, fallBack + 3_600_000]],
      '30 2 * * * ticks 02:30 CET',
    );
  },
);

// Quartz itself (Debian's libquartz2-java, 2.3.2, the version DolphinScheduler 3.2 and 3.3 ship) against
// the stand-in above, across spring-forward gaps and fall-back repetitions in three zones.
const QUARTZ_JAR = '/usr/share/java/quartz2.jar';
const haveQuartz = existsSync(QUARTZ_JAR) && spawnSync('java', ['-version'], { encoding: 'utf8' }).status === 0;
const quartzTest = haveQuartz || process.env.SLUICE_REQUIRE_INTEGRATION === '1' ? test : test.skip;
quartzTest(
  `the Quartz stand-in ticks where Quartz 2.3.2 does${haveQuartz ? '' : ` (skipped: no java or no ${QUARTZ_JAR}; apt-get install libquartz2-java default-jre-headless)`}`,
  (t) => {
    t.timeout(120_000);
    const jobs: [zone: string, expression: string, after: number][] = [];
    const around = (zone: string, y: number, mo: number, d: number) => [
      instantOfWall(at(y, mo, d - 1, 23), zone),
      instantOfWall(at(y, mo, d, 1, 59, 30), zone),
      // Inside the first pass (Berlin, New York) or just before the change.
      instantOfWall(at(y, mo, d, 2, 10), zone),
    ];
    const zones: [string, [number, number, number][]][] = [
      [
        'Europe/Berlin',
        [
          [2026, 3, 29],
          [2026, 10, 25],
        ],
      ],
      [
        'America/New_York',
        [
          [2026, 3, 8],
          [2026, 11, 1],
        ],
      ],
      [
        'Australia/Lord_Howe',
        [
          [2026, 4, 5],
          [2026, 10, 4],
        ],
      ],
    ];
    const crons = ['0 30 2 * * ?', '0 0/20 * * * ?', '30 10 1,2 * * ?', '0 15,45 2,3 * * ?', '0 0 12 ? * SUN'];
    for (const [zone, days] of zones)
      for (const [y, mo, d] of days)
        for (const after of around(zone, y, mo, d)) for (const e of crons) jobs.push([zone, e, after]);
    const count = 6;
    const out = execFileSync('java', ['-cp', QUARTZ_JAR, join(ROOT, 'test/fixtures/quartz/QuartzTicks.java')], {
      input: jobs.map(([zone, e, after]) => `${zone}\t${e}\t${after}\t${count}\n`).join(''),
      encoding: 'utf8',
    });
    const theirs = out.trimEnd().split('\n');
    t.is(theirs.length, jobs.length);
    jobs.forEach(([zone, e, after], i) => {
      const ours: number[] = [];
      for (let x = after; ours.length < count;) {
        const next = quartzNext(e, x, zone, x + 10 * DAY);
        if (next === undefined) break;
        ours.push((x = next));
      }
      t.is(ours.join(' '), theirs[i] ?? '', `${e} in ${zone} after ${new Date(after).toISOString()}`);
    });
  },
);
