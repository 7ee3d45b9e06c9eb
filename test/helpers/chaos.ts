/**
 * The chaos scenario, shared by test/chaos.test.ts (short, in CI) and `npm run bench -- chaos` (2 minutes):
 * 3 schedule replicas and 2 operator replicas as separate processes on one PostgreSQL database of their own,
 * groups of one-second windows (datagen → JSON-lines files, and PostgreSQL → PostgreSQL), and a random process
 * killed with SIGKILL and started again every few seconds. Afterwards it counts windows expected, fired, lost
 * and duplicated from the ledger, checks every output row once (file lines by id, target rows by key) and
 * measures the fire delay (claim time minus due time) of the windows due within SLUICE_FAILOVER_MS after a death.
 */
import { credentials, status } from '@grpc/grpc-js';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Group, OperatorServiceClient } from '../../proto/gen/sluice/operator/v1/operator.js';
import { CatchUpMode, WindowAlignment } from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { PG_URL, uniqueName } from './databases.js';
import { type Spawned, spawnService } from './process.js';
import { call } from './sluice.js';
import { startTcpBalancer } from './tcp-balancer.js';

export interface ChaosOptions {
  /** Groups in all; every other one is PostgreSQL → PostgreSQL, the rest datagen → file. */
  readonly groups: number;
  /** How long processes are killed (whole seconds): one window per group per second of it. */
  readonly chaosMs: number;
  readonly killEveryMs: number;
  readonly failoverMs: number;
  /** How long to wait for every window to end once the kills stop (they are waited on, not timed). */
  readonly drainMs: number;
  readonly log: (line: string) => void;
  /** Deaths to cause at least, however late setting up ran (default 2). */
  readonly minDeaths?: number;
  /**
   * Windows of one group that may run at once (the schedule's task_parallelism, default 4). With 1 a group
   * of one-second windows keeps up only while every window's whole cycle (claim, dispatch, job, its end
   * heard) takes under a second; a slower one makes a backlog that grows for the whole run, and the fire
   * delay then measures that backlog rather than the fail-over.
   */
  readonly taskParallelism?: number;
}

export interface ChaosReport {
  readonly groups: number;
  readonly chaosMs: number;
  readonly deaths: string;
  readonly expected: number;
  readonly fired: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly unfinished: number;
  readonly windowsWithTwoJobs: number;
  readonly rowsExpected: number;
  readonly duplicatedRows: number;
  readonly missingRows: number;
  readonly fireDelayAfterDeathMs: { n: number; p50: number; p99: number; max: number };
  /** From the first due window to the last window's end, once the kills stopped. */
  readonly drainedInMs: number;
}

interface Proc {
  readonly name: string;
  readonly entry: string;
  readonly env: NodeJS.ProcessEnv;
  current?: Spawned;
  /** Every run of it, for the warnings they logged. */
  readonly runs: Spawned[];
  /** Serving (a restart in progress is not killed again). */
  ready?: boolean;
}

const SECOND = 1000;
const ROWS_PER_WINDOW = 5;

const children = new Set<Spawned['child']>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function launch(p: Proc): Promise<void> {
  const proc = spawnService(p.entry, { SLUICE_LOG_LEVEL: 'info', SLUICE_SHUTDOWN_GRACE_MS: '1000', ...p.env });
  children.add(proc.child);
  void proc.exited.then(() => children.delete(proc.child));
  p.current = proc;
  p.runs.push(proc);
  p.ready = false;
  // Generous: five processes start on shared cores, and a restart happens while the others work.
  await proc.waitForLog((e) => e.msg === 'gRPC server listening', 120_000);
  p.ready = true;
}

export const quantile = (sorted: readonly number[], q: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;

const isFileGroup = (g: number) => g % 2 === 0;

/**
 * A set-up call again while the operator answers UNAVAILABLE: on a loaded machine the first groups' windows are
 * due while the last ones are created, and its store connections can all be busy for a while. (A create that
 * committed before its answer was lost comes back ALREADY_EXISTS, which fails the run: it has not been seen.)
 */
async function retried<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: number }).code !== status.UNAVAILABLE || attempt >= 10) throw err;
      await sleep(1000);
    }
  }
}

