import anyTest, { type TestFn } from 'ava';
import { credentials, status } from '@grpc/grpc-js';
import {
  BackfillMode,
  CatchUpMode,
  ScheduleServiceClient,
  ScheduleStatus,
  WindowAlignment,
  type ScheduleInfo,
} from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { type Running, call, callError, startTestSluice } from '../helpers/sluice.js';

const test = anyTest as TestFn<{ s: Running; client: ScheduleServiceClient }>;

test.before(async (t) => {
  const s = await startTestSluice();
  t.context = { s, client: new ScheduleServiceClient(s.address, credentials.createInsecure()) };
});
test.after.always(async (t) => {
  t.context.client?.close();
  await t.context.s?.close();
});

// Windows start tomorrow, so nothing is dispatched while these tests look at the contract.
const START = Math.ceil(Date.now() / 86_400_000) * 86_400_000 + 86_400_000;
function info(groupId: string, patch: Partial<ScheduleInfo> = {}): ScheduleInfo {
  return {
    groupId,
    scheduleType: 0,
    scheduleUnit: 'D',
    scheduleInterval: 1,
    startTime: START,
    endTime: START + 30 * 86_400_000,
    delayTime: 0,
    selfDepend: 0,
    taskParallelism: 0,
    crontabExpression: '',
    scheduleEngine: '',
    version: 0,
    timeZone: 'Europe/Berlin',
    catchUp: { mode: CatchUpMode.CATCH_UP_MODE_UNSPECIFIED, windowMs: 0 },
    alignment: WindowAlignment.WINDOW_ALIGNMENT_UNSPECIFIED,
    ...patch,
  };
}

test.serial('register, get, list with paging, pause, resume, update, unregister', async (t) => {
  const { client } = t.context;
  const reg = await call(client.registerSchedule.bind(client), { info: info('g-life') });
  t.is(reg.schedule!.status, ScheduleStatus.SCHEDULE_STATUS_REGISTERED);
  t.is(reg.schedule!.engineId, 'builtin');
  t.is(reg.schedule!.info!.scheduleEngine, 'builtin');
  t.is(reg.schedule!.info!.catchUp!.mode, CatchUpMode.CATCH_UP_MODE_ALL, 'the default catch-up is made explicit');
  await call(client.registerSchedule.bind(client), { info: info('g-life-2') });
  const page1 = await call(client.listSchedules.bind(client), { pageSize: 1, pageToken: '', statuses: [] });
  const page2 = await call(client.listSchedules.bind(client), {
    pageSize: 1,
    pageToken: page1.nextPageToken,
    statuses: [],
  });
  t.deepEqual(
    [...page1.schedules, ...page2.schedules].map((s) => s.info!.groupId).filter((g) => g.startsWith('g-life')),
    ['g-life', 'g-life-2'],
  );
  const paused = await call(client.pauseSchedule.bind(client), { groupId: 'g-life' });
  t.is(paused.schedule!.status, ScheduleStatus.SCHEDULE_STATUS_PAUSED);
  const pausedOnly = await call(client.listSchedules.bind(client), {
    pageSize: 0,
    pageToken: '',
    statuses: [ScheduleStatus.SCHEDULE_STATUS_PAUSED],
  });
  t.deepEqual(
    pausedOnly.schedules.map((s) => s.info!.groupId),
    ['g-life'],
  );
  const resumed = await call(client.resumeSchedule.bind(client), { groupId: 'g-life' });
  t.is(resumed.schedule!.status, ScheduleStatus.SCHEDULE_STATUS_REGISTERED);
  const updated = await call(client.updateSchedule.bind(client), {
    info: { ...resumed.schedule!.info!, scheduleInterval: 2 },
  });
  t.is(updated.schedule!.status, ScheduleStatus.SCHEDULE_STATUS_UPDATED);
  t.is(updated.schedule!.info!.version, resumed.schedule!.info!.version + 1);
  const gone = await call(client.unregisterSchedule.bind(client), { groupId: 'g-life' });
  t.is(gone.schedule!.status, ScheduleStatus.SCHEDULE_STATUS_DELETED);
  t.is((await callError(client.getSchedule.bind(client), { groupId: 'g-life' })).code, status.NOT_FOUND);
});

