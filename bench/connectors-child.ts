/**
 * One read of the connector benchmark (bench/connectors.ts), in a fresh process so that its peak RSS
 * belongs to that read alone. Started as
 *
 *   node --conditions=development --import tsx bench/connectors-child.ts '<ChildSpec as JSON>'
 *
 * reader `connector`: loads the bundled plugins (loadPlugins, as the services do) and reads one OFFSET
 * window through the hook runner: validate, fillInBoundaries, openReader, then batches() to the end and
 * close(), as the embedded runner does.
 * reader `plain`: the same range with the client library alone: a kafkajs consumer (own group, seek to
 * the start offsets, pause each partition at its stop offset), a `pg` cursor (DECLARE ... CURSOR and
 * FETCH n in a REPEATABLE READ transaction), or a mysql2 `query().stream()`.
 *
 * Both count the rows and add up their `id` field (the same records must come out of both), and print
 * one JSON line (ChildResult) on stdout.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2';
import pg from 'pg';
import { applyDefaults, type Boundaries, type Options, type Row } from 'sluice/sdk';
import { BUNDLED_PLUGINS_DIR } from '../services/core/paths.js';
import { HookRunner } from '../services/host/hook-runner.js';
import { loadPlugins } from '../services/host/loader.js';

export type System = 'kafka' | 'postgres' | 'mysql';
export type ReaderKind = 'connector' | 'plain';

export interface ChildSpec {
  readonly system: System;
  readonly reader: ReaderKind;
  /** The window holds the records with id 1..records (SQL: keys; Kafka: offsets 0..records/partitions - 1 of every partition). */
  readonly records: number;
  /** Rows per batch / FETCH: the connector's default, given to the plain reader where it has such a knob. */
  readonly fetchSize: number;
  readonly url?: string;
  readonly table?: string;
  readonly brokers?: readonly string[];
  readonly topic?: string;
  readonly partitions?: number;
}

export interface ChildResult {
  readonly records: number;
  /** Sum of the rows' `id`: equal for both readers when they read the same records. */
  readonly idSum: number;
  readonly batches: number;
  /** From the start of the read (before fillInBoundaries / connect) to the end of close(). */
  readonly ms: number;
  /** From the start of the read to the first batch (connect, snapshot, Kafka group join). */
  readonly firstBatchMs: number;
  /** RSS when the read starts (after the process started and, for the connector, loaded the plugins), KiB. */
  readonly rssBeforeKb: number;
  /** process.resourceUsage().maxRSS at the end: the peak of the whole process, KiB. */
  readonly maxRssKb: number;
}

interface Tally {
  records: number;
  idSum: number;
  batches: number;
  firstAt: number;
}

const idOf = (row: Row | Record<string, unknown>): number => Number(row.id);

/** The window as Sluice boundaries: keys [1, records + 1) or offsets [0, records / partitions) of every partition. */
function boundaries(spec: ChildSpec): Boundaries {
  if (spec.system !== 'kafka') return { boundaryType: 'OFFSET', lowerBound: '1', upperBound: String(spec.records + 1) };
  const parts = Array.from({ length: spec.partitions! }, (_, p) => p);
  const perPartition = spec.records / spec.partitions!;
  return {
    boundaryType: 'OFFSET',
    lowerBound: parts.map((p) => `${p}:0`).join(','),
    upperBound: parts.map((p) => `${p}:${perPartition}`).join(','),
  };
}

function sourceOptions(spec: ChildSpec): Options {
  if (spec.system === 'kafka') return { brokers: [...spec.brokers!], topic: spec.topic!, format: 'json' };
  return { url: spec.url!, table: spec.table!, keyColumn: 'id' };
}

