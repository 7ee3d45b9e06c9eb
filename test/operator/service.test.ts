import anyTest, { type TestFn } from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobRecord, OperatorStore } from '../../services/operator/domain/model.js';
import { type OperatorRig, datagenToFile, jobWhen, operatorRig, schedule } from '../helpers/operator.js';

declare global {
  var __flakySink:
    | { committed: Map<string, Record<string, unknown>[]>; aborts: Map<string, number>; attempts: Map<string, number> }
    | undefined;
}

const test = anyTest as TestFn<{ rig: OperatorRig }>;
test.beforeEach(async (t) => {
  t.context.rig = await operatorRig();
});
test.afterEach.always(async (t) => t.context.rig?.close());

const codeOf = (err: unknown) => (err as { code?: string }).code;
const fieldsOf = (err: unknown) =>
  (err as { details?: { fieldErrors?: { path: string }[]; field?: string } }).details?.fieldErrors?.map(
    (f) => f.path,
  ) ?? [(err as { details?: { field?: string } }).details?.field];
const H = 3_600_000;
const W0 = Date.UTC(2026, 0, 1);
const timeWindow = (groupId: string, k = 0) => ({
  groupId,
  boundaryType: 'TIME' as const,
  lowerBound: String(W0 + k * H),
  upperBound: String(W0 + (k + 1) * H),
  instanceId: '',
});

/** The job once it has ended (retries and their backoff included). */
function finished(rig: OperatorRig, jobId: string): Promise<JobRecord> {
  return jobWhen(rig.service, jobId);
}

test('createGroup checks every stream through the catalog and names each field', async (t) => {
  const { rig } = t.context;
  const err = await t.throwsAsync(
    rig.service.createGroup(
      datagenToFile('g-bad', rig.dir, {
        streams: [
          {
            streamId: 's1',
            source: { connectorId: 'datagen', options: { intervalMs: 0, bogus: 1 } },
            sink: { connectorId: 'file', options: { path: rig.dir } },
            fields: [],
          },
          {
            streamId: 's1',
            source: { connectorId: 'file', options: {} },
            sink: { connectorId: 'nope', options: {} },
            fields: [],
          },
        ],
      }),
    ),
  );
  t.is(codeOf(err), 'INVALID_ARGUMENT');
  t.deepEqual(fieldsOf(err), [
    'group.streams[0].source.options.intervalMs',
    'group.streams[0].source.options.bogus',
    'group.streams[1].stream_id',
    'group.streams[1].source.connector_id',
    'group.streams[1].sink.connector_id',
  ]);
  const badSchedule = await t.throwsAsync(
    rig.service.createGroup(datagenToFile('g-s', rig.dir, { schedule: { ...schedule('g-s'), scheduleUnit: 'Z' } })),
  );
  t.deepEqual(fieldsOf(badSchedule), ['group.schedule.schedule_unit']);
  const badCast = await t.throwsAsync(
    rig.service.createGroup(
      datagenToFile('g-c', rig.dir, {
        streams: [
          {
            streamId: 's1',
            source: { connectorId: 'datagen', options: {} },
            sink: { connectorId: 'file', options: { path: rig.dir } },
            fields: [{ sourceField: 'id', targetField: 'id', cast: 'decimal' as never }],
          },
        ],
      }),
    ),
  );
  t.deepEqual(fieldsOf(badCast), ['group.streams[0].fields[0].cast']);
  const created = await rig.service.createGroup(datagenToFile('g-ok', rig.dir));
  t.is(created.status, 'NEW');
  t.is(codeOf(await t.throwsAsync(rig.service.createGroup(datagenToFile('g-ok', rig.dir)))), 'ALREADY_EXISTS');
});

