import anyTest, { type TestFn } from 'ava';
import { DAY, HOUR, T0, info, scheduleRig, type Rig } from '../helpers/schedule.js';

const test = anyTest as TestFn<{ rig: Rig }>;
// The built-in engine keeps its timers in its module: one service at a time in this process.
test.beforeEach(async (t) => {
  t.context.rig = await scheduleRig();
});
test.afterEach.always(async (t) => t.context.rig?.close());

const codeOf = (err: unknown) => (err as { code?: string }).code;
const fieldOf = (err: unknown) => (err as { details?: { field?: string } }).details?.field;

test.serial('a year of daily windows fires every window once, in order, when it has closed', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('daily', { scheduleUnit: 'D', endTime: T0 + 365 * DAY, delayTime: 5 }));
  await rig.advanceTo(T0 + 366 * DAY);
  const rows = await rig.store.listInstances({ groupId: 'daily', limit: 1000 });
  t.is(rows.length, 365);
  t.true(
    rows.every(
      (r, k) =>
        r.windowStart === T0 + k * DAY &&
        r.windowEnd === T0 + (k + 1) * DAY &&
        r.state === 'SUCCEEDED' &&
        r.trigger === 'SCHEDULE',
    ),
  );
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => Number(s.lowerBound)),
    rows.map((r) => r.windowStart),
  );
  // Due at window end + delay (5 minutes), never before.
  t.true(rig.dispatcher.submitted.every((s) => s.at === Number(s.upperBound) + 5 * 60_000));
});

test.serial('InLong alignment fires a window at its start', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('start', { alignment: 'START', endTime: T0 + 3 * HOUR }));
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => [Number(s.lowerBound), s.at]),
    [[T0, T0]],
  );
  await rig.advanceTo(T0 + 2 * HOUR);
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => s.at),
    [T0, T0 + HOUR, T0 + 2 * HOUR],
  );
});

for (const [mode, fired, skipped] of [
  ['ALL', 10, 0],
  ['LATEST', 1, 9],
  ['NONE', 0, 10],
] as const) {
  test.serial(
    `catch-up ${mode}: after ten missed hourly windows, ${fired} fire and ${skipped} are skipped`,
    async (t) => {
      const { rig } = t.context;
      await rig.advanceTo(T0 + 10 * HOUR + 30 * 60_000);
      await rig.service.register(info('late', { catchUp: { mode, windowMs: 0 } }));
      await rig.service.idle();
      const rows = await rig.store.listInstances({ groupId: 'late', limit: 100 });
      t.is(rows.filter((r) => r.state === 'SUCCEEDED').length, fired);
      t.is(rows.filter((r) => r.state === 'SKIPPED').length, skipped);
      t.true(rows.filter((r) => r.state === 'SUCCEEDED').every((r) => r.trigger === 'CATCH_UP'));
      if (mode === 'LATEST') t.is(rig.dispatcher.submitted[0]!.lowerBound, String(T0 + 9 * HOUR));
      // Then it goes on on time, whatever the policy.
      await rig.advanceTo(T0 + 11 * HOUR);
      const next = await rig.store.getInstance('late', T0 + 10 * HOUR);
      t.is(next?.state, 'SUCCEEDED');
      t.is(next?.trigger, 'SCHEDULE');
    },
  );
}

test.serial('catch-up ALL is bounded by its window: older missed windows are skipped', async (t) => {
  const { rig } = t.context;
  await rig.advanceTo(T0 + 10 * HOUR);
  await rig.service.register(info('bounded', { catchUp: { mode: 'ALL', windowMs: 3 * HOUR } }));
  await rig.service.idle();
  const rows = await rig.store.listInstances({ groupId: 'bounded', limit: 100 });
  t.deepEqual(
    rows.filter((r) => r.state === 'SUCCEEDED').map((r) => (r.windowStart - T0) / HOUR),
    [6, 7, 8, 9],
  );
  t.is(rows.filter((r) => r.state === 'SKIPPED').length, 6);
});

