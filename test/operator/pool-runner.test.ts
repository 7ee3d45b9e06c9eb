/**
 * The pooled runner: jobs run in worker threads with a heap cap. A plugin that calls process.exit,
 * spins synchronously, or allocates without bound fails only its own job, with an error that says so,
 * while this (the service's) event loop keeps turning and the next job runs on a fresh thread.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { ConnectorPlugin } from 'sluice/sdk';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import type { JobSpec } from '../../services/operator/domain/runner.js';
import { DEFAULT_HEAP_MB, DEFAULT_YOUNG_GENERATION_MB, PooledRunner } from '../../services/operator/runners/pool.js';
import { createLogger } from '../../services/core/logger.js';
import { RUNNER_FIXTURES } from '../helpers/operator.js';

const plugins = await loadPlugins({ bundledDir: RUNNER_FIXTURES });
const source = plugins.connectors.get('slow-source') as LoadedPlugin<ConnectorPlugin>;
const sink = plugins.connectors.get('hostile-sink') as LoadedPlugin<ConnectorPlugin>;
const dir = await mkdtemp(join(tmpdir(), 'sluice-pool-'));
const runner = new PooledRunner({
  threads: 2,
  maxHeapMb: 64,
  maxYoungGenerationMb: 16,
  settings: { maxHeapMb: 'SLUICE_JOB_HEAP_MB' },
  stallTimeoutMs: 5000,
  progressIntervalMs: 50,
});

test.after.always(async () => {
  await runner.close();
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
function spec(sinkOptions: Record<string, unknown>, rows = 30, sourceOptions: Record<string, unknown> = {}): JobSpec {
  const jobId = `job-${++n}`;
  const boundaries = { boundaryType: 'OFFSET' as const, lowerBound: '0', upperBound: String(rows) };
  return {
    job: { jobId, groupId: 'g', streamId: 's', boundaries },
    stream: {
      streamId: 's',
      source: { connector: source.id, options: {} },
      sink: { connector: sink.id, options: sinkOptions },
      fields: [],
    },
    boundedSourceOptions: { delayMs: 1, from: 0, to: rows, ...sourceOptions },
    source,
    sink,
  } as unknown as JobSpec;
}

const ctx = () => ({ signal: new AbortController().signal, onProgress: () => {}, onResolved: () => {} });

/** Counts this thread's timer turns while `work` runs: the service keeps answering. */
async function ticking<T>(work: Promise<T>): Promise<{ ticks: number; result: PromiseSettledResult<T> }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 20);
  const [result] = await Promise.allSettled([work]);
  clearInterval(timer);
  return { ticks, result };
}

async function ok(t: ExecutionContext, label: string): Promise<number> {
  const out = join(dir, `${label}.json`);
  await runner.run(spec({ out }, 25), ctx());
  const written = JSON.parse(await readFile(out, 'utf8')) as { rows: number; threadId: number };
  t.is(written.rows, 25, `${label}: every row reached the sink`);
  t.not(written.threadId, 0, `${label}: the job ran in a worker thread`);
  return written.threadId;
}

test.serial('a job runs in a worker thread; two at once run on two threads', async (t) => {
  const out = [join(dir, 'a.json'), join(dir, 'b.json')];
  // 20 batches 50 ms apart: a job lasts past the start of the pool's second thread, even on a loaded machine (a job
  // that ended before it came up would leave the first thread free for the other job).
  await Promise.all(out.map((o) => runner.run(spec({ out: o }, 200, { delayMs: 50 }), ctx())));
  const ids = await Promise.all(
    out.map(async (o) => (JSON.parse(await readFile(o, 'utf8')) as { threadId: number }).threadId),
  );
  t.true(ids.every((id) => id !== 0));
  t.not(ids[0], ids[1]);
});

test.serial("a job's thread runs under the pool's old- and young-generation caps", async (t) => {
  const out = join(dir, 'limits.json');
  await runner.run(spec({ out }, 3), ctx());
  const { resourceLimits } = JSON.parse(await readFile(out, 'utf8')) as {
    resourceLimits: { maxOldGenerationSizeMb: number; maxYoungGenerationSizeMb: number };
  };
  t.is(resourceLimits.maxOldGenerationSizeMb, 64);
  t.is(resourceLimits.maxYoungGenerationSizeMb, 16);
});