test('approve registers the schedule; update re-registers it in place; delete unregisters, then deletes', async (t) => {
  const { rig } = t.context;
  const g = await rig.service.createGroup(datagenToFile('g-life', rig.dir));
  t.is(codeOf(await t.throwsAsync(rig.service.approveGroup('g-life', g.version + 5))), 'VERSION_CONFLICT');
  const approved = await rig.service.approveGroup('g-life', g.version);
  t.is(approved.status, 'REGISTERED');
  const updated = await rig.service.updateGroup({
    ...datagenToFile('g-life', rig.dir, { description: 'changed' }),
    version: approved.version,
  });
  t.is(updated.description, 'changed');
  t.is(
    codeOf(
      await t.throwsAsync(rig.service.updateGroup({ ...datagenToFile('g-life', rig.dir), version: approved.version })),
    ),
    'VERSION_CONFLICT',
  );
  const deleted = await rig.service.deleteGroup('g-life', 0);
  t.deepEqual(rig.schedules.calls, ['register g-life', 'update g-life', 'unregister g-life']);
  t.is(codeOf(await t.throwsAsync(rig.service.getGroup('g-life'))), 'NOT_FOUND');

  // Created again: its versions go on from the deleted group's, so no version a client kept of that one matches.
  const again = await rig.service.createGroup(datagenToFile('g-life', rig.dir));
  t.is(again.version, deleted.version + 1);
  t.is((await rig.service.getGroup('g-life')).version, again.version);
  for (const stale of [g.version, approved.version, updated.version])
    t.is(
      codeOf(await t.throwsAsync(rig.service.approveGroup('g-life', stale))),
      'VERSION_CONFLICT',
      `version ${stale}`,
    );
  t.is((await rig.service.approveGroup('g-life', again.version)).status, 'REGISTERED');
});

test('SubmitOfflineJob: NOT_FOUND, not approved, a boundary type the source cannot honour, bad bounds', async (t) => {
  const { rig } = t.context;
  t.is(codeOf(await t.throwsAsync(rig.service.submitOfflineJob(timeWindow('nobody'), false))), 'NOT_FOUND');
  await rig.service.createGroup(datagenToFile('g-sub', rig.dir));
  const notApproved = await t.throwsAsync(rig.service.submitOfflineJob(timeWindow('g-sub'), false));
  t.is(codeOf(notApproved), 'FAILED_PRECONDITION');
  await rig.service.approveGroup('g-sub', 0);
  for (const [lower, upper, field] of [
    ['soon', '10', 'request.lower_bound'],
    ['10', '5', 'request.upper_bound'],
    ['1.5', '10', 'request.lower_bound'],
  ]) {
    const err = await t.throwsAsync(
      rig.service.submitOfflineJob({ ...timeWindow('g-sub'), lowerBound: lower!, upperBound: upper! }, false),
    );
    t.is(codeOf(err), 'INVALID_ARGUMENT');
    t.deepEqual(fieldsOf(err), [field]);
  }
  await rig.service.createGroup({
    ...datagenToFile('g-slow', rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: {} },
        sink: { connectorId: 'flaky-sink', options: {} },
        fields: [],
      },
    ],
  });
  await rig.service.approveGroup('g-slow', 0);
  const type = await t.throwsAsync(rig.service.submitOfflineJob(timeWindow('g-slow'), false));
  t.is(codeOf(type), 'FAILED_PRECONDITION');
  t.regex(type!.message, /source connector 'slow-source' of stream 's1' cannot honour TIME windows/);
});

