import anyTest, { type TestFn } from 'ava';
import { credentials, status } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoundaryType } from '../../proto/gen/sluice/common/v1/common.js';
import {
  GroupStatus,
  JobState,
  OperatorServiceClient,
  type Group,
} from '../../proto/gen/sluice/operator/v1/operator.js';
import { encodeInfo } from '../../services/schedule/grpc/adapter.js';
import { InstanceTrigger } from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { schedule } from '../helpers/operator.js';
import { type Running, call, callError, startTestSluice } from '../helpers/sluice.js';

const test = anyTest as TestFn<{ s: Running; client: OperatorServiceClient; dir: string }>;
const NEXT_YEAR = Date.UTC(new Date().getUTCFullYear() + 1, 0, 1);

test.before(async (t) => {
  const s = await startTestSluice();
  t.context = {
    s,
    client: new OperatorServiceClient(s.address, credentials.createInsecure()),
    dir: await mkdtemp(join(tmpdir(), 'sluice-op-grpc-')),
  };
});
test.after.always(async (t) => {
  t.context.client?.close();
  await t.context.s?.close();
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});

function group(groupId: string, dir: string): Group {
  return {
    groupId,
    description: 'datagen to files',
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'datagen', options: { intervalMs: 10 } },
        sink: { connectorId: 'file', options: { path: dir } },
        fields: [{ sourceField: 'id', targetField: 'n', cast: 'int' }],
      },
    ],
    // Engine None: a manual group takes any well-formed TIME bounds, such as the first minute of 1970 below.
    schedule: encodeInfo(
      { ...schedule(groupId), startTime: NEXT_YEAR, endTime: NEXT_YEAR + 86_400_000, scheduleEngine: 'None' },
      0,
    ),
    runner: '',
    retry: undefined,
    status: 0,
    version: 0,
    createdAt: 0,
    updatedAt: 0,
  };
}

test.serial('create, approve, submit, watch to the end, then list and get', async (t) => {
  const { client, dir } = t.context;
  const created = await call(client.createGroup.bind(client), { group: group('g-grpc', dir) });
  t.is(created.group!.status, GroupStatus.GROUP_STATUS_NEW);
  t.deepEqual(created.group!.retry, { maxAttempts: 3, initialBackoffMs: 1000 });
  const approved = await call(client.approveGroup.bind(client), { groupId: 'g-grpc', version: created.group!.version });
  t.is(approved.group!.status, GroupStatus.GROUP_STATUS_REGISTERED);
  const submitted = await call(client.submitOfflineJob.bind(client), {
    request: {
      groupId: 'g-grpc',
      boundaryType: BoundaryType.BOUNDARY_TYPE_TIME,
      lowerBoundary: '0',
      upperBoundary: '60000',
      instanceId: '',
    },
    rerun: false,
  });
  t.true(submitted.created);
  // The window's ledger row: submitted from outside, by a caller without a token here.
  t.like(submitted.instance, {
    groupId: 'g-grpc',
    trigger: InstanceTrigger.INSTANCE_TRIGGER_EXTERNAL,
    triggeredBy: 'grpc',
    jobIds: submitted.jobs.map((j) => j.jobId),
  });
  const jobId = submitted.jobs[0]!.jobId;
  const states = await new Promise<JobState[]>((resolve, reject) => {
    const seen: JobState[] = [];
    const stream = client.watchJob({ jobId });
    stream.on('data', (m: { job: { state: JobState } }) => seen.push(m.job.state));
    stream.on('end', () => resolve(seen));
    stream.on('error', reject);
  });
  t.is(states[states.length - 1], JobState.JOB_STATE_SUCCEEDED);
  const job = await call(client.getJob.bind(client), { jobId });
  t.is(job.job!.progress!.records, 6000);
  const listed = await call(client.listJobs.bind(client), {
    groupId: 'g-grpc',
    states: [JobState.JOB_STATE_SUCCEEDED],
    windowFrom: 0,
    windowTo: 0,
    pageSize: 10,
    pageToken: '',
  });
  t.deepEqual(
    listed.jobs.map((j) => j.jobId),
    [jobId],
  );
  const cancel = await callError(client.cancelJob.bind(client), { jobId });
  t.is(cancel.code, status.FAILED_PRECONDITION);
});

test.serial('errors over gRPC carry their codes and fields', async (t) => {
  const { client, dir } = t.context;
  const bad = await callError(client.createGroup.bind(client), {
    group: {
      ...group('g-bad', dir),
      streams: [
        { ...group('g-bad', dir).streams[0]!, sink: { connectorId: 'file', options: { path: 'relative/dir' } } },
      ],
    },
  });
  t.is(bad.code, status.INVALID_ARGUMENT);
  t.is(bad.fieldErrors?.[0]?.path, 'group.streams[0].sink.options.path');
  t.is((await callError(client.getJob.bind(client), { jobId: 'no-such-job' })).code, status.NOT_FOUND);
  const watch = await new Promise<number>((resolve) => {
    const stream = client.watchJob({ jobId: 'no-such-job' });
    stream.on('data', () => {});
    stream.on('error', (err: { code: number }) => resolve(err.code));
  });
  t.is(watch, status.NOT_FOUND);
  const type = await callError(client.submitOfflineJob.bind(client), {
    request: {
      groupId: 'g-grpc',
      boundaryType: BoundaryType.BOUNDARY_TYPE_UNSPECIFIED,
      lowerBoundary: '0',
      upperBoundary: '1',
      instanceId: '',
    },
    rerun: false,
  });
  t.is(type.fieldErrors?.[0]?.path, 'request.boundary_type');
  const stale = await callError(client.deleteGroup.bind(client), { groupId: 'g-grpc', version: 99 });
  t.is(stale.code, status.ABORTED);
});