test.serial(
  'the caps default to DEFAULT_HEAP_MB and DEFAULT_YOUNG_GENERATION_MB, and a young cap of 0 leaves it to V8',
  async (t) => {
    type Limits = { maxOldGenerationSizeMb: number; maxYoungGenerationSizeMb: number };
    const limitsOf = async (options: { maxHeapMb?: number; maxYoungGenerationMb?: number }, label: string) => {
      const pool = new PooledRunner({ threads: 1, stallTimeoutMs: 5000, ...options });
      const out = join(dir, `${label}.json`);
      try {
        await pool.run(spec({ out }, 2), ctx());
      } finally {
        await pool.close();
      }
      return (JSON.parse(await readFile(out, 'utf8')) as { resourceLimits: Limits }).resourceLimits;
    };
    const defaults = await limitsOf({}, 'caps-default');
    t.is(defaults.maxOldGenerationSizeMb, DEFAULT_HEAP_MB);
    t.is(defaults.maxYoungGenerationSizeMb, DEFAULT_YOUNG_GENERATION_MB);
    // V8 sizes it itself (from the old generation's cap and its own defaults): anything but ours.
    t.not(
      (await limitsOf({ maxHeapMb: 64, maxYoungGenerationMb: 0 }, 'young-v8')).maxYoungGenerationSizeMb,
      DEFAULT_YOUNG_GENERATION_MB,
    );
  },
);

test.serial("the job's last progress reaches the service before run() returns, every time", async (t) => {
  // The progress goes over the job's port and the result over the pool's: the result used to overtake it.
  for (let i = 0; i < 12; i++) {
    let records = -1;
    await runner.run(spec({ out: join(dir, `progress-${i}.json`) }, 7), {
      ...ctx(),
      onProgress: (p: { records: number }) => (records = p.records),
    });
    t.is(records, 7, `run ${i}: the records counted`);
  }
});

test.serial('a plugin calling process.exit fails its own job; the next job runs', async (t) => {
  const { result } = await ticking(runner.run(spec({ behavior: 'exit' }), ctx()));
  t.is(result.status, 'rejected');
  const err = (result as PromiseRejectedResult).reason as { code: string; message: string };
  t.is(err.code, 'PLUGIN_FAILED');
  t.regex(err.message, /worker ended.*sink 'hostile-sink'/);
  await ok(t, 'after-exit');
});

test.serial(
  'a plugin spinning synchronously fails its job as PLUGIN_TIMEOUT while the service keeps answering',
  async (t) => {
    const started = Date.now();
    const { ticks, result } = await ticking(runner.run(spec({ behavior: 'spin' }), ctx()));
    t.is(result.status, 'rejected');
    const err = (result as PromiseRejectedResult).reason as { code: string; message: string };
    t.is(err.code, 'PLUGIN_TIMEOUT');
    t.regex(err.message, /event loop was blocked for more than 5000 ms/);
    // This thread's timers kept firing during the spin (every 20 ms over at least 5 s).
    t.true(ticks >= (Date.now() - started) / 20 / 4, `only ${ticks} timer turns`);
    await ok(t, 'after-spin');
  },
);