test('a window runs end to end through the embedded runner: each of its rows once, however often it is submitted or re-run', async (t) => {
  const { rig } = t.context;
  await rig.service.createGroup(
    datagenToFile('g-run', rig.dir, {
      streams: [
        {
          streamId: 's1',
          source: { connectorId: 'datagen', options: { intervalMs: 1000 } },
          sink: { connectorId: 'file', options: { path: rig.dir, format: 'jsonl' } },
          fields: [
            { sourceField: 'id', targetField: 'event_id', cast: 'string' },
            { sourceField: 'ts', targetField: 'at', cast: '' },
          ],
        },
      ],
    }),
  );
  await rig.service.approveGroup('g-run', 0);
  const first = await rig.service.submitOfflineJob(timeWindow('g-run'), false);
  t.true(first.created);
  t.like(first.jobs[0]!.resolvedSourceOptions, { 'datagen.start-id': W0 / 1000, 'datagen.stop-id': W0 / 1000 + 3600 });
  const again = await rig.service.submitOfflineJob(timeWindow('g-run'), false);
  t.false(again.created);
  t.is(again.jobs[0]!.jobId, first.jobs[0]!.jobId);
  const job = await finished(rig, first.jobs[0]!.jobId);
  t.is(job.state, 'SUCCEEDED');
  t.is(job.progress.records, 3600);
  t.is(job.attempt, 1);
  const files = (await readdir(rig.dir)).filter((f) => f.endsWith('.jsonl'));
  t.is(files.length, 1);
  const lines = (await readFile(join(rig.dir, files[0]!), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  // Every id of the window exactly once (a count alone would let a duplicate stand in for a missing row).
  const expectedIds = Array.from({ length: 3600 }, (_, k) => String(W0 / 1000 + k));
  const idsOf = (rows: Record<string, unknown>[]) => rows.map((r) => r.event_id as string).sort();
  t.deepEqual(idsOf(lines), expectedIds);
  t.deepEqual(lines[0], { event_id: String(W0 / 1000), at: W0 });
  // A re-run replaces the window's output rather than doubling it.
  const rerun = await rig.service.submitOfflineJob(timeWindow('g-run'), true);
  t.true(rerun.created);
  t.is(rerun.jobs[0]!.generation, 2);
  t.is((await finished(rig, rerun.jobs[0]!.jobId)).state, 'SUCCEEDED');
  t.deepEqual(
    (await readdir(rig.dir)).filter((f) => f.endsWith('.jsonl')),
    files,
    'still one file',
  );
  const rerunLines = (await readFile(join(rig.dir, files[0]!), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(idsOf(rerunLines), expectedIds);
  t.deepEqual(
    (await rig.service.submitOfflineJob(timeWindow('g-run'), false)).jobs.map((j) => j.generation),
    [2],
  );
});

test('a failed attempt aborts the sink and is retried per the policy; a precondition failure is not retried', async (t) => {
  const { rig } = t.context;
  const flaky = (failWrites: number, failWith = 'error') => ({
    ...datagenToFile(`g-flaky-${failWrites}-${failWith}`, rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 0 } },
        sink: { connectorId: 'flaky-sink', options: { failWrites, failWith } },
        fields: [],
      },
    ],
    retry: { maxAttempts: 3, initialBackoffMs: 10 },
  });
  const offset = (groupId: string) => ({
    groupId,
    boundaryType: 'OFFSET' as const,
    lowerBound: '0',
    upperBound: '25',
    instanceId: '',
  });
  await rig.service.createGroup(flaky(2));
  await rig.service.approveGroup('g-flaky-2-error', 0);
  const { jobs } = await rig.service.submitOfflineJob(offset('g-flaky-2-error'), false);
  const job = await finished(rig, jobs[0]!.jobId);
  t.is(job.state, 'SUCCEEDED');
  t.is(job.attempt, 3);
  t.is(globalThis.__flakySink!.aborts.get('g-flaky-2-error/s1/0-25'), 2, 'each failed attempt aborted its writer');
  t.is(globalThis.__flakySink!.committed.get('g-flaky-2-error/s1/0-25')!.length, 25);

  await rig.service.createGroup(flaky(5, 'precondition'));
  await rig.service.approveGroup('g-flaky-5-precondition', 0);
  const hard = await rig.service.submitOfflineJob(offset('g-flaky-5-precondition'), false);
  const failed = await finished(rig, hard.jobs[0]!.jobId);
  t.is(failed.state, 'FAILED');
  t.is(failed.attempt, 1);
  t.regex(failed.error, /read-only/);
});

test('a job whose SUCCEEDED write fails once is written again, not run again', async (t) => {
  const { rig } = t.context;
  const store = rig.store as { updateJob: OperatorStore['updateJob'] };
  const original = store.updateJob.bind(store);
  let failed = 0;
  store.updateJob = async (jobId, patch, ...rest) => {
    if (patch.state === 'SUCCEEDED' && failed++ === 0) throw new Error('connection reset by the store');
    return original(jobId, patch, ...rest);
  };
  t.teardown(() => {
    store.updateJob = original;
  });
  await rig.service.createGroup({
    ...datagenToFile('g-write-once', rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 0 } },
        sink: { connectorId: 'flaky-sink', options: {} },
        fields: [],
      },
    ],
    retry: { maxAttempts: 3, initialBackoffMs: 10 },
  });
  await rig.service.approveGroup('g-write-once', 0);
  const { jobs } = await rig.service.submitOfflineJob(
    { groupId: 'g-write-once', boundaryType: 'OFFSET', lowerBound: '0', upperBound: '25', instanceId: '' },
    false,
  );
  const job = await finished(rig, jobs[0]!.jobId);
  t.is(job.state, 'SUCCEEDED');
  t.is(job.attempt, 1, 'one run');
  t.is(globalThis.__flakySink!.attempts.get('g-write-once/s1/0-25'), 1, 'the sink was opened once');
  t.is(failed, 2, 'the write was tried twice');
});

