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