test.serial('PreviewWindows: calendar days in the schedule zone, with local times', async (t) => {
  const { client } = t.context;
  const res = await call(client.previewWindows.bind(client), {
    groupId: '',
    info: info('inline', { timeZone: 'UTC', delayTime: 30 }),
    fromTime: START,
    count: 3,
  });
  t.deepEqual(
    res.windows.map((w) => [w.start - START, w.end - START, w.dueTime - START]),
    [
      [0, 86_400_000, 86_400_000 + 1_800_000],
      [86_400_000, 2 * 86_400_000, 2 * 86_400_000 + 1_800_000],
      [2 * 86_400_000, 3 * 86_400_000, 3 * 86_400_000 + 1_800_000],
    ],
  );
  t.regex(res.windows[0]!.startLocal, /T00:00:00\.000\+00:00$/);
  const bad = await callError(client.previewWindows.bind(client), {
    groupId: '',
    info: info('inline'),
    fromTime: START,
    count: 5000,
  });
  t.is(bad.fieldErrors?.[0]?.path, 'count');
});

test.serial('PreviewWindows: W, LW, L-n, wrap-around ranges, MON-SUN and macros', async (t) => {
  const { client } = t.context;
  const from = Date.parse('2026-01-01T00:00:00Z');
  const ends = async (crontabExpression: string, count: number) =>
    (
      await call(client.previewWindows.bind(client), {
        groupId: '',
        info: info('inline-cron', {
          scheduleType: 1,
          crontabExpression,
          timeZone: 'UTC',
          startTime: from,
          endTime: from + 400 * 86_400_000,
        }),
        fromTime: from,
        count,
      })
    ).windows.map((w) => w.endLocal.slice(0, 19));
  // 2026-02-01 and 2026-03-01 are Sundays; 2026-01-31 a Saturday.
  t.deepEqual(await ends('0 0 9 1W * ?', 3), ['2026-01-01T09:00:00', '2026-02-02T09:00:00', '2026-03-02T09:00:00']);
  t.deepEqual(await ends('0 0 9 LW * ?', 2), ['2026-01-30T09:00:00', '2026-02-27T09:00:00']);
  t.deepEqual(await ends('0 0 9 L-2 * ?', 2), ['2026-01-29T09:00:00', '2026-02-26T09:00:00']);
  // Fire times after the start: 00:00 on the 1st is the start itself.
  t.deepEqual(await ends('0 22-1 * * *', 4), [
    '2026-01-01T01:00:00',
    '2026-01-01T22:00:00',
    '2026-01-01T23:00:00',
    '2026-01-02T00:00:00',
  ]);
  t.deepEqual(await ends('0 0 1 NOV-FEB *', 3), ['2026-02-01T00:00:00', '2026-11-01T00:00:00', '2026-12-01T00:00:00']);
  // 2026-01-01 is a Thursday: THU-TUE leaves out Wednesday the 7th.
  t.deepEqual((await ends('0 12 * * THU-TUE', 7)).at(-1), '2026-01-08T12:00:00');
  t.is((await ends('0 12 * * MON-SUN', 7)).length, 7);
  t.deepEqual(await ends('0 12 ? * MON-SUN', 2), ['2026-01-01T12:00:00', '2026-01-02T12:00:00']);
  t.deepEqual(await ends('@weekly', 2), ['2026-01-04T00:00:00', '2026-01-11T00:00:00']);
  t.deepEqual(await ends('@monthly', 2), ['2026-02-01T00:00:00', '2026-03-01T00:00:00']);
  t.deepEqual(await ends('@hourly', 2), ['2026-01-01T01:00:00', '2026-01-01T02:00:00']);
});

