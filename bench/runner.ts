/**
 * Embedded runner benchmark: whole jobs (reader → field mapping → window-scoped writer, batch by batch)
 * against the plain client libraries doing the same copy in the same run.
 *
 * 1. Kafka (librdkafka mock cluster) → file (JSON lines): one OFFSET window of each size, run by
 *    `new EmbeddedRunner({ hooks }).run(spec, ctx)` against a plain kafkajs consumer writing the same
 *    lines to a file (fsync + rename, as the file sink). Target: runner >= 0.95 x plain throughput.
 * 2. PostgreSQL → PostgreSQL (replace-window): the runner against `COPY (SELECT ...) TO STDOUT` piped
 *    into `COPY ... FROM STDIN` (plain pg, simple query protocol; target >= 0.7 x), plus, at the largest
 *    size, the server-side `INSERT ... SELECT` (upper bound) and plain pg doing the connectors'
 *    statements (reported).
 * 3. Two jobs at once on the pool's two threads against the same two one by one, at the largest size:
 *    PostgreSQL → PostgreSQL (with the server's CPU time) and datagen → file (all work in the job
 *    threads). Target: wall time at once / one by one <= 0.6.
 * 4. Peak RSS (maxRSS of a fresh child process per run) of the runner at the smallest and the largest
 *    size. Target: largest / smallest <= 1.15 (it does not grow with the window).
 *
 * Every run is a fresh child process (bench/runner-child.ts); runner and reference alternate which goes
 * first. Every output is checked: line counts and an order-independent digest of the lines (Kafka),
 * row counts and a hash sum of the rows (PostgreSQL) must equal what was seeded (datagen: what the
 * source yields for the window). See
 * docs/benchmarks.md (section 5).
 */
import { execFile, execFileSync } from 'node:child_process';
import { createReadStream, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import pg from 'pg';
import { PG_URL, probePostgres, uniqueName } from '../test/helpers/databases.js';
import { type KafkaMock, startKafkaMock } from '../test/helpers/kafka-mock.js';
import {
  type Pipeline,
  type RunKind,
  type RunnerChildResult,
  type RunnerChildSpec,
  benchBoundaries,
  sourceLines,
  windowIdOf,
} from './runner-child.js';
import { DEFAULT_HEAP_MB, DEFAULT_YOUNG_GENERATION_MB } from '../services/operator/runners/pool.js';
import { fmtRatio, now } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, 'runner-child.ts');
const PROJECT_ROOT = join(here, '..');

export const DEFAULT_SIZES: readonly number[] = [100_000, 1_000_000];
/** Runner throughput / plain kafkajs throughput (Kafka → file), at the largest size. */
const KAFKA_TARGET = 0.95;
/** Runner throughput / the COPY TO | COPY FROM pipe (PostgreSQL → PostgreSQL), at the largest size. */
const PG_COPY_TARGET = 0.7;
/** Two jobs at once on the pool / the same two one after the other, wall time, at the largest size. */
const CONCURRENT_TARGET = 0.6;
/** Peak RSS of the runner at the largest size / at the smallest. */
const MEMORY_TARGET = 1.15;
/**
 * Rounds (every kind once) at the largest size; 1 at smaller sizes. Round i runs the runner first when i
 * is even. PostgreSQL gets one round: its runner run alone takes 40-60 s at 1,000,000 rows here.
 */
const ROUNDS_AT_LARGEST: Readonly<Record<Pipeline, number>> = { 'kafka-file': 2, 'pg-pg': 1, 'datagen-file': 3 };
/**
 * librdkafka's mock cluster keeps at most about 5 MB per partition and silently drops the oldest
 * message sets beyond that: 1,000,000 messages of ~115 bytes need 32 partitions (about 3.6 MB each).
 */
const KAFKA_PARTITIONS = 32;
/** Messages per produce request and requests in flight (the mock slows down with larger requests). */
const PRODUCE_CHUNK = 10_000;
const PRODUCE_IN_FLIGHT = 8;
const CHILD_TIMEOUT_MS = 240_000;

