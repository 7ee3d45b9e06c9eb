/**
 * A cancel while the sink is writing a batch: the job ends CANCELLED at once, whether it runs in the service's
 * thread or in a worker thread of the pool. The write is left to finish; what it ends with is ignored, the writer
 * aborts once it has returned, and the window is never committed.
 */
import anyTest, { type TestFn } from 'ava';
import { once } from 'node:events';
import { type AddressInfo, type Socket, createServer } from 'node:net';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BoundedReader, ConnectorPlugin, WindowWriter } from 'sluice/sdk';
import { Catalog } from '../../services/catalog/domain/catalog.js';
import { silentLogger } from '../../services/core/logger.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import type { OperatorStore } from '../../services/operator/domain/model.js';
import type { JobSpec, RunContext } from '../../services/operator/domain/runner.js';
import { OperatorService } from '../../services/operator/domain/service.js';
import { EmbeddedRunner } from '../../services/operator/runners/embedded.js';
import { PooledRunner } from '../../services/operator/runners/pool.js';
import { SqliteStore } from '../../services/store/sqlite.js';
import {
  FakeSchedules,
  RUNNER_FIXTURES,
  datagenToFile,
  inlineJobSpec,
  jobLog,
  jobLogUntil,
  writeConnectorPlugin,
} from '../helpers/operator.js';

/**
 * A sink whose first write takes `holdMs`; every step of its writer is a line of `<dir>/<jobId>.log`, so a test
 * in any thread reads what the job did and in which order. A file of its own, as the pool's workers import
 * plugins by path.
 */
