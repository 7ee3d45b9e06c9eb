/**
 * One run of the runner benchmark (bench/runner.ts), in a fresh process so that its peak RSS belongs to
 * that run alone. Started as
 *
 *   node --conditions=development --import tsx bench/runner-child.ts '<RunnerChildSpec as JSON>'
 *
 * kind `runner` (kafka → file, postgres → postgres): loads the bundled plugins (loadPlugins), resolves
 * the window as SubmitOfflineJob does (Catalog.resolveBoundaries: schema, validate, defaults, then the
 * source's fillInBoundaries through HookRunner.call) and calls `new EmbeddedRunner({ hooks }).run(spec,
 * ctx)` directly, with a JobSpec like the one OperatorService builds (no store, no gRPC).
 * kind `plain`, kafka: a kafkajs consumer (own group, seek to the start, pause each partition at its
 * stop) writing the same JSON lines (JSON.parse then JSON.stringify of each value) to a temporary file,
 * fsynced and renamed into place, as the file sink does.
 * kind `copy`, postgres: `COPY (SELECT ...) TO STDOUT` on one connection piped into `COPY ... FROM
 * STDIN` on another, in one transaction that first deletes the window (replace-window), with plain `pg`
 * (COPY through pg's Submittable interface and the simple query protocol; no pg-copy-streams).
 * kind `insert-select`, postgres: the server-side upper bound, `INSERT INTO dst SELECT ... FROM src` in
 * one transaction: no row leaves the server.
 * kind `plain`, postgres: plain `pg` doing what the connectors do (keyset-paged SELECT of 5000 rows,
 * multi-row INSERTs of 1000 rows with bind parameters, one transaction).
 *
 * Prints one JSON line (RunnerChildResult) on stdout.
 */
import { once } from 'node:events';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type PerformanceEntry, PerformanceObserver, constants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import type { Boundaries, ScheduleInfo } from 'sluice/sdk';
import { Catalog } from '../services/catalog/domain/catalog.js';
import { BUNDLED_PLUGINS_DIR } from '../services/core/paths.js';
import { HookRunner } from '../services/host/hook-runner.js';
import { loadPlugins } from '../services/host/loader.js';
import type { GroupRecord, JobRecord, StreamSpec } from '../services/operator/domain/model.js';
import type { JobSpec } from '../services/operator/domain/runner.js';
import { EmbeddedRunner } from '../services/operator/runners/embedded.js';
import type { PooledRunner } from '../services/operator/runners/pool.js';

/** datagen-file: the datagen source into the file sink, all of it JS in the job's thread (no server). */
export type Pipeline = 'kafka-file' | 'pg-pg' | 'datagen-file';
/**
 * cpu-*: datagen-file's reference, the machine's ceiling: the CPU work of its two jobs (read and encode,
 * bench/encode-worker.ts) in two plain threads, at once or one after the other, with no runner and no file.
 */
export type RunKind =
  | 'runner'
  | 'plain'
  | 'copy'
  | 'insert-select'
  | 'pool-concurrent'
  | 'pool-sequential'
  | 'cpu-concurrent'
  | 'cpu-sequential';

export interface RunnerChildSpec {
  readonly pipeline: Pipeline;
  readonly kind: RunKind;
  /** Records in the window: Kafka offsets [0, records / partitions) of every partition; SQL ids [1, records + 1). */
  readonly records: number;
  readonly brokers?: readonly string[];
  readonly topic?: string;
  readonly partitions?: number;
  /** Directory the JSON-lines file goes to (empty; the child writes exactly one file there). */
  readonly dir?: string;
  /** pool-* kinds of the file pipelines: the second job's directory. */
  readonly dir2?: string;
  readonly url?: string;
  readonly srcTable?: string;
  readonly dstTable?: string;
  /** pool-* kinds: the second job's destination table (the same window, copied twice). */
  readonly dstTable2?: string;
}