/**
 * Replica op-1's lease on a running job lapses while op-1 is alive (its store was out of reach); op-2 takes the job
 * over and runs it. When op-1's run then ends, just before its last write, its end (`ends`) must not overwrite
 * op-2's row.
 */
for (const { ends, failWrites } of [
  { ends: 'SUCCEEDED', failWrites: 0 },
  { ends: 'PENDING', failWrites: 1 },
] as const)
  test(`a run that lost its job to a take-over writes nothing over the new run (its ${ends} write)`, async (t) => {
    const { rig } = t.context;
    const store = rig.store as { updateJob: OperatorStore['updateJob'] };
    const original = store.updateJob.bind(store);
    let takenOver = false;
    store.updateJob = async (jobId, patch, now, from, ...rest) => {
      if (patch.state === ends && from?.includes('RUNNING') && !takenOver) {
        takenOver = true;
        // As op-2 takes it over: the lease, then the job handed back and run again there.
        const seen = (await rig.store.getJob(jobId))!;
        await rig.store.takeOverJob(jobId, seen.leaseUntil, 'op-2', Date.now() + 60_000, Date.now());
        await original(jobId, { state: 'PENDING' }, Date.now(), ['RUNNING']);
        await original(jobId, { state: 'RUNNING', attempt: seen.attempt + 1 }, Date.now(), ['PENDING']);
      }
      return original(jobId, patch, now, from, ...rest);
    };
    t.teardown(() => {
      store.updateJob = original;
    });
    const groupId = `g-lost-${ends.toLowerCase()}`;
    await rig.service.createGroup({
      ...datagenToFile(groupId, rig.dir),
      streams: [
        {
          streamId: 's1',
          source: { connectorId: 'slow-source', options: { delayMs: 0 } },
          sink: { connectorId: 'flaky-sink', options: { failWrites, failWith: 'error' } },
          fields: [],
        },
      ],
      retry: { maxAttempts: 3, initialBackoffMs: 10 },
    });
    await rig.service.approveGroup(groupId, 0);
    const { jobs } = await rig.service.submitOfflineJob(
      { groupId, boundaryType: 'OFFSET', lowerBound: '0', upperBound: '25', instanceId: '' },
      false,
    );
    const jobId = jobs[0]!.jobId;
    await rig.service.idle();
    // Long enough for a retry op-1 would have queued (backoff 10 ms) to have run.
    await new Promise((r) => setTimeout(r, 100));
    await rig.service.idle();
    t.true(takenOver);
    const job = (await rig.store.getJob(jobId))!;
    t.like(job, { state: 'RUNNING', owner: 'op-2', attempt: 2 }, "op-2's run is left as it is");
    t.is(globalThis.__flakySink!.attempts.get(`${groupId}/s1/0-25`), 1, 'op-1 did not run it again');
  });

