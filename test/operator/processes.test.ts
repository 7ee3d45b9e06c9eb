/**
 * Operator replicas as real processes on one PostgreSQL store: one is killed with SIGKILL in the middle of a
 * job, and another replica takes the job over when its lease runs out and finishes the window, its output
 * written exactly once. A schedule process is there because approving a group registers its schedule (which
 * starts in a year, so it fires nothing here).
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { credentials } from '@grpc/grpc-js';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { BoundaryType } from '../../proto/gen/sluice/common/v1/common.js';
import { Group, JobState, OperatorServiceClient, type Job } from '../../proto/gen/sluice/operator/v1/operator.js';
import { CatchUpMode, WindowAlignment } from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { PG_URL, probePostgres, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';
import { type Spawned, spawnService } from '../helpers/process.js';
import { call } from '../helpers/sluice.js';

interface Context {
  procs: { name: string; proc: Spawned }[];
  clients: { close(): void }[];
  cleanup: (() => Promise<unknown>)[];
}

const test = anyTest as TestFn<Context>;
const pgTest = gate(test, await probePostgres());
const RUNNER_FIXTURES = fileURLToPath(new URL('../fixtures/plugins/runner/', import.meta.url));
const FAILOVER_MS = 1500;

const children = new Set<Spawned['child']>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

test.beforeEach((t) => {
  t.context.procs = [];
  t.context.clients = [];
  t.context.cleanup = [];
});

test.afterEach.always(async (t) => {
  if (!t.passed)
    for (const { name, proc } of t.context.procs)
      t.log(`--- ${name} (pid ${proc.child.pid}) stderr, last lines:\n${proc.lines.slice(-30).join('\n')}`);
  for (const { proc } of t.context.procs) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
    await proc.exited;
  }
  for (const c of t.context.clients) c.close();
  for (const fn of t.context.cleanup.reverse()) await fn().catch((err: unknown) => t.log('cleanup failed', err));
});

async function start(t: ExecutionContext<Context>, name: string, entry: string, env: NodeJS.ProcessEnv) {
  const proc = spawnService(entry, {
    SLUICE_GRPC_ADDR: '127.0.0.1:0',
    SLUICE_LOG_LEVEL: 'info',
    SLUICE_SHUTDOWN_GRACE_MS: '1000',
    ...env,
  });
  children.add(proc.child);
  void proc.exited.then(() => children.delete(proc.child));
  t.context.procs.push({ name, proc });
  const line = await proc.waitForLog((e) => e.msg === 'gRPC server listening', 60_000);
  return { proc, address: String(line.address) };
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

pgTest.serial(
  'kill -9 of an operator mid-job: another operator finishes the window, its output exactly once',
  async (t) => {
    const schema = uniqueName('sluice_ops');
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    t.context.cleanup.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    });
    await admin.query(`CREATE SCHEMA "${schema}"`);
    const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const dir = await mkdtemp(join(tmpdir(), 'sluice-op-failover-'));
    t.context.cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const out = join(dir, 'out');
    const common = {
      SLUICE_DATABASE_URL: url,
      SLUICE_FAILOVER_MS: String(FAILOVER_MS),
      SLUICE_PLUGIN_PATH: RUNNER_FIXTURES,
    };

    const schedule = await start(t, 'schedule', 'services/schedule/main.ts', {
      ...common,
      SLUICE_DATA_DIR: join(dir, 's'),
      SLUICE_REPLICA_ID: 's1',
      SLUICE_OPERATOR_ADDR: '127.0.0.1:1',
    });
    const operator = (id: string) =>
      start(t, id, 'services/operator/main.ts', {
        ...common,
        SLUICE_DATA_DIR: join(dir, id),
        SLUICE_REPLICA_ID: id,
        SLUICE_SCHEDULE_ADDR: schedule.address,
      });
    const [a, b] = [await operator('op-a'), await operator('op-b')];
    const clientA = new OperatorServiceClient(a.address, credentials.createInsecure());
    const clientB = new OperatorServiceClient(b.address, credentials.createInsecure());
    t.context.clients.push(clientA, clientB);

    const groupId = 'op-failover';
    const inAYear = Date.now() + 365 * 86_400_000;
    const created = await call(clientA.createGroup.bind(clientA), {
      group: Group.fromPartial({
        groupId,
        description: 'slow rows to a file',
        streams: [
          {
            streamId: 's1',
            source: { connectorId: 'slow-source', options: { delayMs: 25 } },
            sink: { connectorId: 'file', options: { path: out, format: 'jsonl' } },
            fields: [],
          },
        ],
        schedule: {
          groupId,
          scheduleUnit: 'H',
          scheduleInterval: 1,
          taskParallelism: 1,
          startTime: inAYear,
          endTime: inAYear + 86_400_000,
          timeZone: 'UTC',
          catchUp: { mode: CatchUpMode.CATCH_UP_MODE_NONE, windowMs: 0 },
          alignment: WindowAlignment.WINDOW_ALIGNMENT_END,
        },
        retry: { maxAttempts: 3, initialBackoffMs: 100 },
      }),
    });
    await call(clientA.approveGroup.bind(clientA), { groupId, version: created.group!.version });
    const ROWS = 400;
    const submitted = await call(clientA.submitOfflineJob.bind(clientA), {
      request: {
        groupId,
        boundaryType: BoundaryType.BOUNDARY_TYPE_OFFSET,
        lowerBoundary: '0',
        upperBoundary: String(ROWS),
        instanceId: 'window-1',
      },
      rerun: false,
    });
    const jobId = submitted.jobs[0]!.jobId;

    const getJob = async (): Promise<Job> => (await call(clientB.getJob.bind(clientB), { jobId })).job!;
    const running = await until('the job runs on op-a with progress', 20_000, async () => {
      const job = await getJob();
      return job.state === JobState.JOB_STATE_RUNNING && (job.progress?.records ?? 0) > 0 ? job : undefined;
    });
    const ownerOf = async () =>
      (await admin.query<{ owner: string }>(`SELECT owner FROM "${schema}".jobs WHERE job_id = $1`, [jobId])).rows[0]
        ?.owner;
    t.is(await ownerOf(), 'op-a');
    a.proc.child.kill('SIGKILL');
    t.is(await a.proc.exited, 'SIGKILL');
    const killedAt = Date.now();

    const done = await until('op-b finishes the job', 30_000, async () => {
      const job = await getJob();
      return job.state === JobState.JOB_STATE_SUCCEEDED ? job : undefined;
    });
    t.is(await ownerOf(), 'op-b', 'the survivor took the job over');
    t.is(done.attempt, 2, 'as the next attempt');
    t.true(done.startedAt >= killedAt, 'the second attempt started after the kill');
    t.true(
      done.startedAt - killedAt <= 2 * FAILOVER_MS + 1000,
      `taken over ${done.startedAt - killedAt} ms after the kill (lease ${FAILOVER_MS} ms, looked for every ${FAILOVER_MS} ms)`,
    );

    // The output: one committed file with every row once; no temporary file of the killed attempt counts.
    const files = (await readdir(out)).filter((f) => !f.startsWith('.'));
    t.is(files.length, 1, `one window file (${files.join(', ')})`);
    const rows = (await readFile(join(out, files[0]!), 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { id: number }).id);
    t.is(rows.length, ROWS);
    t.is(new Set(rows).size, ROWS, 'no row twice');
    t.log(
      `killed at ${running.progress?.records} rows; op-b started attempt 2 ${done.startedAt - killedAt} ms after the kill`,
    );
  },
);