export interface RunnerChildResult {
  /** Records written, as the writer counted them (runner: its last progress report). */
  readonly records: number;
  /** From the start of the job (runner.run / the client's connect) to the commit, ms. */
  readonly ms: number;
  /** From the start to the first batch written (connect, snapshot, Kafka group join), ms; NaN when unknown. */
  readonly firstBatchMs: number;
  /** RSS when the run starts (plugins loaded, nothing read), KiB. */
  readonly rssBeforeKb: number;
  /** process.resourceUsage().maxRSS at the end: the peak of the whole process, KiB. */
  readonly maxRssKb: number;
  /**
   * Highest RSS sampled (every 100 ms) in the first and in the second half of the run's duration, KiB:
   * memory that grew with the records read would be higher in the second half.
   */
  readonly rssHalvesKb: readonly [number, number];
  /**
   * Highest V8 heap in use just after one of V8's own full (mark-compact) GCs during the run, KiB (0:
   * none ran): about the live heap, without the garbage V8 lets pile up before it collects.
   */
  readonly liveHeapKb: number;
  /** Full GCs during the run. */
  readonly fullGcs: number;
  /** The committed file (kafka-file, datagen-file). */
  readonly file?: string;
  readonly fileBytes?: number;
  /** pool-* kinds of the file pipelines: the second job's committed file. */
  readonly file2?: string;
  /** CPU time of the whole process over the run, all its threads (process.cpuUsage), ms. */
  readonly cpuMs: number;
}

export const GROUP_ID = 'bench-runner';
export const STREAM_ID = 's1';

/** The window: Kafka offsets [0, records / partitions) of every partition, or ids [1, records + 1). */
export function benchBoundaries(spec: Pick<RunnerChildSpec, 'pipeline' | 'records' | 'partitions'>): Boundaries {
  if (spec.pipeline !== 'kafka-file')
    return { boundaryType: 'OFFSET', lowerBound: '1', upperBound: String(spec.records + 1) };
  const parts = Array.from({ length: spec.partitions! }, (_, p) => p);
  const perPartition = spec.records / spec.partitions!;
  return {
    boundaryType: 'OFFSET',
    lowerBound: parts.map((p) => `${p}:0`).join(','),
    upperBound: parts.map((p) => `${p}:${perPartition}`).join(','),
  };
}

/** The postgres sink's window id (core.windowId): what the references write into the window column. */
export function windowIdOf(b: Boundaries): string {
  return `${GROUP_ID}/${STREAM_ID}/${b.boundaryType}:${b.lowerBound}:${b.upperBound}`;
}

/**
 * datagen-file's source: the connector's default rows (id, ts, value; about 45 bytes of JSON), so that a
 * job is JSON encoding in its thread more than file writing: with a 90-byte payload column the two jobs
 * spent much of their time writing and fsyncing 2 x 130 MB (CPU 1.8 s in 2.1-2.7 s of wall time).
 */
export const DATAGEN_OPTIONS = {} as const;

/** Columns of the source table, in order; the sink table has them plus sluice_window. */
export const PG_COLUMNS = ['id', 'ts', 'customer', 'amount', 'score', 'active', 'note', 'attrs'] as const;

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

const SCHEDULE: ScheduleInfo = {
  groupId: GROUP_ID,
  scheduleType: 0,
  scheduleUnit: 'H',
  scheduleInterval: 1,
  startTime: Date.UTC(2026, 0, 1),
  endTime: Date.UTC(2027, 0, 1),
  delayTime: 0,
  selfDepend: 0,
  taskParallelism: 1,
  crontabExpression: '',
  scheduleEngine: '',
  version: 1,
  timeZone: 'UTC',
  catchUp: { mode: 'ALL', windowMs: 0 },
  alignment: 'END',
};

interface Clock {
  start(): void;
  firstBatch(): void;
}

// ------------------------------------------------------------------------------------------- runner

/**
 * A JobSpec built as OperatorService.#runJob builds it, for the window `boundaries` into `dst`: the
 * destination table (pg-pg) or directory (the file pipelines).
 */
