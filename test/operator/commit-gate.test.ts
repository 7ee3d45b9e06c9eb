/**
 * The commit gate: a run that has written its window reads its job once before the sink commits, and does not
 * commit when another replica has cancelled the job or taken it over since this replica's last lease renewal. The
 * writer aborts, and the run writes nothing over what the other replica wrote. In the service's thread and in a
 * worker thread of the pool.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERROR_CODES, SluiceError } from 'sluice/sdk';
import { Catalog } from '../../services/catalog/domain/catalog.js';
import { silentLogger } from '../../services/core/logger.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { loadPlugins } from '../../services/host/loader.js';
import type { OperatorStore } from '../../services/operator/domain/model.js';
import type { JobSpec, Runner } from '../../services/operator/domain/runner.js';
import { OperatorService } from '../../services/operator/domain/service.js';
import { EmbeddedRunner } from '../../services/operator/runners/embedded.js';
import { PooledRunner } from '../../services/operator/runners/pool.js';
import { SqliteStore } from '../../services/store/sqlite.js';
import {
  FakeSchedules,
  RUNNER_FIXTURES,
  datagenToFile,
  jobLog,
  jobLogUntil,
  until,
  writeConnectorPlugin,
} from '../helpers/operator.js';

/**
 * A sink whose first write returns only once `<dir>/<jobId>.go` exists; every step of its writer is a line of
 * `<dir>/<jobId>.log`. Files, so that a writer in a worker thread is held and read like one in this thread.
 */
const GATED_SINK = `import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export default {
  roles: ['sink'],
  sinkOptions: { type: 'object', properties: { dir: { type: 'string' } }, required: ['dir'] },
  async openWriter({ options, window }) {
    const log = (line) => appendFileSync(join(options.dir, window.jobId + '.log'), line + '\\n');
    const go = join(options.dir, window.jobId + '.go');
    let writes = 0;
    return {
      async write(batch) {
        log('write ' + batch.length);
        if (++writes === 1) while (!existsSync(go)) await new Promise((resolve) => setTimeout(resolve, 10));
        log('written');
      },
      async commit() {
        log('committed');
      },
      async abort() {
        log('aborted');
      },
    };
  },
};
`;

interface Context {
  readonly dir: string;
  readonly pluginsDir: string;
}

const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-commit-gate-'));
  const pluginsDir = join(dir, 'plugins');
  await writeConnectorPlugin(pluginsDir, 'gated-sink', GATED_SINK, 'test: a sink whose first write waits for a file');
  t.context = { dir, pluginsDir };
});

test.after.always(async (t) => {
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});

/** Waits (20 s at most) until the job's writer has committed or aborted. */
const writerEnded = (logs: string, jobId: string) =>
  jobLogUntil(
    logs,
    jobId,
    (lines) => lines.includes('committed') || lines.includes('aborted'),
    'its writer did not end',
  );

/** Lets the job's held write return. */
const release = (logs: string, jobId: string) => writeFile(join(logs, `${jobId}.go`), '');

/** A runner that only waits for its cancel: op-2 takes jobs over without writing anything. */
const idleRunner = (started: string[]): Runner => ({
  name: 'embedded',
  run: (spec, ctx) => {
    started.push(spec.job.jobId);
    return new Promise((_resolve, reject) => {
      if (ctx.signal.aborted) reject(ctx.signal.reason as Error);
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true });
    });
  },
});

interface Replicas {
  readonly a: OperatorService;
  readonly b: OperatorService;
  readonly store: SqliteStore;
  readonly logs: string;
  /** The jobs op-2's runner started. */
  readonly startedOnB: string[];
  /** Fails op-1's lease renewals (op-1 is cut off from the store for them) while true. */
  cutRenewals(cut: boolean): void;
  /** Fails op-1's next `n` reads of a job with UNAVAILABLE (the store away for them). */
  failReads(n: number): void;
}

/**
 * op-1 (`a`) runs jobs in this thread or on a pool of one thread, with a lease of `leaseMs`; op-2 (`b`) shares its
 * store and looks for expired leases every `bLeaseMs`. Each has its own view of the store so that op-1's can fail.
 */
