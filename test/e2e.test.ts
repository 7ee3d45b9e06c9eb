/**
 * End to end: catalog, schedule and operator as three separate processes (from sources, under tsx), on the
 * wall clock, with one-second windows, real connectors and real stores.
 *
 * - Group A: a PostgreSQL table (a timestamp column, a monotonic bigserial key) → JSON-lines files, one per
 *   window. Rows cover the first seconds of the schedule, several per second, some exactly on a window edge,
 *   a few before the schedule starts (never read), and one "heavy" window with many rows.
 * - Group B: a Kafka topic (librdkafka's mock cluster, two partitions) → a PostgreSQL table in
 *   replace-window mode, through a field mapping.
 *
 * Waits fail when nothing moves for a minute (ledger states, records read), not at fixed deadlines.
 *
 * Steps: create both groups over gRPC (options checked by the catalog process first), approve them (the
 * operator registers their schedules with the schedule process), wait for five windows of each to succeed
 * and check the sinks; backfill (mode ALL) one window that already succeeded and check its output was
 * replaced, not doubled; SIGKILL the operator while the heavy window's job is running, start it again on the
 * same store, replica id and port, and check that every window of the schedule ends with its records exactly
 * once.
 *
 * The store: PostgreSQL, a fresh schema per run, selected by `options=-c search_path=<schema>` in
 * SLUICE_DATABASE_URL. Schedule and operator must share one store (groups, jobs and the ledger live
 * together); PostgreSQL is the store made for several processes (SQLite in WAL mode would work too, but
 * the processes would then contend for one file lock), it is needed anyway for the sources and sinks,
 * and the ledger can be read with SQL after the run.
 *
 * The processes find each other through fixed ports picked up front (bind port 0, close), so that
 * SLUICE_OPERATOR_ADDR and SLUICE_SCHEDULE_ADDR are known before either starts, and the restarted operator
 * comes back where the schedule service's dispatcher already looks for it.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { credentials, status } from '@grpc/grpc-js';
import { Kafka, logLevel } from 'kafkajs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { CatalogServiceClient, ConnectorRole } from '../proto/gen/sluice/catalog/v1/catalog.js';
import { BoundaryType } from '../proto/gen/sluice/common/v1/common.js';
import {
  GroupStatus,
  JobState,
  OperatorServiceClient,
  type Group,
  type Endpoint,
  type Job,
  type Stream,
} from '../proto/gen/sluice/operator/v1/operator.js';
import {
  BackfillMode,
  CatchUpMode,
  InstanceState,
  InstanceTrigger,
  ScheduleServiceClient,
  WindowAlignment,
  type Instance,
  type ScheduleInfo,
} from '../proto/gen/sluice/schedule/v1/schedule.js';
import { PG_URL, probePostgres, uniqueName } from './helpers/databases.js';
import { type Probe, gate } from './helpers/integration.js';
import { type KafkaMock, probeKafkaMock, startKafkaMock } from './helpers/kafka-mock.js';
import { type Spawned, spawnService } from './helpers/process.js';
import { call } from './helpers/sluice.js';

interface Proc {
  readonly name: string;
  readonly proc: Spawned;
}

interface Context {
  /** Every process started, killed ones included (their logs are printed on failure). */
  procs: Proc[];
  clients: { close(): void }[];
  /** Run after the processes are gone, last registered first (schemas, temp dirs, the Kafka mock). */
  cleanup: (() => Promise<unknown>)[];
  /** Stops background pollers. */
  stop: AbortController;
  /** The background kill-and-restart, settled before the processes are cleaned up. */
  background?: Promise<unknown>;
}

const test = anyTest as TestFn<Context>;
const SECOND = 1000;
/** Windows of the schedule: [start, start + WINDOWS s). */
const WINDOWS = 24;
/** Group A's table has ROWS_PER_SECOND rows in each of the first SEEDED_SECONDS windows... */
const SEEDED_SECONDS = 8;
const ROWS_PER_SECOND = 5;
/** ...and HEAVY_ROWS in window HEAVY, whose job is the one the operator is killed in. */
const HEAVY = 20;
const HEAVY_ROWS = 300_000;
/** The window re-run by Backfill. */
const BACKFILLED = 2;
/** Messages in group B's topic, over two partitions. */
const MESSAGES = 30;
const GROUP_A = 'e2e-pg-to-file';
const GROUP_B = 'e2e-kafka-to-pg';
const OPERATOR_REPLICA = 'op-1';

function combine(probes: readonly Probe[]): Probe {
  const reasons = probes.flatMap((p) => (p.ok ? [] : [p.reason]));
  return reasons.length === 0 ? { ok: true } : { ok: false, reason: reasons.join('; ') };
}

// Probed before any test is declared: AVA wants every declaration in the module's first turn.
const e2e = gate(test, combine(await Promise.all([probePostgres(), probeKafkaMock()])));