async function jobSpecFor(
  spec: RunnerChildSpec,
  set: Awaited<ReturnType<typeof loadPlugins>>,
  hooks: HookRunner,
  dst: string | undefined,
  boundaries: Boundaries,
  suffix = '',
): Promise<JobSpec> {
  const catalog = new Catalog(set, hooks);
  const stream: StreamSpec =
    spec.pipeline === 'kafka-file'
      ? {
          streamId: STREAM_ID,
          source: {
            connectorId: 'kafka',
            options: { brokers: [...spec.brokers!], topic: spec.topic!, format: 'json' },
          },
          sink: { connectorId: 'file', options: { path: dst!, format: 'jsonl' } },
          fields: [],
        }
      : spec.pipeline === 'datagen-file'
        ? {
            streamId: STREAM_ID,
            source: { connectorId: 'datagen', options: { ...DATAGEN_OPTIONS } },
            sink: { connectorId: 'file', options: { path: dst!, format: 'jsonl' } },
            fields: [],
          }
        : {
            streamId: STREAM_ID,
            source: { connectorId: 'postgres', options: { url: spec.url!, table: spec.srcTable!, keyColumn: 'id' } },
            sink: { connectorId: 'postgres', options: { url: spec.url!, table: dst!, mode: 'replace-window' } },
            fields: [],
          };
  const source = set.connectors.get(stream.source.connectorId);
  const sink = set.connectors.get(stream.sink.connectorId);
  if (!source || !sink) throw new Error(`connectors did not load: ${set.problems.map((p) => p.message).join('; ')}`);
  for (const [role, endpoint] of [
    ['source', stream.source],
    ['sink', stream.sink],
  ] as const) {
    const errors = await catalog.validateOptions(endpoint.connectorId, role, endpoint.options);
    if (errors.length > 0) throw new Error(`${role} options rejected: ${JSON.stringify(errors)}`);
  }
  // As SubmitOfflineJob: schema, validate, defaults, then fillInBoundaries through HookRunner.call.
  const resolved = await catalog.resolveBoundaries(stream.source.connectorId, stream.source.options, boundaries);
  const now = Date.now();
  const group: GroupRecord = {
    groupId: GROUP_ID,
    description: 'runner benchmark',
    streams: [stream],
    schedule: SCHEDULE,
    runner: 'embedded',
    retry: { maxAttempts: 1, initialBackoffMs: 1000 },
    status: 'REGISTERED',
    version: 2,
    createdAt: now,
    updatedAt: now,
  };
  const job: JobRecord = {
    jobId: `bench-${process.pid}-${now.toString(36)}${suffix}`,
    groupId: GROUP_ID,
    streamId: STREAM_ID,
    instanceId: '',
    boundaries,
    generation: 1,
    state: 'RUNNING',
    runner: 'embedded',
    attempt: 1,
    resolvedSourceOptions: resolved.boundedOptions,
    resolvedPositions: {},
    progress: { records: 0, bytes: 0, positions: {} },
    error: '',
    owner: 'bench',
    createdAt: now,
    startedAt: now,
    updatedAt: now,
  };
  return { job, group, stream, boundedSourceOptions: resolved.boundedOptions, source, sink };
}

/**
 * SLUICE_BENCH_RUNNER=pool: the `runner` kind runs its job on the worker-thread pool the operator uses by
 * default (PooledRunner, one thread, its default heap caps), so that the thread's V8 limits are measured;
 * SLUICE_BENCH_YOUNG_GEN_MB sets the pool's young-generation cap. Before the clock starts the thread runs
 * an empty window, which imports the two plugins there (a service's threads keep them), as the
 * main-thread runner has them imported by loadPlugins before its clock starts.
 */
const POOLED = process.env.SLUICE_BENCH_RUNNER === 'pool';
const YOUNG_GEN_MB = process.env.SLUICE_BENCH_YOUNG_GEN_MB ? Number(process.env.SLUICE_BENCH_YOUNG_GEN_MB) : undefined;
/** SLUICE_BENCH_HEAP_MB sets the pool's heap (old-generation) cap. */
const HEAP_MB = process.env.SLUICE_BENCH_HEAP_MB ? Number(process.env.SLUICE_BENCH_HEAP_MB) : undefined;

/**
 * The lines the file sink must write for the window of `spec` (datagen-file): the source's own rows, read
 * with the options the job gets, each as JSON text.
 */
export async function* sourceLines(spec: RunnerChildSpec): AsyncGenerator<string> {
  const set = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  const hooks = new HookRunner({ timeoutMs: 30_000 });
  const source = set.connectors.get('datagen');
  if (!source) throw new Error(`the datagen connector did not load: ${set.problems.map((p) => p.message).join('; ')}`);
  const boundaries = benchBoundaries(spec);
  // The options the job's source gets: schema defaults, then fillInBoundaries, as SubmitOfflineJob does.
  const resolved = await new Catalog(set, hooks).resolveBoundaries('datagen', { ...DATAGEN_OPTIONS }, boundaries);
  const reader = await hooks.call(
    source,
    'openReader',
    { options: resolved.boundedOptions, boundaries },
    { signal: new AbortController().signal },
  );
  try {
    for await (const batch of reader.batches()) for (const row of batch) yield JSON.stringify(row);
  } finally {
    await reader.close();
  }
}