const fmtCount = (n: number) => n.toLocaleString('en-US');
const fmtSeconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const fmtRate = (perSecond: number) =>
  perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)}M/s` : `${(perSecond / 1e3).toFixed(1)}k/s`;
const fmtMiB = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

// ------------------------------------------------------------------------------------------- digests

/** Order-independent digest of lines: their count and two sums of 32-bit hashes (exact: < 2^53 for < 2M lines). */
interface Digest {
  lines: number;
  a: number;
  b: number;
}

const emptyDigest = (): Digest => ({ lines: 0, a: 0, b: 0 });

/** Adds one ASCII line (without its `\n`). */
function addLine(d: Digest, line: string): void {
  let a = 0x811c9dc5;
  let b = 5381;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b, 33) ^ c;
  }
  d.lines++;
  d.a += a >>> 0;
  d.b += b >>> 0;
}

/** The digest of a file's lines (bytes between `\n`s), streamed. */
async function fileDigest(path: string): Promise<Digest> {
  const d = emptyDigest();
  let a = 0x811c9dc5;
  let b = 5381;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === 0x0a) {
        d.lines++;
        d.a += a >>> 0;
        d.b += b >>> 0;
        a = 0x811c9dc5;
        b = 5381;
      } else {
        a = Math.imul(a ^ c, 0x01000193);
        b = Math.imul(b, 33) ^ c;
      }
    }
  }
  return d;
}

const sameDigest = (x: Digest, y: Digest) => x.lines === y.lines && x.a === y.a && x.b === y.b;

// ------------------------------------------------------------------------------------------- children

/**
 * SLUICE_BENCH_CPU_PROF=<dir>: every child writes V8 CPU profiles (node --cpu-prof) into a folder of its
 * own there, named after the run; node's default file names tell the threads apart (the pool's job
 * threads write their own profile, which a fixed --cpu-prof-name would overwrite).
 */
const CPU_PROF_DIR = process.env.SLUICE_BENCH_CPU_PROF;

/**
 * SLUICE_BENCH_NODE_ARGS: more node flags for every child, split on spaces (e.g. `--trace-gc`, whose lines,
 * one per isolate, tell the job thread's collections from the main thread's). NODE_OPTIONS is not passed on.
 */
const EXTRA_NODE_ARGS = (process.env.SLUICE_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
/** SLUICE_BENCH_CHILD_OUT=<dir>: every child's stdout is kept there, in a file named after the run. */
const CHILD_OUT_DIR = process.env.SLUICE_BENCH_CHILD_OUT;

function runChild(spec: RunnerChildSpec): Promise<RunnerChildResult> {
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  const extraNodeArgs = CPU_PROF_DIR
    ? [
        '--cpu-prof',
        `--cpu-prof-dir=${join(CPU_PROF_DIR, `${spec.pipeline}-${spec.kind}-${spec.records}-${Date.now()}`)}`,
      ]
    : [];
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [
        ...extraNodeArgs,
        ...EXTRA_NODE_ARGS,
        '--conditions=development',
        '--import',
        'tsx',
        CHILD,
        JSON.stringify(spec),
      ],
      {
        cwd: PROJECT_ROOT,
        // The file sink writes only under its roots: the runs' temporary folders are under the system's.
        env: { ...env, KAFKAJS_NO_PARTITIONER_WARNING: '1', SLUICE_FILE_ROOTS: env.SLUICE_FILE_ROOTS ?? tmpdir() },
        timeout: CHILD_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (CHILD_OUT_DIR)
          writeFileSync(join(CHILD_OUT_DIR, `${spec.pipeline}-${spec.kind}-${spec.records}-${Date.now()}.txt`), stdout);
        // The result is the last JSON line (flags such as --trace-gc print to stdout as well).
        const line =
          stdout
            .trim()
            .split('\n')
            .findLast((l) => l.startsWith('{')) ?? '';
        if (err || !line.startsWith('{')) {
          const why = err
            ? err.killed
              ? `killed after ${CHILD_TIMEOUT_MS} ms`
              : err.message.split('\n')[0]
            : 'no result line';
          reject(
            new Error(
              `${spec.pipeline} ${spec.kind} run of ${spec.records}: ${why}; stderr: ${stderr.trim().split('\n').slice(-6).join(' | ')}`,
            ),
          );
          return;
        }
        resolve(JSON.parse(line) as RunnerChildResult);
      },
    );
  });
}

/** A child's result, and the database server's CPU time over the run when it could be read (ms). */
type Run = RunnerChildResult & { readonly serverCpuMs?: number };

interface Cell {
  readonly pipeline: Pipeline;
  readonly records: number;
  readonly kind: RunKind;
  readonly runs: Run[];
}

interface Outcome {
  readonly pipeline: Pipeline;
  readonly skipped?: string;
  readonly failed?: string;
  readonly seed?: string;
  readonly cells: Cell[];
}

/** Runs the cells of one size: `pairs` rounds of every kind, the order rotating each round. */
async function runRounds(cells: readonly Cell[], pairs: number, run: (cell: Cell) => Promise<Run>): Promise<void> {
  for (let i = 0; i < pairs; i++) {
    const order = i % 2 === 0 ? cells : [...cells].reverse();
    for (const cell of order) cell.runs.push(await run(cell));
  }
}

// ------------------------------------------------------------------------------------------- Kafka → file

/** Message j: id j + 1 in partition j % P at offset floor(j / P), so offsets [0, n / P) of every partition hold ids 1..n. */
function kafkaValue(j: number): string {
  return JSON.stringify({
    id: j + 1,
    ts: 1_767_225_600_000 + j,
    customer: j % 1000,
    amount: (j % 10_000) / 100,
    status: j % 7 === 0 ? 'cancelled' : 'shipped',
    note: `order note ${j + 1}`,
  });
}

async function benchKafka(sizes: readonly number[], progress: (line: string) => void): Promise<Outcome> {
  const cells: Cell[] = [];
  const largest = sizes[sizes.length - 1]!;
  const topic = uniqueName('sluice_bench_runner');
  let mock: KafkaMock;
  try {
    mock = await startKafkaMock({ [topic]: KAFKA_PARTITIONS });
  } catch (err) {
    return { pipeline: 'kafka-file', skipped: message(err), cells };
  }
  const dirs: string[] = [];
  try {
    // Seeding, and the digest of each window's lines (the values are what the file must hold, one per line).
    const expected = new Map<number, Digest>();
    const t0 = now();
    const kafka = new Kafka({ brokers: mock.brokers, clientId: 'sluice-bench-seed', logLevel: logLevel.WARN });
    const producer = kafka.producer({
      idempotent: false,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    try {
      const running = emptyDigest();
      const inFlight: Promise<unknown>[] = [];
      for (let i = 0; i < largest; i += PRODUCE_CHUNK) {
        const messages = [];
        for (let j = i; j < Math.min(largest, i + PRODUCE_CHUNK); j++) {
          const value = kafkaValue(j);
          messages.push({ partition: j % KAFKA_PARTITIONS, value });
          addLine(running, value);
          if (sizes.includes(j + 1)) expected.set(j + 1, { ...running });
        }
        inFlight.push(producer.send({ topic, acks: 1, messages }));
        if (inFlight.length >= PRODUCE_IN_FLIGHT) await inFlight.shift();
      }
      await Promise.all(inFlight);
    } finally {
      await producer.disconnect();
    }
    const seedMs = now() - t0;
    const admin = kafka.admin();
    await admin.connect();
    const marks = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
    const perPartition = String(largest / KAFKA_PARTITIONS);
    const bad = marks.filter((m) => m.low !== '0' || m.high !== perPartition);
    if (bad.length > 0)
      throw new Error(
        `the mock kept partitions ${bad.map((m) => `${m.partition}:[${m.low},${m.high})`).join(' ')} instead of [0,${perPartition}) each (its per-partition size limit?)`,
      );
    const seed = `${fmtCount(largest)} messages in ${fmtSeconds(seedMs)} (kafkajs producer, acks 1, ${PRODUCE_CHUNK} per request, ${PRODUCE_IN_FLIGHT} in flight, ${KAFKA_PARTITIONS} partitions)`;
    progress(`   kafka → file: seeded ${seed}`);

    for (const records of sizes) {
      const runner: Cell = { pipeline: 'kafka-file', records, kind: 'runner', runs: [] };
      const plain: Cell = { pipeline: 'kafka-file', records, kind: 'plain', runs: [] };
      cells.push(runner, plain);
      await runRounds([runner, plain], records === largest ? ROUNDS_AT_LARGEST['kafka-file'] : 1, async (cell) => {
        const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-runner-'));
        dirs.push(dir);
        try {
          const result = await runChild({
            pipeline: 'kafka-file',
            kind: cell.kind,
            records,
            brokers: mock.brokers,
            topic,
            partitions: KAFKA_PARTITIONS,
            dir,
          });
          const digest = await fileDigest(result.file!);
          const want = expected.get(records)!;
          if (!sameDigest(digest, want) || result.records !== records) {
            throw new Error(
              `the ${cell.kind} wrote ${digest.lines} lines (${result.records} records reported), digest ${digest.a}/${digest.b}; expected ${want.lines} lines, digest ${want.a}/${want.b}`,
            );
          }
          return result;
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
      progress(`   kafka → file: ${fmtCount(records)} done`);
    }
    return { pipeline: 'kafka-file', seed, cells };
  } catch (err) {
    return { pipeline: 'kafka-file', cells, failed: message(err) };
  } finally {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    await mock.stop().catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------- datagen → file

/**
 * Two datagen → file jobs on the pool, at the largest size only: all of their work (generating, JSON
 * encoding, writing) is JS in the job threads, with no server beside them on the cores, so at once / one
 * by one shows whether the pool's two threads use both cores. Each file must hold the lines the datagen
 * source yields for the window (count and order-independent digest).
 */
async function benchDatagen(sizes: readonly number[], progress: (line: string) => void): Promise<Outcome> {
  const cells: Cell[] = [];
  const records = sizes[sizes.length - 1]!;
  const dirs: string[] = [];
  try {
    const want = emptyDigest();
    for await (const line of sourceLines({ pipeline: 'datagen-file', kind: 'runner', records })) addLine(want, line);
    const round = [...POOL_KINDS, ...CPU_KINDS].map((kind): Cell => ({
      pipeline: 'datagen-file',
      records,
      kind,
      runs: [],
    }));
    cells.push(...round);
    await runRounds(round, ROUNDS_AT_LARGEST['datagen-file'], async (cell) => {
      if (CPU_KINDS.includes(cell.kind)) {
        const result = await runChild({ pipeline: 'datagen-file', kind: cell.kind, records });
        if (result.records !== 2 * records)
          throw new Error(`the ${cell.kind} run encoded ${result.records} records, expected ${2 * records}`);
        return result;
      }
      const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-runner-'));
      const dir2 = await mkdtemp(join(tmpdir(), 'sluice-bench-runner-'));
      dirs.push(dir, dir2);
      try {
        const result = await runChild({ pipeline: 'datagen-file', kind: cell.kind, records, dir, dir2 });
        for (const file of [result.file!, result.file2!]) {
          const got = await fileDigest(file);
          if (!sameDigest(got, want))
            throw new Error(
              `the ${cell.kind} run wrote ${got.lines} lines, digest ${got.a}/${got.b}, in ${file}; expected ${want.lines} lines, digest ${want.a}/${want.b}`,
            );
        }
        if (result.records !== 2 * records)
          throw new Error(`the ${cell.kind} run reported ${result.records} records, expected ${2 * records}`);
        return result;
      } finally {
        await Promise.all([dir, dir2].map((d) => rm(d, { recursive: true, force: true })));
      }
    });
    progress(`   datagen → file: ${fmtCount(records)} done`);
    return { pipeline: 'datagen-file', cells };
  } catch (err) {
    return { pipeline: 'datagen-file', cells, failed: message(err) };
  } finally {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

// ------------------------------------------------------------------------------------------- PostgreSQL → PostgreSQL

/**
 * The application_name the runs' connections carry: set in the URL, which pg lets win over the
 * connectors' own 'sluice', so that the server CPU below counts this benchmark's sessions and no other
 * client's.
 */
const RUN_APPLICATION_NAME = `sluice-bench-${process.pid}`;
const RUN_PG_URL = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}application_name=${RUN_APPLICATION_NAME}`;