/** Runs the scenario; throws only when it cannot be set up. Cleans up everything it made, whatever happens. */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const procs: Proc[] = [];
  const cleanup: (() => Promise<unknown>)[] = [];
  let failed = true;
  try {
    const report = await scenario(o, procs, cleanup);
    failed = false;
    return report;
  } finally {
    // SLUICE_CHAOS_LOGS=<folder>: every run's log lines kept there, to see what a process did before it died.
    const keep = process.env.SLUICE_CHAOS_LOGS;
    if (keep)
      for (const p of procs)
        for (const [i, run] of p.runs.entries())
          await writeFile(join(keep, `${p.name}-${i + 1}.log`), `${run.lines.join('\n')}\n`).catch(() => {});
    for (const p of procs) {
      const child = p.current?.child;
      if (failed && p.current) o.log(`--- ${p.name}:\n${p.current.lines.slice(-15).join('\n')}`);
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (p.current) await p.current.exited;
    }
    for (const fn of cleanup.reverse()) await fn().catch((err: unknown) => o.log(`cleanup failed: ${String(err)}`));
  }
}

async function scenario(o: ChaosOptions, procs: Proc[], cleanup: (() => Promise<unknown>)[]): Promise<ChaosReport> {
  const windows = Math.round(o.chaosMs / SECOND);
  // A database of its own: the services' store, the PostgreSQL source and the targets.
  const database = uniqueName('sluice_chaos');
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  cleanup.push(async () => {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.end();
  });
  await admin.query(`CREATE DATABASE "${database}"`);
  const dbUrl = new URL(PG_URL);
  dbUrl.pathname = `/${database}`;
  const url = dbUrl.toString();
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  cleanup.push(() => db.end());
  const dir = await mkdtemp(join(tmpdir(), 'sluice-chaos-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));

  const ports = {
    s1: await freePort(),
    s2: await freePort(),
    s3: await freePort(),
    a: await freePort(),
    b: await freePort(),
  };
  const addr = (port: number) => `127.0.0.1:${port}`;
  // The schedule replicas reach the operators through one address, as behind a load balancer (docs/operations.md):
  // while one operator restarts, windows go to the other.
  const balancer = await startTcpBalancer([
    { host: '127.0.0.1', port: ports.a },
    { host: '127.0.0.1', port: ports.b },
  ]);
  cleanup.push(() => balancer.close());
  const common = { SLUICE_DATABASE_URL: url, SLUICE_FAILOVER_MS: String(o.failoverMs) };
  const schedule = (id: 's1' | 's2' | 's3'): Proc => ({
    name: id,
    runs: [],
    entry: 'services/schedule/main.ts',
    env: {
      ...common,
      SLUICE_GRPC_ADDR: addr(ports[id]),
      SLUICE_REPLICA_ID: id,
      SLUICE_DATA_DIR: join(dir, id),
      SLUICE_OPERATOR_ADDR: addr(balancer.port),
    },
  });
  const operator = (id: 'a' | 'b'): Proc => ({
    name: `op-${id}`,
    runs: [],
    entry: 'services/operator/main.ts',
    env: {
      ...common,
      SLUICE_GRPC_ADDR: addr(ports[id]),
      SLUICE_REPLICA_ID: `op-${id}`,
      // Windows of many groups due each second, mostly waiting on PostgreSQL: more than the default 4 at once.
      SLUICE_MAX_RUNNING_JOBS: '16',
      SLUICE_DATA_DIR: join(dir, id),
      SLUICE_SCHEDULE_ADDR: addr(ports.s1),
    },
  });
  procs.push(schedule('s1'), schedule('s2'), schedule('s3'), operator('a'), operator('b'));
  await Promise.all(procs.map(launch));

  const client = new OperatorServiceClient(addr(ports.a), credentials.createInsecure());
  cleanup.push(async () => client.close());
  // Creating and approving a group takes a few calls: leave time for all of them before the first window.
  const start = Math.ceil(Date.now() / SECOND) * SECOND + 3000 + o.groups * 1000;
  const end = start + windows * SECOND;

  // The PostgreSQL source: ROWS_PER_WINDOW rows in every second of the run, read by every PG group.
  await db.query('CREATE TABLE src (id bigint PRIMARY KEY, ts timestamptz NOT NULL, payload text NOT NULL)');
  await db.query(
    `INSERT INTO src SELECT i, to_timestamp(($1::bigint + i * $2::bigint) / 1000.0), 'row ' || i FROM generate_series(0, $3::int - 1) AS i`,
    [start, SECOND / ROWS_PER_WINDOW, windows * ROWS_PER_WINDOW],
  );
  for (let g = 0; g < o.groups; g++) {
    if (isFileGroup(g)) continue;
    // No key on the target: a row written twice would stay twice, and be counted.
    await db.query(
      `CREATE TABLE dst_${g} (id bigint NOT NULL, ts timestamptz NOT NULL, payload text NOT NULL, sluice_window text NOT NULL)`,
    );
  }

  for (let g = 0; g < o.groups; g++) {
    const groupId = `chaos-${g}`;
    const stream = isFileGroup(g)
      ? {
          streamId: 's1',
          source: { connectorId: 'datagen', options: { intervalMs: SECOND / ROWS_PER_WINDOW, seed: g } },
          sink: { connectorId: 'file', options: { path: join(dir, 'out', groupId), format: 'jsonl' } },
          fields: [],
        }
      : {
          streamId: 's1',
          source: {
            connectorId: 'postgres',
            options: { url, table: 'src', keyColumn: 'id', timeColumn: 'ts', columns: ['id', 'ts', 'payload'] },
          },
          sink: { connectorId: 'postgres', options: { url, table: `dst_${g}`, mode: 'replace-window' } },
          fields: [],
        };
    const created = await retried(() =>
      call(client.createGroup.bind(client), {
        group: Group.fromPartial({
          groupId,
          description: 'chaos',
          streams: [stream],
          schedule: {
            groupId,
            scheduleUnit: 'S',
            scheduleInterval: 1,
            taskParallelism: o.taskParallelism ?? 4,
            startTime: start,
            endTime: end,
            timeZone: 'UTC',
            catchUp: { mode: CatchUpMode.CATCH_UP_MODE_ALL, windowMs: 0 },
            alignment: WindowAlignment.WINDOW_ALIGNMENT_END,
          },
          retry: { maxAttempts: 10, initialBackoffMs: 200 },
        }),
      }),
    );
    await retried(() => call(client.approveGroup.bind(client), { groupId, version: created.group!.version }));
  }

  // The chaos: a random process killed every few seconds and started again at once (same port and id).
  const deaths: { name: string; at: number }[] = [];
  await sleep(Math.max(0, start - Date.now()));
  const restarts: Promise<void>[] = [];
  // At least two deaths even when setting up ran late on a loaded machine (the windows due meanwhile catch up).
  while (Date.now() < end - o.killEveryMs || deaths.length < (o.minDeaths ?? 2)) {
    await sleep(o.killEveryMs);
    // Among the processes up now: a restart takes a few seconds and runs on while the next victim is chosen.
    const up = procs.filter((p) => p.ready);
    const victim = up[Math.floor(Math.random() * up.length)];
    if (!victim) continue;
    victim.current!.child.kill('SIGKILL');
    await victim.current!.exited;
    deaths.push({ name: victim.name, at: Date.now() });
    o.log(`killed ${victim.name} at +${Date.now() - start} ms`);
    restarts.push(launch(victim));
  }
  await Promise.all(restarts);

  // Drain: wait until every window of every group has ended (or the drain time is up, reported as unfinished).
  const expected = o.groups * windows;
  const deadline = Date.now() + o.drainMs;
  let nextReport = Date.now() + 10_000;
  for (;;) {
    const { rows } = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM instances WHERE state IN ('SUCCEEDED', 'FAILED', 'SKIPPED')`,
    );
    if (Number(rows[0]!.n) >= expected || Date.now() > deadline) break;
    if (Date.now() >= nextReport) {
      nextReport = Date.now() + 10_000;
      const states = await db.query<{ state: string; n: string }>(
        `SELECT state, count(*) AS n FROM instances GROUP BY state ORDER BY state`,
      );
      o.log(`draining +${Date.now() - end} ms: ${states.rows.map((r) => `${r.state} ${r.n}`).join(', ')}`);
    }
    await sleep(500);
  }
  const drainedInMs = Date.now() - end;

  const { rows } = await db.query<{
    group_id: string;
    window_start: string;
    due_time: string;
    created_at: string;
    dispatched_at: string | null;
    finished_at: string | null;
    state: string;
  }>(
    `SELECT group_id, window_start, due_time, created_at, dispatched_at, finished_at, state FROM instances ORDER BY group_id, window_start`,
  );
  // Where the time goes: due → dispatched (the operator accepted the jobs) → ended; and what the processes warned of.
  const spread = (values: number[]) => {
    const sorted = values.sort((x, y) => x - y);
    return `p50 ${quantile(sorted, 0.5)} / p99 ${quantile(sorted, 0.99)} / max ${sorted.at(-1)} ms`;
  };
  o.log(
    `due → dispatched ${spread(rows.filter((r) => r.dispatched_at).map((r) => Number(r.dispatched_at) - Number(r.due_time)))}; due → ended ${spread(rows.filter((r) => r.finished_at).map((r) => Number(r.finished_at) - Number(r.due_time)))}`,
  );
  const jobTimes = await db.query<{
    due: string;
    created_at: string;
    started_at: string | null;
    finished_at: string | null;
  }>(`SELECT upper_bound AS due, created_at, started_at, finished_at FROM jobs`);
  o.log(
    `jobs: due → created ${spread(jobTimes.rows.map((j) => Number(j.created_at) - Number(j.due)))}; created → started ${spread(jobTimes.rows.filter((j) => j.started_at).map((j) => Number(j.started_at) - Number(j.created_at)))}; started → ended ${spread(jobTimes.rows.filter((j) => j.finished_at && j.started_at).map((j) => Number(j.finished_at) - Number(j.started_at)))}`,
  );
  for (const p of procs) {
    const warnings = new Map<string, number>();
    for (const run of p.runs)
      for (const line of run.lines) {
        try {
          const e = JSON.parse(line) as { level?: number | string; msg?: string };
          if (typeof e.level === 'number' ? e.level >= 40 : e.level === 'warn' || e.level === 'error')
            warnings.set(String(e.msg), (warnings.get(String(e.msg)) ?? 0) + 1);
        } catch {
          // not a log line
        }
      }
    if (warnings.size > 0)
      o.log(`${p.name} (${p.runs.length} runs): ${[...warnings].map(([m, n]) => `${m} ×${n}`).join('; ')}`);
  }
  const keys = rows.map((r) => `${r.group_id}@${r.window_start}`);
  const fired = new Set(keys).size;
  const unfinished = rows.filter((r) => r.state !== 'SUCCEEDED');
  for (const r of unfinished.slice(0, 10)) o.log(`unfinished: ${r.group_id}@${r.window_start} ${r.state}`);
  const twoJobs = await db.query(
    `SELECT group_id, lower_bound FROM jobs GROUP BY group_id, lower_bound HAVING count(*) > 1`,
  );

  // Output: every row of every window exactly once (file lines by id, target rows by key).
  let duplicatedRows = 0;
  let missingRows = 0;
  for (let g = 0; g < o.groups; g++) {
    let ids: number[] = [];
    if (isFileGroup(g)) {
      const out = join(dir, 'out', `chaos-${g}`);
      const files = (await readdir(out).catch(() => [] as string[])).filter((f) => !f.startsWith('.'));
      for (const f of files)
        for (const line of (await readFile(join(out, f), 'utf8')).split('\n'))
          if (line !== '') ids.push((JSON.parse(line) as { id: number }).id);
    } else {
      ids = (await db.query<{ id: string }>(`SELECT id FROM dst_${g}`)).rows.map((r) => Number(r.id));
    }
    duplicatedRows += ids.length - new Set(ids).size;
    missingRows += windows * ROWS_PER_WINDOW - new Set(ids).size;
  }

  // Fire delay of the windows due within the fail-over time after a death.
  const afterDeath = rows.filter((r) =>
    deaths.some((d) => Number(r.due_time) >= d.at && Number(r.due_time) < d.at + o.failoverMs),
  );
  const delays = afterDeath.map((r) => Number(r.created_at) - Number(r.due_time)).sort((x, y) => x - y);
  return {
    groups: o.groups,
    chaosMs: windows * SECOND,
    deaths: deaths.map((d) => d.name).join(' '),
    expected,
    fired,
    lost: expected - fired,
    duplicated: keys.length - fired,
    unfinished: unfinished.length,
    windowsWithTwoJobs: twoJobs.rowCount ?? 0,
    rowsExpected: o.groups * windows * ROWS_PER_WINDOW,
    duplicatedRows,
    missingRows,
    fireDelayAfterDeathMs: {
      n: delays.length,
      p50: quantile(delays, 0.5),
      p99: quantile(delays, 0.99),
      max: delays.at(-1) ?? NaN,
    },
    drainedInMs,
  };
}