test.serial('selfDepend 1: a window waits for the previous one to succeed; a failure stops the chain', async (t) => {
  const { rig } = t.context;
  const release = new Map<string, (ok: boolean) => void>();
  rig.dispatcher.outcome = (jobId) =>
    new Promise((resolve) => release.set(jobId, (ok) => resolve({ succeeded: ok, ...(ok ? {} : { error: 'boom' }) })));
  await rig.advanceTo(T0 + 3 * HOUR);
  await rig.service.register(info('chain', { selfDepend: 1 }));
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => Number(s.lowerBound)),
    [T0],
    'only the first of three due windows runs',
  );
  release.get('job-1')!(true);
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => Number(s.lowerBound)),
    [T0, T0 + HOUR],
  );
  release.get('job-2')!(false);
  await new Promise((r) => setTimeout(r, 50));
  t.is(rig.dispatcher.submitted.length, 2, 'the failed window blocks the next');
  t.is((await rig.store.getInstance('chain', T0 + HOUR))?.state, 'FAILED');
});

test.serial('selfDepend 2: at most taskParallelism windows run at once', async (t) => {
  const { rig } = t.context;
  const release: (() => void)[] = [];
  rig.dispatcher.outcome = () => new Promise((resolve) => release.push(() => resolve({ succeeded: true })));
  await rig.advanceTo(T0 + 5 * HOUR);
  await rig.service.register(info('par', { selfDepend: 2, taskParallelism: 2 }));
  await new Promise((r) => setTimeout(r, 50));
  t.is(rig.dispatcher.submitted.length, 2);
  release.shift()!();
  await new Promise((r) => setTimeout(r, 50));
  t.is(rig.dispatcher.submitted.length, 3);
  while (release.length) {
    release.shift()!();
    await new Promise((r) => setTimeout(r, 30));
  }
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / HOUR),
    [0, 1, 2, 3, 4],
  );
});

test.serial('after a restart, missed windows are fired once each (catch-up ALL)', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('restart'));
  await rig.advanceTo(T0 + 3 * HOUR);
  await rig.service.stop();
  await rig.clock.advanceTo(T0 + 8 * HOUR); // down: nothing runs
  await rig.restart();
  await rig.advanceTo(T0 + 9 * HOUR);
  const rows = await rig.store.listInstances({ groupId: 'restart', limit: 100 });
  t.deepEqual(
    rows.map((r) => (r.windowStart - T0) / HOUR),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / HOUR),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
});

test.serial('trigger fires one window now, once; rerun runs it again; a non-edge is refused', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('manual', { startTime: T0 + DAY }));
  const first = await rig.service.trigger('manual', T0 + DAY + 5 * HOUR, false);
  await rig.service.idle();
  t.is(first.trigger, 'MANUAL');
  const again = await rig.service.trigger('manual', T0 + DAY + 5 * HOUR, false);
  t.is(again.instanceId, first.instanceId);
  t.is(rig.dispatcher.submitted.length, 1);
  const rerun = await rig.service.trigger('manual', T0 + DAY + 5 * HOUR, true);
  await rig.service.idle();
  t.is(rerun.attempt, 2);
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => s.rerun),
    [false, true],
  );
  const err = await t.throwsAsync(rig.service.trigger('manual', T0 + DAY + 5 * HOUR + 1, false));
  t.is(codeOf(err), 'INVALID_ARGUMENT');
  t.is(fieldOf(err), 'window_start');
});