test('a retry due after another replica took the job over is left to that replica: it is not started here', async (t) => {
  const { rig } = t.context;
  const groupId = 'g-retry-taken';
  await rig.service.createGroup({
    ...datagenToFile(groupId, rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 0 } },
        sink: { connectorId: 'flaky-sink', options: { failWrites: 1, failWith: 'error' } },
        fields: [],
      },
    ],
    retry: { maxAttempts: 3, initialBackoffMs: 800 },
  });
  await rig.service.approveGroup(groupId, 0);
  const { jobs } = await rig.service.submitOfflineJob(
    { groupId, boundaryType: 'OFFSET', lowerBound: '0', upperBound: '25', instanceId: '' },
    false,
  );
  const jobId = jobs[0]!.jobId;
  // Attempt 1 failed; op-1 waits 800 ms to retry. Meanwhile op-2 takes the job over (op-1's lease ran out).
  const waiting = await jobWhen(rig.service, jobId, (j) => j.state === 'PENDING' && j.attempt === 1);
  t.truthy(await rig.store.takeOverJob(jobId, waiting.leaseUntil, 'op-2', Date.now() + 60_000, Date.now()));
  await new Promise((r) => setTimeout(r, 1200));
  await rig.service.idle();
  t.like(await rig.store.getJob(jobId), { state: 'PENDING', owner: 'op-2', attempt: 1 }, 'left to op-2');
  t.is(globalThis.__flakySink!.attempts.get(`${groupId}/s1/0-25`), 1, 'op-1 did not run it again');
});

test('cancel stops a running job, aborts its sink and records CANCELLED; watch sees every change', async (t) => {
  const { rig } = t.context;
  await rig.service.createGroup({
    ...datagenToFile('g-cancel', rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 50 } },
        sink: { connectorId: 'flaky-sink', options: {} },
        fields: [],
      },
    ],
  });
  await rig.service.approveGroup('g-cancel', 0);
  const { jobs } = await rig.service.submitOfflineJob(
    { groupId: 'g-cancel', boundaryType: 'OFFSET', lowerBound: '0', upperBound: '100000', instanceId: 'i-1' },
    false,
  );
  const seen: string[] = [];
  const stop = await rig.service.watchJob(jobs[0]!.jobId, (j) => seen.push(j.state));
  await jobWhen(rig.service, jobs[0]!.jobId, (j) => j.state === 'RUNNING' && j.progress.records > 0);
  const cancelled = await rig.service.cancelJob(jobs[0]!.jobId);
  stop();
  t.is(cancelled.state, 'CANCELLED');
  t.true(cancelled.progress.records > 0 && cancelled.progress.records < 100000);
  t.deepEqual(cancelled.resolvedPositions, { start: '0', stop: '100000' });
  t.false(globalThis.__flakySink!.committed.has('g-cancel/s1/0-100000'));
  t.is(globalThis.__flakySink!.aborts.get('g-cancel/s1/0-100000'), 1);
  t.is(seen[0], 'PENDING');
  t.true(seen.includes('RUNNING'));
  t.is(seen[seen.length - 1], 'CANCELLED');
  t.is(codeOf(await t.throwsAsync(rig.service.cancelJob(jobs[0]!.jobId))), 'FAILED_PRECONDITION');
});

for (const first of ['cancel', 'stop'] as const)
  test(`CancelJob while the operator stops (${first} first) ends the job CANCELLED, and answers`, async (t) => {
    const { rig } = t.context;
    const groupId = `g-cancel-stop-${first}`;
    await rig.service.createGroup({
      ...datagenToFile(groupId, rig.dir),
      streams: [
        {
          streamId: 's1',
          source: { connectorId: 'slow-source', options: { delayMs: 20 } },
          sink: { connectorId: 'flaky-sink', options: {} },
          fields: [],
        },
      ],
    });
    await rig.service.approveGroup(groupId, 0);
    const { jobs } = await rig.service.submitOfflineJob(
      { groupId, boundaryType: 'OFFSET', lowerBound: '0', upperBound: '100000', instanceId: '' },
      false,
    );
    const jobId = jobs[0]!.jobId;
    await jobWhen(rig.service, jobId, (j) => j.state === 'RUNNING' && j.progress.records > 0);
    let cancelled: Promise<JobRecord>;
    let stopped: Promise<void>;
    if (first === 'cancel') {
      cancelled = rig.service.cancelJob(jobId);
      stopped = rig.service.stop();
    } else {
      stopped = rig.service.stop();
      cancelled = rig.service.cancelJob(jobId);
    }
    const answer = await Promise.race([
      cancelled,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000).unref()),
    ]);
    await stopped;
    t.not(answer, 'hung', 'CancelJob answered');
    t.is((answer as JobRecord).state, 'CANCELLED');
    t.is((await rig.store.getJob(jobId))?.state, 'CANCELLED', 'not handed back PENDING to run again');
    t.false(globalThis.__flakySink!.committed.has(`${groupId}/s1/0-100000`));
  });