test.serial('every bad field gets INVALID_ARGUMENT naming it', async (t) => {
  const { client } = t.context;
  const cases: [Partial<ScheduleInfo>, string][] = [
    [{ groupId: '' }, 'group_id'],
    [{ groupId: 'has space' }, 'group_id'],
    [{ scheduleType: 3 }, 'schedule_type'],
    [{ scheduleUnit: 'Q' }, 'schedule_unit'],
    [{ scheduleInterval: 0 }, 'schedule_interval'],
    [{ scheduleType: 1, crontabExpression: '61 * * * * ?' }, 'crontab_expression'],
    [{ scheduleType: 1, crontabExpression: '' }, 'crontab_expression'],
    [{ startTime: -5 }, 'start_time'],
    [{ endTime: START - 1 }, 'end_time'],
    [{ timeZone: 'Berlin' }, 'time_zone'],
    [{ delayTime: -1 }, 'delay_time'],
    [{ selfDepend: 7 }, 'self_depend'],
    [{ selfDepend: 2, taskParallelism: 0 }, 'task_parallelism'],
    [{ catchUp: { mode: 42 as CatchUpMode, windowMs: 0 } }, 'info.catch_up.mode'],
    [{ catchUp: { mode: CatchUpMode.CATCH_UP_MODE_ALL, windowMs: -1 } }, 'catch_up.window_ms'],
    [{ alignment: 9 as WindowAlignment }, 'info.alignment'],
  ];
  for (const [patch, field] of cases) {
    const err = await callError(client.registerSchedule.bind(client), { info: info('bad-fields', patch) });
    t.is(err.code, status.INVALID_ARGUMENT, JSON.stringify(patch));
    t.is(err.sluiceCode, 'INVALID_ARGUMENT');
    t.is(err.fieldErrors?.[0]?.path, field, JSON.stringify(patch));
    t.true(err.details.startsWith(`${field}: expected`), err.details);
  }
  t.is((await callError(client.registerSchedule.bind(client), { info: undefined })).fieldErrors?.[0]?.path, 'info');
});

test.serial('conflicts and states: ALREADY_EXISTS, ABORTED, FAILED_PRECONDITION, NOT_FOUND', async (t) => {
  const { client } = t.context;
  const reg = await call(client.registerSchedule.bind(client), { info: info('g-codes') });
  t.is((await callError(client.registerSchedule.bind(client), { info: info('g-codes') })).code, status.ALREADY_EXISTS);
  const stale = await callError(client.updateSchedule.bind(client), {
    info: { ...reg.schedule!.info!, version: reg.schedule!.info!.version - 1 },
  });
  t.is(stale.code, status.ABORTED);
  t.is(stale.sluiceCode, 'VERSION_CONFLICT');
  t.is((await callError(client.resumeSchedule.bind(client), { groupId: 'g-codes' })).code, status.FAILED_PRECONDITION);
  const engine = await callError(client.registerSchedule.bind(client), {
    info: info('g-engine', { scheduleEngine: 'oozie' }),
  });
  t.is(engine.code, status.FAILED_PRECONDITION);
  t.regex(
    engine.details,
    /no engine plugin accepts schedule_engine 'oozie' \(engines loaded: airflow, builtin, dolphinscheduler\)/,
  );
  t.is((await callError(client.pauseSchedule.bind(client), { groupId: 'nobody' })).code, status.NOT_FOUND);
  const notEdge = await callError(client.triggerWindow.bind(client), {
    groupId: 'g-codes',
    windowStart: START + 1,
    rerun: false,
  });
  t.is(notEdge.code, status.INVALID_ARGUMENT);
  t.is(notEdge.fieldErrors?.[0]?.path, 'window_start');
  const backfill = await callError(client.backfill.bind(client), {
    groupId: 'g-codes',
    fromTime: START,
    toTime: START,
    mode: BackfillMode.BACKFILL_MODE_ALL,
    maxParallel: 1,
    reverse: false,
    dryRun: true,
  });
  t.is(backfill.fieldErrors?.[0]?.path, 'to_time');
  const noGroup = await callError(client.listInstances.bind(client), {
    groupId: '',
    states: [],
    windowFrom: 0,
    windowTo: 0,
    pageSize: 0,
    pageToken: '',
  });
  t.is(noGroup.fieldErrors?.[0]?.path, 'group_id');
});