test.beforeEach((t) => {
  t.context.procs = [];
  t.context.clients = [];
  t.context.cleanup = [];
  t.context.stop = new AbortController();
});

test.afterEach.always(async (t) => {
  t.context.stop.abort();
  // A restart in progress would otherwise add a process after the ones killed below.
  await Promise.race([t.context.background?.catch(() => {}), sleep(15_000)]);
  if (!t.passed) {
    for (const p of t.context.procs)
      t.log(`--- ${p.name} (pid ${p.proc.child.pid}) stderr, last lines:\n${p.proc.lines.slice(-60).join('\n')}`);
  }
  await Promise.all(t.context.procs.map((p) => kill(p.proc)));
  for (const c of t.context.clients) c.close();
  for (const fn of t.context.cleanup.reverse()) await fn().catch((err: unknown) => t.log('cleanup failed', err));
});

/** Children still running when this worker exits (a timeout, a crash) are killed then. */
const children = new Set<Spawned['child']>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

async function kill(proc: Spawned): Promise<void> {
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await proc.exited;
}

/** A port that was free a moment ago: bind port 0, read it, close. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts one service entry as a child process and waits for its 'gRPC server listening' line; returns the address it logged. */
async function startService(
  t: ExecutionContext<Context>,
  name: string,
  entry: string,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const proc = spawnService(entry, { SLUICE_LOG_LEVEL: 'info', SLUICE_SHUTDOWN_GRACE_MS: '1000', ...env });
  children.add(proc.child);
  void proc.exited.then(() => children.delete(proc.child));
  t.context.procs.push({ name, proc });
  const line = await proc.waitForLog((e) => e.msg === 'gRPC server listening', 60_000);
  return String(line.address);
}

/**
 * Polls until `check` is true; a check that throws (a service restarting) counts as false. The deadline is
 * one of inactivity, not a fixed time: every change in what `progress` reports (ledger states, records
 * read) restarts it, so a loaded machine that is slow but moving does not fail the test; one that is stuck
 * for `idleMs` does.
 */
async function until(
  what: string,
  idleMs: number,
  check: () => Promise<boolean> | boolean,
  signal?: AbortSignal,
  progress?: () => Promise<string>,
): Promise<void> {
  let deadline = Date.now() + idleMs;
  let lastError: unknown;
  let seen: string | undefined;
  for (;;) {
    if (signal?.aborted) throw new Error(`${what}: stopped`);
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const now = await (progress?.() ?? Promise.resolve('')).catch(() => seen ?? '');
    if (now !== seen) {
      seen = now;
      deadline = Date.now() + idleMs;
    }
    if (Date.now() > deadline)
      throw new Error(
        `${what}: nothing moved for ${idleMs} ms${lastError ? ` (last error: ${String(lastError)})` : ''}`,
      );
    await sleep(100);
  }
}

/**
 * Calls again while the service answers UNAVAILABLE: the operator is killed and restarted while the test
 * runs (whenever the heavy window's job is caught), and calls made meanwhile wait for it to come back.
 */
async function again<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: number }).code !== status.UNAVAILABLE || Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

/** One-second windows from `start`, closed windows fired at once, every missed one caught up. */
function secondly(groupId: string, start: number): ScheduleInfo {
  return {
    groupId,
    scheduleType: 0,
    scheduleUnit: 'S',
    scheduleInterval: 1,
    startTime: start,
    endTime: start + WINDOWS * SECOND,
    delayTime: 0,
    selfDepend: 0,
    taskParallelism: 1,
    crontabExpression: '',
    scheduleEngine: '',
    version: 0,
    timeZone: 'UTC',
    catchUp: { mode: CatchUpMode.CATCH_UP_MODE_ALL, windowMs: 0 },
    alignment: WindowAlignment.WINDOW_ALIGNMENT_END,
  };
}

async function ledger(client: ScheduleServiceClient, groupId: string): Promise<Instance[]> {
  const out: Instance[] = [];
  let pageToken = '';
  do {
    const res = await call(client.listInstances.bind(client), {
      groupId,
      states: [],
      windowFrom: 0,
      windowTo: 0,
      pageSize: 100,
      pageToken,
    });
    out.push(...res.instances);
    pageToken = res.nextPageToken;
  } while (pageToken !== '');
  return out;
}

async function jobsOf(client: OperatorServiceClient, groupId: string, windowFrom = 0, windowTo = 0): Promise<Job[]> {
  const out: Job[] = [];
  let pageToken = '';
  do {
    const res = await call(client.listJobs.bind(client), {
      groupId,
      states: [],
      windowFrom,
      windowTo,
      pageSize: 100,
      pageToken,
    });
    out.push(...res.jobs);
    pageToken = res.nextPageToken;
  } while (pageToken !== '');
  return out;
}

