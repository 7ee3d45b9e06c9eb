/**
 * A replica restarting with many jobs of its own, slowly (a loaded store): it renews the leases it has taken back
 * while it goes on re-queuing, so a live peer takes none of them; and jobs submitted to it meanwhile are queued
 * once, each running once under its first attempt.
 */
import anyTest, { type TestFn } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { FINAL_JOB_STATES, type JobRecord } from '../../services/operator/domain/model.js';
import { type OperatorRig, datagenToFile, jobWhen, operatorRig } from '../helpers/operator.js';

const LEASE_MS = 600;
const BEFORE = 40;
const DURING = 10;
const test = anyTest as TestFn<{ rig: OperatorRig }>;
test.beforeEach(async (t) => {
  t.context.rig = await operatorRig(4, LEASE_MS);
});
test.afterEach.always(async (t) => t.context.rig?.close());

const window = (groupId: string, i: number) => ({
  groupId,
  boundaryType: 'OFFSET' as const,
  lowerBound: String(i * 5),
  upperBound: String(i * 5 + 5),
  instanceId: `w-${i}`,
});

test.serial('a slow restart keeps its jobs from a live peer, and jobs submitted meanwhile run once', async (t) => {
  const { rig } = t.context;
  const groupId = 'g-restart-many';
  await rig.service.createGroup({
    ...datagenToFile(groupId, rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 400 } },
        sink: { connectorId: 'flaky-sink', options: {} },
        fields: [],
      },
    ],
    retry: { maxAttempts: 3, initialBackoffMs: 10 },
  });
  await rig.service.approveGroup(groupId, 0);
  const ids: string[] = [];
  // Submitted and stopped at once: most are still PENDING, held by op-1, when it stops.
  for (let i = 0; i < BEFORE; i++)
    ids.push((await rig.service.submitOfflineJob(window(groupId, i), false)).jobs[0]!.jobId);
  await rig.service.stop();
  const unfinished = (await Promise.all(ids.map((id) => rig.store.getJob(id)))).filter(
    (j): j is JobRecord => j !== undefined && !FINAL_JOB_STATES.includes(j.state),
  );
  // (Each job takes 400 ms: a job queued behind others needs its lease renewed.)
  t.true(unfinished.length >= BEFORE / 2, `${unfinished.length} of ${BEFORE} jobs left unfinished by the stop`);
  // It comes back well within its leases (a quick restart): no peer may take them; only op-1's own re-queuing
  // shortens them to one lease each as it takes them back.
  for (const j of unfinished)
    await rig.store.takeOverJob(j.jobId, j.leaseUntil, 'op-1', Date.now() + 60_000, Date.now());

  await rig.peer('op-2');
  // op-1's store is slow to take jobs back: its re-queuing takes several leases' time.
  const store = rig.store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const takeOver = store.takeOverJob!.bind(store);
  store.takeOverJob = async (...a) => {
    if (a[2] === 'op-1') await sleep(60);
    return takeOver(...a);
  };
  const stopped = rig.service;
  const restartAt = Date.now();
  const restarted = rig.restart();
  while (rig.service === stopped) await sleep(5);
  // Windows submitted while it re-queues: they are its own, and the re-queuing finds them too.
  await sleep(100);
  for (let i = BEFORE; i < BEFORE + DURING; i++)
    ids.push((await rig.service.submitOfflineJob(window(groupId, i), false)).jobs[0]!.jobId);
  await restarted;
  t.log(`re-queued ${unfinished.length} jobs in ${Date.now() - restartAt} ms`);

  const ended = await Promise.all(ids.map((id) => jobWhen(rig.service, id, undefined, 60_000)));
  for (const job of ended) {
    t.is(job.state, 'SUCCEEDED', `${job.jobId}: ${job.error}`);
    t.is(job.owner, 'op-1', `${job.jobId} was taken by ${job.owner}`);
    t.is(job.attempt, 1, `${job.jobId} ran ${job.attempt} times`);
  }
  const sink = globalThis.__flakySink!;
  for (let i = 0; i < BEFORE + DURING; i++) {
    const key = `${groupId}/s1/${i * 5}-${i * 5 + 5}`;
    // A run the stop aborted counts as an attempt and an abort; exactly one run went through.
    const through = (sink.attempts.get(key) ?? 0) - (sink.aborts.get(key) ?? 0);
    t.is(through, 1, `window ${key}: ${through} runs not aborted`);
    t.true(sink.committed.has(key), `window ${key} committed`);
  }
});
