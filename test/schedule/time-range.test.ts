/**
 * Times at the edge of JavaScript's date range (services/schedule/domain/windows.ts MAX_TIME_MS): a schedule
 * may end at most there, request times beyond it are INVALID_ARGUMENT naming the field, and windows near it
 * are answered (never UNKNOWN from a RangeError). ListInstances page tokens that are not its own are refused.
 */
import anyTest, { type TestFn } from 'ava';
import { credentials, status } from '@grpc/grpc-js';
import { isSluiceError } from 'sluice/sdk';
import {
  BackfillMode,
  CatchUpMode,
  ScheduleServiceClient,
  WindowAlignment,
  type ScheduleInfo,
} from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { MAX_DELAY_MINUTES, firingRules } from '../../services/schedule/domain/info.js';
import {
  MAX_TIME_MS,
  describeWindow,
  windowAt,
  windowSpec,
  windowsAfter,
} from '../../services/schedule/domain/windows.js';
import { formatLocal } from '../../services/schedule/domain/zoned-time.js';
import { decodeInfo } from '../../services/schedule/grpc/adapter.js';
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

const PAST = Date.UTC(2024, 0, 1);
function info(groupId: string, patch: Partial<ScheduleInfo> = {}): ScheduleInfo {
  return {
    groupId,
    scheduleType: 0,
    scheduleUnit: 'D',
    scheduleInterval: 1,
    startTime: PAST,
    endTime: MAX_TIME_MS,
    delayTime: 0,
    selfDepend: 0,
    taskParallelism: 0,
    crontabExpression: '',
    scheduleEngine: 'none',
    version: 0,
    timeZone: 'Europe/Berlin',
    catchUp: { mode: CatchUpMode.CATCH_UP_MODE_NONE, windowMs: 0 },
    alignment: WindowAlignment.WINDOW_ALIGNMENT_UNSPECIFIED,
    ...patch,
  };
}

function field(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (isSluiceError(err) && err.code === 'INVALID_ARGUMENT') return err.details.field;
    throw err;
  }
  return undefined;
}

test('start_time past the JavaScript date range is INVALID_ARGUMENT naming it; end_time past it is the range end', (t) => {
  const spec = (startTime: number, endTime: number) =>
    windowSpec({
      scheduleType: 0,
      scheduleUnit: 'H',
      scheduleInterval: 1,
      startTime,
      endTime,
      timeZone: 'UTC',
      crontabExpression: '',
    });
  t.is(MAX_TIME_MS, 8.64e15);
  t.is(
    field(() => spec(PAST, MAX_TIME_MS)),
    undefined,
  );
  t.is(spec(PAST, MAX_TIME_MS + 1).endTime, MAX_TIME_MS);
  t.is(spec(PAST, Number.MAX_SAFE_INTEGER).endTime, MAX_TIME_MS, 'a "never" end');
  t.is(
    field(() => spec(PAST, Number.MAX_SAFE_INTEGER + 2)),
    'end_time',
  );
  t.is(
    field(() => spec(MAX_TIME_MS, Number.MAX_SAFE_INTEGER)),
    'start_time',
  );
  t.is(
    field(() => firingRules(decodeInfo(info('d', { delayTime: MAX_DELAY_MINUTES })))),
    undefined,
  );
  t.is(
    field(() => firingRules(decodeInfo(info('d', { delayTime: MAX_DELAY_MINUTES + 1 })))),
    'delay_time',
  );
});

test('windows at the end of the date range are found and shown in every zone and unit', (t) => {
  for (const timeZone of ['UTC', 'Europe/Berlin', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'America/New_York']) {
    for (const unit of ['H', 'D', 'W', 'M', 'Y', 'O']) {
      const spec = windowSpec({
        scheduleType: 0,
        scheduleUnit: unit,
        scheduleInterval: 1,
        startTime: PAST,
        endTime: MAX_TIME_MS,
        timeZone,
        crontabExpression: '',
      });
      const started = performance.now();
      const w = windowAt(spec, MAX_TIME_MS - 1)!;
      t.true(performance.now() - started < 500, `${unit} in ${timeZone}`);
      t.is(w.end, MAX_TIME_MS);
      const shown = describeWindow(spec, w, w.end + MAX_DELAY_MINUTES * 60_000);
      t.regex(shown.endLocal, /^\+275760-09-1[23]T/);
      t.regex(shown.dueLocal, /^\+2757\d\d-/);
      t.deepEqual([...windowsAfter(spec, MAX_TIME_MS)], []);
    }
  }
  // A huge interval: the one window reaches the end; its second edge is past any date.
  const huge = windowSpec({
    scheduleType: 0,
    scheduleUnit: 'Y',
    scheduleInterval: 1e15,
    startTime: PAST,
    endTime: MAX_TIME_MS,
    timeZone: 'Europe/Berlin',
    crontabExpression: '',
  });
  t.deepEqual([...windowsAfter(huge)], [{ start: PAST, end: MAX_TIME_MS }]);
  t.regex(formatLocal(MAX_TIME_MS + 86_400_000, 'Pacific/Kiritimati'), /^\+275760-09-1[45]T/);
});

