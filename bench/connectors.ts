/**
 * Connector read benchmark: one OFFSET window of 100,000 and of 1,000,000 records read to the end through
 * the kafka, postgres and mysql connectors (loadPlugins + HookRunner: validate, fillInBoundaries,
 * openReader, batches(), close(), as the services run them), against the plain client library reading
 * the same range in the same run: a kafkajs consumer, a `pg` cursor (DECLARE + FETCH), a mysql2
 * query().stream(). Every read runs in a fresh child process (bench/connectors-child.ts) so that its peak
 * RSS is its own; reads alternate connector-first and plain-first. Targets: the connector reaches at
 * least 0.8 of the plain client's throughput at the largest size, and its peak RSS does not grow with
 * the window (largest size vs smallest); one more connector read of the largest window under a capped
 * V8 old space shows whether the reader's live memory is bounded. See docs/benchmarks.md (section 3).
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { MYSQL_URL, PG_URL, probeMysql, probePostgres, uniqueName } from '../test/helpers/databases.js';
import { type KafkaMock, startKafkaMock } from '../test/helpers/kafka-mock.js';
import type { ChildResult, ChildSpec, ReaderKind, System } from './connectors-child.js';
import { fmtRatio, now } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, 'connectors-child.ts');
const PROJECT_ROOT = join(here, '..');

export const DEFAULT_SIZES: readonly number[] = [100_000, 1_000_000];
/** Pairs (connector + plain) per size; pair i runs the connector first when i is even. */
const PAIRS = 2;
/** Connector throughput / plain client throughput, at the largest size. */
const THROUGHPUT_TARGET = 0.8;
/** Peak RSS at the largest size / peak RSS at the smallest: "does not grow with the window". */
const MEMORY_TARGET = 1.15;
/**
 * V8 old-space cap (MiB) of one more connector read at the largest size: a reader that kept the window
 * cannot finish under it, a bounded one does. 1,000,000 rows kept alive take about 155 MiB of heap (SQL
 * rows of this table) and 56 MiB (the Kafka JSON rows) on top of what kafkajs itself needs, which is more
 * than 64 MiB: it decodes a whole fetch response (up to 10 MB of records) at once, and the plain kafkajs
 * consumer runs out of heap at 64 MiB. (64 MiB for the SQL readers works too, but costs 30 s of GC.)
 */
const HEAP_CAP_MB = 96;
/**
 * Partitions of the Kafka topic. librdkafka's mock cluster keeps only about the last 5 MB of each
 * partition and drops older message sets (4 partitions of 150,000 messages of ~95 bytes: the log start
 * moved to 95,000), so 1,000,000 small messages need 16 partitions (62,500 messages, about 3.5 MB each)
 * to stay readable from offset 0. Seeding checks that every partition still starts at 0.
 */
const KAFKA_PARTITIONS = 16;
/**
 * Rows per batch given to the plain readers where they have such a knob: the connectors' defaults, except the
 * PostgreSQL cursor, which keeps FETCH 5000 (fewer round trips) while the postgres connector's default is 1,000.
 */
const FETCH_SIZE: Readonly<Record<System, number>> = { kafka: 500, postgres: 5000, mysql: 5000 };
const SYSTEMS: readonly System[] = ['postgres', 'mysql', 'kafka'];
const CHILD_TIMEOUT_MS = 240_000;

interface Seeded {
  readonly base: Omit<ChildSpec, 'reader' | 'records' | 'fetchSize'>;
  readonly seedMs: number;
  readonly how: string;
  cleanup(): Promise<void>;
}

interface Cell {
  readonly system: System;
  readonly records: number;
  readonly reader: ReaderKind;
  readonly runs: ChildResult[];
}

interface SystemOutcome {
  readonly system: System;
  readonly skipped?: string;
  readonly failed?: string;
  readonly seed?: { ms: number; how: string; records: number };
  readonly cells: Cell[];
  /** The connector's read of the largest size under --max-old-space-size=HEAP_CAP_MB. */
  readonly capped?:
    { readonly ok: true; readonly result: ChildResult } | { readonly ok: false; readonly reason: string };
}

// ------------------------------------------------------------------------------------------- seeding

