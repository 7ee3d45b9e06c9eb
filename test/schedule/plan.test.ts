/**
 * planDue with windows run ahead of the schedule (TriggerWindow, Backfill, an external submission): they are
 * neither the watermark nor fired again, and under selfDepend 1 the one just before the next window is its
 * previous.
 */
import test from 'ava';
import type { InstanceRecord, InstanceState } from '../../services/schedule/domain/model.js';
import { firingRules } from '../../services/schedule/domain/info.js';
import { type Plan, planDue } from '../../services/schedule/domain/plan.js';
import { HOUR, T0, info } from '../helpers/schedule.js';

/** The schedule's own row of hourly window k, in `state`. */
function row(k: number, state: InstanceState = 'SUCCEEDED'): InstanceRecord {
  const windowStart = T0 + k * HOUR;
  return {
    instanceId: `w-${k}`,
    groupId: 'g',
    windowStart,
    windowEnd: windowStart + HOUR,
    dueTime: windowStart + HOUR,
    state,
    trigger: 'SCHEDULE',
    jobIds: [],
    attempt: 1,
    owner: 'a',
    createdAt: T0,
    updatedAt: T0,
  };
}

const hours = (plan: Plan) => plan.fire.map((w) => (w.start - T0) / HOUR);
const claimed = (entries: [number, InstanceState][]) => new Map(entries.map(([k, s]) => [T0 + k * HOUR, s]));
// Ten windows (0-9) are due; the schedule has fired 0-2.
const base = { now: T0 + 10 * HOUR + 1000, active: 0, graceMs: 60_000, last: row(2) };

test('windows run ahead are not fired again; the ones before and after them are', (t) => {
  const rules = firingRules(info('g'));
  const plan = planDue({
    ...base,
    rules,
    claimed: claimed([
      [7, 'SUCCEEDED'],
      [9, 'RUNNING'],
    ]),
  });
  t.deepEqual(hours(plan), [3, 4, 5, 6, 8]);
  t.is(plan.nextDueTime, T0 + 11 * HOUR);
  t.is(plan.skippedCount, 0);
  // Without them, the same plan fires every window after the watermark.
  t.deepEqual(hours(planDue({ ...base, rules })), [3, 4, 5, 6, 7, 8, 9]);
});

test('LATEST keeps the newest window not run yet; NONE skips the missed ones but not those run ahead', (t) => {
  const ahead = claimed([[9, 'SUCCEEDED']]);
  const latest = planDue({
    ...base,
    rules: firingRules(info('g', { catchUp: { mode: 'LATEST', windowMs: 0 } })),
    claimed: ahead,
  });
  t.deepEqual(hours(latest), [8]);
  t.deepEqual(
    latest.skip.map((w) => (w.start - T0) / HOUR),
    [3, 4, 5, 6, 7],
  );
  const none = planDue({
    ...base,
    rules: firingRules(info('g', { catchUp: { mode: 'NONE', windowMs: 0 } })),
    claimed: ahead,
  });
  t.deepEqual(hours(none), []);
  t.deepEqual(
    none.skip.map((w) => (w.start - T0) / HOUR),
    [3, 4, 5, 6, 7, 8],
  );
});

test('selfDepend 1: a window run ahead just before the next one is its previous', (t) => {
  const rules = firingRules(info('g', { selfDepend: 1 }));
  // The schedule is at 2; 3 ran ahead and FAILED: 4 waits for it.
  const blocked = planDue({ ...base, rules, claimed: claimed([[3, 'FAILED']]) });
  t.deepEqual(hours(blocked), []);
  t.true(blocked.waiting);
  // 3 ran ahead and SUCCEEDED: 4 fires.
  t.deepEqual(hours(planDue({ ...base, rules, claimed: claimed([[3, 'SUCCEEDED']]) })), [4]);
  // A failed window further ahead (7) does not hold back 3, whose previous is the schedule's 2.
  t.deepEqual(hours(planDue({ ...base, rules, claimed: claimed([[7, 'FAILED']]) })), [3]);
});

test('the catch-up policy leaves windows on time alone: LATEST and a short ALL window fire them all', (t) => {
  // Ten-second windows; the schedule fired the one ending at T0 and is asked again 25 s later: the window due
  // at T0 + 10 s is 15 s late and the one due at T0 + 20 s 5 s late, both within the 60 s grace.
  const tenSeconds = { scheduleUnit: 'S', scheduleInterval: 10, startTime: T0 - 10_000 } as const;
  const last = { ...row(0), windowStart: T0 - 10_000, windowEnd: T0, dueTime: T0 };
  const now = T0 + 25_000;
  for (const catchUp of [
    { mode: 'LATEST', windowMs: 0 },
    { mode: 'ALL', windowMs: 10_000 },
    { mode: 'NONE', windowMs: 0 },
  ] as const) {
    const plan = planDue({
      rules: firingRules(info('g', { ...tenSeconds, catchUp })),
      now,
      active: 0,
      graceMs: 60_000,
      last,
    });
    t.deepEqual(
      plan.fire.map((w) => (w.start - T0) / 1000),
      [0, 10],
      catchUp.mode,
    );
    t.is(plan.skippedCount, 0, catchUp.mode);
  }
  // Missed windows (more than 60 s late) still go by the policy: LATEST keeps the newest of them only when no
  // window is on time, and skips them all when one is.
  const late = planDue({
    rules: firingRules(info('g', { ...tenSeconds, catchUp: { mode: 'LATEST', windowMs: 0 } })),
    now: T0 + 95_000,
    active: 0,
    graceMs: 60_000,
    last,
  });
  t.deepEqual(
    late.fire.map((w) => (w.start - T0) / 1000),
    [30, 40, 50, 60, 70, 80],
    'the windows due 40-90 s after T0 are on time at T0 + 95 s; those due at 10, 20 and 30 s are missed',
  );
  t.is(late.skippedCount, 3);
});

test('selfDepend 1 with NONE or LATEST: windows held back past the grace are skipped once the chain moves on; ALL runs them', (t) => {
  // Window 2 ran from 03:00 to 07:30; windows 3-6 were due meanwhile and held back by it.
  const freed = { ...base, now: T0 + 7 * HOUR + 30 * 60_000, last: row(2, 'SUCCEEDED') };
  const held = { ...freed, active: 1, last: row(2, 'RUNNING') };
  const mode = (m: 'ALL' | 'LATEST' | 'NONE') =>
    firingRules(info('g', { selfDepend: 1, catchUp: { mode: m, windowMs: 0 } }));
  for (const m of ['ALL', 'LATEST', 'NONE'] as const) {
    const waiting = planDue({ ...held, rules: mode(m) });
    t.deepEqual(hours(waiting), [], `${m}: nothing fires while window 2 runs`);
    t.true(waiting.waiting || waiting.skippedCount > 0, `${m}: held, or skipped already`);
  }
  const none = planDue({ ...freed, rules: mode('NONE') });
  t.deepEqual(hours(none), []);
  t.deepEqual(
    none.skip.map((w) => (w.start - T0) / HOUR),
    [3, 4, 5, 6],
    'NONE: every held window is missed (window 6 was due at 07:00, 30 minutes ago)',
  );
  t.is(none.nextDueTime, T0 + 8 * HOUR);
  const latest = planDue({ ...freed, rules: mode('LATEST') });
  t.deepEqual(hours(latest), [6], 'LATEST: the newest held window runs, the older ones are skipped');
  t.deepEqual(hours(planDue({ ...freed, rules: mode('ALL') })), [3], 'ALL: the chain goes on with the next window');
});