async function replicas(
  t: ExecutionContext<Context>,
  mode: 'thread' | 'pool',
  leaseMs: number,
  bLeaseMs = leaseMs,
): Promise<Replicas> {
  const { pluginsDir } = t.context;
  const dir = await mkdtemp(join(t.context.dir, 'run-'));
  const logs = join(dir, 'logs');
  await mkdir(logs);
  const store = await SqliteStore.open(join(dir, 'sluice.db'));
  await store.migrate();
  let cut = false;
  let failing = 0;
  const storeA = new Proxy(store, {
    get(target, prop) {
      if (prop === 'renewJobLeases' && cut)
        return () => Promise.reject(new SluiceError(ERROR_CODES.UNAVAILABLE, 'the store is out of reach'));
      if (prop === 'getJob' && failing > 0) {
        failing--;
        return () => Promise.reject(new SluiceError(ERROR_CODES.UNAVAILABLE, 'the store is out of reach'));
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  const plugins = await loadPlugins({ bundledDir: RUNNER_FIXTURES, extraDirs: [pluginsDir] });
  const hooks = new HookRunner({ timeoutMs: 10_000 });
  const catalog = new Catalog(plugins, hooks);
  const schedules = new FakeSchedules();
  const pool = mode === 'pool' ? new PooledRunner({ threads: 1, progressIntervalMs: 0 }) : undefined;
  const startedOnB: string[] = [];
  const make = (owner: string, s: OperatorStore, runner: Runner, lease: number) =>
    new OperatorService({
      store: s,
      catalog,
      connectors: plugins.connectors,
      schedules,
      runners: new Map([['embedded', runner]]),
      defaultRunner: 'embedded',
      maxRunningJobs: 2,
      owner,
      logger: silentLogger,
      leaseMs: lease,
    });
  const a = make(
    'op-1',
    storeA as unknown as OperatorStore,
    pool ?? new EmbeddedRunner({ hooks, progressIntervalMs: 0 }),
    leaseMs,
  );
  const b = make('op-2', store as unknown as OperatorStore, idleRunner(startedOnB), bLeaseMs);
  schedules.operator = a;
  t.teardown(async () => {
    cut = false;
    await b.stop();
    await a.stop();
    await pool?.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  await a.start();
  await b.start();
  return {
    a,
    b,
    store,
    logs,
    startedOnB,
    cutRenewals: (c) => (cut = c),
    failReads: (n) => (failing = n),
  };
}

/** A job of `groupId` (20 rows in two batches) submitted to op-1; answers once its first write is held. */
async function submitted(a: OperatorService, logs: string, groupId: string): Promise<string> {
  await a.createGroup({
    ...datagenToFile(groupId, logs),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 1 } },
        sink: { connectorId: 'gated-sink', options: { dir: logs } },
        fields: [],
      },
    ],
    retry: { maxAttempts: 3, initialBackoffMs: 10 },
  });
  await a.approveGroup(groupId, 0);
  const { jobs } = await a.submitOfflineJob(
    { groupId, boundaryType: 'OFFSET', lowerBound: '0', upperBound: '20', instanceId: 'w-1' },
    false,
  );
  const jobId = jobs[0]!.jobId;
  const deadline = Date.now() + 20_000;
  while (!(await jobLog(logs, jobId)).includes('write 10')) {
    if (Date.now() > deadline) throw new Error(`job ${jobId}: no write within 20 s`);
    await sleep(10);
  }
  return jobId;
}

for (const mode of ['thread', 'pool'] as const) {
  test.serial(
    `${mode}: a job cancelled through another replica during its write is not committed, and stays CANCELLED`,
    async (t) => {
      // op-1 renews every 20 s: no renewal tells it of the cancel during the test; only the gate can.
      const { a, b, logs } = await replicas(t, mode, 60_000);
      const jobId = await submitted(a, logs, 'g-cancel');
      const cancelled = await b.cancelJob(jobId);
      t.is(cancelled.state, 'CANCELLED', 'op-2 wrote CANCELLED at once');
      await release(logs, jobId);
      const lines = await writerEnded(logs, jobId);
      t.false(lines.includes('committed'), `not committed (${lines.join(', ')})`);
      t.deepEqual(
        lines,
        ['write 10', 'written', 'write 10', 'written', 'aborted'],
        'every batch written, then aborted',
      );
      await a.idle();
      t.deepEqual(await a.getJob(jobId), cancelled, 'op-1 wrote nothing over the cancellation');
    },
  );

  test.serial(
    `${mode}: a job taken over by another replica during its write is not committed by the replica that lost it`,
    async (t) => {
      // op-1's lease lasts 1 s; op-2 looks for expired ones every 250 ms.
      const { a, b, logs, startedOnB, cutRenewals } = await replicas(t, mode, 1000, 250);
      const jobId = await submitted(a, logs, 'g-taken');
      // op-1 is cut off from the store for its renewals (and so cannot learn it lost the job); its lease runs out.
      cutRenewals(true);
      const taken = await until(b, jobId, 'running on op-2', (j) => j.owner === 'op-2' && j.state === 'RUNNING');
      t.like(taken, { attempt: 2 });
      t.deepEqual(startedOnB, [jobId]);
      await release(logs, jobId);
      const lines = await writerEnded(logs, jobId);
      t.false(lines.includes('committed'), `not committed (${lines.join(', ')})`);
      await a.idle();
      const after = await b.getJob(jobId);
      t.like(after, { state: 'RUNNING', owner: 'op-2', attempt: 2 }, "still op-2's run");
      t.is(after.updatedAt, taken.updatedAt, 'op-1 wrote nothing over it');
    },
  );

  test.serial(`${mode}: a read before the commit that fails once is tried again, and the window commits`, async (t) => {
    const { a, b, logs, failReads } = await replicas(t, mode, 60_000);
    const jobId = await submitted(a, logs, 'g-blip');
    // The next read of the job op-1 makes is the gate's (the test reads through op-2).
    failReads(1);
    await release(logs, jobId);
    const done = await until(b, jobId, 'succeeded', (j) => j.state === 'SUCCEEDED');
    t.is(done.attempt, 1, 'no attempt used up by a blip of the store');
    t.deepEqual(await jobLog(logs, jobId), ['write 10', 'written', 'write 10', 'written', 'committed']);
  });

  test.serial(
    `${mode}: a store that cannot be read before the commit fails the attempt uncommitted; it is retried`,
    async (t) => {
      const { a, b, logs, failReads } = await replicas(t, mode, 60_000);
      const jobId = await submitted(a, logs, 'g-away');
      // Every read the gate makes (four, 0.7 s apart in all) fails.
      failReads(4);
      await release(logs, jobId);
      const done = await until(b, jobId, 'succeeded', (j) => j.state === 'SUCCEEDED');
      t.is(done.attempt, 2, 'the first attempt failed and the second committed');
      const lines = await jobLog(logs, jobId);
      t.deepEqual(
        lines.slice(0, 5),
        ['write 10', 'written', 'write 10', 'written', 'aborted'],
        'the first attempt aborted, uncommitted',
      );
      t.is(lines.filter((l) => l === 'committed').length, 1, 'committed once, by the second attempt');
    },
  );

  test.serial(`${mode}: a job still its run's commits and succeeds`, async (t) => {
    const { a, logs } = await replicas(t, mode, 60_000);
    const jobId = await submitted(a, logs, 'g-own');
    await release(logs, jobId);
    const done = await until(a, jobId, 'succeeded', (j) => j.state === 'SUCCEEDED');
    t.like(done, { owner: 'op-1', attempt: 1 });
    t.deepEqual(await jobLog(logs, jobId), ['write 10', 'written', 'write 10', 'written', 'committed']);
  });
}

for (const mode of ['thread', 'pool'] as const) {
  test.serial(
    `${mode}: a cancel while the run waits for the gate's answer ends the run at once, uncommitted`,
    async (t) => {
      const dir = await mkdtemp(join(t.context.dir, 'run-'));
      t.teardown(() => rm(dir, { recursive: true, force: true }));
      const plugins = await loadPlugins({ bundledDir: RUNNER_FIXTURES, extraDirs: [t.context.pluginsDir] });
      const source = plugins.connectors.get('slow-source')!;
      const sink = plugins.connectors.get('gated-sink')!;
      const jobId = `never-answered-${mode}`;
      await release(dir, jobId);
      const spec = {
        job: {
          jobId,
          groupId: 'g',
          streamId: 's1',
          boundaries: { boundaryType: 'OFFSET', lowerBound: '0', upperBound: '20' },
        },
        group: { groupId: 'g' },
        stream: {
          streamId: 's1',
          source: { connectorId: source.id, options: {} },
          sink: { connectorId: sink.id, options: { dir } },
          fields: [],
        },
        boundedSourceOptions: { delayMs: 1, from: 0, to: 20 },
        source,
        sink,
      } as unknown as JobSpec;
      const pool = mode === 'pool' ? new PooledRunner({ threads: 1, progressIntervalMs: 0 }) : undefined;
      t.teardown(() => pool?.close());
      const runner =
        pool ?? new EmbeddedRunner({ hooks: new HookRunner({ timeoutMs: 10_000 }), progressIntervalMs: 0 });
      const controller = new AbortController();
      let asked!: () => void;
      const gateAsked = new Promise<void>((resolve) => (asked = resolve));
      const run = runner.run(spec, {
        signal: controller.signal,
        onProgress: () => {},
        onResolved: () => {},
        // The store does not answer.
        beforeCommit: () => {
          asked();
          return new Promise<void>(() => {});
        },
      });
      const outcome = run.then(
        () => 'committed',
        (err: unknown) => err,
      );
      const first = await Promise.race([gateAsked.then(() => 'asked'), outcome]);
      t.is(first, 'asked', 'the run asked before committing');
      const reason = new Error('cancelled');
      controller.abort(reason);
      const ended = await Promise.race([outcome, sleep(1000).then(() => 'still waiting')]);
      t.is((ended as Error).message, 'cancelled', 'the run ended with the cancel');
      t.deepEqual(await writerEnded(dir, jobId), ['write 10', 'written', 'write 10', 'written', 'aborted']);
    },
  );
}
