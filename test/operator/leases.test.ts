import anyTest, { type TestFn } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobRecord } from '../../services/operator/domain/model.js';
import { type OperatorRig, datagenToFile, operatorRig, until } from '../helpers/operator.js';

declare global {
  var __flakySink:
    | { committed: Map<string, Record<string, unknown>[]>; aborts: Map<string, number>; attempts: Map<string, number> }
    | undefined;
}

const LEASE_MS = 300;
const test = anyTest as TestFn<{ rig: OperatorRig }>;
test.beforeEach(async (t) => {
  t.context.rig = await operatorRig(4, LEASE_MS);
});
test.afterEach.always(async (t) => t.context.rig?.close());

/** A group whose one job reads `records` rows slowly into the flaky sink (which records commits and aborts). */
async function slowJob(rig: OperatorRig, groupId: string, records: number, maxAttempts = 3): Promise<string> {
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
    retry: { maxAttempts, initialBackoffMs: 10 },
  });
  await rig.service.approveGroup(groupId, 0);
  const { jobs } = await rig.service.submitOfflineJob(
    { groupId, boundaryType: 'OFFSET', lowerBound: '0', upperBound: String(records), instanceId: '' },
    false,
  );
  return jobs[0]!.jobId;
}

/**
 * op-1 dies mid-job. In-process, its run is stopped; a clean stop hands the job back as PENDING (no attempt used),
 * so the row is put back as a killed process leaves it: RUNNING, owned by op-1, its lease running out.
 * test/operator/processes.test.ts does the same with a real kill -9.
 */
async function dies(rig: OperatorRig, jobId: string): Promise<void> {
  await rig.service.stop();
  const job = (await rig.store.getJob(jobId))!;
  await rig.store.updateJob(jobId, { state: 'RUNNING', attempt: job.attempt + 1 }, Date.now(), ['PENDING']);
}

test.serial(
  'a job whose owner stops renewing its lease is taken over by another replica: attempt + 1, output once',
  async (t) => {
    const { rig } = t.context;
    const jobId = await slowJob(rig, 'g-takeover', 40);
    await until(rig.service, jobId, 'running on op-1', (j) => j.state === 'RUNNING' && j.progress.records > 0);
    // op-1 goes away without a word: its run stops, the job stays RUNNING with op-1's lease running out.
    await dies(rig, jobId);
    t.is((await rig.store.getJob(jobId))?.state, 'RUNNING');
    const op2 = await rig.peer('op-2');
    const done = await until(op2, jobId, 'finished on op-2', (j) => j.state === 'SUCCEEDED');
    t.is(done.owner, 'op-2');
    t.is(done.attempt, 2);
    t.is(globalThis.__flakySink!.committed.get('g-takeover/s1/0-40')!.length, 40, 'every row written once');
    t.is(globalThis.__flakySink!.aborts.get('g-takeover/s1/0-40'), 1, "the first attempt's sink aborted");
  },
);

test.serial('a taken-over job with no attempts left fails with an error naming the replica that lost it', async (t) => {
  const { rig } = t.context;
  const jobId = await slowJob(rig, 'g-exhausted', 40, 1);
  await until(rig.service, jobId, 'running on op-1', (j) => j.state === 'RUNNING');
  await dies(rig, jobId);
  const op2 = await rig.peer('op-2');
  const failed = await until(op2, jobId, 'failed on op-2', (j) => j.state === 'FAILED');
  t.regex(failed.error, /operator replica 'op-1' stopped renewing the lease .* attempt 1 of 1; no attempts left/);
  t.false(globalThis.__flakySink!.committed.has('g-exhausted/s1/0-40'));
});

test.serial('CancelJob on a replica that does not run the job stops it where it runs', async (t) => {
  const { rig } = t.context;
  const jobId = await slowJob(rig, 'g-remote-cancel', 1000);
  await until(rig.service, jobId, 'running on op-1', (j) => j.state === 'RUNNING' && j.progress.records > 0);
  const op2 = await rig.peer('op-2');
  const cancelled = await op2.cancelJob(jobId);
  t.is(cancelled.state, 'CANCELLED');
  // op-1 learns of it at its next lease renewal and aborts the sink.
  const deadline = Date.now() + 10_000;
  while (!globalThis.__flakySink!.aborts.get('g-remote-cancel/s1/0-1000') && Date.now() < deadline) await sleep(25);
  t.is(globalThis.__flakySink!.aborts.get('g-remote-cancel/s1/0-1000'), 1);
  await rig.service.idle();
  const job = await rig.service.getJob(jobId);
  t.is(job.state, 'CANCELLED', 'nothing overwrote the cancellation');
  t.false(globalThis.__flakySink!.committed.has('g-remote-cancel/s1/0-1000'));
});

test.serial('WatchJob on a replica that does not hold the job follows it to its end from the store', async (t) => {
  const { rig } = t.context;
  const jobId = await slowJob(rig, 'g-remote-watch', 40);
  // op-2 never held the job: no change of it happens in op-2, so only reading the store can show it ending.
  const op2 = await rig.peer('op-2');
  const states: string[] = [];
  let unsubscribe: (() => void) | undefined;
  const ended = new Promise<JobRecord>((resolve) => {
    void op2
      .watchJob(jobId, (job) => {
        states.push(job.state);
        if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(job.state)) resolve(job);
      })
      .then((u) => (unsubscribe = u));
  });
  const timeout = sleep(20_000).then(() => undefined);
  const last = await Promise.race([ended, timeout]);
  unsubscribe?.();
  t.truthy(last, `the watch on op-2 saw the job end (states seen: ${states.join(' → ')})`);
  t.is(last?.state, 'SUCCEEDED');
  t.is(last?.owner, 'op-1', 'it ran on op-1 all along');
});
