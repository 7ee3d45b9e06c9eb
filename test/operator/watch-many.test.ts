/**
 * Watches of jobs another replica holds: the store is read once a tick for all of them, not once per watch, and a
 * job ending on the other replica is heard within a bound while hundreds are watched.
 */
import anyTest, { type TestFn } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobRecord } from '../../services/operator/domain/model.js';
import { type OperatorRig, datagenToFile, operatorRig } from '../helpers/operator.js';

const LEASE_MS = 300; // the poll runs every 100 ms
const WATCHED = 300;
const test = anyTest as TestFn<{ rig: OperatorRig }>;
test.beforeEach(async (t) => {
  t.context.rig = await operatorRig(4, LEASE_MS);
});
test.afterEach.always(async (t) => t.context.rig?.close());

/** `count` RUNNING jobs of one-second windows held by a replica that is not in this process, its lease far ahead. */
async function remoteJobs(rig: OperatorRig, groupId: string, count: number): Promise<string[]> {
  await rig.service.createGroup(datagenToFile(groupId, rig.dir));
  await rig.service.approveGroup(groupId, 0);
  const now = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const jobId = `${now.toString(36)}-w${String(i).padStart(5, '0')}`;
    const job: JobRecord = {
      jobId,
      groupId,
      streamId: 's1',
      instanceId: `i-${i}`,
      boundaries: { boundaryType: 'TIME', lowerBound: String(i * 1000), upperBound: String((i + 1) * 1000) },
      generation: 1,
      state: 'RUNNING',
      runner: 'embedded',
      attempt: 1,
      resolvedSourceOptions: {},
      resolvedPositions: {},
      progress: { records: 0, bytes: 0, positions: {} },
      error: '',
      owner: 'op-elsewhere',
      leaseUntil: now + 3_600_000,
      createdAt: now,
      startedAt: now,
      updatedAt: now,
    };
    setupCheck(await rig.store.insertWindowJobs([job]), `job ${jobId} inserted`);
    ids.push(jobId);
  }
  return ids;
}

function setupCheck(ok: boolean, what: string): void {
  if (!ok) throw new Error(`set-up failed: ${what}`);
}

test.serial('hundreds of watches of remote jobs cost one store read a tick, and each hears its end', async (t) => {
  const { rig } = t.context;
  const ids = await remoteJobs(rig, 'g-watch-many', WATCHED);
  let single = 0;
  let batched = 0;
  /** Per job heard ended: the batched reads started by then (counted below). */
  const ended = new Map<string, number>();
  const stops = await Promise.all(
    ids.map((id) =>
      rig.service.watchJob(id, (j) => {
        if (j.state === 'SUCCEEDED' && !ended.has(id)) ended.set(id, batched);
      }),
    ),
  );
  // Count the reads the watches make from now on (the store object is the service's).
  const store = rig.store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const getJob = store.getJob!.bind(store);
  const getJobs = store.getJobs!.bind(store);
  store.getJob = (...a) => (single++, getJob(...a));
  store.getJobs = (...a) => (batched++, getJobs(...a));
  const counting = Date.now();
  await sleep(1000);
  t.is(single, 0, 'no watch reads its job on its own');
  // 10 ticks in a second; a busy tick is skipped, never doubled.
  t.true(batched <= 12, `batched reads in 1 s: ${batched}`);
  // The ticks go on (counted, not timed: a loaded machine may run them late).
  while (batched < 3 && Date.now() - counting < 10_000) await sleep(10);
  t.true(batched >= 3, `batched reads in ${Date.now() - counting} ms: ${batched}`);

  // The other replica finishes a few; every watch of them hears it within a few ticks.
  const finished = [ids[0]!, ids[WATCHED / 2]!, ids[WATCHED - 1]!];
  const at = Date.now();
  for (const id of finished) await rig.store.updateJob(id, { state: 'SUCCEEDED', finishedAt: at }, at + 1, ['RUNNING']);
  const readsAt = batched;
  const deadline = Date.now() + 10_000;
  while (finished.some((id) => !ended.has(id)) && Date.now() < deadline) await sleep(10);
  for (const id of finished) {
    const heard = ended.get(id);
    t.truthy(heard, `the end of ${id} heard`);
    // The first read started after the update sees it; one under way then may, or may not.
    t.true(heard! - readsAt <= 2, `the end of ${id} heard after ${heard! - readsAt} batched reads`);
  }
  t.is(ended.size, finished.length, 'only the jobs that ended are reported ended');
  for (const stop of stops) stop();
  // Unsubscribed: nothing is read any more.
  await sleep(250);
  const after = batched;
  await sleep(500);
  t.is(batched, after, 'no reads once every watch stopped');
});