test('a job that was running when the operator stopped runs again after the restart', async (t) => {
  const { rig } = t.context;
  await rig.service.createGroup({
    ...datagenToFile('g-restart', rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 30 } },
        sink: { connectorId: 'flaky-sink', options: {} },
        fields: [],
      },
    ],
  });
  await rig.service.approveGroup('g-restart', 0);
  const { jobs } = await rig.service.submitOfflineJob(
    { groupId: 'g-restart', boundaryType: 'OFFSET', lowerBound: '0', upperBound: '200', instanceId: '' },
    false,
  );
  await jobWhen(rig.service, jobs[0]!.jobId, (j) => j.state === 'RUNNING' && j.progress.records > 0);
  await rig.restart();
  const job = await finished(rig, jobs[0]!.jobId);
  t.is(job.state, 'SUCCEEDED');
  t.is(job.attempt, 1, 'a clean stop does not use up an attempt');
  t.is(globalThis.__flakySink!.committed.get('g-restart/s1/0-200')!.length, 200);
});

test('a job whose last attempt died with the process is not run again after a restart', async (t) => {
  const { rig } = t.context;
  await rig.service.createGroup({
    ...datagenToFile('g-crash', rig.dir),
    streams: [
      {
        streamId: 's1',
        // Slow enough that the stop below comes before the window's end.
        source: { connectorId: 'slow-source', options: { delayMs: 1000 } },
        sink: { connectorId: 'flaky-sink', options: {} },
        fields: [],
      },
    ],
    retry: { maxAttempts: 2, initialBackoffMs: 10 },
  });
  await rig.service.approveGroup('g-crash', 0);
  const { jobs } = await rig.service.submitOfflineJob(
    { groupId: 'g-crash', boundaryType: 'OFFSET', lowerBound: '0', upperBound: '20', instanceId: '' },
    false,
  );
  await rig.service.stop(); // its run ends here: the row below is what a killed process leaves
  await rig.store.updateJob(jobs[0]!.jobId, { state: 'RUNNING', attempt: 2, owner: 'op-1' }, Date.now());
  await rig.restart();
  const job = await finished(rig, jobs[0]!.jobId);
  t.is(job.state, 'FAILED');
  t.is(job.attempt, 2);
  t.regex(job.error, /attempt 2 of 2 ended with the operator process/);
  t.false(globalThis.__flakySink?.committed.has('g-crash/s1/0-20') ?? false);
});

test('cancelling a job held by a dead replica ends at once: it is CANCELLED in the store, no loop', async (t) => {
  const { rig } = t.context;
  await rig.service.createGroup(datagenToFile('g-elsewhere', rig.dir));
  await rig.service.approveGroup('g-elsewhere', 0);
  const { jobs } = await rig.service.submitOfflineJob(timeWindow('g-elsewhere'), false);
  await rig.service.stop();
  await rig.store.updateJob(jobs[0]!.jobId, { state: 'RUNNING', attempt: 1, owner: 'op-dead' }, Date.now());
  const cancelled = await rig.service.cancelJob(jobs[0]!.jobId);
  t.is(cancelled.state, 'CANCELLED');
  t.is(codeOf(await t.throwsAsync(rig.service.cancelJob(jobs[0]!.jobId))), 'FAILED_PRECONDITION');
});

