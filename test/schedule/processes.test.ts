/**
 * The schedule service as real processes (from sources, under tsx) on the wall clock, dispatching over
 * gRPC to an in-test operator: a replica killed with SIGKILL and started again, and two replicas sharing
 * one PostgreSQL ledger. Windows are one second long so that a few seconds cover many of them.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { credentials, status } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  CatchUpMode,
  InstanceState,
  ScheduleServiceClient,
  WindowAlignment,
  type Instance,
  type ScheduleInfo,
} from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { SqliteStore } from '../../services/store/sqlite.js';
import { PG_URL, probePostgres, uniqueName } from '../helpers/databases.js';
import { type FakeOperator, type SubmitCall, startFakeOperator } from '../helpers/fake-operator.js';
import { gate } from '../helpers/integration.js';
import { type Spawned, spawnService } from '../helpers/process.js';
import { call, callError } from '../helpers/sluice.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

interface Replica {
  readonly name: string;
  readonly proc: Spawned;
  readonly client: ScheduleServiceClient;
}

interface Context {
  replicas: Replica[];
  operator?: FakeOperator;
  /** Run after the processes are gone, last registered first (temp dirs, schemas). */
  cleanup: (() => Promise<unknown>)[];
}

const test = anyTest as TestFn<Context>;
const SECOND = 1000;
// Probed before any test is declared: AVA wants every declaration in the module's first turn.
const pgTest = gate(test, await probePostgres());

test.beforeEach((t) => {
  t.context.replicas = [];
  t.context.cleanup = [];
});

test.afterEach.always(async (t) => {
  if (!t.passed) {
    for (const r of t.context.replicas)
      t.log(`--- ${r.name} (pid ${r.proc.child.pid}) stderr, last lines:\n${r.proc.lines.slice(-40).join('\n')}`);
  }
  await Promise.all(t.context.replicas.map((r) => stopReplica(r, 'SIGKILL')));
  for (const r of t.context.replicas) r.client.close();
  await t.context.operator?.close();
  for (const fn of t.context.cleanup.reverse()) await fn().catch((err: unknown) => t.log('cleanup failed', err));
});

/**
 * Every child still running when this worker exits (a timeout, a crash) is killed then: an orphaned
 * service would keep firing windows (and, its stderr gone, log EPIPE errors in a loop).
 */
const children = new Set<Spawned['child']>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Starts services/schedule/main.ts as a child process and waits until it serves. */
async function startReplica(t: ExecutionContext<Context>, name: string, env: NodeJS.ProcessEnv): Promise<Replica> {
  const proc = spawnService('services/schedule/main.ts', {
    SLUICE_GRPC_ADDR: '127.0.0.1:0',
    SLUICE_LOG_LEVEL: 'info',
    SLUICE_SHUTDOWN_GRACE_MS: '1000',
    ...env,
  });
  children.add(proc.child);
  void proc.exited.then(() => children.delete(proc.child));
  const entry = await proc
    .waitForLog((e) => e.msg === 'gRPC server listening', 30_000)
    .catch((err: unknown) => {
      proc.child.kill('SIGKILL');
      throw err;
    });
  const replica: Replica = {
    name,
    proc,
    client: new ScheduleServiceClient(String(entry.address), credentials.createInsecure()),
  };
  t.context.replicas.push(replica);
  return replica;
}

/** SIGKILL: at once. SIGTERM: a graceful stop, SIGKILL after 5 s. Resolves when the process is gone. */
async function stopReplica(r: Replica, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const { child } = r.proc;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  if (signal === 'SIGTERM') {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await r.proc.exited;
    clearTimeout(timer);
  } else {
    await r.proc.exited;
  }
}