test.serial(
  'backfill: dry run lists, MISSING fills gaps, FAILED re-runs failures, reverse and parallelism',
  async (t) => {
    const { rig } = t.context;
    rig.dispatcher.outcome = async (jobId) => ({ succeeded: jobId !== 'job-3' });
    await rig.service.register(info('bf'));
    await rig.advanceTo(T0 + 5 * HOUR);
    t.is((await rig.store.getInstance('bf', T0 + 2 * HOUR))?.state, 'FAILED');
    const dry = await rig.service.backfill({
      groupId: 'bf',
      fromTime: T0,
      toTime: T0 + 5 * HOUR,
      mode: 'FAILED',
      maxParallel: 2,
      reverse: false,
      dryRun: true,
    });
    t.deepEqual(
      dry.windows.map((w) => (w.start - T0) / HOUR),
      [2],
    );
    t.deepEqual(dry.instances, []);
    const all = await rig.service.backfill({
      groupId: 'bf',
      fromTime: T0,
      toTime: T0 + 5 * HOUR,
      mode: 'ALL',
      maxParallel: 2,
      reverse: true,
      dryRun: true,
    });
    t.deepEqual(
      all.windows.map((w) => (w.start - T0) / HOUR),
      [4, 3, 2, 1, 0],
    );
    const run = await rig.service.backfill({
      groupId: 'bf',
      fromTime: T0,
      toTime: T0 + 5 * HOUR,
      mode: 'FAILED',
      maxParallel: 2,
      reverse: false,
      dryRun: false,
    });
    await rig.service.idle();
    t.is(run.instances[0]!.attempt, 2);
    t.is((await rig.store.getInstance('bf', T0 + 2 * HOUR))?.state, 'SUCCEEDED');
    const missing = await rig.service.backfill({
      groupId: 'bf',
      fromTime: T0,
      toTime: T0 + 5 * HOUR,
      mode: 'MISSING',
      maxParallel: 1,
      reverse: false,
      dryRun: true,
    });
    t.deepEqual(missing.windows, [], 'no window is missing');
  },
);

test.serial('pause stops firing; resume fires what fell due meanwhile by the catch-up policy', async (t) => {
  const { rig } = t.context;
  const s = await rig.service.register(info('paused', { catchUp: { mode: 'LATEST', windowMs: 0 } }));
  t.is(s.status, 'REGISTERED');
  await rig.advanceTo(T0 + 2 * HOUR);
  await rig.service.pause('paused');
  await rig.advanceTo(T0 + 6 * HOUR);
  t.is(rig.dispatcher.submitted.length, 2);
  const resumed = await rig.service.resume('paused');
  t.is(resumed.status, 'REGISTERED');
  await rig.advanceTo(T0 + 6 * HOUR + 1);
  t.deepEqual(
    rig.dispatcher.submitted.map((x) => (Number(x.lowerBound) - T0) / HOUR),
    [0, 1, 5],
  );
  const err = await t.throwsAsync(rig.service.resume('paused'));
  t.is(codeOf(err), 'FAILED_PRECONDITION');
});

test.serial('update changes the schedule in place; unregister stops it for good', async (t) => {
  const { rig } = t.context;
  const s = await rig.service.register(info('upd'));
  await rig.advanceTo(T0 + 2 * HOUR);
  const stale = await t.throwsAsync(rig.service.update({ ...s.info, version: s.version - 1, scheduleInterval: 2 }));
  t.is(codeOf(stale), 'VERSION_CONFLICT');
  const updated = await rig.service.update({ ...s.info, version: s.version, scheduleUnit: 'D', scheduleInterval: 1 });
  t.is(updated.status, 'UPDATED');
  t.is(updated.version, s.version + 1);
  await rig.advanceTo(T0 + 2 * DAY);
  const starts = rig.dispatcher.submitted.map((x) => (Number(x.lowerBound) - T0) / HOUR);
  t.deepEqual(starts, [0, 1, 24], 'the hourly windows already fired stay; daily windows from the next edge after them');
  await rig.service.unregister('upd');
  await rig.advanceTo(T0 + 5 * DAY);
  t.is(rig.dispatcher.submitted.length, 3);
  t.is(codeOf(await t.throwsAsync(rig.service.get('upd'))), 'NOT_FOUND');
});