test('at most maxRunningJobs run at once; the rest wait PENDING, then all run', async (t) => {
  await t.context.rig.close();
  const rig = (t.context.rig = await operatorRig(1));
  await rig.service.createGroup({
    ...datagenToFile('g-limit', rig.dir),
    streams: ['a', 'b', 'c'].map((s) => ({
      streamId: s,
      source: { connectorId: 'slow-source', options: { delayMs: 20 } },
      sink: { connectorId: 'flaky-sink', options: {} },
      fields: [],
    })),
  });
  await rig.service.approveGroup('g-limit', 0);
  const { jobs } = await rig.service.submitOfflineJob(
    { groupId: 'g-limit', boundaryType: 'OFFSET', lowerBound: '0', upperBound: '50', instanceId: '' },
    false,
  );
  // Every state change of every job, in the order the service announces them: however slow the machine,
  // no moment may show two RUNNING.
  const state = new Map<string, string>();
  let mostRunning = 0;
  const seenPending = new Set<string>();
  const ended = jobs.map((j) =>
    jobWhen(rig.service, j.jobId, (job) => {
      state.set(job.jobId, job.state);
      if (job.state === 'PENDING') seenPending.add(job.jobId);
      mostRunning = Math.max(mostRunning, [...state.values()].filter((s) => s === 'RUNNING').length);
      return job.state === 'SUCCEEDED' || job.state === 'FAILED' || job.state === 'CANCELLED';
    }),
  );
  const final = await Promise.all(ended);
  t.deepEqual(
    final.map((j) => j.state),
    ['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED'],
  );
  t.is(mostRunning, 1, 'never more than one RUNNING at once');
  t.true(seenPending.has(jobs[1]!.jobId) && seenPending.has(jobs[2]!.jobId), 'the others waited PENDING');
  const runs = final.map((j) => [j.startedAt ?? 0, j.finishedAt ?? 0] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < runs.length; i++)
    t.true(runs[i]![0] >= runs[i - 1]![1], 'one run starts after the previous ended');
});

test('a re-run submitted twice with the same instance id (a retried call) runs once', async (t) => {
  const { rig } = t.context;
  await rig.service.createGroup({
    ...datagenToFile('g-retry', rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 0 } },
        sink: { connectorId: 'flaky-sink', options: {} },
        fields: [],
      },
    ],
  });
  await rig.service.approveGroup('g-retry', 0);
  const window = { groupId: 'g-retry', boundaryType: 'OFFSET' as const, lowerBound: '0', upperBound: '10' };
  await rig.service.submitOfflineJob({ ...window, instanceId: 'inst-1' }, false);
  await rig.service.idle();
  const rerun = await rig.service.submitOfflineJob({ ...window, instanceId: 'inst-1#2' }, true);
  const retried = await rig.service.submitOfflineJob({ ...window, instanceId: 'inst-1#2' }, true);
  t.true(rerun.created);
  t.false(retried.created);
  t.deepEqual(
    retried.jobs.map((j) => j.jobId),
    rerun.jobs.map((j) => j.jobId),
  );
  await rig.service.idle();
  const third = await rig.service.submitOfflineJob({ ...window, instanceId: 'inst-1#3' }, true);
  t.is(third.jobs[0]!.generation, 3, 'a later re-run is a new run');
});

test('one OFFSET window is one job however it is written: the source gives the canonical bounds', async (t) => {
  const { rig } = t.context;
  await rig.service.createGroup({
    ...datagenToFile('g-canonical', rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 0 } },
        sink: { connectorId: 'file', options: { path: rig.dir, format: 'jsonl' } },
        fields: [],
      },
    ],
  });
  await rig.service.approveGroup('g-canonical', 0);
  const window = { groupId: 'g-canonical', boundaryType: 'OFFSET' as const, instanceId: '' };
  const first = await rig.service.submitOfflineJob({ ...window, lowerBound: ' 0', upperBound: '025' }, false);
  t.true(first.created);
  t.deepEqual(
    [first.jobs[0]!.boundaries.lowerBound, first.jobs[0]!.boundaries.upperBound],
    ['0', '25'],
    'recorded in canonical form',
  );
  const again = await rig.service.submitOfflineJob({ ...window, lowerBound: '0', upperBound: '25' }, false);
  t.false(again.created);
  t.deepEqual(
    again.jobs.map((j) => j.jobId),
    first.jobs.map((j) => j.jobId),
  );
  await rig.service.idle();
});
