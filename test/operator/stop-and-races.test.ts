import anyTest, { type TestFn } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { type OperatorRig, datagenToFile, operatorRig, until } from '../helpers/operator.js';

declare global {
  var __flakySink:
    | { committed: Map<string, Record<string, unknown>[]>; aborts: Map<string, number>; attempts: Map<string, number> }
    | undefined;
}

const test = anyTest as TestFn<{ rig?: OperatorRig }>;
test.afterEach.always(async (t) => t.context.rig?.close());

/** A promise and its resolve: a store call held until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** A group whose jobs read slowly (10 rows every 20 ms) into the flaky sink, which records commits and aborts. */
async function slowGroup(
  rig: OperatorRig,
  groupId: string,
  options: { maxAttempts?: number; initialBackoffMs?: number; failWrites?: number } = {},
): Promise<void> {
  await rig.service.createGroup({
    ...datagenToFile(groupId, rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 20 } },
        sink: { connectorId: 'flaky-sink', options: { failWrites: options.failWrites ?? 0 } },
        fields: [],
      },
    ],
    retry: { maxAttempts: options.maxAttempts ?? 3, initialBackoffMs: options.initialBackoffMs ?? 10 },
  });
  await rig.service.approveGroup(groupId, 0);
}

async function submit(rig: OperatorRig, groupId: string, lower: number, upper: number): Promise<string> {
  const { jobs } = await rig.service.submitOfflineJob(
    { groupId, boundaryType: 'OFFSET', lowerBound: String(lower), upperBound: String(upper), instanceId: '' },
    false,
  );
  return jobs[0]!.jobId;
}