async function seedPostgres(records: number): Promise<Seeded> {
  const table = uniqueName('sluice_bench_conn');
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  const drop = async () => {
    await client.query(`DROP TABLE IF EXISTS "${table}"`).catch(() => {});
    await client.end().catch(() => {});
  };
  try {
    const t0 = now();
    await client.query(
      `CREATE TABLE "${table}" (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, customer integer NOT NULL, amount double precision NOT NULL, note text NOT NULL)`,
    );
    await client.query(
      `INSERT INTO "${table}" SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 millisecond', g % 1000, (g % 10000) / 100.0, 'order note ' || g FROM generate_series(1, $1::int) g`,
      [records],
    );
    const seedMs = now() - t0;
    // Hint bits and statistics set once, and the table in cache, so that no read pays for them.
    await client.query(`VACUUM ANALYZE "${table}"`);
    await client.query(`SELECT count(*), sum(length(note)) FROM "${table}"`);
    return {
      base: { system: 'postgres', url: PG_URL, table },
      seedMs,
      how: 'INSERT ... SELECT FROM generate_series',
      cleanup: drop,
    };
  } catch (err) {
    await drop();
    throw err;
  }
}

async function seedMysql(records: number): Promise<Seeded> {
  const table = uniqueName('sluice_bench_conn');
  const conn = await mysql.createConnection({ uri: MYSQL_URL });
  const drop = async () => {
    await conn.query(`DROP TABLE IF EXISTS \`${table}\``).catch(() => {});
    await conn.end().catch(() => {});
  };
  try {
    const t0 = now();
    await conn.query(
      `CREATE TABLE \`${table}\` (id BIGINT NOT NULL PRIMARY KEY, created_at DATETIME(3) NOT NULL, customer INT NOT NULL, amount DOUBLE NOT NULL, note VARCHAR(64) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    );
    const columns = `n, TIMESTAMP'2026-01-01 00:00:00' + INTERVAL n * 1000 MICROSECOND, n % 1000, (n % 10000) / 100, CONCAT('order note ', n)`;
    let how = "INSERT ... SELECT FROM seq_1_to_N (MariaDB's Sequence engine)";
    try {
      await conn.query(`INSERT INTO \`${table}\` SELECT ${columns} FROM (SELECT seq AS n FROM seq_1_to_${records}) s`);
    } catch {
      // MySQL has no Sequence engine: a recursive CTE instead (allowed as deep as needed).
      how = 'INSERT ... WITH RECURSIVE';
      await conn.query(`SET SESSION cte_max_recursion_depth = ${records + 1}`).catch(() => {});
      await conn.query(`SET SESSION max_recursive_iterations = ${records + 1}`).catch(() => {});
      await conn.query(
        `INSERT INTO \`${table}\` WITH RECURSIVE s (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${records}) SELECT ${columns} FROM s`,
      );
    }
    const seedMs = now() - t0;
    await conn.query(`ANALYZE TABLE \`${table}\``);
    await conn.query(`SELECT COUNT(*), SUM(LENGTH(note)) FROM \`${table}\``);
    return { base: { system: 'mysql', url: MYSQL_URL, table }, seedMs, how, cleanup: drop };
  } catch (err) {
    await drop();
    throw err;
  }
}

/**
 * Messages per partition per produce request, and requests in flight (each to its own partitions, so
 * that every partition's offsets are deterministic: offset o of partition p holds id o * P + p + 1, and
 * offsets [0, n / P) of every partition hold ids 1..n). The mock slows down sharply with larger requests.
 */
const PRODUCE_PER_PARTITION = 5000;
const PRODUCE_IN_FLIGHT = 8;

