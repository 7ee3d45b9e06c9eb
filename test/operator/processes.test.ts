/**
 * Operator replicas as real processes on one PostgreSQL store: one is killed with SIGKILL in the middle of a
 * job, and another replica takes the job over when its lease runs out and finishes the window, its output
 * written exactly once. A schedule process is there because approving a group registers its schedule (which
 * starts in a year, so it fires nothing here). And a store outage on the operator's side: a TCP proxy between
 * the operator and PostgreSQL cut in the middle of a job and restored.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { credentials } from '@grpc/grpc-js';
import { credentials as grpcCredentials, status, type ServiceError } from '@grpc/grpc-js';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
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
import { startTcpProxy } from '../helpers/tcp-proxy.js';

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
      // Lease expiry and the next scan, plus room for the survivor's own restart of the job on a loaded machine.
      done.startedAt - killedAt <= 2 * FAILOVER_MS + 3000,
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

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const callError = async <Req, Res>(
  fn: (req: Req, cb: (err: ServiceError | null, res?: Res) => void) => unknown,
  req: Req,
): Promise<ServiceError> =>
  new Promise((resolve, reject) =>
    fn(req, (err) => (err ? resolve(err) : reject(new Error('the call succeeded during the outage')))),
  );

pgTest.serial(
  'store outage on the operator side (TCP proxy cut mid-job, then restored): calls answer UNAVAILABLE, nothing is left RUNNING, the next windows fire',
  async (t) => {
    const SECOND = 1000;
    const schema = uniqueName('sluice_op_outage');
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    t.context.cleanup.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    });
    await admin.query(`CREATE SCHEMA "${schema}"`);
    const direct = new URL(PG_URL);
    direct.searchParams.set('options', `-c search_path=${schema}`);
    const proxy = await startTcpProxy(direct.hostname || '127.0.0.1', Number(direct.port || 5432));
    t.context.cleanup.push(() => proxy.close());
    const viaProxy = new URL(direct);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const dir = await mkdtemp(join(tmpdir(), 'sluice-op-outage-'));
    t.context.cleanup.push(() => rm(dir, { recursive: true, force: true }));

    // The schedule service reaches PostgreSQL directly; only the operator goes through the proxy.
    const operatorAddr = `127.0.0.1:${await freePort()}`;
    const schedule = await start(t, 'schedule', 'services/schedule/main.ts', {
      SLUICE_DATABASE_URL: direct.toString(),
      SLUICE_FAILOVER_MS: String(FAILOVER_MS),
      SLUICE_DATA_DIR: join(dir, 's'),
      SLUICE_REPLICA_ID: 's1',
      SLUICE_OPERATOR_ADDR: operatorAddr,
    });
    const op = await start(t, 'op-a', 'services/operator/main.ts', {
      SLUICE_DATABASE_URL: viaProxy.toString(),
      SLUICE_FAILOVER_MS: String(FAILOVER_MS),
      SLUICE_PLUGIN_PATH: RUNNER_FIXTURES,
      SLUICE_GRPC_ADDR: operatorAddr,
      SLUICE_DATA_DIR: join(dir, 'a'),
      SLUICE_REPLICA_ID: 'op-a',
      SLUICE_SCHEDULE_ADDR: schedule.address,
    });
    const client = new OperatorServiceClient(op.address, grpcCredentials.createInsecure());
    t.context.clients.push(client);

    // A slow job to cut the store under, and a group of one-second windows to see fire across the outage.
    const slowOut = join(dir, 'slow');
    const inAYear = Date.now() + 365 * 86_400_000;
    const groups = [
      Group.fromPartial({
        groupId: 'slow',
        description: 'slow rows to a file',
        streams: [
          {
            streamId: 's1',
            source: { connectorId: 'slow-source', options: { delayMs: 25 } },
            sink: { connectorId: 'file', options: { path: slowOut, format: 'jsonl' } },
            fields: [],
          },
        ],
        schedule: {
          groupId: 'slow',
          scheduleUnit: 'H',
          scheduleInterval: 1,
          taskParallelism: 1,
          startTime: inAYear,
          endTime: inAYear + 86_400_000,
          timeZone: 'UTC',
          catchUp: { mode: CatchUpMode.CATCH_UP_MODE_NONE, windowMs: 0 },
          alignment: WindowAlignment.WINDOW_ALIGNMENT_END,
        },
        retry: { maxAttempts: 5, initialBackoffMs: 100 },
      }),
    ];
    const windowStart = Math.ceil(Date.now() / SECOND) * SECOND + 5 * SECOND;
    groups.push(
      Group.fromPartial({
        groupId: 'secondly',
        description: 'one-second windows to files',
        streams: [
          {
            streamId: 's1',
            source: { connectorId: 'datagen', options: { intervalMs: 200, seed: 1 } },
            sink: { connectorId: 'file', options: { path: join(dir, 'secondly'), format: 'jsonl' } },
            fields: [],
          },
        ],
        schedule: {
          groupId: 'secondly',
          scheduleUnit: 'S',
          scheduleInterval: 1,
          taskParallelism: 1,
          startTime: windowStart,
          endTime: windowStart + 3_600_000,
          timeZone: 'UTC',
          catchUp: { mode: CatchUpMode.CATCH_UP_MODE_ALL, windowMs: 0 },
          alignment: WindowAlignment.WINDOW_ALIGNMENT_END,
        },
        retry: { maxAttempts: 5, initialBackoffMs: 200 },
      }),
    );
    for (const group of groups) {
      const created = await call(client.createGroup.bind(client), { group });
      await call(client.approveGroup.bind(client), { groupId: group.groupId, version: created.group!.version });
    }
    const ROWS = 3000;
    const submitted = await call(client.submitOfflineJob.bind(client), {
      request: {
        groupId: 'slow',
        boundaryType: BoundaryType.BOUNDARY_TYPE_OFFSET,
        lowerBoundary: '0',
        upperBoundary: String(ROWS),
        instanceId: 'slow-1',
      },
      rerun: false,
    });
    const jobId = submitted.jobs[0]!.jobId;
    const getJob = async (): Promise<Job> => (await call(client.getJob.bind(client), { jobId })).job!;
    await until('the slow job runs with progress', 60_000, async () => {
      const job = await getJob();
      return job.state === JobState.JOB_STATE_RUNNING && (job.progress?.records ?? 0) > 0 ? job : undefined;
    });
    // Windows of the secondly group have fired before the cut.
    await until('secondly windows fired before the outage', 60_000, async () => {
      const { rows } = await admin.query(`SELECT 1 FROM "${schema}".instances WHERE group_id = 'secondly'`);
      return rows.length >= 2 ? true : undefined;
    });

    await proxy.cut();
    const cutAt = Date.now();
    const during = await callError(client.getJob.bind(client), { jobId });
    t.is(during.code, status.UNAVAILABLE, `GetJob during the outage: ${during.details}`);
    t.notRegex(during.details, /password/i);
    await sleep(2 * FAILOVER_MS + SECOND);
    const still = await callError(client.listJobs.bind(client), {
      groupId: 'slow',
      states: [],
      windowFrom: 0,
      windowTo: 0,
      pageSize: 10,
      pageToken: '',
    });
    t.is(still.code, status.UNAVAILABLE, `still UNAVAILABLE, not hanging, while the store is away: ${still.details}`);
    await proxy.restore();
    const restoredAt = Date.now();

    // After it: the slow job ends SUCCEEDED with its output once, and no job or window stays unfinished.
    const done = await until('the slow job ends', 90_000, async () => {
      const job = await getJob();
      return [JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED].includes(job.state) ? job : undefined;
    });
    t.is(done.state, JobState.JOB_STATE_SUCCEEDED, `the slow job: ${done.error}`);
    const files = (await readdir(slowOut)).filter((f) => !f.startsWith('.'));
    t.is(files.length, 1, `one window file (${files.join(', ')})`);
    const ids = (await readFile(join(slowOut, files[0]!), 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { id: number }).id);
    t.is(new Set(ids).size, ROWS, 'every row of the slow job');
    t.is(ids.length, ROWS, 'no row twice');

    // Windows due after the restore fire, and every window up to them ends SUCCEEDED with one job.
    const cutoff = Math.ceil(restoredAt / SECOND) * SECOND + 3 * SECOND;
    const expected = (cutoff - windowStart) / SECOND;
    await until('every secondly window up to the cut-off ended SUCCEEDED', 120_000, async () => {
      const { rows } = await admin.query<{ state: string }>(
        `SELECT state FROM "${schema}".instances WHERE group_id = 'secondly' AND window_start < $1`,
        [cutoff],
      );
      return rows.length === expected && rows.every((r) => r.state === 'SUCCEEDED') ? true : undefined;
    });
    const twice = await admin.query(
      `SELECT lower_bound FROM "${schema}".jobs WHERE group_id = 'secondly' GROUP BY lower_bound HAVING count(*) > 1`,
    );
    t.is(twice.rowCount, 0, 'one job per window');
    await until('no job left PENDING or RUNNING', 60_000, async () => {
      const { rows } = await admin.query(
        `SELECT job_id FROM "${schema}".jobs WHERE state IN ('PENDING', 'RUNNING') AND lower_bound::bigint < $1`,
        [cutoff],
      );
      return rows.length === 0 ? true : undefined;
    });
    const unfinished = await admin.query(
      `SELECT instance_id FROM "${schema}".instances WHERE window_start < $1 AND state NOT IN ('SUCCEEDED', 'FAILED', 'SKIPPED')`,
      [cutoff],
    );
    t.is(unfinished.rowCount, 0, 'no window left unfinished');
    t.log(
      `outage ${restoredAt - cutAt} ms mid-job; the slow job ended attempt ${done.attempt}; ${expected} secondly windows all SUCCEEDED`,
    );
  },
);