/** The connector's read, as the services do it: options with defaults, validate, fillInBoundaries, openReader, batches, close. */
async function readConnector(spec: ChildSpec, tally: Tally, start: () => void): Promise<void> {
  const set = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  const plugin = set.connectors.get(spec.system);
  if (!plugin)
    throw new Error(`connector '${spec.system}' did not load: ${set.problems.map((p) => p.message).join('; ')}`);
  const hooks = new HookRunner();
  start();
  const options = applyDefaults(plugin.plugin.sourceOptions ?? {}, sourceOptions(spec));
  const window = boundaries(spec);
  const errors = await hooks.call(plugin, 'validate', { role: 'source', options });
  if (errors.length > 0) throw new Error(`options rejected: ${JSON.stringify(errors)}`);
  const bounded = await hooks.call(plugin, 'fillInBoundaries', { options, boundaries: window });
  const reader = await hooks.call(plugin, 'openReader', { options: bounded, boundaries: window });
  try {
    const batches = reader.batches()[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<readonly Row[]>;
      try {
        next = await batches.next();
      } catch (err) {
        throw hooks.wrapError(plugin, 'openReader.batches', err);
      }
      if (next.done) break;
      if (tally.batches++ === 0) tally.firstAt = performance.now();
      for (const row of next.value) tally.idSum += idOf(row);
      tally.records += next.value.length;
    }
  } finally {
    await reader.close();
  }
}

/** kafkajs alone: a consumer in a group of its own, seeking each partition to its start and pausing it at its stop. */
async function readKafkaPlain(spec: ChildSpec, tally: Tally, start: () => void): Promise<void> {
  start();
  const topic = spec.topic!;
  const stop = spec.records / spec.partitions!;
  const kafka = new Kafka({ brokers: [...spec.brokers!], clientId: 'sluice-bench-plain', logLevel: logLevel.WARN });
  const consumer = kafka.consumer({ groupId: `sluice-bench-plain-${randomUUID()}`, allowAutoTopicCreation: false });
  const done = new Set<number>();
  let finish!: () => void;
  let fail!: (err: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  try {
    await consumer.connect();
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (let p = 0; p < spec.partitions!; p++) if (!done.has(p)) consumer.seek({ topic, partition: p, offset: '0' });
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => fail(payload.error));
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (done.has(batch.partition)) return;
        let n = 0;
        for (const m of batch.messages) {
          if (Number(m.offset) >= stop) break;
          tally.idSum += idOf(JSON.parse(m.value!.toString('utf8')) as Record<string, unknown>);
          n++;
        }
        if (n > 0 && tally.batches++ === 0) tally.firstAt = performance.now();
        tally.records += n;
        if (Number(batch.lastOffset()) + 1 >= stop) {
          done.add(batch.partition);
          consumer.pause([{ topic, partitions: [batch.partition] }]);
          if (done.size === spec.partitions) finish();
        }
      },
    });
    await finished;
  } finally {
    await consumer.disconnect();
  }
}

/** node-postgres alone: a server-side cursor (DECLARE, FETCH n) in one REPEATABLE READ, READ ONLY transaction. */
async function readPostgresPlain(spec: ChildSpec, tally: Tally, start: () => void): Promise<void> {
  start();
  const client = new pg.Client({ connectionString: spec.url! });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query(
      `DECLARE bench_cursor NO SCROLL CURSOR FOR SELECT * FROM "${spec.table!}" WHERE id >= 1 AND id < ${spec.records + 1} ORDER BY id`,
    );
    for (;;) {
      const { rows } = await client.query<Record<string, unknown>>(`FETCH ${spec.fetchSize} FROM bench_cursor`);
      if (rows.length === 0) break;
      if (tally.batches++ === 0) tally.firstAt = performance.now();
      for (const row of rows) tally.idSum += idOf(row);
      tally.records += rows.length;
      if (rows.length < spec.fetchSize) break;
    }
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

/** mysql2 alone: one SELECT of the range, rows streamed (query().stream()). */
async function readMysqlPlain(spec: ChildSpec, tally: Tally, start: () => void): Promise<void> {
  start();
  const conn = mysql.createConnection({ uri: spec.url! });
  try {
    await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
    const stream = conn
      .query({
        sql: `SELECT * FROM \`${spec.table!}\` WHERE id >= ? AND id < ? ORDER BY id`,
        values: [1, spec.records + 1],
      })
      .stream();
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (row: Record<string, unknown>) => {
        if (tally.records++ === 0) {
          tally.firstAt = performance.now();
          tally.batches = 1;
        }
        tally.idSum += idOf(row);
      });
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
  } finally {
    await conn.promise().end();
  }
}