/** One-second windows over one minute from `start`, fired when they close, every missed one caught up. */
function secondly(groupId: string, start: number): ScheduleInfo {
  return {
    groupId,
    scheduleType: 0,
    scheduleUnit: 'S',
    scheduleInterval: 1,
    startTime: start,
    endTime: start + 60 * SECOND,
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

/** The whole ledger of a group through ListInstances, paging (small pages, so paging is exercised). */
async function ledger(client: ScheduleServiceClient, groupId: string): Promise<Instance[]> {
  const out: Instance[] = [];
  let pageToken = '';
  do {
    const res = await call(client.listInstances.bind(client), {
      groupId,
      states: [],
      windowFrom: 0,
      windowTo: 0,
      pageSize: 7,
      pageToken,
    });
    out.push(...res.instances);
    pageToken = res.nextPageToken;
  } while (pageToken !== '');
  return out;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Window starts [from, to) one second apart. */
const starts = (from: number, to: number) =>
  Array.from({ length: Math.max(0, (to - from) / SECOND) }, (_, k) => from + k * SECOND);
/** Every window start in [from, to) has at least one SubmitOfflineJob call. */
const sawAll = (op: FakeOperator, groupId: string, from: number, to: number) => () => {
  const seen = op.callsByWindow(groupId);
  return starts(from, to).every((s) => seen.has(s));
};
const distinctJobIds = (calls: readonly SubmitCall[]) => [...new Set(calls.flatMap((c) => c.jobIds))];

test.serial('SIGKILL and restart on the same SQLite ledger: every window once, no gap, no duplicate', async (t) => {
  t.timeout(120_000);
  const groupId = 'restart-1s';
  // The hook is set once the first process is known: it kills that process while the third window's
  // SubmitOfflineJob is in flight, so that window is claimed in the ledger but not recorded as dispatched.
  const hook: { onSubmit?: (c: SubmitCall) => Promise<void> } = {};
  const operator = await startFakeOperator({ runMs: 100, onSubmit: (c) => hook.onSubmit?.(c) });
  t.context.operator = operator;
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-restart-'));
  t.context.cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  const env = { SLUICE_DATA_DIR: dataDir, SLUICE_OPERATOR_ADDR: operator.address, SLUICE_REPLICA_ID: 'r1' };

  const first = await startReplica(t, 'r1 (first run)', env);
  const start = Math.floor(Date.now() / SECOND) * SECOND;
  const inFlightAtKill = start + 2 * SECOND;
  let killedAt = 0;
  hook.onSubmit = async (c) => {
    if (c.groupId !== groupId || c.lower !== inFlightAtKill || killedAt !== 0) return;
    killedAt = Date.now();
    first.proc.child.kill('SIGKILL');
    await first.proc.exited;
  };
  await call(first.client.registerSchedule.bind(first.client), { info: secondly(groupId, start) });

  await until('the first run is killed during the third window', 30_000, () => killedAt !== 0);
  t.is(await first.proc.exited, 'SIGKILL');
  // The ledger as the killed process left it: the window in flight is claimed, DISPATCHED with no job ids yet
  // (a window is claimed straight into DISPATCHED; its jobs are recorded once they run), nothing after it.
  const store = await SqliteStore.open(join(dataDir, 'sluice.db'));
  const atKill = await store.listInstances({ groupId, limit: 1000 }).finally(() => store.close());
  t.deepEqual(
    atKill.map((r) => r.windowStart),
    starts(start, inFlightAtKill + SECOND),
    'windows 0..2 were claimed before the kill',
  );
  const inFlight = new Set(
    atKill.filter((r) => r.state === 'DISPATCHED' && r.jobIds.length === 0).map((r) => r.windowStart),
  );
  t.true(inFlight.has(inFlightAtKill), 'the window in flight was claimed but its jobs not recorded');

  // Down for several seconds: windows fall due meanwhile.
  await sleep(4 * SECOND);
  const restartedAt = Date.now();
  const second = await startReplica(t, 'r1 (after restart)', env);
  const cutoff = Math.min(start + 60 * SECOND, Math.ceil(Date.now() / SECOND) * SECOND + 2 * SECOND);
  await until('the operator saw every window before the cut-off', 30_000, sawAll(operator, groupId, start, cutoff));
  let rows: Instance[] = [];
  await until('every window before the cut-off succeeded', 30_000, async () => {
    rows = await ledger(second.client, groupId);
    const before = rows.filter((r) => r.window!.start < cutoff);
    return (
      before.length === starts(start, cutoff).length &&
      before.every((r) => r.state === InstanceState.INSTANCE_STATE_SUCCEEDED)
    );
  });

  // The ledger: one row per window, starting at the schedule's start, with no gap (later rows included).
  const rowStarts = rows.map((r) => r.window!.start);
  t.deepEqual(rowStarts, starts(start, start + rows.length * SECOND), 'the ledger tiles the schedule from its start');
  t.deepEqual(
    rowStarts.filter((s) => s < cutoff),
    starts(start, cutoff),
  );
  t.true(rows.every((r) => r.window!.end === r.window!.start + SECOND && r.attempt === 1));
  const downWindows = starts(start, cutoff).filter((s) => s + SECOND > killedAt && s + SECOND < restartedAt);
  t.true(downWindows.length >= 3, `windows fell due while the process was down (${downWindows.length})`);

  // The operator: each window at least once, and with exactly one job id; more than one call only for a
  // window claimed but with no jobs recorded at the kill (its second call came after the restart).
  const byWindow = operator.callsByWindow(groupId);
  const byStart = new Map(rows.map((r) => [r.window!.start, r]));
  for (const s of starts(start, cutoff)) {
    const calls = byWindow.get(s) ?? [];
    const row = byStart.get(s)!;
    t.true(calls.length >= 1, `window ${(s - start) / SECOND} reached the operator`);
    t.deepEqual(
      distinctJobIds(calls),
      [...row.jobIds],
      `window ${(s - start) / SECOND}: one job id, the one in the ledger`,
    );
    t.is(row.jobIds.length, 1);
    t.true(
      calls.every((c) => c.instanceId === row.instanceId && c.upper === s + SECOND && !c.rerun),
      `window ${(s - start) / SECOND}: its ledger instance`,
    );
    if (calls.length > 1) {
      t.true(
        inFlight.has(s),
        `window ${(s - start) / SECOND} was sent again only because it was in flight at the kill`,
      );
      t.is(calls.length, 2);
      // The repeat carries the same instance id (checked above): that is what lets the operator answer it
      // with the existing job (its idempotency is tested in test/operator/service.test.ts, not here).
      t.true(calls[0]!.at <= killedAt && calls[1]!.at >= restartedAt);
    }
    if (downWindows.includes(s))
      t.true(
        calls[0]!.at >= restartedAt,
        `window ${(s - start) / SECOND} fell due while down and was fired after the restart`,
      );
  }
  t.is(byWindow.get(inFlightAtKill)?.length, 2, 'the window in flight at the kill was sent again after the restart');
  t.deepEqual(
    starts(start, cutoff).filter((s) => (byWindow.get(s)?.length ?? 0) !== 1),
    [inFlightAtKill],
    'every other window was sent exactly once',
  );
  t.log(
    `windows ${starts(start, cutoff).length}, killed at +${killedAt - start} ms, down ${restartedAt - killedAt} ms, ${downWindows.length} fell due while down`,
  );
});

pgTest.serial(
  'two replicas on one PostgreSQL ledger: every window fired exactly once, by one or the other',
  async (t) => {
    t.timeout(180_000);
    const groupId = 'replicas-1s';
    const schema = uniqueName('sluice_proc');
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    t.context.cleanup.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    });
    await admin.query(`CREATE SCHEMA "${schema}"`);
    // The store moves `options` from the URL into every connection's startup packet: the search_path selects the schema.
    const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const operator = await startFakeOperator({ runMs: 100 });
    t.context.operator = operator;
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-replicas-'));
    t.context.cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const env = (id: string) => ({
      SLUICE_DATABASE_URL: url,
      SLUICE_DATA_DIR: join(dataDir, id),
      SLUICE_OPERATOR_ADDR: operator.address,
      SLUICE_REPLICA_ID: id,
    });

    // r2 starts after the schedule exists: it arms it from the store at its start (the failover test below
    // covers replicas that learn of a schedule while running).
    const r1 = await startReplica(t, 'r1', env('r1'));
    const start = Math.floor(Date.now() / SECOND) * SECOND;
    await call(r1.client.registerSchedule.bind(r1.client), { info: secondly(groupId, start) });
    const r2 = await startReplica(t, 'r2', env('r2'));
    const bothFrom = Date.now();
    // Which replica claims a window is a race at every edge: wait (on the ledger, not a fixed time) until
    // at least 18 windows are claimed and each replica has claimed some of those due after r2 came up.
    await until('18 windows claimed, by both replicas', 90 * SECOND, async () => {
      const { rows: claimed } = await admin.query<{ owner: string; n: string }>(
        `SELECT owner, count(*) AS n FROM "${schema}".instances WHERE group_id = $1 GROUP BY owner`,
        [groupId],
      );
      const total = claimed.reduce((sum, r) => sum + Number(r.n), 0);
      return total >= 18 && claimed.some((r) => r.owner === 'r1') && claimed.some((r) => r.owner === 'r2');
    });

    // Every window due by now, up to a whole second.
    const cutoff = Math.floor(Date.now() / SECOND) * SECOND;
    await until('the operator saw every window before the cut-off', 30_000, sawAll(operator, groupId, start, cutoff));
    const viaR2 = await ledger(r2.client, groupId);
    await Promise.all([stopReplica(r1, 'SIGTERM'), stopReplica(r2, 'SIGTERM')]);

    const { rows } = await admin.query<{
      window_start: string;
      window_end: string;
      owner: string;
      instance_id: string;
      job_ids: string[];
      n: string;
    }>(
      `SELECT window_start, window_end, owner, instance_id, job_ids, count(*) OVER (PARTITION BY window_start) AS n
       FROM "${schema}".instances WHERE group_id = $1 ORDER BY window_start`,
      [groupId],
    );
    const rowStarts = rows.map((r) => Number(r.window_start));
    t.deepEqual(rowStarts, starts(start, start + rows.length * SECOND), 'one row per window from the start, no gap');
    t.true(
      rows.every((r) => r.n === '1' && Number(r.window_end) === Number(r.window_start) + SECOND),
      'no window has two rows',
    );
    t.deepEqual(
      rowStarts.filter((s) => s < cutoff),
      starts(start, cutoff),
      'every window due was claimed',
    );
    t.deepEqual(
      viaR2.map((i) => i.window!.start),
      rowStarts.slice(0, viaR2.length),
      'r2 serves the same ledger over gRPC',
    );
    t.true(starts(start, cutoff).length >= 18, `the run covered ${starts(start, cutoff).length} windows`);

    const inRange = rows.filter((r) => Number(r.window_start) < cutoff);
    const owners = new Map<string, number[]>();
    for (const r of inRange)
      owners.set(r.owner, [...(owners.get(r.owner) ?? []), (Number(r.window_start) - start) / SECOND]);
    t.log(
      `windows ${inRange.length}; claimed by ${[...owners].map(([o, ks]) => `${o}: ${ks.length} [${ks.join(' ')}]`).join('; ')}; r2 up at +${bothFrom - start} ms`,
    );
    t.deepEqual([...owners.keys()].sort(), ['r1', 'r2'], 'both replicas claimed windows');

    const byWindow = operator.callsByWindow(groupId);
    for (const r of inRange) {
      const s = Number(r.window_start);
      const calls = byWindow.get(s) ?? [];
      t.is(calls.length, 1, `window ${(s - start) / SECOND} was sent to the operator exactly once`);
      t.deepEqual(
        distinctJobIds(calls),
        r.job_ids,
        `window ${(s - start) / SECOND}: one job id, the one in the ledger`,
      );
      t.is(calls[0]?.instanceId, r.instance_id);
    }
  },
);

pgTest.serial(
  'kill -9 of the replica a schedule was registered through: a survivor fires the next windows within SLUICE_FAILOVER_MS of their due time',
  async (t) => {
    const groupId = 'failover-1s';
    const failoverMs = 5000;
    const schema = uniqueName('sluice_fail');
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    t.context.cleanup.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    });
    await admin.query(`CREATE SCHEMA "${schema}"`);
    const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const operator = await startFakeOperator({ runMs: 100 });
    t.context.operator = operator;
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-failover-'));
    t.context.cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const env = (id: string) => ({
      SLUICE_DATABASE_URL: url,
      SLUICE_DATA_DIR: join(dataDir, id),
      SLUICE_OPERATOR_ADDR: operator.address,
      SLUICE_REPLICA_ID: id,
      SLUICE_FAILOVER_MS: String(failoverMs),
      // Only the announcement can arm the schedule on r2 and r3 in time: the re-scan comes far too late.
      SLUICE_SCHEDULE_RESCAN_MS: '600000',
    });

    // Every replica is up before the schedule exists: r2 and r3 learn of it only from the store.
    const r1 = await startReplica(t, 'r1', env('r1'));
    const r2 = await startReplica(t, 'r2', env('r2'));
    const r3 = await startReplica(t, 'r3', env('r3'));
    const start = Math.ceil(Date.now() / SECOND) * SECOND + SECOND;
    await call(r1.client.registerSchedule.bind(r1.client), { info: secondly(groupId, start) });

    // Let r1 take part, then kill it with no warning.
    const claimedBy = async () =>
      (await admin.query<{ owner: string }>(`SELECT owner FROM "${schema}".instances WHERE group_id = $1`, [groupId]))
        .rows;
    await until('windows fired', 20_000, async () => (await claimedBy()).length >= 4);
    await stopReplica(r1, 'SIGKILL');
    const killedAt = Date.now();
    await sleep(8 * SECOND);
    const cutoff = Math.floor(Date.now() / SECOND) * SECOND - 2 * SECOND;
    await until('the operator saw every window before the cut-off', 10_000, sawAll(operator, groupId, start, cutoff));
    await Promise.all([stopReplica(r2, 'SIGTERM'), stopReplica(r3, 'SIGTERM')]);

    const { rows } = await admin.query<{ window_start: string; due_time: string; created_at: string; owner: string }>(
      `SELECT window_start, due_time, created_at, owner FROM "${schema}".instances WHERE group_id = $1 AND window_start < $2 ORDER BY window_start`,
      [groupId, cutoff],
    );
    t.deepEqual(
      rows.map((r) => Number(r.window_start)),
      starts(start, cutoff),
      'one ledger row per window, none lost',
    );
    const after = rows.filter((r) => Number(r.due_time) > killedAt);
    t.true(after.length >= 5, `${after.length} windows fell due after the kill`);
    t.true(
      after.every((r) => r.owner !== 'r1'),
      'windows due after the kill were claimed by survivors',
    );
    const delays = after.map((r) => Number(r.created_at) - Number(r.due_time));
    t.true(
      delays.every((d) => d <= failoverMs),
      `every window due after the kill fired within ${failoverMs} ms of its due time (delays ${delays.join(' ')})`,
    );
    const byWindow = operator.callsByWindow(groupId);
    t.deepEqual(
      starts(start, cutoff).filter((s) => distinctJobIds(byWindow.get(s) ?? []).length !== 1),
      [],
      'every window has exactly one job at the operator',
    );
    t.log(
      `windows ${rows.length}; after the kill ${after.length}, claimed by ${[...new Set(after.map((r) => r.owner))].join(', ')}; fire delay max ${Math.max(...delays)} ms`,
    );
  },
);

