/**
 * Cron fire times checked against the expected values of peers' own test suites (values, not code):
 * - Quartz: quartz-scheduler/quartz, quartz/src/test/java/org/quartz/CronExpressionTest.java
 * - croner: Hexagon/croner, test/timezone.test.ts, test/pattern.test.ts, test/ocps-1.4.test.ts
 * - croniter: pallets-eco/croniter, src/croniter/tests/test_croniter.py
 * - cron-parser: harrisiirak/cron-parser, tests/CronExpressionParser.test.ts
 * - Airflow: apache/airflow, tests/timetables/test_interval_timetable.py (CronDataIntervalTimetable)
 * Quartz's tests run in the JVM's zone on wall times: they are read here in UTC. Where Sluice differs,
 * the case carries the peer's values and Sluice's, and the Sluice rule that decides (docs/schedules.md).
 */
import test from 'ava';
import { nextFireTime, parseCron } from '../../services/schedule/domain/cron.js';
import { windowSpec, windowsAfter } from '../../services/schedule/domain/windows.js';

/** The first n fire times strictly after `from`, as window ends of a cron schedule. */
function fires(expr: string, zone: string, from: string, n: number): number[] {
  const start = Date.parse(from);
  const spec = windowSpec({
    scheduleType: 1,
    scheduleUnit: '',
    scheduleInterval: 0,
    startTime: start,
    endTime: start + 2 * 366 * 86_400_000,
    timeZone: zone,
    crontabExpression: expr,
  });
  const out: number[] = [];
  for (const w of windowsAfter(spec)) {
    if (w.end === spec.endTime || out.length === n) break;
    out.push(w.end);
  }
  return out;
}

interface Case {
  readonly source: string;
  readonly expr: string;
  readonly zone: string;
  readonly from: string;
  /** The peer's expected fire times (ISO instants). */
  readonly expected: readonly string[];
  /** Sluice's, where a documented rule makes them differ. */
  readonly sluice?: { readonly fires: readonly string[]; readonly rule: string };
}

const FIRST = 'an ambiguous (fall-back) wall time fires at its first occurrence only';