/**
 * CPU time of the run's own backends, when the PostgreSQL server runs on this machine and /proc can be
 * read: while a run goes on, the backends named RUN_APPLICATION_NAME are listed every 100 ms, and each
 * one's utime + stime (its whole life, which lies inside the run) is read from /proc; the sum of the last
 * readings is the server CPU of the run. Other clients' sessions do not count; the server's background
 * processes (WAL writer, checkpointer) and a backend's last < 100 ms do not either.
 */
interface ServerCpu {
  /** Starts sampling; `stop` ends it and gives the CPU time of the backends seen (ms). */
  readonly start: () => { readonly stop: () => Promise<number> };
}

async function serverCpuOf(client: pg.Client): Promise<ServerCpu | undefined> {
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    if (!(await readFile(`/proc/${rows[0]!.pid}/comm`, 'utf8')).startsWith('postgres')) return undefined;
    const tickMs = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    /** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
    const ticks = async (pid: number) => {
      const text = await readFile(`/proc/${pid}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      return Number(f[11]) + Number(f[12]);
    };
    return {
      start() {
        const seen = new Map<number, number>();
        let stopped = false;
        const sample = async () => {
          const res = await client.query<{ pid: number }>(
            'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
            [RUN_APPLICATION_NAME],
          );
          for (const { pid } of res.rows) {
            const t = await ticks(pid).catch(() => undefined);
            if (t !== undefined) seen.set(pid, Math.max(seen.get(pid) ?? 0, t));
          }
        };
        const loop = (async () => {
          while (!stopped) {
            await sample().catch(() => {});
            await new Promise((r) => setTimeout(r, 100));
          }
        })();
        return {
          async stop() {
            stopped = true;
            await loop;
            let total = 0;
            for (const t of seen.values()) total += t;
            return total * tickMs;
          },
        };
      },
    };
  } catch {
    return undefined;
  }
}

const PG_DST_KINDS: readonly RunKind[] = [
  'runner',
  'copy',
  'insert-select',
  'plain',
  'pool-concurrent',
  'pool-sequential',
];
/** Two jobs of one window on the worker-thread pool, at the largest size: their second destination. */
const POOL_KINDS: readonly RunKind[] = ['pool-concurrent', 'pool-sequential'];
/**
 * datagen → file's reference: the same reads and encoding in two plain threads, with no runner and no file,
 * at once and one by one. Their ratio is what this machine's second core gives such work: the ceiling for
 * the jobs' own ratio.
 */
const CPU_KINDS: readonly RunKind[] = ['cpu-concurrent', 'cpu-sequential'];

async function benchPostgres(sizes: readonly number[], progress: (line: string) => void): Promise<Outcome> {
  const cells: Cell[] = [];
  const probe = await probePostgres();
  if (!probe.ok) return { pipeline: 'pg-pg', skipped: probe.reason, cells };
  const largest = sizes[sizes.length - 1]!;
  const src = uniqueName('sluice_bench_runner_src');
  const dst = Object.fromEntries(
    PG_DST_KINDS.map((k) => [k, uniqueName(`sluice_bench_runner_${k.replace('-', '_')}`)]),
  ) as Record<RunKind, string>;
  const dst2 = Object.fromEntries(
    POOL_KINDS.map((k) => [k, uniqueName(`sluice_bench_runner_${k.replace('-', '_')}_2`)]),
  ) as Partial<Record<RunKind, string>>;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  const server = await serverCpuOf(client);
  const cols = 'id, ts, customer, amount, score, active, note, attrs';
  try {
    const t0 = now();
    await client.query(
      `CREATE TABLE "${src}" (id bigint PRIMARY KEY, ts timestamptz NOT NULL, customer integer NOT NULL, amount numeric(12,2) NOT NULL, score double precision NOT NULL, active boolean NOT NULL, note text NOT NULL, attrs jsonb NOT NULL)`,
    );
    await client.query(
      `INSERT INTO "${src}" SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 millisecond', g % 1000, (g % 100000) / 100.0, g / 7.0::float8, g % 3 = 0,
              'order note ' || g, jsonb_build_object('sku', 'sku-' || (g % 5000), 'qty', g % 9, 'tags', jsonb_build_array('a', 'b'))
         FROM generate_series(1, $1::int) g`,
      [largest],
    );
    const seedMs = now() - t0;
    // Hint bits and statistics set once, the table in cache: no run pays for them.
    await client.query(`VACUUM ANALYZE "${src}"`);
    for (const table of [...Object.values(dst), ...Object.values(dst2)]) {
      // What the sink's createTable would make: the source's columns, the window column, its index.
      await client.query(
        `CREATE TABLE "${table}" (id bigint, ts timestamptz, customer integer, amount numeric(12,2), score double precision, active boolean, note text, attrs jsonb, sluice_window text NOT NULL)`,
      );
      await client.query(`CREATE INDEX ON "${table}" (sluice_window)`);
    }
    const seed = `${fmtCount(largest)} rows in ${fmtSeconds(seedMs)} (INSERT ... SELECT FROM generate_series; 8 columns: bigint, timestamptz, integer, numeric, float8, boolean, text, jsonb)`;
    progress(`   postgres → postgres: seeded ${seed}`);

    const hashOf = async (from: string, params: unknown[]) => {
      const res = await client.query<{ n: string; h: string | null }>(
        `SELECT count(*) AS n, sum(hashtextextended(t::text, 0))::text AS h FROM (${from}) t`,
        params,
      );
      return `${res.rows[0]!.n}/${res.rows[0]!.h}`;
    };
    for (const records of sizes) {
      const windowId = windowIdOf(benchBoundaries({ pipeline: 'pg-pg', records }));
      const want = await hashOf(`SELECT ${cols}, $1::text AS sluice_window FROM "${src}" WHERE id >= 1 AND id < $2`, [
        windowId,
        records + 1,
      ]);
      // The server-side upper bound is cheap: every size. Plain pg with the connectors' SQL is as slow as
      // the runner: only at the smallest size, to keep the whole benchmark within a few minutes.
      const kinds: RunKind[] = [
        'runner',
        'copy',
        'insert-select',
        ...(records === sizes[0] ? (['plain'] as const) : []),
        ...(records === largest ? POOL_KINDS : []),
      ];
      const round = kinds.map((kind): Cell => ({ pipeline: 'pg-pg', records, kind, runs: [] }));
      cells.push(...round);
      await runRounds(round, records === largest ? ROUNDS_AT_LARGEST['pg-pg'] : 1, async (cell) => {
        // Each run starts from an empty table and a fresh checkpoint: no run pays for another's WAL or dead rows.
        const tables = [dst[cell.kind], ...(dst2[cell.kind] ? [dst2[cell.kind]!] : [])];
        for (const t of tables) await client.query(`TRUNCATE "${t}"`);
        await client.query('CHECKPOINT').catch(() => {});
        const sampler = server?.start();
        const child = await runChild({
          pipeline: 'pg-pg',
          kind: cell.kind,
          records,
          url: RUN_PG_URL,
          srcTable: src,
          dstTable: dst[cell.kind],
          ...(dst2[cell.kind] ? { dstTable2: dst2[cell.kind]! } : {}),
        });
        const serverCpuMs = await sampler?.stop();
        const result: Run = serverCpuMs !== undefined ? { ...child, serverCpuMs } : child;
        for (const t of tables) {
          const got = await hashOf(`SELECT ${cols}, sluice_window FROM "${t}"`, []);
          if (got !== want || result.records !== records * tables.length)
            throw new Error(
              `the ${cell.kind} run left ${got} (count/hash sum; ${result.records} records reported) in ${t}, expected ${want}`,
            );
        }
        for (const t of tables) await client.query(`TRUNCATE "${t}"`);
        return result;
      });
      progress(`   postgres → postgres: ${fmtCount(records)} done`);
    }
    return { pipeline: 'pg-pg', seed, cells };
  } catch (err) {
    return { pipeline: 'pg-pg', cells, failed: message(err) };
  } finally {
    for (const table of [src, ...Object.values(dst), ...Object.values(dst2)])
      await client.query(`DROP TABLE IF EXISTS "${table}"`).catch(() => {});
    await client.end().catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------- report

function table(out: (line?: string) => void, rows: readonly (readonly string[])[]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  rows.forEach((r, n) => {
    out(
      `   ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')}`.trimEnd(),
    );
    if (n === 0) out(`   ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  });
}

/** The fastest run of a cell (the least disturbed by the noisy machine), and its figures. */
function best(cell: Cell) {
  const run = cell.runs.reduce((a, b) => (b.ms < a.ms ? b : a));
  // JSON has no NaN: a run with no first batch to time (INSERT ... SELECT) comes back with null.
  const firstKnown = typeof run.firstBatchMs === 'number' && Number.isFinite(run.firstBatchMs);
  return {
    run,
    firstKnown,
    rate: (cell.records / run.ms) * 1000,
    /** Records per second once the first batch was written (without connect, snapshot, group join). */
    streamRate: (cell.records / (run.ms - run.firstBatchMs)) * 1000,
    peakKb: Math.max(...cell.runs.map((r) => r.maxRssKb)),
    beforeKb: Math.max(...cell.runs.map((r) => r.rssBeforeKb)),
  };
}

const LABEL: Readonly<Record<Pipeline, Readonly<Partial<Record<RunKind, string>>>>> = {
  'kafka-file': { runner: 'runner', plain: 'plain kafkajs → file' },
  'pg-pg': {
    runner: 'runner',
    copy: 'COPY TO | COPY FROM',
    'insert-select': 'INSERT ... SELECT (server)',
    plain: 'plain pg, same SQL',
    'pool-concurrent': 'runner pool: 2 jobs at once',
    'pool-sequential': 'runner pool: 2 jobs one by one',
  },
  'datagen-file': {
    'pool-concurrent': 'runner pool: 2 jobs at once',
    'pool-sequential': 'runner pool: 2 jobs one by one',
    'cpu-concurrent': 'ceiling: 2 threads encoding at once',
    'cpu-sequential': 'ceiling: 2 threads encoding one by one',
  },
};
const PIPELINE: Readonly<Record<Pipeline, string>> = {
  'kafka-file': 'kafka → file',
  'pg-pg': 'postgres → postgres',
  'datagen-file': 'datagen → file',
};

function report(out: (line?: string) => void, outcomes: readonly Outcome[], sizes: readonly number[]): void {
  const largest = sizes[sizes.length - 1]!;
  const smallest = sizes[0]!;
  const rows: string[][] = [
    [
      'pipeline',
      'records',
      'run',
      'runs',
      'best',
      'records/s',
      '1st batch',
      'rec/s after 1st',
      'RSS at start',
      'peak RSS',
      'CPU: process',
      'CPU: server',
      'cores busy',
    ],
  ];
  for (const o of outcomes) {
    for (const cell of o.cells) {
      if (cell.runs.length === 0) continue;
      const b = best(cell);
      rows.push([
        PIPELINE[o.pipeline],
        fmtCount(cell.records),
        LABEL[o.pipeline][cell.kind] ?? cell.kind,
        cell.runs.map((r) => (r.ms / 1000).toFixed(2)).join(' / ') + ' s',
        fmtSeconds(b.run.ms),
        fmtRate(b.rate),
        b.firstKnown ? `${b.run.firstBatchMs.toFixed(0)} ms` : '-',
        b.firstKnown ? fmtRate(b.streamRate) : '-',
        fmtMiB(b.beforeKb),
        fmtMiB(b.peakKb),
        typeof b.run.cpuMs === 'number' ? fmtSeconds(b.run.cpuMs) : '-',
        b.run.serverCpuMs !== undefined ? fmtSeconds(b.run.serverCpuMs) : '-',
        // CPU time of the process and the server over the wall time: how many of the cores the run kept busy.
        typeof b.run.cpuMs === 'number' ? ((b.run.cpuMs + (b.run.serverCpuMs ?? 0)) / b.run.ms).toFixed(2) : '-',
      ]);
    }
  }
  if (rows.length > 1) {
    table(out, rows);
    out(
      "   CPU: process = all threads of the run's process; server = the run's own backends (its application_name, read",
    );
    out('   from /proc when the server runs here); cores busy = (process + server CPU) / wall time.');
  }
  out();

  const cellOf = (o: Outcome, records: number, kind: RunKind) =>
    o.cells.find((c) => c.records === records && c.kind === kind && c.runs.length > 0);
  const ratio = (o: Outcome, records: number, ref: RunKind, stream = false) => {
    const r = cellOf(o, records, 'runner');
    const p = cellOf(o, records, ref);
    if (!r || !p) return undefined;
    if (stream && !(best(r).firstKnown && best(p).firstKnown)) return Number.NaN;
    return stream ? best(r).streamRate / best(p).streamRate : best(r).rate / best(p).rate;
  };
  const fmtMaybe = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : fmtRatio(x));
  const ratios: string[][] = [
    [
      'runner / reference, records/s',
      ...sizes.map((n) => `at ${fmtCount(n)}`),
      `after 1st batch, ${fmtCount(largest)}`,
      'target',
      'result',
    ],
  ];
  const notes: string[] = [];
  for (const o of outcomes) {
    if (o.skipped) notes.push(`${PIPELINE[o.pipeline]}: SKIPPED (${o.skipped})`);
    if (o.failed) notes.push(`${PIPELINE[o.pipeline]}: FAILED (${o.failed})`);
    const refs: RunKind[] = o.pipeline === 'kafka-file' ? ['plain'] : ['copy', 'plain', 'insert-select'];
    for (const ref of refs) {
      const at = sizes.map((n) => ratio(o, n, ref));
      if (at.every((x) => x === undefined)) continue;
      const r = ratio(o, largest, ref);
      const target = o.pipeline === 'kafka-file' ? KAFKA_TARGET : ref === 'copy' ? PG_COPY_TARGET : undefined;
      ratios.push([
        `${PIPELINE[o.pipeline]} vs ${LABEL[o.pipeline][ref]}`,
        ...at.map(fmtMaybe),
        fmtMaybe(ratio(o, largest, ref, true)),
        target !== undefined ? `>= ${fmtRatio(target)}` : 'none',
        target === undefined ? 'reported' : r === undefined ? '-' : verdict(r >= target),
      ]);
    }
    const together = cellOf(o, largest, 'pool-concurrent');
    const apart = cellOf(o, largest, 'pool-sequential');
    if (together && apart) {
      const t = best(together).run.ms / best(apart).run.ms;
      ratios.push([
        `${PIPELINE[o.pipeline]}: 2 jobs at once / one by one, wall time (pool, 2 threads)`,
        ...sizes.map((n) => (n === largest ? fmtRatio(t) : '-')),
        '-',
        `<= ${fmtRatio(CONCURRENT_TARGET)}`,
        verdict(t <= CONCURRENT_TARGET),
      ]);
      const cpuTogether = cellOf(o, largest, 'cpu-concurrent');
      const cpuApart = cellOf(o, largest, 'cpu-sequential');
      if (cpuTogether && cpuApart) {
        const c = best(cpuTogether).run.ms / best(cpuApart).run.ms;
        ratios.push([
          `${PIPELINE[o.pipeline]}: the ceiling, its reads and encoding in 2 plain threads (no runner, no file), at once / one by one`,
          ...sizes.map((n) => (n === largest ? fmtRatio(c) : '-')),
          '-',
          'none',
          'reported',
        ]);
      }
    }
  }
  if (ratios.length > 1) {
    table(out, ratios);
    out();
  }

  if (smallest !== largest) {
    const memory: string[][] = [
      [
        'peak RSS (maxRSS)',
        'run',
        `at ${fmtCount(smallest)}`,
        `at ${fmtCount(largest)}`,
        'ratio',
        `${fmtCount(largest)}: 1st / 2nd half`,
        `live heap ${fmtCount(smallest)} / ${fmtCount(largest)}`,
        'target',
        'result',
      ],
    ];
    /** Highest heap after a full GC over the cell's runs, and how many full GCs ran. */
    const live = (cell: Cell) => {
      const kb = Math.max(...cell.runs.map((r) => r.liveHeapKb));
      const gcs = cell.runs.reduce((n, r) => n + r.fullGcs, 0);
      return gcs === 0 ? '-' : fmtMiB(kb);
    };
    for (const o of outcomes) {
      for (const kind of ['runner', ...(o.pipeline === 'kafka-file' ? ['plain'] : ['copy'])] as RunKind[]) {
        const small = cellOf(o, smallest, kind);
        const big = cellOf(o, largest, kind);
        if (!small || !big) continue;
        const g = best(big).peakKb / best(small).peakKb;
        // The halves of the largest run with the highest peak.
        const halves = big.runs.reduce((a, b) => (b.maxRssKb > a.maxRssKb ? b : a)).rssHalvesKb;
        memory.push([
          PIPELINE[o.pipeline],
          LABEL[o.pipeline][kind] ?? kind,
          fmtMiB(best(small).peakKb),
          fmtMiB(best(big).peakKb),
          fmtRatio(g),
          `${fmtMiB(halves[0])} / ${fmtMiB(halves[1])}`,
          `${live(small)} / ${live(big)}`,
          kind === 'runner' ? `<= ${fmtRatio(MEMORY_TARGET)}` : '',
          kind === 'runner' ? verdict(g <= MEMORY_TARGET) : '',
        ]);
      }
    }
    if (memory.length > 1) {
      table(out, memory);
      out(
        '   1st / 2nd half: highest RSS sampled every 100 ms in each half of the run; live heap: highest heapUsed just after',
      );
      out(
        "   one of V8's own full GCs in the run ('-': none ran). maxRSS also counts the garbage V8 lets pile up before it collects.",
      );
      out();
    }
  }
  for (const n of notes) out(`   ${n}`);
}

/**
 * Runs the benchmark and prints its tables with `out`. Missed targets are printed as MISSED; a pipeline
 * whose service is absent is SKIPPED. Throws (after printing and cleaning up) when a run failed or
 * wrote something other than what was seeded.
 */
export async function benchRunner(out: (line?: string) => void, options: { sizes?: number[] } = {}): Promise<void> {
  const sizes = [...new Set(options.sizes ?? DEFAULT_SIZES)].sort((a, b) => a - b);
  if (sizes.length === 0 || sizes.some((n) => !Number.isSafeInteger(n) || n <= 0 || n % KAFKA_PARTITIONS !== 0)) {
    throw new Error(
      `sizes must be positive integers divisible by ${KAFKA_PARTITIONS} (the Kafka partitions), got ${sizes.join(', ')}`,
    );
  }
  const started = now();
  out(
    `Embedded runner: whole jobs of ${sizes.map(fmtCount).join(' and ')} records, new EmbeddedRunner({ hooks }).run(spec, ctx) vs plain clients doing the same copy`,
  );
  out(
    `   every run in a fresh child process (peak RSS = its maxRSS); at ${fmtCount(sizes[sizes.length - 1]!)} ${ROUNDS_AT_LARGEST['kafka-file']} rounds kafka (order alternating), ${ROUNDS_AT_LARGEST['pg-pg']} postgres; 1 below; best run shown`,
  );
  out(
    '   kafka → file: plain = kafkajs consumer, JSON.parse + JSON.stringify per message, same JSON lines, fsync + rename',
  );
  out(
    '   postgres → postgres (replace-window): COPY (SELECT ...) TO STDOUT piped into COPY ... FROM STDIN (plain pg, simple query protocol);',
  );
  out(
    `   also INSERT ... SELECT on the server (upper bound) and, at ${fmtCount(sizes[0]!)}, plain pg with the connectors' SQL (keyset SELECT 5000, INSERT 1000 rows)`,
  );
  if (process.env.SLUICE_BENCH_RUNNER === 'pool')
    out(
      `   SLUICE_BENCH_RUNNER=pool: the runner's jobs run on the worker-thread pool (PooledRunner, 1 thread, heap cap ${process.env.SLUICE_BENCH_HEAP_MB ?? DEFAULT_HEAP_MB} MiB, young generation ${process.env.SLUICE_BENCH_YOUNG_GEN_MB ?? DEFAULT_YOUNG_GENERATION_MB} MiB)`,
    );
  // SLUICE_BENCH_ONLY=pg-pg (or kafka-file, datagen-file): one pipeline only; the others show as skipped.
  const only = process.env.SLUICE_BENCH_ONLY;
  const skip = (p: Pipeline): Outcome => ({
    pipeline: p,
    skipped: `not selected (SLUICE_BENCH_ONLY=${only})`,
    cells: [],
  });
  const outcomes: Outcome[] = [];
  outcomes.push(only && only !== 'kafka-file' ? skip('kafka-file') : await benchKafka(sizes, out));
  outcomes.push(only && only !== 'pg-pg' ? skip('pg-pg') : await benchPostgres(sizes, out));
  outcomes.push(only && only !== 'datagen-file' ? skip('datagen-file') : await benchDatagen(sizes, out));
  const seeds = outcomes.filter((o) => o.seed).map((o) => `${PIPELINE[o.pipeline]} ${o.seed}`);
  out(`   seeding, not part of any run: ${seeds.join('; ') || 'none'}`);
  out();
  report(out, outcomes, sizes);
  out(`   runner benchmark total ${fmtSeconds(now() - started)}`);
  const failed = outcomes.filter((o) => o.failed);
  if (failed.length > 0)
    throw new Error(`runner benchmark: ${failed.map((o) => `${PIPELINE[o.pipeline]}: ${o.failed}`).join('; ')}`);
}