/** A window with no record in it, for a job that only warms a pool thread up. */
function emptyWindow(spec: RunnerChildSpec): Boundaries {
  return spec.pipeline === 'kafka-file'
    ? benchBoundaries({ ...spec, records: 0 })
    : { boundaryType: 'OFFSET', lowerBound: '0', upperBound: spec.pipeline === 'pg-pg' ? '1' : '0' };
}

/** Where a job writes: its table (pg-pg) or directory; `warm`: the one for an empty warm-up window. */
function destination(spec: RunnerChildSpec, second: boolean, warm = false): string | undefined {
  if (spec.pipeline === 'pg-pg') return second ? spec.dstTable2 : spec.dstTable;
  const dir = second ? spec.dir2! : spec.dir!;
  // A hidden folder: the committed-file check skips names starting with a dot.
  return warm ? join(dir, '.warm') : dir;
}

/** Removes the warm-up folders (file pipelines). */
async function removeWarm(spec: RunnerChildSpec): Promise<void> {
  if (spec.pipeline === 'pg-pg') return;
  for (const second of spec.dir2 ? [false, true] : [false])
    await rm(destination(spec, second, true)!, { recursive: true, force: true });
}

/** The embedded runner, driven directly with a JobSpec built as OperatorService.#runJob builds it. */
async function runEmbedded(spec: RunnerChildSpec, clock: Clock): Promise<{ records: number }> {
  const set = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  const hooks = new HookRunner({ timeoutMs: 30_000 });
  const jobSpec = await jobSpecFor(spec, set, hooks, destination(spec, false), benchBoundaries(spec));
  let runner: EmbeddedRunner | PooledRunner;
  if (POOLED) {
    const pool = await import('../services/operator/runners/pool.js');
    runner = new pool.PooledRunner({
      threads: 1,
      ...(YOUNG_GEN_MB !== undefined ? { maxYoungGenerationMb: YOUNG_GEN_MB } : {}),
      ...(HEAP_MB !== undefined ? { maxHeapMb: HEAP_MB } : {}),
    });
    const warm = await jobSpecFor(spec, set, hooks, destination(spec, false, true), emptyWindow(spec), '-w');
    await runner.run(warm, { signal: new AbortController().signal, onProgress: () => {}, onResolved: () => {} });
    await removeWarm(spec);
  } else runner = new EmbeddedRunner({ hooks });
  let records = 0;
  let reports = 0;
  clock.start();
  await runner.run(jobSpec, {
    signal: new AbortController().signal,
    // The first report comes with the first batch written (the runner's clock starts at 0), then at most once a second.
    onProgress: (p) => {
      if (reports++ === 0) clock.firstBatch();
      records = p.records;
    },
    onResolved: () => {},
  });
  if (!(runner instanceof EmbeddedRunner)) await runner.close();
  return { records };
}

/**
 * Two jobs of the same window (into dstTable and dstTable2, or dir and dir2) on the worker-thread pool
 * the operator runs by default, two threads: both at once (`pool-concurrent`) or one after the other
 * (`pool-sequential`). Before the clock starts, both threads import the plugins with an empty window.
 */
async function runPooled(spec: RunnerChildSpec, clock: Clock): Promise<{ records: number }> {
  const { PooledRunner } = await import('../services/operator/runners/pool.js');
  const set = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  const hooks = new HookRunner({ timeoutMs: 30_000 });
  const pool = new PooledRunner({ threads: 2, jobsPerThread: 1 });
  try {
    const run = async (js: JobSpec) => {
      let records = 0;
      await pool.run(js, {
        signal: new AbortController().signal,
        onProgress: (p) => {
          if (p.records > 0) clock.firstBatch();
          records = p.records;
        },
        onResolved: () => {},
      });
      return records;
    };
    await Promise.all(
      [false, true].map(async (second, i) =>
        run(await jobSpecFor(spec, set, hooks, destination(spec, second, true), emptyWindow(spec), `-w${i}`)),
      ),
    );
    await removeWarm(spec);
    const jobs = [
      await jobSpecFor(spec, set, hooks, destination(spec, false), benchBoundaries(spec), '-a'),
      await jobSpecFor(spec, set, hooks, destination(spec, true), benchBoundaries(spec), '-b'),
    ];
    clock.start();
    const counts =
      spec.kind === 'pool-concurrent' ? await Promise.all(jobs.map(run)) : [await run(jobs[0]!), await run(jobs[1]!)];
    return { records: counts[0]! + counts[1]! };
  } finally {
    await pool.close();
  }
}