/** Waits for `promise`, keeping the process alive meanwhile (the operator's own timers do not). */
async function reach(promise: Promise<void>, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      promise,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within 20 s`)), 20_000))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([promise.then(() => true), sleep(ms).then(() => false)]);
}

test.serial(
  'CancelJob racing this replica starting the job: the run is stopped, its sink aborts, and the job stays CANCELLED',
  async (t) => {
    const rig = (t.context.rig = await operatorRig(1));
    await slowGroup(rig, 'g-cancel-race');
    // One job at a time: the first runs, the second waits in the queue, PENDING and not running.
    const first = await submit(rig, 'g-cancel-race', 0, 30);
    const second = await submit(rig, 'g-cancel-race', 100, 1100);
    t.is((await rig.store.getJob(second))?.state, 'PENDING');
    // CancelJob reads the second job PENDING; before its write lands, the first ends and this replica starts the
    // second (RUNNING, rows flowing).
    const store = rig.store;
    const updateJob = store.updateJob.bind(store);
    store.updateJob = async (jobId, patch, ...rest) => {
      if (jobId === second && patch.state === 'CANCELLED')
        await until(
          rig.service,
          second,
          'the second job running',
          (j) => j.state === 'RUNNING' && j.progress.records > 0,
        );
      return updateJob(jobId, patch, ...rest);
    };
    const cancelled = await rig.service.cancelJob(second);
    t.is(cancelled.state, 'CANCELLED');
    await rig.service.idle();
    t.is((await rig.service.getJob(first)).state, 'SUCCEEDED');
    const key = 'g-cancel-race/s1/100-1100';
    t.false(globalThis.__flakySink!.committed.has(key), 'the cancelled window was not committed');
    t.is(globalThis.__flakySink!.aborts.get(key), 1, 'its sink aborted');
    const after = await rig.service.getJob(second);
    t.is(after.state, 'CANCELLED', 'nothing the run wrote replaced the cancellation');
    t.is(after.finishedAt, cancelled.finishedAt);
  },
);

test.serial('once stop() has begun, SubmitOfflineJob answers UNAVAILABLE and makes no job', async (t) => {
  const rig = (t.context.rig = await operatorRig());
  await slowGroup(rig, 'g-stopping');
  await rig.service.stop();
  for (const instanceId of ['', 'instance-1']) {
    const err = await t.throwsAsync(
      rig.service.submitOfflineJob(
        { groupId: 'g-stopping', boundaryType: 'OFFSET', lowerBound: '0', upperBound: '10', instanceId },
        false,
      ),
    );
    t.like(err, { code: 'UNAVAILABLE', message: 'the operator is stopping; ask another replica, or again later' });
  }
  t.deepEqual(await rig.store.listJobs({ groupId: 'g-stopping', limit: 10 }), [], 'no job was written');
  t.false(
    rig.schedules.calls.some((c) => c.startsWith('claimWindow')),
    'the window was not claimed in the ledger either',
  );
});

test.serial(
  'stop() waits for a take-over under way; one that lands after stop() began hands the job back for others',
  async (t) => {
    const rig = (t.context.rig = await operatorRig(4, 300));
    await slowGroup(rig, 'g-stop-takeover');
    const jobId = await submit(rig, 'g-stop-takeover', 0, 40);
    await until(rig.service, jobId, 'running on op-1', (j) => j.state === 'RUNNING' && j.progress.records > 0);
    // op-1 dies: the job stays RUNNING with op-1's lease running out (as test/operator/leases.test.ts does).
    await rig.service.stop();
    const left = (await rig.store.getJob(jobId))!;
    await rig.store.updateJob(jobId, { state: 'RUNNING', attempt: left.attempt + 1 }, Date.now(), ['PENDING']);
    // op-2's take-over of it is held in the store until the test lets it go.
    const held = gate();
    const reached = gate();
    const store = rig.store;
    const takeOverJob = store.takeOverJob.bind(store);
    store.takeOverJob = async (id, seen, owner, ...rest) => {
      if (id === jobId && owner === 'op-2') {
        reached.open();
        await held.promise;
      }
      return takeOverJob(id, seen, owner, ...rest);
    };
    const op2 = await rig.peer('op-2');
    await reach(reached.promise, "op-2's take-over");
    const stopping = op2.stop();
    t.false(await settlesWithin(stopping, 200), 'stop() waits for the take-over under way');
    held.open();
    t.true(await settlesWithin(stopping, 5_000), 'and returns once it is done');
    const after = (await rig.store.getJob(jobId))!;
    t.is(after.owner, 'op-1', 'the stopped replica did not keep the job');
    t.true((after.leaseUntil ?? 0) < Date.now() + 1, 'its lease is the expired one it had');
    // Another replica takes it over and runs it.
    const op3 = await rig.peer('op-3');
    const done = await until(op3, jobId, 'finished on op-3', (j) => j.state === 'SUCCEEDED');
    t.is(done.owner, 'op-3');
    t.is(globalThis.__flakySink!.committed.get('g-stop-takeover/s1/0-40')!.length, 40);
  },
);

test.serial('stop() waits for a lease renewal under way', async (t) => {
  const rig = (t.context.rig = await operatorRig(4, 300));
  await slowGroup(rig, 'g-stop-renew');
  const jobId = await submit(rig, 'g-stop-renew', 0, 1000);
  await until(rig.service, jobId, 'running', (j) => j.state === 'RUNNING');
  const held = gate();
  const reached = gate();
  const store = rig.store;
  const renew = store.renewJobLeases.bind(store);
  store.renewJobLeases = async (...args) => {
    reached.open();
    await held.promise;
    return renew(...args);
  };
  await reach(reached.promise, 'a lease renewal');
  const stopping = rig.service.stop();
  t.false(await settlesWithin(stopping, 200), 'stop() waits for the renewal under way');
  held.open();
  t.true(await settlesWithin(stopping, 5_000));
  store.renewJobLeases = renew;
});

test.serial(
  'retry.initial_backoff_ms must be from 1 ms to 24 h; INVALID_ARGUMENT names the field, what was expected and what came',
  async (t) => {
    const rig = (t.context.rig = await operatorRig());
    for (const initialBackoffMs of [-1, 86_400_001, 2 ** 31, 1.5]) {
      const err = await t.throwsAsync(
        rig.service.createGroup({
          ...datagenToFile(`g-backoff`, rig.dir),
          retry: { maxAttempts: 3, initialBackoffMs },
        }),
      );
      t.like(
        err,
        {
          code: 'INVALID_ARGUMENT',
          message: `group.retry.initial_backoff_ms: expected an integer from 1 to 86400000 ms (24 h; 0: 1000), got ${initialBackoffMs}`,
        },
        String(initialBackoffMs),
      );
    }
    const longest = await rig.service.createGroup({
      ...datagenToFile('g-backoff', rig.dir),
      retry: { maxAttempts: 3, initialBackoffMs: 86_400_000 },
    });
    t.is(longest.retry.initialBackoffMs, 86_400_000);
    const defaulted = await rig.service.createGroup({
      ...datagenToFile('g-backoff-default', rig.dir),
      retry: { maxAttempts: 3, initialBackoffMs: 0 },
    });
    t.is(defaulted.retry.initialBackoffMs, 1000);
  },
);

test.serial(
  'a retry backoff past setTimeout range (24 h doubled 30 times) waits 24 h rather than firing after 1 ms',
  async (t) => {
    const rig = (t.context.rig = await operatorRig());
    await slowGroup(rig, 'g-backoff-cap', { maxAttempts: 100, initialBackoffMs: 86_400_000, failWrites: 1000 });
    const jobId = await submit(rig, 'g-backoff-cap', 0, 10);
    await until(rig.service, jobId, 'first attempt failed', (j) => j.state === 'PENDING' && j.attempt === 1);
    // The job comes back after a restart as one 30 attempts in: its next backoff is 24 h × 2^30.
    await rig.service.stop();
    await rig.store.updateJob(jobId, { attempt: 30 }, Date.now(), ['PENDING']);
    await rig.restart();
    await until(rig.service, jobId, 'attempt 31 failed', (j) => j.attempt >= 31 && j.state !== 'RUNNING');
    await sleep(300);
    const job = await rig.service.getJob(jobId);
    t.like(job, { state: 'PENDING', attempt: 31 }, 'attempt 32 waits for its backoff');
  },
);

test.serial('WatchJob whose second read fails leaves no listener behind', async (t) => {
  const rig = (t.context.rig = await operatorRig());
  await slowGroup(rig, 'g-watch-leak');
  const jobId = await submit(rig, 'g-watch-leak', 0, 1000);
  await until(rig.service, jobId, 'running', (j) => j.state === 'RUNNING');
  // The store fails the read WatchJob makes after subscribing (its first read, through GetJob, goes through).
  const store = rig.store;
  const getJob = store.getJob.bind(store);
  let reads = 0;
  store.getJob = async (id) => {
    if (id === jobId && ++reads === 2) throw new Error('the store is away');
    return getJob(id);
  };
  const seen: string[] = [];
  await t.throwsAsync(
    rig.service.watchJob(jobId, (job) => seen.push(job.state)),
    { message: 'the store is away' },
  );
  store.getJob = getJob;
  seen.length = 0;
  t.is((await rig.service.cancelJob(jobId)).state, 'CANCELLED');
  await rig.service.idle();
  t.deepEqual(seen, [], 'the failed watch heard nothing more');
});

const codeOf = (err: unknown) => (err as { code?: string } | undefined)?.code;

test('a delete that loses to an update leaves the schedule registered, as the group is', async (t) => {
  const rig = (t.context.rig = await operatorRig());
  const created = await rig.service.createGroup(datagenToFile('g-race-d', rig.dir));
  const approved = await rig.service.approveGroup('g-race-d', created.version);
  // The update lands while the delete is telling the schedule service.
  const unregister = rig.schedules.unregister.bind(rig.schedules);
  let raced = false;
  rig.schedules.unregister = async (groupId: string) => {
    await unregister(groupId);
    if (raced) return;
    raced = true;
    await rig.service.updateGroup({
      ...datagenToFile('g-race-d', rig.dir, { description: 'changed meanwhile' }),
      version: approved.version,
    });
  };
  t.is(codeOf(await t.throwsAsync(rig.service.deleteGroup('g-race-d', approved.version))), 'VERSION_CONFLICT');
  t.is((await rig.service.getGroup('g-race-d')).status, 'REGISTERED');
  t.deepEqual(
    rig.schedules.calls,
    ['register g-race-d', 'unregister g-race-d', 'update g-race-d', 'register g-race-d'],
    'the schedule the lost delete unregistered is registered again',
  );
});

test('an approve that loses to a delete leaves no schedule behind, as the group is deleted', async (t) => {
  const rig = (t.context.rig = await operatorRig());
  const created = await rig.service.createGroup(datagenToFile('g-race-a', rig.dir));
  const register = rig.schedules.register.bind(rig.schedules);
  let raced = false;
  rig.schedules.register = async (info) => {
    await register(info);
    if (raced) return;
    raced = true;
    await rig.service.deleteGroup('g-race-a', 0);
  };
  t.is(codeOf(await t.throwsAsync(rig.service.approveGroup('g-race-a', created.version))), 'VERSION_CONFLICT');
  t.is(codeOf(await t.throwsAsync(rig.service.getGroup('g-race-a'))), 'NOT_FOUND', 'deleted');
  t.deepEqual(
    rig.schedules.calls,
    ['register g-race-a', 'unregister g-race-a', 'unregister g-race-a'],
    'the schedule the lost approve registered is unregistered again',
  );
});

test("a job another replica took over just before this one failed it for its last attempt stays that replica's", async (t) => {
  const rig = (t.context.rig = await operatorRig());
  await slowGroup(rig, 'g-last', { maxAttempts: 2 });
  await rig.service.approveGroup('g-last', 0);
  const { jobs } = await rig.service.submitOfflineJob(
    { groupId: 'g-last', boundaryType: 'OFFSET', lowerBound: '0', upperBound: '20', instanceId: '' },
    false,
  );
  const jobId = jobs[0]!.jobId;
  await rig.service.stop();
  // What a process killed during its last attempt leaves; then, as the restarted replica reads the job, another
  // replica takes it over.
  await rig.store.updateJob(jobId, { state: 'RUNNING', attempt: 2, owner: 'op-1' }, Date.now());
  const getJob = rig.store.getJob.bind(rig.store);
  let takenOver = false;
  (rig.store as { getJob: typeof getJob }).getJob = async (id: string) => {
    const seen = await getJob(id);
    if (id === jobId && seen?.state === 'PENDING' && !takenOver) {
      takenOver = true;
      await rig.store.updateJob(id, { owner: 'op-other' }, Date.now());
    }
    return seen;
  };
  await rig.restart();
  await sleep(300);
  t.true(takenOver, 'the restarted replica read the job to run it');
  const job = await getJob(jobId);
  t.like(job, { state: 'PENDING', owner: 'op-other', attempt: 2 }, 'not failed over the other replica');
});

test("a job whose group was deleted before it ran is FAILED, not run into the deleted group's sink", async (t) => {
  const rig = (t.context.rig = await operatorRig(1));
  await slowGroup(rig, 'g-gone');
  const first = await submit(rig, 'g-gone', 0, 20);
  const second = await submit(rig, 'g-gone', 20, 40); // waits for the one job slot
  await rig.service.deleteGroup('g-gone', 0);
  const job = await until(rig.service, second, 'the second job ended', (j) =>
    ['SUCCEEDED', 'FAILED'].includes(j.state),
  );
  t.is(job.state, 'FAILED');
  t.regex(job.error, /group 'g-gone' was deleted after the job was made/);
  t.false(globalThis.__flakySink?.committed.has('g-gone/s1/20-40') ?? false, 'nothing written for it');
  await until(rig.service, first, 'the first job ended', (j) => j.state !== 'PENDING' && j.state !== 'RUNNING');
});

test('CancelJob ends a run at once while its source is slow to give the next batch (the in-thread runner)', async (t) => {
  const rig = (t.context.rig = await operatorRig());
  await rig.service.createGroup({
    ...datagenToFile('g-slowbatch', rig.dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 4000 } },
        sink: { connectorId: 'flaky-sink', options: {} },
        fields: [],
      },
    ],
  });
  await rig.service.approveGroup('g-slowbatch', 0);
  const jobId = await submit(rig, 'g-slowbatch', 0, 20);
  await until(rig.service, jobId, 'the job runs', (j) => j.state === 'RUNNING');
  await sleep(100); // inside the source's first 4 s wait
  const t0 = performance.now();
  const cancelled = await rig.service.cancelJob(jobId);
  t.is(cancelled.state, 'CANCELLED');
  await rig.service.idle();
  t.true(performance.now() - t0 < 1500, `the run ended ${Math.round(performance.now() - t0)} ms after the cancel`);
  t.false(globalThis.__flakySink?.committed.has('g-slowbatch/s1/0-20') ?? false);
});