/** The read and its figures, in this thread; maxRSS is added by main (the process's, whichever thread read). */
async function measure(spec: ChildSpec): Promise<Omit<ChildResult, 'maxRssKb'>> {
  const tally: Tally = { records: 0, idSum: 0, batches: 0, firstAt: Number.NaN };
  let t0 = Number.NaN;
  let rssBeforeKb = 0;
  const start = () => {
    rssBeforeKb = Math.round(process.memoryUsage().rss / 1024);
    t0 = performance.now();
  };
  if (spec.reader === 'connector') await readConnector(spec, tally, start);
  else if (spec.system === 'kafka') await readKafkaPlain(spec, tally, start);
  else if (spec.system === 'postgres') await readPostgresPlain(spec, tally, start);
  else await readMysqlPlain(spec, tally, start);
  const ms = performance.now() - t0;
  return {
    records: tally.records,
    idSum: tally.idSum,
    batches: tally.batches,
    ms,
    firstBatchMs: tally.firstAt - t0,
    rssBeforeKb,
  };
}

/**
 * SLUICE_BENCH_CONNECTOR_THREAD=pool: the connector reads in a worker thread under the V8 limits the
 * job pool gives its threads (services/operator/runners/pool.ts: its default old-generation cap, or
 * SLUICE_BENCH_HEAP_MB, and its default young generation, or SLUICE_BENCH_YOUNG_GEN_MB; 0 leaves that
 * to V8), as jobs run in the services. The plain clients always read in the main thread, as a plain
 * program would.
 */
async function inPoolThread(spec: ChildSpec): Promise<Omit<ChildResult, 'maxRssKb'>> {
  const { DEFAULT_HEAP_MB, DEFAULT_YOUNG_GENERATION_MB } = await import('../services/operator/runners/pool.js');
  const young = Number(process.env.SLUICE_BENCH_YOUNG_GEN_MB ?? DEFAULT_YOUNG_GENERATION_MB);
  // SLUICE_BENCH_HEAP_MB: another heap cap than the pool's default (V8 grows a heap less the lower its cap).
  const heap = Number(process.env.SLUICE_BENCH_HEAP_MB ?? DEFAULT_HEAP_MB);
  const worker = new Worker(new URL(import.meta.url), {
    workerData: spec,
    resourceLimits: { maxOldGenerationSizeMb: heap, ...(young > 0 ? { maxYoungGenerationSizeMb: young } : {}) },
  });
  let result: Omit<ChildResult, 'maxRssKb'> | undefined;
  worker.on('message', (m: Omit<ChildResult, 'maxRssKb'>) => (result = m));
  // 'exit' comes after the last message; an error in the thread rejects this.
  const [code] = (await once(worker, 'exit')) as [number];
  if (!result) throw new Error(`the reading thread ended (exit code ${code}) without a result`);
  return result;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as ChildSpec;
  const pooled = spec.reader === 'connector' && process.env.SLUICE_BENCH_CONNECTOR_THREAD === 'pool';
  const measured = pooled ? await inPoolThread(spec) : await measure(spec);
  const result: ChildResult = { ...measured, maxRssKb: process.resourceUsage().maxRSS };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (isMainThread)
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error('connector benchmark child failed:', err);
      process.exit(1);
    },
  );
else
  measure(workerData as ChildSpec).then(
    (result) => parentPort!.postMessage(result),
    (err: unknown) => {
      throw err;
    },
  );
