/**
 * Small-job throughput (docs/benchmarks.md, section 7): what one operator costs per tiny job. WINDOWS one-second
 * windows of 5 rows each of a datagen → file group and of a PostgreSQL → PostgreSQL group are submitted at once to
 * one OperatorService (in this process, PostgreSQL store, the worker-thread pool as the service runs it, 16 jobs at
 * once, a 2 s lease as the chaos run), and timed until every job has ended. The reference, in the same run, does the
 * same tiny reads and writes directly in a loop: 5 lines written to a file (fsync, rename) per window, and per window
 * a SELECT of its 5 rows and a DELETE + INSERT of them in one transaction. Also printed: the store calls per job
 * (every state write, lease renewal and read the operator made), and where a job's time went.
 *
 * `npm run bench -- jobs`; SLUICE_SMALL_JOBS changes the number of windows per group (default 500).
 */
import { mkdtemp, open, rename, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { setHostPolicy } from 'sluice/sdk';
import { Catalog } from '../services/catalog/domain/catalog.js';
import { silentLogger } from '../services/core/logger.js';
import { BUNDLED_PLUGINS_DIR } from '../services/core/paths.js';
import { HookRunner } from '../services/host/hook-runner.js';
import { loadPlugins } from '../services/host/loader.js';
import { FINAL_JOB_STATES, type JobRecord } from '../services/operator/domain/model.js';
import { OperatorService, type SchedulePort } from '../services/operator/domain/service.js';
import { PooledRunner } from '../services/operator/runners/pool.js';
import { type SluiceStore, openSluiceStore } from '../services/store/index.js';
import { PG_URL, probePostgres, uniqueName } from '../test/helpers/databases.js';
import { fmtMs, fmtRatio, now, percentile, sortedCopy } from './stats.js';

const WINDOWS = Number(process.env.SLUICE_SMALL_JOBS ?? 500);
const ROWS = 5;
const SECOND = 1000;
const MAX_RUNNING = Number(process.env.SLUICE_SMALL_JOBS_AT_ONCE ?? 16);
const LEASE_MS = 2000;
const START = Date.UTC(2026, 0, 1);

/** A schedule service that is never needed: windows are submitted with their instance ids. */
const noSchedules: SchedulePort = {
  register: async () => {},
  update: async () => {},
  unregister: async () => {},
  fireDue: () => Promise.reject(new Error('not in this benchmark')),
  claimWindow: () => Promise.reject(new Error('not in this benchmark')),
};

/** The store, counting calls by method. */
function counted(store: SluiceStore, calls: Map<string, number>): SluiceStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        calls.set(prop, (calls.get(prop) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

interface Run {
  readonly label: string;
  readonly wallMs: number;
  readonly jobs: readonly JobRecord[];
  readonly storeCalls: Map<string, number>;
}

async function runSluice(url: string, dir: string, kind: 'file' | 'pg'): Promise<Run> {
  const calls = new Map<string, number>();
  const store = counted(await openSluiceStore({ databaseUrl: url, sqlitePath: '' }), calls);
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  const hooks = new HookRunner({ timeoutMs: 30_000 });
  // The file sink writes under the file roots only (the pool hands the policy to its threads when they start).
  setHostPolicy({ fileRoots: [dir] });
  const threads = Math.max(1, Math.min(availableParallelism(), MAX_RUNNING));
  const pool = new PooledRunner({ threads, jobsPerThread: Math.ceil(MAX_RUNNING / threads) });
  const service = new OperatorService({
    store,
    catalog: new Catalog(plugins, hooks),
    connectors: plugins.connectors,
    schedules: noSchedules,
    runners: new Map([['embedded', pool]]),
    defaultRunner: 'embedded',
    maxRunningJobs: MAX_RUNNING,
    owner: `bench-${kind}`,
    logger: silentLogger,
    leaseMs: LEASE_MS,
  });
  try {
    await service.start();
    const groupId = `small-${kind}`;
    const stream =
      kind === 'file'
        ? {
            streamId: 's1',
            source: { connectorId: 'datagen', options: { intervalMs: SECOND / ROWS, seed: 1 } },
            sink: { connectorId: 'file', options: { path: join(dir, 'sluice'), format: 'jsonl' } },
            fields: [],
          }
        : {
            streamId: 's1',
            source: {
              connectorId: 'postgres',
              options: { url, table: 'src', keyColumn: 'id', timeColumn: 'ts', columns: ['id', 'ts', 'payload'] },
            },
            sink: { connectorId: 'postgres', options: { url, table: 'dst_sluice', mode: 'replace-window' } },
            fields: [],
          };
    const created = await service.createGroup({
      groupId,
      description: 'small jobs',
      streams: [stream],
      schedule: {
        groupId,
        scheduleType: 0,
        scheduleUnit: 'S',
        scheduleInterval: 1,
        startTime: START,
        endTime: START + WINDOWS * SECOND,
        delayTime: 0,
        selfDepend: 0,
        taskParallelism: 1,
        crontabExpression: '',
        scheduleEngine: '',
        version: 0,
        timeZone: 'UTC',
        catchUp: { mode: 'ALL', windowMs: 0 },
        alignment: 'END',
      },
      runner: '',
      retry: { maxAttempts: 3, initialBackoffMs: 200 },
      version: 0,
    });
    await service.approveGroup(groupId, created.version);
    calls.clear();
    const started = now();
    const ids: string[] = [];
    // Submitted as a schedule replica does, each window on its own call, all of them in flight.
    await Promise.all(
      Array.from({ length: WINDOWS }, async (_, i) => {
        const { jobs } = await service.submitOfflineJob(
          {
            groupId,
            boundaryType: 'TIME',
            lowerBound: String(START + i * SECOND),
            upperBound: String(START + (i + 1) * SECOND),
            instanceId: `w-${i}`,
          },
          false,
        );
        ids.push(...jobs.map((j) => j.jobId));
      }),
    );
    await service.idle();
    const wallMs = now() - started;
    const storeCalls = new Map(calls);
    const jobs = (await Promise.all(ids.map((id) => service.getJob(id)))).filter((j) => j !== undefined);
    const notDone = jobs.filter((j) => !FINAL_JOB_STATES.includes(j.state) || j.state !== 'SUCCEEDED');
    if (jobs.length !== WINDOWS || notDone.length > 0)
      throw new Error(
        `small jobs (${kind}): ${jobs.length}/${WINDOWS} jobs, ${notDone.length} not SUCCEEDED (${notDone[0]?.state}: ${notDone[0]?.error})`,
      );
    return { label: kind === 'file' ? 'datagen → file' : 'PostgreSQL → PostgreSQL', wallMs, jobs, storeCalls };
  } finally {
    await service.stop();
    await pool.close();
    await store.close();
  }
}

/** The same tiny writes directly: per window, 5 JSON lines to a temporary file, fsync, rename. */
async function referenceFile(dir: string): Promise<number> {
  const started = now();
  for (let i = 0; i < WINDOWS; i++) {
    const lines = Array.from(
      { length: ROWS },
      (_, r) =>
        `${JSON.stringify({ id: i * ROWS + r, ts: new Date(START + i * SECOND + r * (SECOND / ROWS)).toISOString(), value: Math.random() })}\n`,
    ).join('');
    const tmp = join(dir, `w-${i}.jsonl.tmp`);
    const fh = await open(tmp, 'w');
    await fh.writeFile(lines);
    await fh.sync();
    await fh.close();
    await rename(tmp, join(dir, `w-${i}.jsonl`));
  }
  return now() - started;
}

/** The same tiny reads and writes directly: per window, SELECT its rows, then DELETE + INSERT them in a transaction. */
async function referencePg(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = now();
    for (let i = 0; i < WINDOWS; i++) {
      const lower = new Date(START + i * SECOND);
      const upper = new Date(START + (i + 1) * SECOND);
      const { rows } = await client.query<{ id: string; ts: Date; payload: string }>(
        'SELECT id, ts, payload FROM src WHERE ts >= $1 AND ts < $2 ORDER BY id',
        [lower, upper],
      );
      const window = `${lower.getTime()}-${upper.getTime()}`;
      await client.query('BEGIN');
      await client.query('DELETE FROM dst_ref WHERE sluice_window = $1', [window]);
      await client.query(
        'INSERT INTO dst_ref (id, ts, payload, sluice_window) SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[])',
        [rows.map((r) => r.id), rows.map((r) => r.ts), rows.map((r) => r.payload), rows.map(() => window)],
      );
      await client.query('COMMIT');
    }
    return now() - started;
  } finally {
    await client.end();
  }
}

const q = (values: number[], p: number) => (values.length === 0 ? NaN : percentile(sortedCopy(values), p));

export async function benchSmallJobs(out: (line?: string) => void): Promise<void> {
  const probe = await probePostgres();
  if (!probe.ok) {
    out(`7a. Small-job throughput: skipped (${probe.reason})`);
    out();
    return;
  }
  out(
    `7a. Small-job throughput: ${WINDOWS} one-second windows of ${ROWS} rows per group submitted at once to one operator (PostgreSQL store, ${MAX_RUNNING} jobs at once, pool threads, lease ${LEASE_MS} ms)`,
  );
  out(`   load average at start ${loadavg()[0]!.toFixed(1)}`);
  const database = uniqueName('sluice_smalljobs');
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-small-jobs-'));
  try {
    await admin.query(`CREATE DATABASE "${database}"`);
    const u = new URL(PG_URL);
    u.pathname = `/${database}`;
    const url = u.toString();
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      await db.query('CREATE TABLE src (id bigint PRIMARY KEY, ts timestamptz NOT NULL, payload text NOT NULL)');
      await db.query('CREATE INDEX src_ts ON src (ts)');
      await db.query(
        `INSERT INTO src SELECT i, to_timestamp(($1::bigint + i * $2::bigint) / 1000.0), 'row ' || i FROM generate_series(0, $3::int - 1) AS i`,
        [START, SECOND / ROWS, WINDOWS * ROWS],
      );
      for (const t of ['dst_sluice', 'dst_ref'])
        await db.query(
          `CREATE TABLE ${t} (id bigint NOT NULL, ts timestamptz NOT NULL, payload text NOT NULL, sluice_window text NOT NULL)`,
        );
    } finally {
      await db.end();
    }
    const rows: string[][] = [
      [
        'group',
        'wall',
        'jobs/s',
        'per job',
        'reference per window',
        'ratio',
        'store calls/job',
        'run p50/p90',
        'queued p50/p90',
      ],
    ];
    for (const kind of (['file', 'pg'] as const).filter((k) => (process.env.SLUICE_SMALL_JOBS_ONLY ?? k) === k)) {
      const refMs = kind === 'file' ? await referenceFile(dir) : await referencePg(url);
      const r = await runSluice(url, dir, kind);
      const calls = [...r.storeCalls.values()].reduce((a, b) => a + b, 0);
      const run = r.jobs.map((j) => j.finishedAt! - j.startedAt!);
      const queued = r.jobs.map((j) => j.startedAt! - j.createdAt);
      rows.push([
        r.label,
        `${(r.wallMs / 1000).toFixed(1)} s`,
        (WINDOWS / (r.wallMs / 1000)).toFixed(1),
        fmtMs(r.wallMs / WINDOWS),
        fmtMs(refMs / WINDOWS),
        fmtRatio(r.wallMs / refMs),
        (calls / WINDOWS).toFixed(1),
        `${fmtMs(q(run, 50))} / ${fmtMs(q(run, 90))}`,
        `${(q(queued, 50) / 1000).toFixed(1)} s / ${(q(queued, 90) / 1000).toFixed(1)} s`,
      ]);
      out(
        `   ${r.label} store calls: ${[...r.storeCalls]
          .sort((a, b) => b[1] - a[1])
          .map(([m, n]) => `${m} ${n}`)
          .join(', ')}`,
      );
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    rows.forEach((r, n) => {
      out(`   ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')}`);
      if (n === 0) out(`   ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
    });
    out(`   load average at end ${loadavg()[0]!.toFixed(1)}; ratio = Sluice wall time / the reference loop's`);
    out();
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`).catch(() => {});
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  }
}
