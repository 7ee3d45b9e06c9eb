/**
 * Request limits (services/core/limits.ts, docs/security.md): each is INVALID_ARGUMENT naming the field,
 * never INTERNAL, and the service keeps answering.
 */
import anyTest, { type TestFn } from 'ava';
import { credentials, status } from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_DESCRIPTION_LENGTH,
  MAX_FIELDS_PER_STREAM,
  MAX_ID_LENGTH,
  MAX_PAGE_SIZE,
  MAX_STREAMS_PER_GROUP,
  MAX_STRUCT_DEPTH,
} from '../../services/core/limits.js';
import { encodeInfo } from '../../services/schedule/grpc/adapter.js';
import { GroupStatus, OperatorServiceClient, type Group } from '../../proto/gen/sluice/operator/v1/operator.js';
import { ScheduleServiceClient } from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { schedule } from '../helpers/operator.js';
import { healthCheck } from '../helpers/probes.js';
import { call, callError, type Running, startTestSluice } from '../helpers/sluice.js';

const test = anyTest as TestFn<{ s: Running; operator: OperatorServiceClient; dir: string }>;
const FUTURE = Date.UTC(2100, 0, 1);

test.before(async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-limits-'));
  const s = await startTestSluice({ SLUICE_FILE_ROOTS: dir });
  t.context = { s, operator: new OperatorServiceClient(s.address, credentials.createInsecure()), dir };
});
test.after.always(async (t) => {
  t.context.operator?.close();
  await t.context.s?.close();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

function group(dir: string, groupId: string, patch: Partial<Group> = {}): Group {
  return {
    groupId,
    description: 'datagen to files',
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'datagen', options: { intervalMs: 10 } },
        sink: { connectorId: 'file', options: { path: dir } },
        fields: [],
      },
    ],
    schedule: encodeInfo({ ...schedule(groupId), startTime: FUTURE, endTime: FUTURE + 86_400_000 }, 0),
    runner: '',
    retry: undefined,
    status: 0,
    version: 0,
    createdAt: 0,
    updatedAt: 0,
    ...patch,
  };
}

function nested(depth: number): Record<string, unknown> {
  let o: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) o = { x: o };
  return o;
}

async function refused(
  t: { is: (a: unknown, b: unknown, m?: string) => void; context: { operator: OperatorServiceClient } },
  method: 'createGroup' | 'getGroup' | 'listGroups' | 'listJobs',
  request: unknown,
): Promise<string> {
  const op = t.context.operator;
  const err = await callError((op[method] as (...a: unknown[]) => unknown).bind(op) as never, request as never);
  t.is(err.code, status.INVALID_ARGUMENT, err.details);
  t.is(err.sluiceCode, 'INVALID_ARGUMENT');
  return err.fieldErrors?.[0]?.path ?? '';
}

test('a description past the limit names group.description; at the limit it is stored', async (t) => {
  const { dir } = t.context;
  const field = await refused(t, 'createGroup', {
    group: group(dir, 'g-desc', { description: 'd'.repeat(MAX_DESCRIPTION_LENGTH + 1) }),
  });
  t.is(field, 'group.description');
  await t.throwsAsync(call(t.context.operator.getGroup.bind(t.context.operator), { groupId: 'g-desc' }));
  const ok = await call(t.context.operator.createGroup.bind(t.context.operator), {
    group: group(dir, 'g-desc', { description: 'd'.repeat(MAX_DESCRIPTION_LENGTH) }),
  });
  t.is(ok.group!.description.length, MAX_DESCRIPTION_LENGTH);
});

test('an id past the limit is INVALID_ARGUMENT, not echoed whole', async (t) => {
  const op = t.context.operator;
  const err = await callError(op.getGroup.bind(op), { groupId: 'g'.repeat(200_000) });
  t.is(err.code, status.INVALID_ARGUMENT);
  t.is(err.fieldErrors?.[0]?.path, 'group_id');
  t.true(err.details.length < 500);
  t.true(String(err.fieldErrors?.[0]?.expected).includes(String(MAX_ID_LENGTH)));
});

test('streams per group and fields per stream are limited', async (t) => {
  const { dir } = t.context;
  const base = group(dir, 'g-many').streams[0]!;
  const streams = Array.from({ length: MAX_STREAMS_PER_GROUP + 1 }, (_, i) => ({ ...base, streamId: `s${i}` }));
  t.is(await refused(t, 'createGroup', { group: group(dir, 'g-many', { streams }) }), 'group.streams');
  const fields = Array.from({ length: MAX_FIELDS_PER_STREAM + 1 }, (_, i) => ({
    sourceField: `f${i}`,
    targetField: '',
    cast: '',
  }));
  t.is(
    await refused(t, 'createGroup', { group: group(dir, 'g-many', { streams: [{ ...base, fields }] }) }),
    'group.streams[0].fields',
  );
});

test('Struct nesting past the limit names the options, both within and past what the decoder reads', async (t) => {
  const { dir } = t.context;
  const base = group(dir, 'g-deep').streams[0]!;
  const deep = (d: number) =>
    group(dir, 'g-deep', { streams: [{ ...base, source: { connectorId: 'datagen', options: nested(d) } }] });
  const within = await refused(t, 'createGroup', { group: deep(MAX_STRUCT_DEPTH + 2) });
  t.true(within.startsWith('group.streams[0].source.options'), within);
  const past = await refused(t, 'createGroup', { group: deep(200) });
  t.true(past.includes('options'), past);
});

test('an int64 outside the safe range names the field instead of INTERNAL', async (t) => {
  const field = await refused(t, 'listJobs', {
    groupId: '',
    states: [],
    windowFrom: (2n ** 60n) as unknown as number,
    windowTo: 0,
    pageSize: 0,
    pageToken: '',
  });
  t.is(field, 'window_from');
});

test('a page size past the limit names page_size', async (t) => {
  const field = await refused(t, 'listGroups', {
    pageSize: MAX_PAGE_SIZE + 1,
    pageToken: '',
    statuses: [],
    includeDeleted: false,
  });
  t.is(field, 'page_size');
});

test('deleted groups are not listed unless asked for', async (t) => {
  const op = t.context.operator;
  await call(op.createGroup.bind(op), { group: group(t.context.dir, 'g-gone') });
  await call(op.deleteGroup.bind(op), { groupId: 'g-gone', version: 0 });
  const ids = async (req: { statuses: GroupStatus[]; includeDeleted: boolean }) =>
    (await call(op.listGroups.bind(op), { pageSize: 0, pageToken: '', ...req })).groups.map((g) => g.groupId);
  t.false((await ids({ statuses: [], includeDeleted: false })).includes('g-gone'));
  t.true((await ids({ statuses: [], includeDeleted: true })).includes('g-gone'));
  t.true((await ids({ statuses: [GroupStatus.GROUP_STATUS_DELETED], includeDeleted: false })).includes('g-gone'));
});

test('the schedule service refuses a huge group id too, and everything still answers', async (t) => {
  const schedules = new ScheduleServiceClient(t.context.s.address, credentials.createInsecure());
  try {
    const err = await callError(schedules.getSchedule.bind(schedules), { groupId: 'x'.repeat(MAX_ID_LENGTH + 1) });
    t.is(err.code, status.INVALID_ARGUMENT);
  } finally {
    schedules.close();
  }
  t.is(await healthCheck(t.context.s.address, ''), 'SERVING');
});