async function seedKafka(records: number): Promise<Seeded> {
  const topic = uniqueName('sluice_bench_conn');
  const mock: KafkaMock = await startKafkaMock({ [topic]: KAFKA_PARTITIONS });
  try {
    const kafka = new Kafka({ brokers: mock.brokers, clientId: 'sluice-bench-seed', logLevel: logLevel.WARN });
    const producer = kafka.producer({
      idempotent: false,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    const t0 = now();
    const perPartition = records / KAFKA_PARTITIONS;
    const partitionsPerSend = KAFKA_PARTITIONS / PRODUCE_IN_FLIGHT;
    try {
      for (let from = 0; from < perPartition; from += PRODUCE_PER_PARTITION) {
        const to = Math.min(perPartition, from + PRODUCE_PER_PARTITION);
        const sends: Promise<unknown>[] = [];
        for (let s = 0; s < PRODUCE_IN_FLIGHT; s++) {
          const messages = [];
          for (let p = s * partitionsPerSend; p < (s + 1) * partitionsPerSend; p++) {
            for (let o = from; o < to; o++) {
              const id = o * KAFKA_PARTITIONS + p + 1;
              messages.push({ partition: p, value: `{"id":${id},"customer":${id % 1000},"note":"n${id % 97}"}` });
            }
          }
          sends.push(producer.send({ topic, acks: 1, messages }));
        }
        await Promise.all(sends);
      }
    } finally {
      await producer.disconnect();
    }
    const seedMs = now() - t0;
    const admin = kafka.admin();
    await admin.connect();
    const marks = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
    const expected = String(records / KAFKA_PARTITIONS);
    const bad = marks.filter((m) => m.low !== '0' || m.high !== expected);
    if (bad.length > 0)
      throw new Error(
        `the mock kept partitions ${bad.map((m) => `${m.partition}:[${m.low},${m.high})`).join(' ')} instead of [0,${expected}) each (its per-partition size limit?)`,
      );
    return {
      base: { system: 'kafka', brokers: mock.brokers, topic, partitions: KAFKA_PARTITIONS },
      seedMs,
      how: `kafkajs producer, acks 1, no idempotence, ${PRODUCE_IN_FLIGHT} requests of ${partitionsPerSend * PRODUCE_PER_PARTITION} messages in flight, ${KAFKA_PARTITIONS} partitions`,
      cleanup: () => mock.stop(),
    };
  } catch (err) {
    await mock.stop();
    throw err;
  }
}

const SEEDERS: Readonly<Record<System, (records: number) => Promise<Seeded>>> = {
  postgres: seedPostgres,
  mysql: seedMysql,
  kafka: seedKafka,
};

async function available(system: System): Promise<string | undefined> {
  if (system === 'kafka') return undefined; // startKafkaMock says what is missing when it fails
  const status = system === 'postgres' ? await probePostgres() : await probeMysql();
  return status.ok ? undefined : status.reason;
}

// ------------------------------------------------------------------------------------------- children

function runChild(spec: ChildSpec, nodeArgs: readonly string[] = []): Promise<ChildResult> {
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...nodeArgs, '--conditions=development', '--import', 'tsx', CHILD, JSON.stringify(spec)],
      {
        cwd: PROJECT_ROOT,
        env: { ...env, KAFKAJS_NO_PARTITIONER_WARNING: '1' },
        timeout: CHILD_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        if (err || !line.startsWith('{')) {
          const why = err
            ? err.killed
              ? `killed after ${CHILD_TIMEOUT_MS} ms`
              : err.message.split('\n')[0]
            : 'no result line';
          const fatal = stderr.split('\n').find((l) => /FATAL ERROR|heap out of memory/.test(l));
          reject(
            new Error(
              `${spec.system} ${spec.reader} read of ${spec.records}: ${why}; stderr: ${fatal ?? stderr.trim().split('\n').slice(-6).join(' | ')}`,
            ),
          );
          return;
        }
        resolve(JSON.parse(line) as ChildResult);
      },
    );
  });
}