/** Window k's start. */
const edges = (start: number) => (k: number) => start + k * SECOND;
const range = (n: number) => Array.from({ length: n }, (_, k) => k);
const ok = (i: Instance | undefined) => i?.state === InstanceState.INSTANCE_STATE_SUCCEEDED;
const STATE = (s: number) => InstanceState[s] ?? String(s);

interface SourceRow {
  readonly id: number;
  /** Epoch ms as seeded (the file holds the reader's value, ISO 8601 UTC text: compared as ms). */
  readonly ts: number;
  readonly payload: string;
}

/**
 * Where two row lists differ, in a few words (undefined when equal). AVA's deepEqual would do, but is slow
 * on the heavy window's rows and would print all of them.
 */
function rowsDiffer(actual: readonly SourceRow[], expected: readonly SourceRow[]): string | undefined {
  const ms = (ts: number | string) => (typeof ts === 'string' ? Date.parse(ts) : ts);
  const key = (r: SourceRow | undefined) => (r ? `${r.id}|${ms(r.ts as number | string)}|${r.payload}` : 'nothing');
  for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
    if (key(actual[i]) !== key(expected[i]) || Object.keys(actual[i] ?? {}).length !== 3) {
      return `${actual.length} rows, expected ${expected.length}; first difference at row ${i}: ${JSON.stringify(actual[i] ?? null)}, expected ${key(expected[i])}`;
    }
  }
  return undefined;
}