test.serial('a plugin allocating without bound hits the heap cap and fails only its job', async (t) => {
  const { result } = await ticking(runner.run(spec({ behavior: 'leak' }), ctx()));
  t.is(result.status, 'rejected');
  const err = (result as PromiseRejectedResult).reason as { code: string; message: string };
  t.is(err.code, 'PLUGIN_FAILED');
  // The message names the cap and the setting that raises it.
  t.regex(err.message, /ran out of memory at the heap cap of 64 MiB \(SLUICE_JOB_HEAP_MB: raise it/);
  t.regex(err.message, /sink 'hostile-sink'/);
  const details = (err as unknown as { details: Record<string, unknown> }).details;
  t.deepEqual(
    { heapCapMb: details.heapCapMb, setting: details.setting },
    { heapCapMb: 64, setting: 'SLUICE_JOB_HEAP_MB' },
  );
  await ok(t, 'after-leak');
});

test('what a plugin logs inside a job reaches the service logger, secrets redacted', async (t) => {
  const lines: string[] = [];
  const logged = new PooledRunner({
    threads: 1,
    maxHeapMb: 64,
    stallTimeoutMs: 5000,
    logger: createLogger('info', { service: 'sluice' }, (line) => lines.push(line)),
  });
  try {
    await logged.run(spec({ out: join(dir, 'logged.json') }, 5), ctx());
  } finally {
    await logged.close();
  }
  const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const line = entries.find((e) => e.msg === 'slow-source reading');
  t.truthy(line, lines.join('\n'));
  t.is(line?.from, 0);
  t.is(line?.password, '[REDACTED]');
  t.false(lines.some((l) => l.includes('not-to-be-logged')));
});

test.serial(
  'a plugin that blocks its thread before it has reported anything still fails as PLUGIN_TIMEOUT',
  async (t) => {
    // The source spins in openReader, before its first log line: the job's only message is the one its
    // thread sends on taking the job.
    const { result } = await ticking(runner.run(spec({}, 10, { spinOnOpen: true }), ctx()));
    t.is(result.status, 'rejected');
    const err = (result as PromiseRejectedResult).reason as { code: string; message: string };
    t.is(err.code, 'PLUGIN_TIMEOUT');
    t.regex(err.message, /event loop was blocked for more than 5000 ms/);
    await ok(t, 'after-early-spin');
  },
);

test('a job cancelled before it has a thread runs nothing and ends with the cancel', async (t) => {
  const cancel = new AbortController();
  const reason = new Error('cancelled by the test');
  cancel.abort(reason);
  const out = join(dir, 'cancelled-early.json');
  const err = await t.throwsAsync(runner.run(spec({ out }, 5), { ...ctx(), signal: cancel.signal }));
  t.is(err, reason);
  t.false(existsSync(out), 'the sink never committed');
});

test('two jobs share one thread when jobsPerThread allows it, at the same time', async (t) => {
  const shared = new PooledRunner({ threads: 1, jobsPerThread: 2, stallTimeoutMs: 5000 });
  t.teardown(() => shared.close());
  const outs = [join(dir, 'shared-a.json'), join(dir, 'shared-b.json')];
  // 20 batches 30 ms apart: long enough for the second job to start while the first reads.
  await Promise.all(outs.map((out) => shared.run(spec({ out }, 200, { delayMs: 30 }), ctx())));
  type Written = { threadId: number; openedAt: number; committedAt: number };
  const [a, b] = await Promise.all(outs.map(async (o) => JSON.parse(await readFile(o, 'utf8')) as Written));
  t.is(a!.threadId, b!.threadId, 'one thread');
  t.true(a!.openedAt < b!.committedAt && b!.openedAt < a!.committedAt, 'each opened before the other committed');
});

test('an idle thread keeps turning: what a job leaves running ends there, not in the next job', async (t) => {
  const lines: string[] = [];
  const single = new PooledRunner({
    threads: 1,
    stallTimeoutMs: 5000,
    logger: createLogger('info', { service: 'sluice' }, (line) => lines.push(line)),
  });
  t.teardown(() => single.close());
  // A timer the job leaves behind fires while the thread has no job (an idle PostgreSQL pool closes so).
  const later = join(dir, 'later.txt');
  await single.run(spec({ afterCommit: { ms: 100, file: later } }, 5), ctx());
  const deadline = Date.now() + 5000;
  while (!existsSync(later) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.true(existsSync(later), "the job's timer ran while its thread was idle");
  // An error thrown there ends that thread alone; the next job runs and succeeds.
  await single.run(spec({ afterCommit: { ms: 50, fail: true } }, 5), ctx());
  // Waited for, not slept on: a next job given to the thread before its timer threw would fail with it.
  const failed = () => lines.some((l) => l.includes('a job thread failed between jobs'));
  const until = Date.now() + 10_000;
  while (!failed() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.true(failed(), 'the thread failed between jobs, and the pool said so');
  const out = join(dir, 'after-late-error.json');
  await single.run(spec({ out }, 5), ctx());
  t.is((JSON.parse(await readFile(out, 'utf8')) as { rows: number }).rows, 5);
});

test.serial("a job's last resolved positions reach the service, every time", async (t) => {
  // resolved() answers {} at open and the positions at the end: the last report is the one that counts.
  for (let i = 0; i < 30; i++) {
    let last: Record<string, string> | undefined;
    await runner.run(spec({}, 3, { resolvedAtEnd: true, delayMs: 0 }), {
      ...ctx(),
      onResolved: (positions: Readonly<Record<string, string>>) => (last = { ...positions }),
    });
    t.deepEqual(last, { start: '0', stop: '3' }, `run ${i}`);
  }
});