pgTest.serial(
  'store outage through a TCP proxy: calls answer UNAVAILABLE during it; after it nothing is left unfinished and the next windows fire',
  async (t) => {
    const groupId = 'outage-1s';
    const schema = uniqueName('sluice_outage');
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    t.context.cleanup.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    });
    await admin.query(`CREATE SCHEMA "${schema}"`);
    const target = new URL(PG_URL);
    const proxy = await startTcpProxy(target.hostname || '127.0.0.1', Number(target.port || 5432));
    t.context.cleanup.push(() => proxy.close());
    const viaProxy = new URL(PG_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    viaProxy.searchParams.set('options', `-c search_path=${schema}`);
    const operator = await startFakeOperator({ runMs: 300 });
    t.context.operator = operator;
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-outage-'));
    t.context.cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const r1 = await startReplica(t, 'r1', {
      SLUICE_DATABASE_URL: viaProxy.toString(),
      SLUICE_DATA_DIR: dataDir,
      SLUICE_OPERATOR_ADDR: operator.address,
      SLUICE_REPLICA_ID: 'r1',
      SLUICE_FAILOVER_MS: '1000',
    });
    const start = Math.ceil(Date.now() / SECOND) * SECOND;
    await call(r1.client.registerSchedule.bind(r1.client), { info: secondly(groupId, start) });
    await until('windows fired before the outage', 15_000, sawAll(operator, groupId, start, start + 3 * SECOND));

    await proxy.cut();
    const cutAt = Date.now();
    const err = await callError(r1.client.getSchedule.bind(r1.client), { groupId });
    t.is(err.code, status.UNAVAILABLE, `GetSchedule during the outage: ${err.details}`);
    t.notRegex(err.details, /password/i);
    await sleep(4 * SECOND);
    const during = await callError(r1.client.listInstances.bind(r1.client), {
      groupId,
      states: [],
      windowFrom: 0,
      windowTo: 0,
      pageSize: 10,
      pageToken: '',
    });
    t.is(during.code, status.UNAVAILABLE, 'still UNAVAILABLE, not hanging, while the store is away');
    await proxy.restore();
    const restoredAt = Date.now();

    // Every window up to a few seconds after the outage reaches the operator and ends SUCCEEDED in the ledger.
    const cutoff = Math.ceil(Date.now() / SECOND) * SECOND + 3 * SECOND;
    await until('the operator saw every window up to the cut-off', 20_000, sawAll(operator, groupId, start, cutoff));
    let rows: Instance[] = [];
    await until('every window up to the cut-off ended', 20_000, async () => {
      rows = (await ledger(r1.client, groupId)).filter((r) => r.window!.start < cutoff);
      return (
        rows.length === starts(start, cutoff).length &&
        rows.every((r) => r.state === InstanceState.INSTANCE_STATE_SUCCEEDED)
      );
    });
    t.deepEqual(
      rows.map((r) => r.window!.start),
      starts(start, cutoff),
      'one row per window, none lost to the outage',
    );
    const byWindow = operator.callsByWindow(groupId);
    t.deepEqual(
      starts(start, cutoff).filter((s) => distinctJobIds(byWindow.get(s) ?? []).length !== 1),
      [],
      'every window has exactly one job',
    );
    const after = starts(start, cutoff).filter((s) => s + SECOND > restoredAt);
    t.true(after.length >= 2, 'windows due after the outage fired');
    t.log(`outage ${restoredAt - cutAt} ms; ${rows.length} windows, all SUCCEEDED`);
  },
);