async function benchSystem(
  system: System,
  sizes: readonly number[],
  progress: (line: string) => void,
): Promise<SystemOutcome> {
  const cells: Cell[] = [];
  const unavailable = await available(system);
  if (unavailable) return { system, skipped: unavailable, cells };
  const largest = sizes[sizes.length - 1]!;
  let seeded: Seeded;
  try {
    seeded = await SEEDERS[system](largest);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // No mock cluster here (no cc or librdkafka-dev) is a skip, as in the tests; anything else fails.
    if (system === 'kafka' && /compiler|librdkafka|launcher/.test(message)) return { system, skipped: message, cells };
    return { system, failed: `seeding: ${message}`, cells };
  }
  const seed = { ms: seeded.seedMs, how: seeded.how, records: largest };
  progress(`   ${system}: seeded ${fmtCount(largest)} in ${fmtSeconds(seeded.seedMs)}`);
  let pair = 0;
  try {
    for (const records of sizes) {
      const connector: Cell = { system, records, reader: 'connector', runs: [] };
      const plain: Cell = { system, records, reader: 'plain', runs: [] };
      cells.push(connector, plain);
      for (let i = 0; i < PAIRS; i++, pair++) {
        for (const cell of pair % 2 === 0 ? [connector, plain] : [plain, connector]) {
          const result = await runChild({
            ...seeded.base,
            reader: cell.reader,
            records,
            fetchSize: FETCH_SIZE[system],
          });
          const idSum = (records * (records + 1)) / 2;
          if (result.records !== records || result.idSum !== idSum) {
            throw new Error(
              `the ${cell.reader} reader saw ${result.records} records (id sum ${result.idSum}), expected ${records} (id sum ${idSum})`,
            );
          }
          cell.runs.push(result);
        }
      }
      progress(`   ${system}: ${fmtCount(records)} done`);
    }
    let capped: SystemOutcome['capped'];
    try {
      const result = await runChild(
        { ...seeded.base, reader: 'connector', records: largest, fetchSize: FETCH_SIZE[system] },
        [`--max-old-space-size=${HEAP_CAP_MB}`],
      );
      capped =
        result.records === largest ? { ok: true, result } : { ok: false, reason: `read ${result.records} records` };
    } catch (err) {
      capped = { ok: false, reason: err instanceof Error ? err.message : String(err) };
    }
    progress(
      `   ${system}: ${fmtCount(largest)} under --max-old-space-size=${HEAP_CAP_MB} ${capped.ok ? 'done' : 'FAILED'}`,
    );
    return { system, seed, cells, capped };
  } catch (err) {
    return { system, seed, cells, failed: err instanceof Error ? err.message : String(err) };
  } finally {
    await seeded.cleanup().catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------- report

const fmtCount = (n: number) => n.toLocaleString('en-US');
const fmtSeconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const fmtRate = (perSecond: number) =>
  perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)}M/s` : `${(perSecond / 1e3).toFixed(0)}k/s`;
const fmtMiB = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

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
  return {
    run,
    rate: (cell.records / run.ms) * 1000,
    /** Rows per second once the first batch has arrived (without connect, snapshot, group join). */
    streamRate: (cell.records / (run.ms - run.firstBatchMs)) * 1000,
    peakKb: Math.max(...cell.runs.map((r) => r.maxRssKb)),
    beforeKb: Math.max(...cell.runs.map((r) => r.rssBeforeKb)),
  };
}

function report(out: (line?: string) => void, outcomes: readonly SystemOutcome[], sizes: readonly number[]): void {
  const largest = sizes[sizes.length - 1]!;
  const smallest = sizes[0]!;
  const rows: string[][] = [
    [
      'system',
      'records',
      'reader',
      'runs',
      'best',
      'rows/s',
      '1st batch',
      'rows/s after 1st',
      'RSS at start',
      'peak RSS',
    ],
  ];
  for (const o of outcomes) {
    for (const cell of o.cells) {
      if (cell.runs.length === 0) continue;
      const b = best(cell);
      rows.push([
        o.system,
        fmtCount(cell.records),
        cell.reader,
        cell.runs.map((r) => (r.ms / 1000).toFixed(2)).join(' / ') + ' s',
        fmtSeconds(b.run.ms),
        fmtRate(b.rate),
        `${b.run.firstBatchMs.toFixed(0)} ms`,
        fmtRate(b.streamRate),
        fmtMiB(b.beforeKb),
        fmtMiB(b.peakKb),
      ]);
    }
  }
  if (rows.length > 1) table(out, rows);
  out();

  const verdicts: string[][] = [
    [
      'system',
      `connector/plain rows/s at ${fmtCount(largest)}`,
      'after 1st batch',
      ...(smallest !== largest ? [`at ${fmtCount(smallest)}`] : []),
      'target',
      'result',
    ],
  ];
  const memory: string[][] = [
    [
      'system',
      'reader',
      `peak RSS ${fmtCount(smallest)}`,
      `peak RSS ${fmtCount(largest)}`,
      'ratio',
      'target',
      'result',
      `${fmtCount(largest)} under --max-old-space-size`,
      'result',
    ],
  ];
  const notes: string[] = [];
  for (const o of outcomes) {
    if (o.skipped) {
      notes.push(`${o.system}: SKIPPED (${o.skipped})`);
      continue;
    }
    if (o.failed) notes.push(`${o.system}: FAILED (${o.failed})`);
    const cell = (records: number, reader: ReaderKind) =>
      o.cells.find((c) => c.records === records && c.reader === reader && c.runs.length > 0);
    const ratioAt = (records: number, stream = false) => {
      const c = cell(records, 'connector');
      const p = cell(records, 'plain');
      if (!c || !p) return undefined;
      return stream ? best(c).streamRate / best(p).streamRate : best(c).rate / best(p).rate;
    };
    const r = ratioAt(largest);
    if (r !== undefined) {
      const small = ratioAt(smallest);
      verdicts.push([
        o.system,
        fmtRatio(r),
        fmtRatio(ratioAt(largest, true)!),
        ...(smallest !== largest ? [small === undefined ? '-' : fmtRatio(small)] : []),
        `>= ${fmtRatio(THROUGHPUT_TARGET)}`,
        verdict(r >= THROUGHPUT_TARGET),
      ]);
    }
    for (const reader of ['connector', 'plain'] as const) {
      const big = cell(largest, reader);
      const small = cell(smallest, reader);
      if (!big || !small || smallest === largest) continue;
      const ratio = best(big).peakKb / best(small).peakKb;
      const connector = reader === 'connector';
      const cap = `${HEAP_CAP_MB} MiB: `;
      const capped =
        connector && o.capped
          ? cap +
            (o.capped.ok
              ? `read in ${fmtSeconds(o.capped.result.ms)}, peak ${fmtMiB(o.capped.result.maxRssKb)}`
              : 'failed (below)')
          : '';
      if (connector && o.capped && !o.capped.ok)
        notes.push(`${o.system}: the read under --max-old-space-size=${HEAP_CAP_MB} failed: ${o.capped.reason}`);
      memory.push([
        o.system,
        connector ? reader : `${reader} (reference)`,
        fmtMiB(best(small).peakKb),
        fmtMiB(best(big).peakKb),
        fmtRatio(ratio),
        connector ? `<= ${fmtRatio(MEMORY_TARGET)}` : '',
        connector ? verdict(ratio <= MEMORY_TARGET) : '',
        capped,
        connector && o.capped ? verdict(o.capped.ok) : '',
      ]);
    }
  }
  if (verdicts.length > 1) {
    table(out, verdicts);
    out();
  }
  if (memory.length > 1) {
    table(out, memory);
    out();
  }
  for (const n of notes) out(`   ${n}`);
}

/**
 * Runs the benchmark and prints its tables with `out`. Missed targets are printed as MISSED; a system
 * whose service is absent is SKIPPED. Throws (after printing and cleaning up) when a read failed or
 * the two readers of a system did not see the same records.
 */
export async function benchConnectors(
  out: (line?: string) => void,
  options: { sizes?: number[]; systems?: System[] } = {},
): Promise<void> {
  const sizes = [...new Set(options.sizes ?? DEFAULT_SIZES)].sort((a, b) => a - b);
  if (sizes.length === 0 || sizes.some((n) => !Number.isSafeInteger(n) || n <= 0 || n % KAFKA_PARTITIONS !== 0)) {
    throw new Error(
      `sizes must be positive integers divisible by ${KAFKA_PARTITIONS} (the Kafka partitions), got ${sizes.join(', ')}`,
    );
  }
  const started = now();
  out(
    `3. Connector reads: one OFFSET window of ${sizes.map(fmtCount).join(' and ')} records read to the end, connector (loadPlugins + HookRunner: validate, fillInBoundaries, openReader, batches, close) vs the plain client`,
  );
  out(
    `   every read in a fresh child process (peak RSS = its maxRSS); ${PAIRS} pairs per size, connector-first and plain-first alternating; best run shown`,
  );
  out(
    '   plain: kafkajs consumer (own group, seek, pause at stop) | pg DECLARE CURSOR + FETCH 5000 in a REPEATABLE READ transaction | mysql2 query().stream()',
  );
  const outcomes: SystemOutcome[] = [];
  for (const system of SYSTEMS.filter((s) => !options.systems || options.systems.includes(s)))
    outcomes.push(await benchSystem(system, sizes, out));
  const seeds = outcomes
    .filter((o) => o.seed)
    .map(
      (o) =>
        `${o.system} ${fmtCount(o.seed!.records)} in ${fmtSeconds(o.seed!.ms)} (${fmtRate((o.seed!.records / o.seed!.ms) * 1000)}; ${o.seed!.how})`,
    );
  out(`   seeding, not part of any read: ${seeds.join('; ') || 'none'}`);
  out();
  report(out, outcomes, sizes);
  out(`   connector benchmark total ${fmtSeconds(now() - started)}`);
  const failed = outcomes.filter((o) => o.failed);
  if (failed.length > 0)
    throw new Error(`connector benchmark: ${failed.map((o) => `${o.system}: ${o.failed}`).join('; ')}`);
}