test.serial('registration errors: ALREADY_EXISTS, an engine nobody accepts, and bad fields', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('dup'));
  t.is(codeOf(await t.throwsAsync(rig.service.register(info('dup')))), 'ALREADY_EXISTS');
  const noEngine = await t.throwsAsync(rig.service.register(info('eng', { scheduleEngine: 'airflow' })));
  t.is(codeOf(noEngine), 'FAILED_PRECONDITION');
  t.regex(noEngine!.message, /engines loaded: builtin/);
  for (const [change, field] of [
    [{ groupId: '' }, 'group_id'],
    [{ scheduleUnit: 'X' }, 'schedule_unit'],
    [{ scheduleInterval: 0 }, 'schedule_interval'],
    [{ scheduleType: 1, crontabExpression: 'every day' }, 'crontab_expression'],
    [{ endTime: T0 }, 'end_time'],
    [{ timeZone: 'Europe/Atlantis' }, 'time_zone'],
    [{ delayTime: -1 }, 'delay_time'],
    [{ selfDepend: 3 }, 'self_depend'],
    [{ selfDepend: 2, taskParallelism: 0 }, 'task_parallelism'],
    [{ catchUp: { mode: 'ALL' as const, windowMs: -5 } }, 'catch_up.window_ms'],
  ] as const) {
    const err = await t.throwsAsync(rig.service.register(info('bad', change)));
    t.is(codeOf(err), 'INVALID_ARGUMENT', JSON.stringify(change));
    t.is(fieldOf(err), field);
  }
});

const YEAR = 365 * DAY;
const SECOND = 1000;

test.serial('backfill up to a far to_time ends: windows that have not closed end the scan', async (t) => {
  const { rig } = t.context;
  // One-second windows for a century: the range to to_time holds about 3e9 windows, only an hour of them closed.
  await rig.service.register(info('far', { scheduleUnit: 'S', endTime: T0 + 100 * YEAR }));
  await rig.service.pause('far'); // nothing fires: the clock only moves "now"
  await rig.advanceTo(T0 + HOUR);
  const dry = await rig.service.backfill({
    groupId: 'far',
    fromTime: T0,
    toTime: T0 + 100 * YEAR,
    mode: 'ALL',
    maxParallel: 1,
    reverse: false,
    dryRun: true,
  });
  t.is(dry.windows.length, HOUR / SECOND);
  t.is(dry.windows.at(-1)!.end, T0 + HOUR);
});

test.serial('backfill over more closed windows than its limit is refused, naming to_time', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('wide', { scheduleUnit: 'S', endTime: T0 + 100 * YEAR }));
  await rig.service.pause('wide'); // nothing fires: the clock only moves "now"
  await rig.advanceTo(T0 + 2 * DAY); // 172,800 closed one-second windows
  const err = await t.throwsAsync(
    rig.service.backfill({
      groupId: 'wide',
      fromTime: T0,
      toTime: T0 + 2 * DAY,
      mode: 'ALL',
      maxParallel: 1,
      reverse: false,
      dryRun: true,
    }),
  );
  t.is(codeOf(err), 'INVALID_ARGUMENT');
  t.is(fieldOf(err), 'to_time');
});

test.serial('backfill stops scanning when its caller gives up', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('gone', { scheduleUnit: 'S', endTime: T0 + 100 * YEAR }));
  await rig.service.pause('gone'); // nothing fires: the clock only moves "now"
  await rig.advanceTo(T0 + DAY);
  const controller = new AbortController();
  controller.abort(new Error('caller left'));
  const err = await t.throwsAsync(
    rig.service.backfill({
      groupId: 'gone',
      fromTime: T0,
      toTime: T0 + DAY,
      mode: 'ALL',
      maxParallel: 1,
      reverse: false,
      dryRun: true,
      signal: controller.signal,
    }),
  );
  t.is(err?.message, 'caller left');
});