test('RegisterSchedule and PreviewWindows take an end_time past the date range as its end', async (t) => {
  const { client } = t.context;
  await call(client.registerSchedule.bind(client), { info: info('far-end', { endTime: Number.MAX_SAFE_INTEGER }) });
  const preview = await call(client.previewWindows.bind(client), {
    groupId: 'far-end',
    info: undefined,
    fromTime: MAX_TIME_MS - 3_600_000,
    count: 5,
  });
  t.true(preview.windows.length >= 1);
  t.is(preview.windows.at(-1)?.end, MAX_TIME_MS, 'the last window ends with the date range');
});

test('request times past the date range are INVALID_ARGUMENT naming the field', async (t) => {
  const { client } = t.context;
  await call(client.registerSchedule.bind(client), { info: info('far-times') });
  const far = MAX_TIME_MS + 1;
  const preview = await callError(client.previewWindows.bind(client), {
    groupId: 'far-times',
    info: undefined,
    fromTime: far,
    count: 1,
  });
  t.is(preview.fieldErrors?.[0]?.path, 'from_time');
  const trigger = await callError(client.triggerWindow.bind(client), {
    groupId: 'far-times',
    windowStart: -far,
    rerun: false,
  });
  t.is(trigger.fieldErrors?.[0]?.path, 'window_start');
  const backfill = await callError(client.backfill.bind(client), {
    groupId: 'far-times',
    fromTime: PAST,
    toTime: far,
    mode: BackfillMode.BACKFILL_MODE_ALL,
    maxParallel: 1,
    reverse: false,
    dryRun: true,
  });
  t.is(backfill.fieldErrors?.[0]?.path, 'to_time');
  const fire = await callError(client.fireDue.bind(client), { groupId: 'far-times', asOf: far });
  t.is(fire.fieldErrors?.[0]?.path, 'as_of');
  for (const e of [preview, trigger, backfill, fire]) t.is(e.code, status.INVALID_ARGUMENT);
});

test('PreviewWindows and TriggerWindow answer the last window of a schedule ending at the range end', async (t) => {
  const { client } = t.context;
  const preview = await call(client.previewWindows.bind(client), {
    groupId: '',
    info: info('edge-preview', { scheduleUnit: 'M' }),
    fromTime: MAX_TIME_MS - 1,
    count: 1,
  });
  t.is(preview.windows.length, 1);
  t.is(preview.windows[0]!.end, MAX_TIME_MS);
  t.regex(preview.windows[0]!.endLocal, /^\+275760-09-13T02:00:00\.000\+02:00$/);
  // One window, [2024, the range end): triggered, claimed and answered (it used to be UNKNOWN after the claim).
  await call(client.registerSchedule.bind(client), { info: info('edge-trigger', { scheduleUnit: 'O' }) });
  const res = await call(client.triggerWindow.bind(client), {
    groupId: 'edge-trigger',
    windowStart: PAST,
    rerun: false,
  });
  t.is(res.instance!.window!.end, MAX_TIME_MS);
  t.regex(res.instance!.window!.endLocal, /^\+275760-/);
});

test('a ListInstances page token that decodes but is not a window start is INVALID_ARGUMENT naming page_token', async (t) => {
  const { client } = t.context;
  await call(client.registerSchedule.bind(client), { info: info('tokens') });
  const request = (pageToken: string) => ({
    groupId: 'tokens',
    states: [],
    windowFrom: 0,
    windowTo: 0,
    pageSize: 0,
    pageToken,
  });
  for (const k of ['abc', '', '1.5', '1e3', '99999999999999999', ' 12']) {
    const token = Buffer.from(JSON.stringify({ k }), 'utf8').toString('base64url');
    const err = await callError(client.listInstances.bind(client), request(token));
    t.is(err.code, status.INVALID_ARGUMENT, k);
    t.is(err.fieldErrors?.[0]?.path, 'page_token', k);
  }
  // Tokens it made itself still page, a negative one (an OFFSET window's key) included.
  for (const k of ['0', String(PAST), '-123456789012345']) {
    const token = Buffer.from(JSON.stringify({ k }), 'utf8').toString('base64url');
    t.deepEqual((await call(client.listInstances.bind(client), request(token))).instances, [], k);
  }
});
