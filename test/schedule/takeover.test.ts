/**
 * Orphaned windows on one ledger: a DISPATCHED row whose owner stopped renewing it is taken over by exactly one
 * of the live replicas, which re-submits it (same run id) and follows it to its end; the others leave it alone,
 * and the row's renewals keep them away while the job runs.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERROR_CODES, SluiceError } from 'sluice/sdk';
import { silentLogger } from '../../services/core/logger.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { ManualClock } from '../../services/schedule/domain/clock.js';
import type { InstanceRecord } from '../../services/schedule/domain/model.js';
import { type Dispatcher, ScheduleService } from '../../services/schedule/domain/service.js';
import { SqliteStore } from '../../services/store/sqlite.js';
import { FakeDispatcher, T0 } from '../helpers/schedule.js';

interface Ctx {
  dir: string;
  store: SqliteStore;
  services: ScheduleService[];
}
const test = anyTest as TestFn<Ctx>;
const LEASE_MS = 300;

test.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(join(tmpdir(), 'sluice-takeover-'));
  t.context.store = await SqliteStore.open(join(t.context.dir, 'sluice.db'));
  await t.context.store.migrate();
  t.context.services = [];
});
test.afterEach.always(async (t) => {
  for (const s of t.context.services) await s.stop();
  await t.context.store.close();
  await rm(t.context.dir, { recursive: true, force: true });
});

/**
 * A DISPATCHED (or SCHEDULED) row owned by a replica that died, with the job ids it had sent (none: it died
 * before the call).
 */
const leftBehind = (
  instanceId: string,
  jobIds: string[],
  state: 'DISPATCHED' | 'SCHEDULED' = 'DISPATCHED',
): InstanceRecord => ({
  instanceId,
  groupId: 'g-1',
  windowStart: T0,
  windowEnd: T0 + 1000,
  dueTime: T0 + 1000,
  state,
  trigger: 'SCHEDULE',
  jobIds,
  attempt: 1,
  dispatchedAt: T0 + 1000,
  owner: 'dead-replica',
  createdAt: T0 + 1000,
  updatedAt: T0 + 1000,
});

/** A schedule service replica on the test's ledger, stopped after the test. */
function replica(t: ExecutionContext<Ctx>, clock: ManualClock, dispatcher: Dispatcher, owner: string): ScheduleService {
  const service = new ScheduleService({
    store: t.context.store,
    engines: new Map(),
    hooks: new HookRunner({ timeoutMs: 1000 }),
    clock,
    dispatcher,
    logger: silentLogger,
    owner,
    leaseMs: LEASE_MS,
  });
  t.context.services.push(service);
  return service;
}

/** A fake operator whose jobs end only when released. */
class HeldDispatcher extends FakeDispatcher {
  follows = 0;
  release!: () => void;
  readonly released = new Promise<void>((resolve) => (this.release = resolve));
  override async follow(jobIds: readonly string[], onRunning: () => void, signal?: AbortSignal) {
    this.follows++;
    onRunning();
    await Promise.race([
      this.released,
      new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true })),
    ]);
    return { succeeded: true };
  }
}

test('a dispatched window left by a dead replica is re-submitted and followed by exactly one live replica', async (t) => {
  const { store } = t.context;
  const clock = new ManualClock(T0 + 60_000);
  const orphan = leftBehind('orphan-1', ['job-of-the-dead']);
  await store.claimInstance(orphan);
  const dispatchers = ['r1', 'r2', 'r3'].map(() => new HeldDispatcher(clock));
  for (const [i, dispatcher] of dispatchers.entries()) {
    replica(t, clock, dispatcher, `r${i + 1}`);
  }
  await Promise.all(t.context.services.map((s) => s.start()));
  // The schedule clock moves with real time, so without the owner's renewals the row would look orphaned again
  // a lease later; every replica sweeps several times meanwhile.
  const realStart = Date.now();
  const base = clock.now();
  const ticking = setInterval(() => void clock.advanceTo(base + (Date.now() - realStart)), 10);
  await sleep(LEASE_MS * 8);
  clearInterval(ticking);
  const submitted = dispatchers.flatMap((d) => d.submitted);
  t.is(submitted.length, 1, 'one re-submission in all');
  t.is(submitted[0]!.instanceId, 'orphan-1', 'with the same run id, so the operator answers the existing jobs');
  t.is(
    dispatchers.reduce((n, d) => n + d.follows, 0),
    1,
    'one replica follows it',
  );
  const held = (await store.getInstanceById('orphan-1'))!;
  const winner = dispatchers.findIndex((d) => d.follows === 1);
  t.is(held.owner, `r${winner + 1}`);
  t.is(held.state, 'RUNNING');
  t.true(held.updatedAt > orphan.updatedAt);
  dispatchers[winner]!.release();
  for (let i = 0; i < 100 && (await store.getInstanceById('orphan-1'))!.state !== 'SUCCEEDED'; i++) await sleep(10);
  t.is((await store.getInstanceById('orphan-1'))!.state, 'SUCCEEDED');
});

for (const [name, error, outcome] of [
  [
    'an operator out of reach (UNAVAILABLE) leaves the window for a later take-over',
    new SluiceError(ERROR_CODES.UNAVAILABLE, '14 UNAVAILABLE: No connection established'),
    'left',
  ],
  ['a refusal fails the window, naming why', new Error('13 INTERNAL: the operator refused it'), 'FAILED'],
] as const) {
  for (const state of ['DISPATCHED', 'SCHEDULED'] as const)
    test(`taken over ${state} with no job ids, a dispatch that fails: ${name}`, async (t) => {
      const { store } = t.context;
      const clock = new ManualClock(T0 + 60_000);
      const expected = outcome === 'left' ? state : 'FAILED';
      // No job ids: the replica died between its claim and the dispatch call.
      await store.claimInstance(leftBehind('unsent-1', [], state));
      const dispatcher = new FakeDispatcher(clock);
      let calls = 0;
      dispatcher.failSubmit = () => (calls++, error);
      await replica(t, clock, dispatcher, 'r1').start();
      for (let i = 0; i < 200 && calls === 0; i++) await sleep(10);
      await sleep(50);
      t.true(calls >= 1, 'the survivor tried to submit it');
      const row = (await store.getInstanceById('unsent-1'))!;
      t.is(row.state, expected);
      if (expected === 'FAILED') t.is(row.error, error.message);
      else t.is(row.error, undefined, 'no error written for a window that may still get through');
    });
}