// ------------------------------------------------------------------------------------------- cpu ceiling

/**
 * datagen-file's `cpu-*` kinds: two plain worker threads each reading the window and encoding its rows
 * (bench/encode-worker.ts), started and loaded before the clock, then run at once or one after the other.
 */
async function runEncodeThreads(spec: RunnerChildSpec, clock: Clock): Promise<{ records: number }> {
  const { Worker } = await import('node:worker_threads');
  const workers = [0, 1].map(
    () => new Worker(new URL('./encode-worker.ts', import.meta.url), { workerData: { records: spec.records } }),
  );
  try {
    await Promise.all(workers.map((w) => once(w, 'message')));
    const run = async (w: (typeof workers)[number]) => {
      const done = once(w, 'message');
      w.postMessage('go');
      // No first batch to time: the threads report only when done (the table shows '-').
      const [chars] = (await done) as [number];
      return chars;
    };
    clock.start();
    const chars =
      spec.kind === 'cpu-concurrent'
        ? await Promise.all(workers.map(run))
        : [await run(workers[0]!), await run(workers[1]!)];
    if (chars[0] !== chars[1] || !(chars[0]! > 0))
      throw new Error(`the two threads encoded ${chars[0]} and ${chars[1]} characters, expected the same, above 0`);
    return { records: 2 * spec.records };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

// ------------------------------------------------------------------------------------------- kafka plain

/** kafkajs alone, writing what the file sink writes: one JSON line per message, fsync, rename. */
async function kafkaPlain(spec: RunnerChildSpec, clock: Clock): Promise<{ records: number; file: string }> {
  const topic = spec.topic!;
  const partitions = spec.partitions!;
  const stop = BigInt(spec.records / partitions);
  await mkdir(spec.dir!, { recursive: true });
  const file = join(spec.dir!, 'plain.jsonl');
  const temp = join(spec.dir!, '.plain.jsonl.tmp');
  clock.start();
  const handle = await open(temp, 'w', 0o644);
  const out = handle.createWriteStream({ highWaterMark: 1024 * 1024, encoding: 'utf8', flush: true });
  const closed = once(out, 'close');
  const kafka = new Kafka({ brokers: [...spec.brokers!], clientId: 'sluice-bench-plain', logLevel: logLevel.WARN });
  const consumer = kafka.consumer({
    groupId: `sluice-bench-plain-${process.pid}-${Date.now()}`,
    allowAutoTopicCreation: false,
  });
  const done = new Set<number>();
  let records = 0;
  let finish!: () => void;
  let fail!: (err: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  try {
    await consumer.connect();
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (let p = 0; p < partitions; p++) if (!done.has(p)) consumer.seek({ topic, partition: p, offset: '0' });
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => fail(payload.error));
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (done.has(batch.partition)) return;
        let text = '';
        let n = 0;
        for (const m of batch.messages) {
          if (BigInt(m.offset) >= stop) break;
          if (m.value === null) continue;
          text += `${JSON.stringify(JSON.parse(m.value.toString('utf8')))}\n`;
          n++;
        }
        if (n > 0) {
          if (records === 0) clock.firstBatch();
          records += n;
          if (!out.write(text)) await once(out, 'drain');
        }
        if (BigInt(batch.lastOffset()) + 1n >= stop) {
          done.add(batch.partition);
          consumer.pause([{ topic, partitions: [batch.partition] }]);
          if (done.size === partitions) finish();
        }
      },
    });
    await finished;
  } finally {
    await consumer.disconnect();
  }
  out.end();
  await closed;
  await rename(temp, file);
  const dir = await open(spec.dir!, 'r');
  await dir.sync().finally(() => dir.close());
  return { records, file };
}

// ------------------------------------------------------------------------------------------- postgres

function connectPg(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'sluice-bench' });
  client.on('error', () => {});
  return client.connect().then(() => client);
}