const CASES: Case[] = [
  // Quartz CronExpressionTest.test1420
  {
    source: 'Quartz test1420',
    expr: '0 0 0 1W * ?',
    zone: 'UTC',
    from: '2025-11-18T10:15:00Z',
    expected: [
      '2025-12-01T00:00:00Z',
      '2026-01-01T00:00:00Z',
      '2026-02-02T00:00:00Z',
      '2026-03-02T00:00:00Z',
      '2026-04-01T00:00:00Z',
      '2026-05-01T00:00:00Z',
      '2026-06-01T00:00:00Z',
      '2026-07-01T00:00:00Z',
      '2026-08-03T00:00:00Z',
      '2026-09-01T00:00:00Z',
      '2026-10-01T00:00:00Z',
      '2026-11-02T00:00:00Z',
      '2026-12-01T00:00:00Z',
    ],
  },
  {
    source: 'Quartz test1420',
    expr: '59 59 23 L * ?',
    zone: 'UTC',
    from: '2025-11-18T10:15:00Z',
    expected: [
      '2025-11-30T23:59:59Z',
      '2025-12-31T23:59:59Z',
      '2026-01-31T23:59:59Z',
      '2026-02-28T23:59:59Z',
      '2026-03-31T23:59:59Z',
      '2026-04-30T23:59:59Z',
      '2026-05-31T23:59:59Z',
      '2026-06-30T23:59:59Z',
      '2026-07-31T23:59:59Z',
      '2026-08-31T23:59:59Z',
      '2026-09-30T23:59:59Z',
      '2026-10-31T23:59:59Z',
      '2026-11-30T23:59:59Z',
      '2026-12-31T23:59:59Z',
    ],
  },
  // Quartz testGetTimeBefore: "0/30 1 2 * * ? *" fires 30 s apart, then a day less 30 s later.
  {
    source: 'Quartz testGetTimeBefore',
    expr: '0/30 1 2 * * ? *',
    zone: 'UTC',
    from: '2026-01-01T00:00:00Z',
    expected: ['2026-01-01T02:01:00Z', '2026-01-01T02:01:30Z', '2026-01-02T02:01:00Z'],
  },
  // croner test/timezone.test.ts
  {
    source: 'croner "OCPS 1.4 compliance: DST Gap"',
    expr: '0 30 2 * * *',
    zone: 'America/New_York',
    from: '2025-03-09T06:00:00Z',
    expected: ['2025-03-09T07:30:00Z'],
  },
  {
    source: 'croner "OCPS 1.4 compliance: DST Overlap"',
    expr: '0 30 1 * * *',
    zone: 'America/New_York',
    from: '2025-11-02T04:00:00Z',
    expected: ['2025-11-02T05:30:00Z', '2025-11-03T06:30:00Z'],
  },
  {
    source: 'croner "OCPS 1.4 compliance: DST Overlap" (after the first occurrence)',
    expr: '0 30 1 * * *',
    zone: 'America/New_York',
    from: '2025-11-02T05:31:00Z',
    expected: ['2025-11-03T06:30:00Z'],
  },
  {
    source: 'croner "OCPS 1.4 compliance: Europe/London DST transitions"',
    expr: '0 30 1 * * *',
    zone: 'Europe/London',
    from: '2025-03-30T00:00:00Z',
    expected: ['2025-03-30T01:30:00Z'],
  },
  {
    source: 'croner "OCPS 1.4 compliance: Europe/London DST transitions" (fall back)',
    expr: '0 30 1 * * *',
    zone: 'Europe/London',
    from: '2025-10-26T00:00:00Z',
    expected: ['2025-10-26T00:30:00Z', '2025-10-27T01:30:00Z'],
  },
  {
    source: 'croner "Issue #286" (spanning the fall-back)',
    expr: '* * * * *',
    zone: 'America/Los_Angeles',
    from: '2025-11-02T08:58:00Z',
    expected: ['2025-11-02T08:59:00Z', '2025-11-02T10:00:00Z', '2025-11-02T10:01:00Z'],
  },
  {
    source: 'croner "UTC timezone should not skip hours (issue #284)"',
    expr: '0 0 * * * *',
    zone: 'UTC',
    from: '2025-10-05T00:00:00Z',
    expected: ['2025-10-05T01:00:00Z', '2025-10-05T02:00:00Z', '2025-10-05T03:00:00Z', '2025-10-05T04:00:00Z'],
  },
  // croner test/ocps-1.4.test.ts
  {
    source: 'croner "OCPS 1.4: DST Gap (Spring Forward)"',
    expr: '0 30 2 12 3 *',
    zone: 'America/New_York',
    from: '2023-03-12T00:00:00Z',
    expected: ['2023-03-12T07:30:00Z'],
  },
  // croner test/pattern.test.ts, W modifier
  {
    source: 'croner W 15W',
    expr: '0 0 0 15W 7 *',
    zone: 'UTC',
    from: '2025-07-01T00:00:00Z',
    expected: ['2025-07-15T00:00:00Z'],
  },
  {
    source: 'croner W 19W',
    expr: '0 0 0 19W 7 *',
    zone: 'UTC',
    from: '2025-07-01T00:00:00Z',
    expected: ['2025-07-18T00:00:00Z'],
  },
  {
    source: 'croner W 20W',
    expr: '0 0 0 20W 7 *',
    zone: 'UTC',
    from: '2025-07-01T00:00:00Z',
    expected: ['2025-07-21T00:00:00Z'],
  },
  {
    source: 'croner W 1W',
    expr: '0 0 0 1W 6 *',
    zone: 'UTC',
    from: '2025-05-01T00:00:00Z',
    expected: ['2025-06-02T00:00:00Z'],
  },
  {
    source: 'croner W 31W',
    expr: '0 0 0 31W 8 *',
    zone: 'UTC',
    from: '2025-08-01T00:00:00Z',
    expected: ['2025-08-29T00:00:00Z'],
  },
  {
    source: 'croner W 15w (case)',
    expr: '0 0 0 15w 7 *',
    zone: 'UTC',
    from: '2025-07-01T00:00:00Z',
    expected: ['2025-07-15T00:00:00Z'],
  },
  // croniter src/croniter/tests/test_croniter.py
  {
    source: 'croniter test_timezone_winter_time',
    expr: '*/30 * * * *',
    zone: 'Europe/Athens',
    from: '2013-10-27T02:00:00+03:00',
    expected: [
      '2013-10-27T02:30:00+03:00',
      '2013-10-27T03:00:00+03:00',
      '2013-10-27T03:30:00+03:00',
      '2013-10-27T03:00:00+02:00',
      '2013-10-27T03:30:00+02:00',
      '2013-10-27T04:00:00+02:00',
      '2013-10-27T04:30:00+02:00',
    ],
    sluice: {
      rule: FIRST,
      fires: [
        '2013-10-27T02:30:00+03:00',
        '2013-10-27T03:00:00+03:00',
        '2013-10-27T03:30:00+03:00',
        '2013-10-27T04:00:00+02:00',
        '2013-10-27T04:30:00+02:00',
        '2013-10-27T05:00:00+02:00',
        '2013-10-27T05:30:00+02:00',
      ],
    },
  },
  {
    source: 'croniter test_timezone_summer_time',
    expr: '*/30 * * * *',
    zone: 'Europe/Athens',
    from: '2013-03-31T01:00:00+02:00',
    expected: [
      '2013-03-31T01:30:00+02:00',
      '2013-03-31T02:00:00+02:00',
      '2013-03-31T02:30:00+02:00',
      '2013-03-31T04:00:00+03:00',
      '2013-03-31T04:30:00+03:00',
    ],
  },
  {
    source: 'croniter test_std_dst (daily, spring)',
    expr: '0 0 * * *',
    zone: 'Europe/Warsaw',
    from: '2017-03-26T00:00:00+01:00',
    expected: ['2017-03-27T00:00:00+02:00'],
  },
  {
    source: 'croniter test_std_dst (hourly, spring)',
    expr: '0 * * * *',
    zone: 'Europe/Warsaw',
    from: '2017-03-26T01:00:00+01:00',
    expected: ['2017-03-26T03:00:00+02:00'],
  },
  {
    source: 'croniter test_std_dst (daily, fall)',
    expr: '0 0 * * *',
    zone: 'Europe/Warsaw',
    from: '2017-10-29T00:00:00+02:00',
    expected: ['2017-10-30T00:00:00+01:00'],
  },
  {
    source: 'croniter test_std_dst (hourly, fall)',
    expr: '0 * * * *',
    zone: 'Europe/Warsaw',
    from: '2017-10-29T01:59:00+02:00',
    expected: [
      '2017-10-29T02:00:00+02:00',
      '2017-10-29T02:00:00+01:00',
      '2017-10-29T03:00:00+01:00',
      '2017-10-29T04:00:00+01:00',
    ],
    sluice: {
      rule: FIRST,
      fires: [
        '2017-10-29T02:00:00+02:00',
        '2017-10-29T03:00:00+01:00',
        '2017-10-29T04:00:00+01:00',
        '2017-10-29T05:00:00+01:00',
      ],
    },
  },
  ...[
    '2018-02-17T21:00:00-02:00',
    '2018-02-17T22:00:00-02:00',
    '2018-02-17T23:00:00-02:00',
    '2018-02-17T21:05:00-02:00',
    '2018-02-17T22:05:00-02:00',
    '2018-02-17T23:05:00-02:00',
  ].map((from) => ({
    source: 'croniter test_std_dst2',
    expr: '0 0 * * *',
    zone: 'America/Sao_Paulo',
    from,
    expected: ['2018-02-18T00:00:00-03:00'],
  })),
  ...['2018-02-18T00:00:00-03:00', '2018-02-18T00:05:00-03:00'].map((from) => ({
    source: 'croniter test_std_dst2',
    expr: '0 0 * * *',
    zone: 'America/Sao_Paulo',
    from,
    expected: ['2018-02-19T00:00:00-03:00'],
  })),
  {
    source: 'croniter test_std_dst3',
    expr: '0 0 24 * *',
    zone: 'Australia/Adelaide',
    from: '2020-04-15T00:00:00+09:30',
    expected: ['2020-04-24T00:00:00+09:30'],
  },
  {
    source: 'croniter test_dst_daily',
    expr: '7 0 * * *',
    zone: 'Europe/London',
    from: '2025-03-30T00:00:00+00:00',
    expected: ['2025-03-30T00:07:00+00:00', '2025-03-31T00:07:00+01:00', '2025-04-01T00:07:00+01:00'],
  },
  {
    source: 'croniter test_dst_hourly',
    expr: '7 * * * *',
    zone: 'Europe/London',
    from: '2025-03-30T00:00:00+00:00',
    expected: ['2025-03-30T00:07:00+00:00', '2025-03-30T02:07:00+01:00', '2025-03-30T03:07:00+01:00'],
  },
  // cron-parser tests/CronExpressionParser.test.ts, "timezones and DST tests"
  {
    source: 'cron-parser "It works on DST start" 0 * * * *',
    expr: '0 * * * *',
    zone: 'Europe/Athens',
    from: '2016-03-27T02:00:01+02:00',
    expected: ['2016-03-27T04:00:00+03:00', '2016-03-27T05:00:00+03:00'],
  },
  {
    source: 'cron-parser "It works on DST start" 30 2 * * *',
    expr: '30 2 * * *',
    zone: 'Europe/Athens',
    from: '2016-03-27T02:00:01+02:00',
    expected: ['2016-03-27T02:30:00+02:00', '2016-03-28T02:30:00+03:00'],
  },
  {
    source: 'cron-parser "It works on DST start" 0 3 * * *',
    expr: '0 3 * * *',
    zone: 'Europe/Athens',
    from: '2016-03-27T02:00:01+02:00',
    expected: ['2016-03-27T04:00:00+03:00', '2016-03-28T03:00:00+03:00'],
  },
  {
    source: 'cron-parser "It works on DST start" */20 3 * * *',
    expr: '*/20 3 * * *',
    zone: 'Europe/Athens',
    from: '2016-03-27T02:00:01+02:00',
    expected: [
      '2016-03-27T04:00:00+03:00',
      '2016-03-27T04:20:00+03:00',
      '2016-03-27T04:40:00+03:00',
      '2016-03-28T03:00:00+03:00',
    ],
  },
  {
    source: 'cron-parser "It works on DST start" 0 * 27 * *',
    expr: '0 * 27 * *',
    zone: 'Europe/Athens',
    from: '2016-03-27T00:00:01+02:00',
    expected: [
      '2016-03-27T01:00:00+02:00',
      '2016-03-27T02:00:00+02:00',
      '2016-03-27T04:00:00+03:00',
      '2016-03-27T05:00:00+03:00',
    ],
  },
  {
    source: 'cron-parser "It works on DST end 2016-10-30 02:00:01 - 0 * * * *"',
    expr: '0 * * * *',
    zone: 'Europe/Athens',
    from: '2016-10-30T02:00:01+03:00',
    expected: ['2016-10-30T03:00:00+03:00', '2016-10-30T03:00:00+02:00', '2016-10-30T04:00:00+02:00'],
    sluice: {
      rule: FIRST,
      fires: ['2016-10-30T03:00:00+03:00', '2016-10-30T04:00:00+02:00', '2016-10-30T05:00:00+02:00'],
    },
  },
  {
    source: 'cron-parser "works on DST end 2016-10-30 02:00:01 - 0 3 * * *"',
    expr: '0 3 * * *',
    zone: 'Europe/Athens',
    from: '2016-10-30T02:00:01+03:00',
    expected: ['2016-10-30T03:00:00+03:00', '2016-10-31T03:00:00+02:00'],
  },
  {
    source: 'cron-parser "works on DST end 2016-10-30 02:00:01 - */20 3 * * *"',
    expr: '*/20 3 * * *',
    zone: 'Europe/Athens',
    from: '2016-10-30T02:00:01+03:00',
    expected: [
      '2016-10-30T03:00:00+03:00',
      '2016-10-30T03:20:00+03:00',
      '2016-10-30T03:40:00+03:00',
      '2016-10-31T03:00:00+02:00',
    ],
  },
  {
    source: 'cron-parser "does not overshoot target hour on spring-forward DST day (forward)"',
    expr: '0 8 * * 0',
    zone: 'America/Chicago',
    from: '2026-03-08T05:45:00Z',
    expected: ['2026-03-08T13:00:00Z'],
  },
  {
    source: 'cron-parser "compensates a schedule inside a two-hour gap"',
    expr: '30 1 * * *',
    zone: 'Antarctica/Troll',
    from: '2026-03-27T12:00:00Z',
    expected: ['2026-03-28T01:30:00Z', '2026-03-29T01:30:00Z', '2026-03-29T23:30:00Z'],
  },
  {
    source: 'cron-parser "compensates the second skipped hour of a two-hour gap"',
    expr: '30 2 * * *',
    zone: 'Antarctica/Troll',
    from: '2026-03-28T12:00:00Z',
    expected: ['2026-03-29T01:30:00Z', '2026-03-30T00:30:00Z'],
    sluice: {
      rule: 'a wall time in a gap moves forward by the whole gap (02:30 + 2 h = 04:30 local)',
      fires: ['2026-03-29T02:30:00Z', '2026-03-30T00:30:00Z'],
    },
  },
  {
    source: 'cron-parser "does not repeat the compensated occurrence on later hours"',
    expr: '30 1 * * *',
    zone: 'Antarctica/Troll',
    from: '2026-03-28T12:00:00Z',
    expected: ['2026-03-29T01:30:00Z', '2026-03-29T23:30:00Z', '2026-03-30T23:30:00Z'],
  },
  {
    source: 'cron-parser "does not repeat the compensated occurrence when the minute rolls the hour"',
    expr: '30 59 2 * * *',
    zone: 'America/New_York',
    from: '2026-03-07T12:00:00Z',
    expected: ['2026-03-08T07:59:30Z', '2026-03-09T06:59:30Z', '2026-03-10T06:59:30Z'],
  },
  {
    source: 'cron-parser "leaves a sub-hour transition alone"',
    expr: '30 2 * * *',
    zone: 'Australia/Lord_Howe',
    from: '2026-10-03T05:00:00Z',
    expected: ['2026-10-03T15:30:00Z', '2026-10-04T15:30:00Z'],
  },
  {
    // cron-parser's test pins 16:30 for the second and says 02:30 (15:30Z), which exists, is the right answer.
    source: 'cron-parser "keeps every occurrence when a sub-hour transition is crossed by an hour step"',
    expr: '30 1,2 * * *',
    zone: 'Australia/Lord_Howe',
    from: '2026-10-03T12:00:00Z',
    expected: ['2026-10-03T15:00:00Z', '2026-10-03T16:30:00Z', '2026-10-04T14:30:00Z'],
    sluice: {
      rule: 'a wall time that exists fires at that time (02:30 exists on the 30-minute gap day)',
      fires: ['2026-10-03T15:00:00Z', '2026-10-03T15:30:00Z', '2026-10-04T14:30:00Z'],
    },
  },
  {
    source: 'cron-parser "compensates a gap that ends after midnight"',
    expr: '0 22,23 * * *',
    zone: 'America/Nuuk',
    from: '2024-03-30T00:00:00Z',
    expected: ['2024-03-30T01:00:00Z', '2024-03-31T00:00:00Z', '2024-03-31T01:00:00Z', '2024-03-31T23:00:00Z'],
  },
  {
    source: 'cron-parser "compensates a skipped midnight hour"',
    expr: '0 23,0 * * *',
    zone: 'America/Santiago',
    from: '2026-09-05T02:00:00Z',
    expected: ['2026-09-05T03:00:00Z', '2026-09-05T04:00:00Z', '2026-09-06T03:00:00Z', '2026-09-06T04:00:00Z'],
  },
  {
    source: 'cron-parser "leaves a skipped calendar day alone"',
    expr: '0 12 * * *',
    zone: 'Pacific/Apia',
    from: '2011-12-28T00:00:00Z',
    expected: ['2011-12-28T22:00:00Z', '2011-12-29T22:00:00Z', '2011-12-30T22:00:00Z', '2011-12-31T22:00:00Z'],
  },
  // Airflow TestCronIntervalDst / TestCronIntervalDstNonTrivial / test_fold_scheduling: interval edges.
  {
    source: 'Airflow TestCronIntervalDst.test_entering_exact',
    expr: '0 3 * * *',
    zone: 'Europe/Zurich',
    from: '2023-03-24T00:00:00Z',
    expected: ['2023-03-24T02:00:00Z', '2023-03-25T02:00:00Z', '2023-03-26T01:00:00Z', '2023-03-27T01:00:00Z'],
  },
  {
    source: 'Airflow TestCronIntervalDst.test_entering_skip',
    expr: '0 2 * * *',
    zone: 'Europe/Zurich',
    from: '2023-03-24T00:00:00Z',
    expected: ['2023-03-24T01:00:00Z', '2023-03-25T01:00:00Z', '2023-03-26T01:00:00Z', '2023-03-27T00:00:00Z'],
  },
  {
    source: 'Airflow TestCronIntervalDst.test_exiting_exact',
    expr: '0 3 * * *',
    zone: 'Europe/Zurich',
    from: '2023-10-27T00:00:00Z',
    expected: ['2023-10-27T01:00:00Z', '2023-10-28T01:00:00Z', '2023-10-29T02:00:00Z', '2023-10-30T02:00:00Z'],
  },
  {
    source: 'Airflow TestCronIntervalDst.test_exiting_fold',
    expr: '0 2 * * *',
    zone: 'Europe/Zurich',
    from: '2023-10-26T23:00:00Z',
    expected: ['2023-10-27T00:00:00Z', '2023-10-28T00:00:00Z', '2023-10-29T01:00:00Z', '2023-10-30T01:00:00Z'],
    sluice: {
      rule: FIRST,
      fires: ['2023-10-27T00:00:00Z', '2023-10-28T00:00:00Z', '2023-10-29T00:00:00Z', '2023-10-30T01:00:00Z'],
    },
  },
  {
    source: 'Airflow TestCronIntervalDstNonTrivial.test_7_to_8_entering',
    expr: '0 7-8 * * *',
    zone: 'America/Los_Angeles',
    from: '2020-03-07T00:00:00Z',
    expected: ['2020-03-07T15:00:00Z', '2020-03-07T16:00:00Z', '2020-03-08T14:00:00Z', '2020-03-08T15:00:00Z'],
  },
  {
    source: 'Airflow TestCronIntervalDstNonTrivial.test_7_and_9_entering',
    expr: '0 7,9 * * *',
    zone: 'America/Los_Angeles',
    from: '2020-03-07T00:00:00Z',
    expected: ['2020-03-07T15:00:00Z', '2020-03-07T17:00:00Z', '2020-03-08T14:00:00Z', '2020-03-08T16:00:00Z'],
  },
  {
    source: 'Airflow test_fold_scheduling',
    expr: '*/30 * * * *',
    zone: 'Europe/Zurich',
    from: '2023-10-28T23:30:00Z',
    expected: [
      '2023-10-29T00:00:00Z',
      '2023-10-29T00:30:00Z',
      '2023-10-29T01:00:00Z',
      '2023-10-29T01:30:00Z',
      '2023-10-29T02:00:00Z',
    ],
    sluice: {
      rule: FIRST,
      fires: [
        '2023-10-29T00:00:00Z',
        '2023-10-29T00:30:00Z',
        '2023-10-29T02:00:00Z',
        '2023-10-29T02:30:00Z',
        '2023-10-29T03:00:00Z',
      ],
    },
  },
];

