/**
 * A job this replica takes back while its old run here is still winding down (it lost the job to a replica that
 * then died) runs again as soon as that run has ended: not beside it, and not a whole lease later.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobRecord } from '../../services/operator/domain/model.js';
import { type OperatorRig, datagenToFile, operatorRig, until } from '../helpers/operator.js';

declare global {
  var __flakySink:
    | { committed: Map<string, Record<string, unknown>[]>; aborts: Map<string, number>; attempts: Map<string, number> }
    | undefined;
}

/** Renewals every 333 ms, a look for expired leases every second. */
const LEASE_MS = 1000;

interface Context {
  rig: OperatorRig;
  /** Puts the store's updateJob back and lets a held write go. */
  restore?: () => void;
}

const test = anyTest as TestFn<Context>;
test.beforeEach(async (t) => {
  t.context.rig = await operatorRig(4, LEASE_MS);
});
test.afterEach.always(async (t) => {
  t.context.restore?.();
  await t.context.rig?.close();
});

/** A job in the state the tests start from: taken back by op-1 while op-1's old run of it winds down. */
interface TakenBack {
  readonly jobId: string;
  /** The flaky sink's key of the job's window. */
  readonly key: string;
  /** The job as op-1 took it back. */
  readonly back: JobRecord;
  /** Whether a run of the job started (wrote RUNNING) while the old run was still winding down. */
  startedWhileWindingDown(): boolean;
  /** Lets the old run end. */
  release(): void;
}

/**
 * op-1 runs a job; op-2 takes it over (op-1 was cut off from the store past its lease) and dies at once; op-1 finds
 * at its next renewal that the job is no longer its own and stops its run, whose wind-down (its last progress
 * write) the store holds; op-2's lease runs out and op-1 takes the job back.
 */
async function takenBackWhileWindingDown(t: ExecutionContext<Context>, groupId: string): Promise<TakenBack> {
  const { rig } = t.context;
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
    retry: { maxAttempts: 3, initialBackoffMs: 10 },
  });
  await rig.service.approveGroup(groupId, 0);
  const { jobs } = await rig.service.submitOfflineJob(
    { groupId, boundaryType: 'OFFSET', lowerBound: '0', upperBound: '1000', instanceId: 'w-1' },
    false,
  );
  const jobId = jobs[0]!.jobId;
  const key = `${groupId}/s1/0-1000`;
  await until(rig.service, jobId, 'running on op-1', (j) => j.state === 'RUNNING' && j.progress.records > 0);

  const store = rig.store;
  const updateJob = store.updateJob.bind(store);
  let open!: () => void;
  const windDown = new Promise<void>((r) => (open = r));
  let holding = true;
  let startedWhileHeld = false;
  store.updateJob = async (id, patch, ...rest) => {
    if (id === jobId && holding) {
      if (patch.state === 'RUNNING') startedWhileHeld = true;
      if (patch.progress && patch.state === undefined) await windDown;
    }
    return updateJob(id, patch, ...rest);
  };
  const release = () => {
    holding = false;
    open();
  };
  t.context.restore = () => {
    release();
    store.updateJob = updateJob;
  };

  const seen = (await store.getJob(jobId))!;
  const taken = await store.takeOverJob(jobId, seen.leaseUntil, 'op-2', Date.now() + 60_000, Date.now());
  if (!taken) throw new Error('op-2 could not take the job over');
  await updateJob(jobId, { state: 'PENDING', error: 'attempt 1 lost' }, Date.now(), ['RUNNING']);
  const deadline = Date.now() + 10_000;
  while (!globalThis.__flakySink!.aborts.get(key) && Date.now() < deadline) await sleep(10);
  t.is(globalThis.__flakySink!.aborts.get(key), 1, 'the old run stopped: its sink aborted');
  await store.takeOverJob(jobId, taken.leaseUntil, 'op-2', Date.now() - 1, Date.now());
  const back = await until(rig.service, jobId, 'taken back by op-1', (j) => j.owner === 'op-1');
  t.like(back, { state: 'PENDING', attempt: 1 });
  // The old run is still winding down a while after the take-back.
  await sleep(50);
  return { jobId, key, back, startedWhileWindingDown: () => startedWhileHeld, release };
}

test.serial(
  'a job taken back while its old run winds down starts once that run has ended, within the lease it was taken with',
  async (t) => {
    const { rig } = t.context;
    const { jobId, key, back, startedWhileWindingDown, release } = await takenBackWhileWindingDown(t, 'g-back');
    const released = Date.now();
    release();
    const again = await until(rig.service, jobId, 'running again', (j) => j.state === 'RUNNING' && j.attempt === 2);
    t.false(startedWhileWindingDown(), 'not started while the old run was winding down');
    t.true(again.startedAt! >= released, 'started after the old run ended');
    t.true(
      again.startedAt! < back.leaseUntil!,
      `started ${again.startedAt! - released} ms after the old run ended; the lease it was taken back with ran out ${back.leaseUntil! - released} ms after it`,
    );
    const done = await until(rig.service, jobId, 'finished', (j) => j.state === 'SUCCEEDED');
    t.like(done, { owner: 'op-1', attempt: 2 });
    t.is(globalThis.__flakySink!.committed.get(key)!.length, 1000, 'every row written once');
    t.is(globalThis.__flakySink!.attempts.get(key), 2, 'two runs: the stopped one and this one');
  },
);

test.serial(
  'a job taken back while its old run winds down, and taken by another replica before that run ends, is not run here',
  async (t) => {
    const { rig } = t.context;
    const { jobId, key, back, release } = await takenBackWhileWindingDown(t, 'g-back-lost');
    // op-3 takes it before op-1's next renewal could tell op-1.
    const op3 = await rig.store.takeOverJob(jobId, back.leaseUntil, 'op-3', Date.now() + 60_000, Date.now());
    t.truthy(op3);
    release();
    await sleep(LEASE_MS);
    t.like(await rig.service.getJob(jobId), { state: 'PENDING', owner: 'op-3', attempt: 1 }, 'left to op-3');
    t.is(globalThis.__flakySink!.attempts.get(key), 1, 'no second run on op-1');
  },
);