/** Minimal pg wire framing of one CopyData message ('d', int32 length, payload). */
function copyDataMessage(payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(5);
  header[0] = 0x64;
  header.writeInt32BE(payload.length + 4, 1);
  return Buffer.concat([header, payload]);
}
const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]);

/** CopyFail ('f', int32 length, message, NUL): ends a COPY FROM STDIN with an error. */
function copyFailMessage(text: string): Buffer {
  const body = Buffer.from(`${text}\0`, 'utf8');
  const header = Buffer.allocUnsafe(5);
  header[0] = 0x66;
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
/** Bytes gathered from COPY TO before they are sent on as one CopyData message. */
const COPY_CHUNK = 64 * 1024;

/**
 * A pg Submittable running one statement over the simple query protocol, with hooks for the COPY
 * messages pg's own Query ignores (CopyData) or refuses (CopyInResponse).
 */
class RawStatement implements pg.Submittable {
  readonly done: Promise<string>;
  #resolve!: (tag: string) => void;
  #reject!: (err: unknown) => void;
  #tag = '';
  #error: unknown;
  constructor(
    readonly text: string,
    readonly hooks: { onCopyData?: (chunk: Buffer) => void; onCopyIn?: (connection: pg.Connection) => void } = {},
  ) {
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.done.catch(() => {});
  }
  submit(connection: pg.Connection): void {
    connection.query(this.text);
  }
  handleCopyInResponse(connection: pg.Connection): void {
    this.hooks.onCopyIn?.(connection);
  }
  handleCopyData(msg: { chunk: Buffer }): void {
    this.hooks.onCopyData?.(msg.chunk);
  }
  handleCommandComplete(msg: { text: string }): void {
    this.#tag = msg.text;
  }
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handleError(err: unknown): void {
    // A server error is followed by ReadyForQuery; a dead connection is not: settle now in both cases.
    this.#error ??= err;
    this.#reject(err);
  }
  handleReadyForQuery(): void {
    if (this.#error !== undefined) this.#reject(this.#error);
    else this.#resolve(this.#tag);
  }
}

/**
 * COPY (SELECT ...) TO STDOUT on `src` piped into COPY ... FROM STDIN on `dst`: text-format rows pass
 * through untouched, gathered into 64 KiB CopyData messages; the source socket pauses while the
 * destination socket's buffer is full.
 */
async function pgCopy(spec: RunnerChildSpec, clock: Clock): Promise<{ records: number }> {
  const b = benchBoundaries(spec);
  const windowId = windowIdOf(b);
  const columns = PG_COLUMNS.map(q).join(', ');
  clock.start();
  const [src, dst] = await Promise.all([connectPg(spec.url!), connectPg(spec.url!)]);
  let wire: pg.Connection | undefined;
  let copyIn: RawStatement | undefined;
  let copyInOpen = false;
  try {
    await dst.query('BEGIN');
    await dst.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [
      `sluice:${q(spec.dstTable!)}:${windowId}`,
    ]);
    await dst.query(`DELETE FROM ${q(spec.dstTable!)} WHERE sluice_window = $1`, [windowId]);
    let copyInReady!: () => void;
    const ready = new Promise<void>((resolve) => (copyInReady = resolve));
    copyIn = new RawStatement(`COPY ${q(spec.dstTable!)} (${columns}, sluice_window) FROM STDIN`, {
      onCopyIn: (connection) => {
        wire = connection;
        copyInOpen = true;
        copyInReady();
      },
    });
    dst.query(copyIn);
    await Promise.race([ready, copyIn.done]);
    if (!wire) throw new Error(`COPY FROM STDIN did not start: ${await copyIn.done}`);
    const to = wire.stream;
    const from = src.connection.stream;
    const acc = Buffer.allocUnsafe(COPY_CHUNK * 2);
    let used = 0;
    let first = true;
    const flush = () => {
      if (used === 0) return;
      // copyDataMessage copies: acc can be filled again at once.
      const ok = to.write(copyDataMessage(acc.subarray(0, used)));
      used = 0;
      if (first) {
        first = false;
        clock.firstBatch();
      }
      if (!ok) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    };
    const literal = `'${windowId.replaceAll("'", "''")}'`;
    const copyOut = new RawStatement(
      `COPY (SELECT ${columns}, ${literal} FROM ${q(spec.srcTable!)} WHERE id >= ${b.lowerBound} AND id < ${b.upperBound}) TO STDOUT`,
      {
        onCopyData: (chunk) => {
          // The chunk is a view of pg's receive buffer, which later reads may reuse: copy it now.
          if (used + chunk.length > acc.length) flush();
          if (chunk.length > acc.length) {
            to.write(copyDataMessage(chunk));
            return;
          }
          chunk.copy(acc, used);
          used += chunk.length;
          if (used >= COPY_CHUNK) flush();
        },
      },
    );
    src.query(copyOut);
    const outTag = await copyOut.done;
    flush();
    to.write(COPY_DONE);
    copyInOpen = false;
    const inTag = await copyIn.done;
    const sent = Number(outTag.split(' ')[1]);
    const received = Number(inTag.split(' ')[1]);
    if (sent !== received) throw new Error(`COPY TO sent ${sent} rows, COPY FROM stored ${received}`);
    await dst.query('COMMIT');
    return { records: received };
  } catch (err) {
    // A COPY FROM still waiting for data must be failed first, or the ROLLBACK would queue behind it.
    if (copyInOpen && wire) wire.stream.write(copyFailMessage(err instanceof Error ? err.message : String(err)));
    await copyIn?.done.catch(() => {});
    await dst.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await Promise.all([src.end().catch(() => {}), dst.end().catch(() => {})]);
  }
}

/** The server-side upper bound: the rows never leave the server. */
async function pgInsertSelect(spec: RunnerChildSpec, clock: Clock): Promise<{ records: number }> {
  const b = benchBoundaries(spec);
  const windowId = windowIdOf(b);
  const columns = PG_COLUMNS.map(q).join(', ');
  clock.start();
  const client = await connectPg(spec.url!);
  try {
    await client.query('BEGIN');
    await client.query(`DELETE FROM ${q(spec.dstTable!)} WHERE sluice_window = $1`, [windowId]);
    const res = await client.query(
      `INSERT INTO ${q(spec.dstTable!)} (${columns}, sluice_window) SELECT ${columns}, $1 FROM ${q(spec.srcTable!)} WHERE id >= $2 AND id < $3`,
      [windowId, b.lowerBound, b.upperBound],
    );
    await client.query('COMMIT');
    return { records: res.rowCount ?? 0 };
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Plain pg doing the connectors' statements without Sluice: keyset-paged SELECTs of 5000 rows in a
 * REPEATABLE READ transaction, multi-row INSERTs of 1000 rows (bind parameters) in one write transaction.
 * Values go as pg serialises them, except jsonb (JSON text) and timestamps (ISO text), as the sink does.
 */
async function pgPlain(spec: RunnerChildSpec, clock: Clock): Promise<{ records: number }> {
  const b = benchBoundaries(spec);
  const windowId = windowIdOf(b);
  const names = [...PG_COLUMNS, 'sluice_window'];
  clock.start();
  const [src, dst] = await Promise.all([connectPg(spec.url!), connectPg(spec.url!)]);
  let records = 0;
  try {
    await src.query("SET TIME ZONE 'UTC'");
    await dst.query("SET TIME ZONE 'UTC'");
    await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await dst.query('BEGIN');
    await dst.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [
      `sluice:${q(spec.dstTable!)}:${windowId}`,
    ]);
    await dst.query(`DELETE FROM ${q(spec.dstTable!)} WHERE sluice_window = $1`, [windowId]);
    let last: unknown;
    for (;;) {
      const res = await src.query<Record<string, unknown>>(
        last === undefined
          ? `SELECT * FROM ${q(spec.srcTable!)} WHERE id >= $1 AND id < $2 ORDER BY id LIMIT 5000`
          : `SELECT * FROM ${q(spec.srcTable!)} WHERE id >= $1 AND id < $2 AND id > $3 ORDER BY id LIMIT 5000`,
        last === undefined ? [b.lowerBound, b.upperBound] : [b.lowerBound, b.upperBound, last],
      );
      const rows = res.rows;
      if (rows.length === 0) break;
      last = rows[rows.length - 1]!.id;
      for (let i = 0; i < rows.length; i += 1000) {
        const params: unknown[] = [];
        const tuples = rows.slice(i, i + 1000).map((row) => {
          const values = PG_COLUMNS.map((c) =>
            c === 'attrs' ? JSON.stringify(row[c]) : row[c] instanceof Date ? (row[c] as Date).toISOString() : row[c],
          );
          values.push(windowId);
          return `(${values.map((v) => `$${params.push(v)}`).join(', ')})`;
        });
        await dst.query(
          `INSERT INTO ${q(spec.dstTable!)} (${names.map(q).join(', ')}) VALUES ${tuples.join(', ')}`,
          params,
        );
      }
      if (records === 0) clock.firstBatch();
      records += rows.length;
      if (rows.length < 5000) break;
    }
    await dst.query('COMMIT');
    await src.query('ROLLBACK');
    return { records };
  } catch (err) {
    await dst.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await Promise.all([src.end().catch(() => {}), dst.end().catch(() => {})]);
  }
}

// ------------------------------------------------------------------------------------------- main

async function committedFile(dir: string): Promise<{ file: string; fileBytes: number }> {
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.'));
  if (names.length !== 1)
    throw new Error(`expected one committed file in ${dir}, found ${names.length}: ${names.join(', ')}`);
  const file = join(dir, names[0]!);
  return { file, fileBytes: (await stat(file)).size };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as RunnerChildSpec;
  let t0 = Number.NaN;
  let tFirst = Number.NaN;
  let rssBeforeKb = 0;
  const samples: [at: number, rssKb: number][] = [];
  let sampler: NodeJS.Timeout | undefined;
  const sample = () => samples.push([performance.now(), Math.round(process.memoryUsage.rss() / 1024)]);
  // The observer is told shortly after each GC; a full GC's heapUsed is then (about) the live heap.
  const liveHeap: [at: number, kb: number][] = [];
  const gcs = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (
        (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ===
        constants.NODE_PERFORMANCE_GC_MAJOR
      ) {
        liveHeap.push([performance.now(), Math.round(process.memoryUsage().heapUsed / 1024)]);
      }
    }
  });
  gcs.observe({ entryTypes: ['gc'] });
  let cpu0: NodeJS.CpuUsage | undefined;
  const clock: Clock = {
    start() {
      rssBeforeKb = Math.round(process.memoryUsage().rss / 1024);
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      sampler = setInterval(sample, 100);
      sampler.unref();
    },
    firstBatch() {
      if (Number.isNaN(tFirst)) tFirst = performance.now();
    },
  };
  let records: number;
  let file: { file: string; fileBytes: number; file2?: string } | undefined;
  if (spec.kind === 'cpu-concurrent' || spec.kind === 'cpu-sequential') {
    ({ records } = await runEncodeThreads(spec, clock));
  } else if (spec.kind === 'pool-concurrent' || spec.kind === 'pool-sequential') {
    ({ records } = await runPooled(spec, clock));
    if (spec.pipeline !== 'pg-pg')
      file = { ...(await committedFile(spec.dir!)), file2: (await committedFile(spec.dir2!)).file };
  } else if (spec.kind === 'runner') {
    ({ records } = await runEmbedded(spec, clock));
    if (spec.pipeline !== 'pg-pg') file = await committedFile(spec.dir!);
  } else if (spec.pipeline === 'kafka-file') {
    ({ records } = await kafkaPlain(spec, clock));
    file = await committedFile(spec.dir!);
  } else if (spec.kind === 'copy') {
    ({ records } = await pgCopy(spec, clock));
  } else if (spec.kind === 'insert-select') {
    ({ records } = await pgInsertSelect(spec, clock));
  } else {
    ({ records } = await pgPlain(spec, clock));
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  sample();
  const mid = t0 + ms / 2;
  gcs.disconnect();
  const half = (series: readonly [number, number][], first: boolean) =>
    Math.max(0, ...series.filter(([at]) => at >= t0 && (first ? at <= mid : at > mid)).map(([, kb]) => kb));
  const result: RunnerChildResult = {
    records,
    ms,
    firstBatchMs: tFirst - t0,
    rssBeforeKb,
    maxRssKb: process.resourceUsage().maxRSS,
    rssHalvesKb: [half(samples, true), half(samples, false)],
    liveHeapKb: Math.max(0, ...liveHeap.filter(([at]) => at >= t0).map(([, kb]) => kb)),
    fullGcs: liveHeap.filter(([at]) => at >= t0).length,
    cpuMs: (cpu.user + cpu.system) / 1000,
    ...(file ?? {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error('runner benchmark child failed:', err);
      process.exit(1);
    },
  );
}