const iso = (ms: number) => new Date(ms).toISOString();
const isos = (values: readonly string[]) => values.map((v) => iso(Date.parse(v)));

for (const c of CASES) {
  const title = `${c.source}: ${c.expr} in ${c.zone} after ${c.from}`;
  test(c.sluice ? `${title} (differs by rule: ${c.sluice.rule})` : title, (t) => {
    const want = c.sluice ? c.sluice.fires : c.expected;
    t.deepEqual(fires(c.expr, c.zone, c.from, want.length).map(iso), isos(want));
    if (c.sluice) t.notDeepEqual(isos(c.sluice.fires), isos(c.expected), 'the difference is real');
  });
}

/** Whether the expression fires at exactly this instant. */
function firesAt(expr: string, at: string, zone = 'UTC'): boolean {
  const t = Date.parse(at);
  return nextFireTime(parseCron(expr), t - 1, zone) === t;
}

// Quartz CronExpressionTest: testIsSatisfiedBy, ...LastDayOfMonth, ...WithOffset, testLastDayOffset.
const SATISFIED: [expr: string, at: string, expected: boolean][] = [
  ['0 15 10 * * ? 2005', '2005-06-01T10:15:00Z', true],
  ['0 15 10 * * ? 2005', '2005-06-30T10:15:00Z', true],
  ['0 15 10 * * ? 2005', '2006-06-30T10:15:00Z', false],
  ['0 15 10 * * ? 2005', '2005-06-01T10:16:00Z', false],
  ['0 15 10 * * ? 2005', '2005-06-01T10:14:00Z', false],
  ['0 15 10 * * ? 2005', '2005-03-31T10:15:00Z', true],
  ['0 15 10 * * ? 2005', '2005-02-28T10:15:00Z', true],
  ['0 15 10 12 * ? 2005', '2005-12-12T10:15:00Z', true],
  ['0 15 10 12 * ? 2005', '2005-12-11T10:15:00Z', false],
  ['0 15 10 12 * ? 2005', '2005-12-13T10:15:00Z', false],
  ['0 15 10 L * ? 2005', '2005-12-31T10:15:00Z', true],
  ['0 15 10 L * ? 2005', '2005-12-30T10:15:00Z', false],
  ['0 15 10 L * ? 2005', '2005-09-30T10:15:00Z', true],
  ['0 15 10 L * ? 2005', '2005-09-29T10:15:00Z', false],
  ['0 15 10 L 2 ? 2005', '2005-02-28T10:15:00Z', true],
  ['0 15 10 L 2 ? 2005', '2005-02-27T10:15:00Z', false],
  ['0 15 10 L 2 ? 2004', '2004-02-29T10:15:00Z', true],
  ['0 15 10 L 2 ? 2004', '2004-02-28T10:15:00Z', false],
  ['0 15 10 L-2 * ? 2005', '2005-12-29T10:15:00Z', true],
  ['0 15 10 L-2 * ? 2005', '2005-12-28T10:15:00Z', false],
  ['0 15 10 L-2 * ? 2005', '2005-12-30T10:15:00Z', false],
  ['0 15 10 L-2 * ? 2005', '2005-12-31T10:15:00Z', false],
  ['0 15 10 L-1 * ? 2005', '2005-09-29T10:15:00Z', true],
  ['0 15 10 L-1 * ? 2005', '2005-09-28T10:15:00Z', false],
  ['0 15 10 L-1 * ? 2005', '2005-09-30T10:15:00Z', false],
  ['0 15 10 L-3 2 ? 2005', '2005-02-25T10:15:00Z', true],
  ['0 15 10 L-3 2 ? 2005', '2005-02-24T10:15:00Z', false],
  ['0 15 10 L-3 2 ? 2005', '2005-02-28T10:15:00Z', false],
  ['0 15 10 L-3 2 ? 2000', '2000-02-26T10:15:00Z', true],
  ['0 15 10 L-3 2 ? 2000', '2000-02-25T10:15:00Z', false],
  ['0 15 10 L-3 2 ? 2000', '2000-02-29T10:15:00Z', false],
  ['0 15 10 L-2 * ? 2010', '2010-10-29T10:15:00Z', true],
  ['0 15 10 L-2 * ? 2010', '2010-10-28T10:15:00Z', false],
  ['0 15 10 L-2 * ? 2010', '2010-02-26T10:15:00Z', true],
  ['0 15 10 L-2 * ? 2010', '2010-02-25T10:15:00Z', false],
  ['0 15 10 L-2 * ? 2010', '2010-06-28T10:15:00Z', true],
  ['0 15 10 L-2 * ? 2010', '2010-06-27T10:15:00Z', false],
  ['0 15 10 L-5W * ? 2010', '2010-10-26T10:15:00Z', true],
  ['0 15 10 L-5W * ? 2010', '2010-10-25T10:15:00Z', false],
  ['0 15 10 L-5W * ? 2010', '2010-10-27T10:15:00Z', false],
  ['0 15 10 L-5W * ? 2010', '2010-09-24T10:15:00Z', true],
  ['0 15 10 L-5W * ? 2010', '2010-09-23T10:15:00Z', false],
  ['0 15 10 L-5W * ? 2010', '2010-09-25T10:15:00Z', false],
  ['0 15 10 L-1 * ? 2010', '2010-10-30T10:15:00Z', true],
  ['0 15 10 L-1W * ? 2010', '2010-10-29T10:15:00Z', true],
  ['0 15 10 1,L * ? 2010', '2010-10-01T10:15:00Z', true],
  ['0 15 10 1,L * ? 2010', '2010-10-31T10:15:00Z', true],
  ['0 15 10 1,L * ? 2010', '2010-10-30T10:15:00Z', false],
  ['0 15 10 1,L * ? 2010', '2010-02-01T10:15:00Z', true],
  ['0 15 10 1,L * ? 2010', '2010-02-28T10:15:00Z', true],
  ['0 15 10 1,L * ? 2010', '2010-02-27T10:15:00Z', false],
  ['0 15 10 L-1W,L-1 * ? 2010', '2010-10-29T10:15:00Z', true],
  ['0 15 10 L-1W,L-1 * ? 2010', '2010-10-30T10:15:00Z', true],
  ['0 15 10 L-1W,L-1 * ? 2010', '2010-02-26T10:15:00Z', true],
  ['0 15 10 L-1W,L-1 * ? 2010', '2010-02-27T10:15:00Z', true],
  ['0 15 10 2W,16 * ? 2010', '2010-10-01T10:15:00Z', true],
  ['0 15 10 2W,16 * ? 2010', '2010-10-02T10:15:00Z', false],
  ['0 15 10 2W,16 * ? 2010', '2010-10-16T10:15:00Z', true],
  ['0 15 10 2W,16 * ? 2010', '2010-11-02T10:15:00Z', true],
  ['0 15 10 2W,16 * ? 2010', '2010-11-16T10:15:00Z', true],
];