const HOLD_SINK = `import { appendFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export default {
  roles: ['sink'],
  sinkOptions: {
    type: 'object',
    properties: { dir: { type: 'string' }, holdMs: { type: 'integer', minimum: 0 }, holdPort: { type: 'integer' } },
    required: ['dir', 'holdMs'],
  },
  async openWriter({ options, window }) {
    const log = (line) => appendFileSync(join(options.dir, window.jobId + '.log'), line + '\\n');
    let writes = 0;
    return {
      async write(batch) {
        log('write ' + batch.length);
        // holdPort: the write holds a connection while it waits, as a SQL sink's write holds its transaction's.
        if (writes === 0 && options.holdPort) connect(options.holdPort, '127.0.0.1');
        if (++writes === 1) await new Promise((resolve) => setTimeout(resolve, options.holdMs));
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
  /** Holds the sink plugin (plugins/hold-sink) and what its writers log (logs/). */
  readonly dir: string;
  readonly logs: string;
  readonly source: LoadedPlugin<ConnectorPlugin>;
  readonly sink: LoadedPlugin<ConnectorPlugin>;
  readonly pluginsDir: string;
}

const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-cancel-write-'));
  const pluginsDir = join(dir, 'plugins');
  const logs = join(dir, 'logs');
  await mkdir(logs);
  await writeConnectorPlugin(pluginsDir, 'hold-sink', HOLD_SINK, 'test: a sink whose first write takes a while');
  const plugins = await loadPlugins({ bundledDir: RUNNER_FIXTURES, extraDirs: [pluginsDir] });
  t.context = {
    dir,
    logs,
    pluginsDir,
    source: plugins.connectors.get('slow-source') as LoadedPlugin<ConnectorPlugin>,
    sink: plugins.connectors.get('hold-sink') as LoadedPlugin<ConnectorPlugin>,
  };
});

test.after.always(async (t) => {
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});

/** Waits (20 s at most) until the job's writer has logged `line`. */
const logged = (logs: string, jobId: string, line: string) =>
  jobLogUntil(logs, jobId, (lines) => lines.includes(line), `no '${line}'`);

/** How long `promise` takes to settle from now (ms), whichever way. */
async function settleTime(promise: Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await promise.then(
    () => {},
    () => {},
  );
  return performance.now() - t0;
}

const quiet = (signal: AbortSignal): RunContext => ({ signal, onProgress: () => {}, onResolved: () => {} });

/** A promise and how to settle it: a write that returns when the test says so. */
function held(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** One job of an in-memory source (two batches) into `sink`, for the in-thread runner. */
function inlineSpec(sink: ConnectorPlugin, steps: string[]): JobSpec {
  const reader: BoundedReader = {
    async *batches() {
      yield [{ id: 0 }];
      yield [{ id: 1 }];
    },
    async close() {
      steps.push('reader closed');
    },
  };
  return inlineJobSpec(
    { id: 'memory', plugin: { roles: ['source'], openReader: async () => reader } },
    { id: 'held', plugin: sink },
    '2',
  );
}

for (const ending of ['returns', 'fails'] as const) {
  test(`in this thread, a cancel during a write ends the run at once; the write ${ending} later, ignored, and the writer aborts then`, async (t) => {
    const steps: string[] = [];
    const write = held();
    const writer: WindowWriter = {
      write: () => {
        steps.push('write');
        return write.promise;
      },
      commit: async () => {
        steps.push('commit');
      },
      abort: async () => {
        steps.push('abort');
      },
    };
    const sink: ConnectorPlugin = { roles: ['sink'], openWriter: async () => writer };
    const runner = new EmbeddedRunner({ hooks: new HookRunner({ timeoutMs: 10_000 }), progressIntervalMs: 0 });
    const controller = new AbortController();
    const run = runner.run(inlineSpec(sink, steps), quiet(controller.signal));
    const outcome = run.then(
      () => 'resolved',
      (err: unknown) => err,
    );
    while (!steps.includes('write')) await sleep(5);
    const reason = new Error('cancelled');
    controller.abort(reason);
    const ended = await Promise.race([outcome, sleep(500).then(() => 'still running')]);
    // Let the write go whatever happened, so that a run waiting for it ends too.
    if (ending === 'returns') write.resolve();
    else write.reject(new Error('the connection was reset'));
    t.is(ended, reason, 'the run ended with the cancel within 500 ms, the write still under way');
    t.deepEqual(steps.slice(0, 2), ['write', 'reader closed'], 'the writer was not aborted in the middle of its write');
    t.is(await outcome, reason);
    await sleep(20);
    t.deepEqual(steps, ['write', 'reader closed', 'abort'], 'aborted once the write returned; never committed');
  });
}

/** A job of the fixture source (20 rows in batches of 10) into the hold sink with `sinkOptions`, for the pool. */
function pooledSpec(ctx: Context, jobId: string, sinkOptions: Record<string, unknown>): JobSpec {
  return {
    job: {
      jobId,
      groupId: 'g',
      streamId: 's1',
      boundaries: { boundaryType: 'OFFSET', lowerBound: '0', upperBound: '20' },
    },
    group: { groupId: 'g' },
    stream: {
      streamId: 's1',
      source: { connectorId: ctx.source.id, options: {} },
      sink: { connectorId: ctx.sink.id, options: sinkOptions },
      fields: [],
    },
    boundedSourceOptions: { delayMs: 1, from: 0, to: 20 },
    source: ctx.source,
    sink: ctx.sink,
  } as unknown as JobSpec;
}

test('in a worker thread, a cancel during a write ends the run at once; the writer aborts once the write returns', async (t) => {
  const { logs } = t.context;
  // A thread that does not end a cancelled job in time is stopped after stallTimeoutMs: far beyond the test's bound.
  const pool = new PooledRunner({ threads: 1, stallTimeoutMs: 10_000, progressIntervalMs: 0 });
  t.teardown(() => pool.close());
  const jobId = 'pooled-1';
  // The write lasts well past the bound on the run's end, so a loaded machine cannot see it return first.
  const spec = pooledSpec(t.context, jobId, { dir: logs, holdMs: 5000 });
  const controller = new AbortController();
  const run = pool.run(spec, quiet(controller.signal));
  const outcome = run.then(
    () => 'resolved',
    (err: unknown) => err,
  );
  await logged(logs, jobId, 'write 10');
  const reason = new Error('cancelled');
  controller.abort(reason);
  const ms = await settleTime(run);
  const err = (await outcome) as Error;
  t.is(err.message, 'cancelled', 'the run ends with the cancel');
  t.true(ms < 3000, `the run ended ${Math.round(ms)} ms after the cancel, during a write of 5000 ms`);
  t.deepEqual(await jobLog(logs, jobId), ['write 10'], 'the write still under way, the writer not aborted yet');
  t.deepEqual(
    await logged(logs, jobId, 'aborted'),
    ['write 10', 'written', 'aborted'],
    'aborted once the write returned; never committed',
  );
});

test('in a worker thread, a write that does not return after a cancel has its thread stopped, and what it holds let go', async (t) => {
  const { logs } = t.context;
  // The write holds a connection to this server for a minute; the thread is stopped 2 s after the cancel. The run
  // ends long before: the bound leaves room for a loaded machine's message to the thread and back.
  const server = createServer();
  const connected = once(server, 'connection') as Promise<[Socket]>;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const pool = new PooledRunner({ threads: 1, stallTimeoutMs: 2000, progressIntervalMs: 0 });
  t.teardown(() => pool.close());
  const jobId = 'pooled-hung';
  const spec = pooledSpec(t.context, jobId, {
    dir: logs,
    holdMs: 60_000,
    holdPort: (server.address() as AddressInfo).port,
  });
  const controller = new AbortController();
  const run = pool.run(spec, quiet(controller.signal));
  run.catch(() => {});
  const [socket] = await connected;
  const closed = once(socket, 'close');
  socket.resume();
  await logged(logs, jobId, 'write 10');
  const cancelledAt = performance.now();
  controller.abort(new Error('cancelled'));
  const ms = await settleTime(run);
  t.true(ms < 1500, `the run ended ${Math.round(ms)} ms after the cancel, before the stall timeout (2000 ms)`);
  const stop = await Promise.race([closed.then(() => performance.now() - cancelledAt), sleep(10_000).then(() => -1)]);
  t.true(stop >= 0, 'the connection the hung write held was closed (its thread stopped)');
  t.true(stop >= 1900, `closed ${Math.round(stop)} ms after the cancel: not before the stall timeout`);
  t.deepEqual(await jobLog(logs, jobId), ['write 10'], 'never committed, never aborted: the thread went first');
});

test('CancelJob during a write answers CANCELLED at once, and the window is never committed', async (t) => {
  const { dir, logs, pluginsDir } = t.context;
  const store = await SqliteStore.open(join(dir, 'sluice.db'));
  await store.migrate();
  const plugins = await loadPlugins({ bundledDir: RUNNER_FIXTURES, extraDirs: [pluginsDir] });
  const hooks = new HookRunner({ timeoutMs: 10_000 });
  const schedules = new FakeSchedules();
  const service = new OperatorService({
    store: store as unknown as OperatorStore,
    catalog: new Catalog(plugins, hooks),
    connectors: plugins.connectors,
    schedules,
    runners: new Map([['embedded', new EmbeddedRunner({ hooks, progressIntervalMs: 0 })]]),
    defaultRunner: 'embedded',
    maxRunningJobs: 2,
    owner: 'op-1',
    logger: silentLogger,
  });
  schedules.operator = service;
  t.teardown(async () => {
    await service.stop();
    await store.close();
  });
  await service.start();
  await service.createGroup({
    ...datagenToFile('g-held-write', dir),
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'slow-source', options: { delayMs: 1 } },
        sink: { connectorId: 'hold-sink', options: { dir: logs, holdMs: 3000 } },
        fields: [],
      },
    ],
  });
  await service.approveGroup('g-held-write', 0);
  const { jobs } = await service.submitOfflineJob(
    { groupId: 'g-held-write', boundaryType: 'OFFSET', lowerBound: '0', upperBound: '20', instanceId: 'w-1' },
    false,
  );
  const jobId = jobs[0]!.jobId;
  await logged(logs, jobId, 'write 10');
  const t0 = performance.now();
  const cancelled = await service.cancelJob(jobId);
  const ms = performance.now() - t0;
  t.is(cancelled.state, 'CANCELLED');
  t.true(ms < 1500, `CancelJob answered ${Math.round(ms)} ms after it was asked, during a write of 3000 ms`);
  t.deepEqual(await jobLog(logs, jobId), ['write 10'], 'the write still under way');
  t.deepEqual(await logged(logs, jobId, 'aborted'), ['write 10', 'written', 'aborted'], 'never committed');
  await service.idle();
  const after = await service.getJob(jobId);
  t.like(after, { state: 'CANCELLED', finishedAt: cancelled.finishedAt }, 'nothing the late write did changed the job');
});