e2e.serial(
  "three processes, two groups: windows, backfill and an operator killed mid-job; group A's rows once per window, group B's windows each the whole topic (the mock resolves no timestamp)",
  async (t) => {
    // The waits below fail on inactivity, not on a fixed deadline; this only bounds a run that keeps moving.
    t.timeout(600_000);
    const began = Date.now();
    const mark = (label: string) => t.log(`+${((Date.now() - began) / SECOND).toFixed(1)} s: ${label}`);

    // ---- stores, source data, sink tables ------------------------------------------------------------
    const storeSchema = uniqueName('sluice_e2e_store');
    const data = uniqueName('sluice_e2e_data');
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    t.context.cleanup.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS "${storeSchema}" CASCADE`);
      await admin.query(`DROP SCHEMA IF EXISTS "${data}" CASCADE`);
      await admin.end();
    });
    await admin.query(`CREATE SCHEMA "${storeSchema}"`);
    await admin.query(`CREATE SCHEMA "${data}"`);
    // The store moves `options` from the URL into every connection's startup packet: the search_path selects the schema.
    const storeUrl = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${storeSchema}`)}`;
    const outDir = await mkdtemp(join(tmpdir(), 'sluice-e2e-out-'));
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-e2e-data-'));
    t.context.cleanup.push(
      () => rm(outDir, { recursive: true, force: true }),
      () => rm(dataDir, { recursive: true, force: true }),
    );

    const topic = 'e2e_orders';
    const kafka: KafkaMock = await startKafkaMock({ [topic]: 2 });
    t.context.cleanup.push(() => kafka.stop());

    // ---- three processes -------------------------------------------------------------------------------
    const operatorPort = await freePort();
    let schedulePort = await freePort();
    while (schedulePort === operatorPort) schedulePort = await freePort();
    const operatorAddr = `127.0.0.1:${operatorPort}`;
    const scheduleAddr = `127.0.0.1:${schedulePort}`;
    const common = {
      SLUICE_DATABASE_URL: storeUrl,
      SLUICE_OPERATOR_ADDR: operatorAddr,
      SLUICE_SCHEDULE_ADDR: scheduleAddr,
    };
    // A Kafka window takes about 8 s on the mock (a 3 s consumer-group join, then a 5 s wait in the consumer's
    // disconnect for its fetch long-poll), so at one window a second some 8 of group B's jobs run at once:
    // room for them and for group A's.
    const operatorEnv = {
      ...common,
      SLUICE_GRPC_ADDR: operatorAddr,
      SLUICE_DATA_DIR: join(dataDir, 'operator'),
      SLUICE_REPLICA_ID: OPERATOR_REPLICA,
      SLUICE_MAX_RUNNING_JOBS: '16',
    };
    const [catalogAddr, scheduleListening, operatorListening] = await Promise.all([
      startService(t, 'catalog', 'services/catalog/main.ts', {
        SLUICE_GRPC_ADDR: '127.0.0.1:0',
        SLUICE_DATA_DIR: join(dataDir, 'catalog'),
      }),
      startService(t, 'schedule', 'services/schedule/main.ts', {
        ...common,
        SLUICE_GRPC_ADDR: scheduleAddr,
        SLUICE_DATA_DIR: join(dataDir, 'schedule'),
        SLUICE_REPLICA_ID: 'sched-1',
      }),
      startService(t, 'operator (first run)', 'services/operator/main.ts', operatorEnv),
    ]);
    t.is(scheduleListening, scheduleAddr);
    t.is(operatorListening, operatorAddr);
    const catalog = new CatalogServiceClient(catalogAddr, credentials.createInsecure());
    const schedule = new ScheduleServiceClient(scheduleAddr, credentials.createInsecure());
    const operator = new OperatorServiceClient(operatorAddr, credentials.createInsecure());
    t.context.clients.push(catalog, schedule, operator);
    mark('processes up');
    /** What moves while the run goes on: both ledgers, and the records read by group A's running jobs. */
    const progress = async () => {
      const rows = (await Promise.all([GROUP_A, GROUP_B].map((g) => ledger(schedule, g)))).flat();
      const running = await jobsOf(operator, GROUP_A).catch(() => [] as Job[]);
      return JSON.stringify([
        rows.map((r) => `${r.state}/${r.attempt}`),
        running.map((j) => `${j.state}/${j.progress?.records ?? 0}`),
      ]);
    };

    // ---- the schedule and its data ---------------------------------------------------------------------
    const start = Math.ceil(Date.now() / SECOND) * SECOND + SECOND;
    const at = edges(start);
    const windowOf = (ts: number) => Math.floor((ts - start) / SECOND);

    // Group A's source: 3 rows before the schedule, ROWS_PER_SECOND per second over the first SEEDED_SECONDS
    // windows (every 200 ms, so one row sits exactly on each window's lower edge), and HEAVY_ROWS in window
    // HEAVY. Ids grow with the timestamps.
    const src = `"${data}".src_a`;
    await admin.query(`CREATE TABLE ${src} (id bigserial PRIMARY KEY, ts timestamptz NOT NULL, payload text NOT NULL)`);
    await admin.query(`CREATE INDEX ON ${src} (ts)`);
    const tsOf = (ms: string) => `timestamptz 'epoch' + (${ms})::bigint * interval '1 millisecond'`;
    const seeded = [
      start - 3000,
      start - 1000,
      start - 1,
      ...range(SEEDED_SECONDS * ROWS_PER_SECOND).map((i) => start + (i * SECOND) / ROWS_PER_SECOND),
    ];
    await admin.query(
      `INSERT INTO ${src} (ts, payload) SELECT ${tsOf('t')}, 'row at ' || t FROM unnest($1::bigint[]) WITH ORDINALITY AS s(t, n) ORDER BY n`,
      [seeded],
    );
    await admin.query(
      `INSERT INTO ${src} (ts, payload) SELECT ${tsOf(`$1::bigint + (g * 1000::bigint) / $2`)}, 'heavy ' || g || ' ' || repeat('x', 100) FROM generate_series(0, $2 - 1) g ORDER BY g`,
      [at(HEAVY), HEAVY_ROWS],
    );
    await admin.query(`ANALYZE ${src}`);
    mark('source seeded');
    const readSource = async (): Promise<SourceRow[]> =>
      (
        await admin.query<{ id: string; ts: string; payload: string }>(
          `SELECT id, (extract(epoch FROM ts) * 1000)::bigint AS ts, payload FROM ${src} ORDER BY id`,
        )
      ).rows.map((r) => ({ id: Number(r.id), ts: Number(r.ts), payload: r.payload }));
    const sourceRows = await readSource();
    const sourceByWindow = new Map<number, SourceRow[]>();
    for (const r of sourceRows) {
      const k = windowOf(r.ts);
      if (k < 0 || k >= WINDOWS) continue;
      const list = sourceByWindow.get(k);
      if (list) list.push(r);
      else sourceByWindow.set(k, [r]);
    }
    t.is(sourceByWindow.get(0)?.length, ROWS_PER_SECOND);
    t.is(sourceByWindow.get(HEAVY)?.length, HEAVY_ROWS);

    // Group B's sink table, with the window column replace-window mode keeps each row's window id in.
    const sink = `"${data}".sink_b`;
    await admin.query(
      `CREATE TABLE ${sink} (id bigint NOT NULL, msg text NOT NULL, _partition integer NOT NULL, _offset text NOT NULL, sluice_window text NOT NULL)`,
    );
    await admin.query(`CREATE INDEX ON ${sink} (sluice_window)`);
    const windowId = (groupId: string, k: number) => `${groupId}/s1/TIME:${at(k)}:${at(k + 1)}`;

    // Group B's topic: every message is produced before the schedule starts. What a TIME window over Kafka
    // reads, and what this test can and cannot check with the mock cluster (docs/connectors/kafka.md):
    // - A TIME window resolves per partition to [start, stop) offsets by ListOffsets-by-timestamp. The mock
    //   answers -1 to every such lookup, which the connector reads as "the high watermark": on the mock a
    //   plain TIME window is [HW, HW), always empty, whatever the timestamps.
    // - So the group pins its start with `startOffsets: "0:0,1:0"` (every partition named: the lower lookup
    //   is skipped) and every window reads [0, stop) with stop = the first offset at or after the window's
    //   upper bound. With every message older than the schedule there is none, on a real broker as on the
    //   mock: stop is the high watermark, and each window reads the whole topic, exactly once. That is what
    //   is asserted per window (ids, partitions and offsets), together with replace-window on re-runs and
    //   restarts, and the resolved positions the job records.
    // - Not covered: cutting the log into per-window slices by timestamp (the mock cannot resolve them),
    //   and chaining each window's start to the previous window's resolved stop (the operator does not do
    //   that on its own; startOffsets is a static option of the group).
    const expectedMessages = range(MESSAGES).map((i) => ({
      id: i + 1,
      msg: `message ${i + 1}`,
      partition: i % 2,
      offset: String(Math.floor(i / 2)),
    }));
    const producer = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.ERROR }).producer({
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    try {
      await producer.send({
        topic,
        messages: expectedMessages.map((m) => ({
          partition: m.partition,
          key: String(m.id),
          value: JSON.stringify({ id: m.id, msg: m.msg }),
        })),
      });
    } finally {
      await producer.disconnect();
    }
    const highWatermarks = '0:15,1:15';
    mark('source, sink and topic ready');

    // ---- groups, checked by the catalog, created and approved on the operator -------------------------
    // Streams as sent, with both endpoints (the proto type leaves them optional).
    type FullStream = Stream & { source: Endpoint; sink: Endpoint };
    const streamA: FullStream = {
      streamId: 's1',
      source: {
        connectorId: 'postgres',
        options: {
          url: PG_URL,
          table: `${data}.src_a`,
          keyColumn: 'id',
          timeColumn: 'ts',
          columns: ['id', 'ts', 'payload'],
          batchSize: 500,
        },
      },
      sink: { connectorId: 'file', options: { path: outDir, format: 'jsonl' } },
      fields: [],
    };
    const streamB: FullStream = {
      streamId: 's1',
      source: {
        connectorId: 'kafka',
        options: {
          brokers: kafka.brokers,
          topic,
          format: 'json',
          metadataColumns: true,
          startOffsets: '0:0,1:0',
          batchSize: 7,
        },
      },
      sink: { connectorId: 'postgres', options: { url: PG_URL, table: `${data}.sink_b`, mode: 'replace-window' } },
      fields: [
        { sourceField: 'id', targetField: 'id', cast: 'int' },
        { sourceField: 'msg', targetField: 'msg', cast: '' },
        { sourceField: '_partition', targetField: '_partition', cast: 'int' },
        { sourceField: '_offset', targetField: '_offset', cast: 'string' },
      ],
    };
    for (const s of [streamA, streamB]) {
      for (const [end, role] of [
        [s.source, ConnectorRole.CONNECTOR_ROLE_SOURCE],
        [s.sink, ConnectorRole.CONNECTOR_ROLE_SINK],
      ] as const) {
        const res = await call(catalog.validateOptions.bind(catalog), {
          connectorId: end.connectorId,
          role,
          options: end.options,
        });
        t.deepEqual(res.errors, [], `catalog: ${end.connectorId} options are valid`);
      }
    }
    const group = (groupId: string, stream: Stream): Group => ({
      groupId,
      description: `e2e ${groupId}`,
      streams: [stream],
      schedule: secondly(groupId, start),
      runner: '',
      retry: { maxAttempts: 3, initialBackoffMs: 200 },
      status: GroupStatus.GROUP_STATUS_UNSPECIFIED,
      version: 0,
      createdAt: 0,
      updatedAt: 0,
    });

    // The kill: once the heavy window's job is RUNNING and has reported progress, SIGKILL the operator, then
    // start it again (same store, replica id and port). It runs beside steps 2 and 3 and is armed before the
    // groups exist, so that it cannot miss the job whatever they take. The heavy window is late enough to
    // fire after the backfill on a machine that keeps up, but nothing waits for that: every assertion below
    // holds in either order (calls to the operator retry while it is down), and the log says which it was.
    const kill$ = (async () => {
      const { signal } = t.context.stop;
      let victim: Job | undefined;
      await until(
        'the heavy window job is running with progress',
        60_000,
        async () => {
          const jobs = await jobsOf(operator, GROUP_A, at(HEAVY), at(HEAVY + 1));
          victim = jobs.find((j) => j.state === JobState.JOB_STATE_RUNNING && (j.progress?.records ?? 0) > 0);
          return victim !== undefined;
        },
        signal,
        progress,
      );
      const first = t.context.procs.find((p) => p.name === 'operator (first run)')!.proc;
      first.child.kill('SIGKILL');
      const killedAt = Date.now();
      const exit = await first.exited;
      const files = await readdir(outDir);
      mark(`operator SIGKILLed with the heavy job ${victim!.jobId} RUNNING at ${victim!.progress!.records} records`);
      // Restarted at once on purpose: the port, the replica id and the store are the same.
      const address = await startService(t, 'operator (restarted)', 'services/operator/main.ts', operatorEnv);
      mark('operator restarted');
      return { victim: victim!, killedAt, restartedAt: Date.now(), exit, files, address };
    })();
    kill$.catch(() => {}); // awaited below; a rejection before then must not be unhandled
    t.context.background = kill$;

    for (const g of [group(GROUP_A, streamA), group(GROUP_B, streamB)]) {
      const created = (await call(operator.createGroup.bind(operator), { group: g })).group!;
      t.is(created.status, GroupStatus.GROUP_STATUS_NEW);
      const approved = (
        await call(operator.approveGroup.bind(operator), { groupId: g.groupId, version: created.version })
      ).group!;
      t.is(approved.status, GroupStatus.GROUP_STATUS_REGISTERED);
      const registered = (await call(schedule.getSchedule.bind(schedule), { groupId: g.groupId })).schedule!;
      t.is(
        registered.info?.startTime,
        start,
        `${g.groupId}: the operator registered the schedule with the schedule service`,
      );
    }
    mark(`groups approved; schedule starts at +${((start - began) / SECOND).toFixed(1)} s`);

    // ---- 1 + 2: the first five windows of each group ---------------------------------------------------
    const FIRST = 5;
    await until(
      'the first five windows of both groups succeeded',
      60_000,
      async () => {
        const [a, b] = await Promise.all([ledger(schedule, GROUP_A), ledger(schedule, GROUP_B)]);
        return [a, b].every((rows) => range(FIRST).every((k) => ok(rows.find((r) => r.window?.start === at(k)))));
      },
      undefined,
      progress,
    );
    mark('first five windows of both groups succeeded');

    const readWindowFile = async (k: number): Promise<SourceRow[]> => {
      const text = await readFile(join(outDir, `${GROUP_A}-s1-${at(k)}-${at(k + 1)}.jsonl`), 'utf8');
      return text === ''
        ? []
        : text
            .trimEnd()
            .split('\n')
            .map((l) => JSON.parse(l) as SourceRow);
    };
    const readSinkWindow = async (k: number) =>
      (
        await admin.query<{ id: string; msg: string; _partition: number; _offset: string }>(
          `SELECT id, msg, _partition, _offset FROM ${sink} WHERE sluice_window = $1 ORDER BY id`,
          [windowId(GROUP_B, k)],
        )
      ).rows.map((r) => ({
        id: Number(r.id),
        msg: r.msg,
        partition: r._partition,
        offset: r._offset,
      }));
    const checkWindowA = async (k: number, label: string) => {
      const rows = await readWindowFile(k);
      const diff = rowsDiffer(rows, sourceByWindow.get(k) ?? []);
      t.is(diff, undefined, `${label}: group A window ${k} holds exactly its source rows, in key order`);
      return rows;
    };
    const checkWindowB = async (k: number, label: string) => {
      const rows = await readSinkWindow(k);
      t.deepEqual(rows, expectedMessages, `${label}: group B window ${k} holds every message once`);
    };

    const union: SourceRow[] = [];
    for (const k of range(FIRST)) for (const r of await checkWindowA(k, 'after five windows')) union.push(r);
    t.is(new Set(union.map((r) => r.id)).size, union.length, 'no row in two window files');
    t.deepEqual(
      union.map((r) => r.id),
      sourceRows.filter((r) => windowOf(r.ts) >= 0 && windowOf(r.ts) < FIRST).map((r) => r.id),
      'the union of the first five files is the source rows of those windows, and none before the schedule',
    );
    for (const k of range(FIRST)) await checkWindowB(k, 'after five windows');

    // The operator's side of the same windows: one SUCCEEDED job each, the records counted, and the bounds
    // resolved as the catalog process previews them.
    for (const [groupId, stream] of [
      [GROUP_A, streamA],
      [GROUP_B, streamB],
    ] as const) {
      const rows = await ledger(schedule, groupId);
      for (const k of range(FIRST)) {
        const inst = rows.find((r) => r.window?.start === at(k))!;
        t.is(inst.jobIds.length, 1);
        const job = (await again(() => call(operator.getJob.bind(operator), { jobId: inst.jobIds[0]! }))).job!;
        t.is(job.state, JobState.JOB_STATE_SUCCEEDED);
        t.is(job.instanceId, inst.instanceId, `${groupId} window ${k}: the job belongs to its ledger instance`);
        t.deepEqual(job.boundaries, {
          boundaryType: BoundaryType.BOUNDARY_TYPE_TIME,
          lowerBound: String(at(k)),
          upperBound: String(at(k + 1)),
        });
        t.is(
          job.progress?.records,
          groupId === GROUP_A ? (sourceByWindow.get(k)?.length ?? 0) : MESSAGES,
          `${groupId} window ${k}: records counted`,
        );
        if (groupId === GROUP_B)
          t.deepEqual(
            job.resolvedPositions,
            { start: '0:0,1:0', stop: highWatermarks },
            `window ${k}: pinned start, stop at the high watermark`,
          );
        if (k === 0) {
          const preview = await call(catalog.resolveBoundaries.bind(catalog), {
            connectorId: stream.source.connectorId,
            options: stream.source.options,
            boundaries: job.boundaries,
          });
          t.deepEqual(
            job.resolvedSourceOptions,
            preview.boundedOptions,
            `${groupId}: the job read what the catalog previews for the window`,
          );
        }
      }
    }

    // ---- 3: Backfill (ALL) one window that already succeeded: its output is replaced, not doubled ---------
    // Tamper with that window's output first, so that "replaced" is visible: a stray line in its file and a
    // stray row under its window id in the sink table must both be gone after the re-run.
    const fileBF = join(outDir, `${GROUP_A}-s1-${at(BACKFILLED)}-${at(BACKFILLED + 1)}.jsonl`);
    await writeFile(fileBF, `${JSON.stringify({ id: -1, ts: at(BACKFILLED), payload: 'stray' })}\n`, { flag: 'a' });
    await admin.query(
      `INSERT INTO ${sink} (id, msg, _partition, _offset, sluice_window) VALUES (-1, 'stray', 0, '0', $1)`,
      [windowId(GROUP_B, BACKFILLED)],
    );
    const inodeBefore = (await stat(fileBF)).ino;
    const before = new Map<string, Instance>();
    for (const groupId of [GROUP_A, GROUP_B]) {
      before.set(
        groupId,
        (await ledger(schedule, groupId)).find((r) => r.window?.start === at(BACKFILLED))!,
      );
      const res = await call(schedule.backfill.bind(schedule), {
        groupId,
        fromTime: at(BACKFILLED),
        toTime: at(BACKFILLED + 1),
        mode: BackfillMode.BACKFILL_MODE_ALL,
        maxParallel: 1,
        reverse: false,
        dryRun: false,
      });
      t.deepEqual(
        res.windows.map((w) => w.start),
        [at(BACKFILLED)],
        `${groupId}: backfill chose the one window`,
      );
      t.is(res.instances.length, 1);
      t.is(res.instances[0]!.attempt, 2, `${groupId}: the window runs a second time`);
      t.is(res.instances[0]!.trigger, InstanceTrigger.INSTANCE_TRIGGER_BACKFILL);
    }
    await until(
      'both backfilled windows succeeded again',
      60_000,
      async () => {
        const rows = await Promise.all(
          [GROUP_A, GROUP_B].map(async (g) =>
            (await ledger(schedule, g)).find((r) => r.window?.start === at(BACKFILLED)),
          ),
        );
        return rows.every((r) => ok(r) && r!.attempt === 2);
      },
      undefined,
      progress,
    );
    const backfilledAt = Date.now();
    mark('backfill done');
    for (const groupId of [GROUP_A, GROUP_B]) {
      const after = (await ledger(schedule, groupId)).find((r) => r.window?.start === at(BACKFILLED))!;
      const old = before.get(groupId)!;
      t.is(after.instanceId, old.instanceId, `${groupId}: the same ledger row ran again`);
      t.notDeepEqual(after.jobIds, old.jobIds, `${groupId}: the re-run has a job of its own`);
      const jobs = await again(() => jobsOf(operator, groupId, at(BACKFILLED), at(BACKFILLED + 1)));
      t.deepEqual(
        jobs.map((j) => j.jobId).sort(),
        [...old.jobIds, ...after.jobIds].sort(),
        `${groupId}: two runs of the window, no more`,
      );
      t.true(jobs.every((j) => j.state === JobState.JOB_STATE_SUCCEEDED));
    }
    await checkWindowA(BACKFILLED, 'after the backfill');
    t.not((await stat(fileBF)).ino, inodeBefore, 'the file was replaced (renamed over), not appended to');
    await checkWindowB(BACKFILLED, 'after the backfill');

    // ---- 4: the operator killed mid-job, restarted ------------------------------------------------------
    const killed = await kill$;
    t.is(killed.exit, 'SIGKILL');
    t.is(killed.address, operatorAddr, 'the operator came back where the schedule service dispatches to');
    const heavyFile = `${GROUP_A}-s1-${at(HEAVY)}-${at(HEAVY + 1)}.jsonl`;
    t.false(killed.files.includes(heavyFile), 'the heavy window had not been committed when the operator was killed');
    // `.<file>.<jobId>.<8 hex digits>.tmp`: each writer's own temporary file.
    t.true(
      killed.files.some((f) => f.startsWith(`.${heavyFile}.${killed.victim.jobId}.`) && /\.[0-9a-f]{8}\.tmp$/.test(f)),
      'its job was writing its temporary file',
    );

    // Every window of the schedule ends SUCCEEDED.
    let finalA: Instance[] = [];
    let finalB: Instance[] = [];
    await until(
      'every window of both groups succeeded',
      60_000,
      async () => {
        [finalA, finalB] = await Promise.all([ledger(schedule, GROUP_A), ledger(schedule, GROUP_B)]);
        return [finalA, finalB].every((rows) => rows.length === WINDOWS && rows.every(ok));
      },
      undefined,
      progress,
    );
    mark('every window of both groups succeeded');

    // The ledger: one row per window, tiling the schedule; the backfilled window ran twice, every other once.
    for (const rows of [finalA, finalB]) {
      t.deepEqual(
        rows.map((r) => r.window?.start),
        range(WINDOWS).map(at),
        'one ledger row per window, no gap',
      );
      t.deepEqual(
        rows.filter((r) => r.attempt !== 1).map((r) => (r.window!.start - start) / SECOND),
        [BACKFILLED],
        `attempts: ${rows.map((r) => `${STATE(r.state)}/${r.attempt}`).join(' ')}`,
      );
    }
    // The heavy window: the schedule did not dispatch it again; the restarted operator resumed the same job.
    const heavyInst = finalA.find((r) => r.window?.start === at(HEAVY))!;
    t.deepEqual(heavyInst.jobIds, [killed.victim.jobId], 'the heavy window kept its job');
    const heavyJob = (await again(() => call(operator.getJob.bind(operator), { jobId: killed.victim.jobId }))).job!;
    t.is(heavyJob.state, JobState.JOB_STATE_SUCCEEDED);
    t.is(heavyJob.attempt, 2, 'the job ran a second time after the restart');
    t.true(heavyJob.finishedAt >= killed.restartedAt);
    t.is(heavyJob.progress?.records, HEAVY_ROWS);
    t.log(
      `heavy window: killed ${killed.killedAt - killed.victim.startedAt} ms into its first run; the second took ${heavyJob.finishedAt - heavyJob.startedAt} ms; the kill came ${killed.killedAt < backfilledAt ? 'before' : 'after'} the backfill ended`,
    );
    // Every job of every window ended SUCCEEDED: one per window, two for the backfilled one.
    for (const groupId of [GROUP_A, GROUP_B]) {
      const jobs = await again(() => jobsOf(operator, groupId));
      t.is(jobs.length, WINDOWS + 1, `${groupId}: one job per window plus the backfill's`);
      t.deepEqual(
        jobs.filter((j) => j.state !== JobState.JOB_STATE_SUCCEEDED).map((j) => j.jobId),
        [],
      );
      const rerunAfterKill = jobs
        .filter((j) => j.attempt > 1)
        .map((j) => (Number(j.boundaries!.lowerBound) - start) / SECOND);
      t.log(`${groupId}: jobs re-run after the restart, by window: [${rerunAfterKill.join(' ')}]`);
    }

    // Group A: one file per window, each exactly its rows; together, every source row of the schedule once.
    // The ownership records beside the window files (`.<name>.sluice`) are the sink's own, not output.
    const names = (await readdir(outDir)).filter((n) => !n.endsWith('.sluice'));
    t.deepEqual(
      names.filter((n) => n.startsWith('.')),
      [],
      'no temporary file left (the re-run deleted the one the kill left, and committed its own)',
    );
    t.deepEqual(
      names.sort(),
      range(WINDOWS)
        .map((k) => `${GROUP_A}-s1-${at(k)}-${at(k + 1)}.jsonl`)
        .sort(),
      'one file per window',
    );
    const all: SourceRow[] = [];
    for (const k of range(WINDOWS)) for (const r of await checkWindowA(k, 'at the end')) all.push(r);
    t.is(new Set(all.map((r) => r.id)).size, all.length, 'no row in two window files');
    t.is(
      rowsDiffer(
        all,
        sourceRows.filter((r) => windowOf(r.ts) >= 0 && windowOf(r.ts) < WINDOWS),
      ),
      undefined,
      'every source row of the schedule, once',
    );
    t.is(all.length, SEEDED_SECONDS * ROWS_PER_SECOND + HEAVY_ROWS);
    t.is(rowsDiffer(await readSource(), sourceRows), undefined, 'the source is unchanged');

    // Group B: every window holds every message exactly once; nothing else in the table.
    for (const k of range(WINDOWS)) await checkWindowB(k, 'at the end');
    const { rows: counts } = await admin.query<{ windows: string; total: string }>(
      `SELECT count(DISTINCT sluice_window) AS windows, count(*) AS total FROM ${sink}`,
    );
    t.deepEqual(counts[0], { windows: String(WINDOWS), total: String(WINDOWS * MESSAGES) });
    mark(`done; operator down ${killed.restartedAt - killed.killedAt} ms`);
  },
);