test('Quartz CronExpressionTest isSatisfiedBy cases (L, L-n, L-nW, W, lists with L)', (t) => {
  for (const [expr, at, expected] of SATISFIED) t.is(firesAt(expr, at), expected, `${expr} at ${at}`);
});

test('Quartz: an expression whose years are past never fires (testGetTimeBefore)', (t) => {
  t.is(nextFireTime(parseCron('* * * * * ? 2005'), Date.parse('2026-01-01T00:00:00Z'), 'UTC'), undefined);
});

// Quartz refuses these (testIsValidExpression, testQuartz574, testQuartz621, testQuartz640, testQtz96,
// test*RangeIntervalAfterSlash); so does Sluice, with INVALID_ARGUMENT naming crontab_expression.
const REFUSED = [
  'Ralf 30 * * * ?',
  '0 30 Ralf * * ?',
  'kilroy was here',
  'L 30 * * * ?',
  '0 15 10 * * ? 2005 *',
  '* * * * Foo ? ',
  '* * * * Jan-Foo ? ',
  '0 0 * * * 4',
  '0 43 9 ? * SAT,SUN,L',
  '0 43 9 ? * 6,7,L',
  '0/5 * * 32W 1 ?',
  '/120 0 8-18 ? * 2-6',
  '0/120 0 8-18 ? * 2-6',
  '/ 0 8-18 ? * 2-6',
  '0/ 0 8-18 ? * 2-6',
  '/60 0 8-18 ? * 2-6',
  '0 /120 8-18 ? * 2-6',
  '0 0/120 8-18 ? * 2-6',
  '0 /60 8-18 ? * 2-6',
  '0 0 /120 ? * 2-6',
  '0 0 0/120 ? * 2-6',
  '0 0 /24 ? * 2-6',
  '0 0 0 ? /120 2-6',
  '0 0 0 ? /13 2-6',
  '0 0 0 ? * /120',
  '0 0 0 ? * 0/120',
  '0 0 0 ? * /',
  '0 0 0 ? * 0/',
];

test('Quartz: expressions Quartz refuses are INVALID_ARGUMENT naming crontab_expression', (t) => {
  for (const expr of REFUSED) {
    const err = t.throws(() => parseCron(expr), { code: 'INVALID_ARGUMENT' }, expr);
    t.is((err as unknown as { details: { field: string } }).details.field, 'crontab_expression', expr);
  }
});

test('Quartz accepts 5L (testQuartz640) and L-1W,L-1 (testIsValidExpression); Sluice too', (t) => {
  for (const expr of ['0 43 9 ? * 5L', '0 15 10 L-1W,L-1 * ? 2010', '* * * * * ?', '0 * 5 * * ?'])
    t.notThrows(() => parseCron(expr), expr);
});
