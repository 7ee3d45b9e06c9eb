/**
 * The window holding a time of a cron schedule is found without listing every fire time before it
 * (services/schedule/domain/windows.ts lastEdgeAtOrBefore): a year field or a far time answers at once,
 * and the answer is the brute-force one.
 */
import test from 'ava';
import fc from 'fast-check';
import { nextFireTime } from '../../services/schedule/domain/cron.js';
import {
  type WindowSpec,
  lastEdgeAtOrBefore,
  windowAt,
  windowSpec,
  windowsAfter,
} from '../../services/schedule/domain/windows.js';

function cronSpec(crontabExpression: string, startTime: number, endTime: number, timeZone = 'UTC'): WindowSpec {
  return windowSpec({
    scheduleType: 1,
    scheduleUnit: 'O',
    scheduleInterval: 0,
    startTime,
    endTime,
    timeZone,
    crontabExpression,
  });
}

/** Every fire time in (start, t], the last one kept: what the search replaced. */
function bruteLastEdge(spec: WindowSpec, t: number): number {
  let last = spec.startTime;
  for (let f = nextFireTime(spec.cron!, spec.startTime, spec.timeZone, t); f !== undefined && f <= t;) {
    last = f;
    f = nextFireTime(spec.cron!, f, spec.timeZone, t);
  }
  return last;
}

test('PreviewWindows of a cron with a year field, asked about a far time, answers in well under a second', (t) => {
  const spec = cronSpec('* * * * * ? 2020-2029', Date.UTC(2020, 0, 1), Date.UTC(2200, 0, 1));
  const started = performance.now();
  const first = windowsAfter(spec, Date.UTC(2099, 0, 1)).next();
  const holding = windowAt(spec, Date.UTC(2150, 5, 1));
  const ms = performance.now() - started;
  t.true(ms < 500, `${Math.round(ms)} ms`);
  // The last second of 2029 fires last; its window runs to the end.
  t.deepEqual(first.value, { start: Date.UTC(2029, 11, 31, 23, 59, 59), end: Date.UTC(2200, 0, 1) });
  t.deepEqual(holding, first.value);
  // Inside the decade: the second itself.
  t.deepEqual(windowAt(spec, Date.UTC(2025, 3, 7, 10, 0, 30, 500)), {
    start: Date.UTC(2025, 3, 7, 10, 0, 30),
    end: Date.UTC(2025, 3, 7, 10, 0, 31),
  });
});

test('a cron firing every second, asked about a time centuries after its start, answers at once', (t) => {
  const spec = cronSpec('* * * * * ?', Date.UTC(2000, 0, 1), Date.UTC(2400, 0, 1), 'Europe/Berlin');
  const started = performance.now();
  const w = windowAt(spec, Date.UTC(2390, 6, 1, 12, 0, 0, 250));
  t.true(performance.now() - started < 500);
  t.deepEqual(w, { start: Date.UTC(2390, 6, 1, 12, 0, 0), end: Date.UTC(2390, 6, 1, 12, 0, 1) });
});

test('a cron that never fires after its start: the one window is the whole schedule', (t) => {
  const spec = cronSpec('0 0 0 1 1 ? 2020', Date.UTC(2021, 0, 1), Date.UTC(2300, 0, 1));
  const started = performance.now();
  t.is(lastEdgeAtOrBefore(spec, Date.UTC(2299, 0, 1)), spec.startTime);
  t.true(performance.now() - started < 500);
  t.deepEqual(windowAt(spec, Date.UTC(2200, 0, 1)), { start: spec.startTime, end: spec.endTime });
});

const EXPRESSIONS = [
  '0 0 * * * ?',
  '0 30 2 * * ?',
  '0 */7 * * * ?',
  '15 0 0 ? * MON',
  '0 0 12 L * ?',
  '0 0 0 29 2 ?',
  '0 0 1 1 * ? 2021,2023',
  '*/20 59 1 * * ?',
];
const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'America/Sao_Paulo'];

test('the last edge at or before t equals the brute-force answer (DST zones, sparse and dense crons)', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(...EXPRESSIONS),
      fc.constantFrom(...ZONES),
      fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2024, 0, 1) }),
      fc.integer({ min: 1, max: 40 * 86_400_000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (expression, zone, start, length, at) => {
        const spec = cronSpec(expression, start, start + length, zone);
        const time = start + Math.floor(at * (length - 1));
        const expected = bruteLastEdge(spec, time);
        t.is(lastEdgeAtOrBefore(spec, time), expected, `${expression} in ${zone}, start ${start}, t ${time}`);
        const w = windowAt(spec, time);
        t.is(w?.start, expected);
        t.true(w !== undefined && w.start <= time && time < w.end);
      },
    ),
    { numRuns: 300 },
  );
});

test('on DST change days the search finds the brute-force edge at every minute', (t) => {
  for (const [zone, day] of [
    ['Europe/Berlin', Date.UTC(2024, 2, 31)],
    ['Europe/Berlin', Date.UTC(2024, 9, 27)],
    ['Australia/Lord_Howe', Date.UTC(2024, 3, 6, 12)],
    ['America/New_York', Date.UTC(2024, 2, 10, 4)],
  ] as const) {
    for (const expression of ['0 */10 * * * ?', '0 30 2 * * ?', '0 0 * * * ?']) {
      const spec = cronSpec(expression, day - 86_400_000, day + 2 * 86_400_000, zone);
      for (let time = day - 3_600_000; time < day + 86_400_000; time += 60_000 + 7_000)
        t.is(lastEdgeAtOrBefore(spec, time), bruteLastEdge(spec, time), `${expression} in ${zone} at ${time}`);
    }
  }
});
