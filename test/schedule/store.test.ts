import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import type { ScheduleInfo } from 'sluice/sdk';
import type {
  InstanceRecord,
  InstanceState,
  ScheduleRecord,
  ScheduleStore,
} from '../../services/schedule/domain/model.js';
import {
  MIGRATIONS,
  PostgresScheduleStore,
  SqliteScheduleStore,
  openScheduleStore,
} from '../../services/store/index.js';
import { PG_URL, probePostgres, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';
import { CHECKPOINT_INTERVAL_MS, startCheckpoints } from '../../services/store/sqlite-checkpoints.js';

/** One test's database: every `open()` is a new handle (connection, pool) on it, as a second replica would have. */
interface Db {
  readonly kind: 'sqlite' | 'postgres';
  /** A new store on this test's database, migrated unless `migrate: false`; closed after the test. */
  open(options?: { readonly migrate?: boolean }): Promise<ScheduleStore>;
  /** The rows of schema_migrations, read directly from the database. */
  appliedMigrations(): Promise<{ version: number; appliedAt: number }[]>;
}

interface Context {
  db: Db;
}

const test = anyTest as TestFn<Context>;

interface Backend {
  readonly name: string;
  /** How this backend's tests are declared: PostgreSQL's are gated on the server and run one at a time (connections). */
  readonly declare: (title: string, fn: (t: ExecutionContext<Context>) => Promise<void>) => void;
  setup(t: ExecutionContext<Context>): Promise<Db>;
}

const sqlite: Backend = {
  name: 'sqlite',
  declare: (title, fn) => test(title, fn),
  async setup(t) {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-store-'));
    // A folder that does not exist yet: open() creates it.
    const file = join(dir, 'nested', 'state', 'schedule.db');
    const stores: ScheduleStore[] = [];
    t.teardown(async () => {
      for (const store of stores) await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return {
      kind: 'sqlite',
      async open(options = {}) {
        const store = await SqliteScheduleStore.open(file);
        stores.push(store);
        if (options.migrate !== false) await store.migrate();
        return store;
      },
      async appliedMigrations() {
        const raw = new DatabaseSync(file, { readOnly: true });
        try {
          const rows = raw.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all() as {
            version: number;
            applied_at: number;
          }[];
          return rows.map((r) => ({ version: r.version, appliedAt: r.applied_at }));
        } finally {
          raw.close();
        }
      },
    };
  },
};

const pgTest = gate(test, await probePostgres());

async function withPgClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const postgres: Backend = {
  name: 'postgres',
  declare: (title, fn) => pgTest.serial(title, fn),
  async setup(t) {
    const schema = uniqueName('sluice_test');
    const stores: ScheduleStore[] = [];
    t.teardown(async () => {
      for (const store of stores) await store.close();
      await withPgClient((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    });
    return {
      kind: 'postgres',
      async open(options = {}) {
        const store = await PostgresScheduleStore.open(PG_URL, { schema, poolSize: 4 });
        stores.push(store);
        if (options.migrate !== false) await store.migrate();
        return store;
      },
      async appliedMigrations() {
        const result = await withPgClient((client) =>
          client.query<{ version: number; applied_at: string }>(
            `SELECT version, applied_at FROM "${schema}".schema_migrations ORDER BY version`,
          ),
        );
        return result.rows.map((r) => ({ version: r.version, appliedAt: Number(r.applied_at) }));
      },
    };
  },
};

/** Declares the same test for every store. */
function contract(title: string, body: (t: ExecutionContext<Context>, db: Db) => Promise<void>): void {
  for (const backend of [sqlite, postgres]) {
    backend.declare(`${backend.name}: ${title}`, async (t) => {
      t.context.db = await backend.setup(t);
      await body(t, t.context.db);
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Fixtures: epoch ms well beyond 2^31, so 64-bit columns are exercised.

const T0 = Date.UTC(2031, 0, 1);
const HOUR = 3_600_000;
const NOW = Date.UTC(2031, 5, 1, 12);

function info(groupId: string, patch: Partial<ScheduleInfo> = {}): ScheduleInfo {
  return {
    groupId,
    scheduleType: 0,
    scheduleUnit: 'H',
    scheduleInterval: 1,
    startTime: T0,
    endTime: T0 + 1000 * HOUR,
    delayTime: 5,
    selfDepend: 0,
    taskParallelism: 1,
    crontabExpression: '',
    scheduleEngine: 'builtin',
    version: 1,
    timeZone: 'Europe/Berlin',
    catchUp: { mode: 'LATEST', windowMs: 24 * HOUR },
    alignment: 'END',
    ...patch,
  };
}

function schedule(groupId: string, patch: Partial<ScheduleRecord> = {}): ScheduleRecord {
  return {
    groupId,
    info: info(groupId),
    status: 'NEW',
    engineId: 'builtin',
    version: 1,
    createdAt: NOW,
    updatedAt: NOW,
    ...patch,
  };
}

/** Window k (hours after T0) of the group. */
function instance(groupId: string, k: number, patch: Partial<InstanceRecord> = {}): InstanceRecord {
  const windowStart = T0 + k * HOUR;
  return {
    instanceId: `${groupId}-${k}`,
    groupId,
    windowStart,
    windowEnd: windowStart + HOUR,
    dueTime: windowStart + HOUR + 5 * 60_000,
    state: 'SCHEDULED',
    trigger: 'SCHEDULE',
    jobIds: [],
    attempt: 1,
    owner: 'replica-a',
    createdAt: NOW,
    updatedAt: NOW,
    ...patch,
  };
}

/** An OFFSET window of the group (offsets 1 to 2): a negative window key, never a watermark. */
function offsetInstance(groupId: string): InstanceRecord {
  return instance(groupId, 0, {
    instanceId: `${groupId}-offset`,
    windowStart: -42,
    windowEnd: -42,
    boundaries: { boundaryType: 'OFFSET', lowerBound: '1', upperBound: '2' },
  });
}

const ids = (records: readonly { groupId: string }[]) => records.map((r) => r.groupId);
const windows = (records: readonly InstanceRecord[]) =>
  records.map((r) => `${r.groupId}@${(r.windowStart - T0) / HOUR}`);

// ---------------------------------------------------------------------------------------------------------------------
// Schedules

contract('schedules: insert, get, list in groupId order with status filter and keyset paging', async (t, db) => {
  const store = await db.open();
  const records = [
    schedule('g-c', { status: 'REGISTERED', info: info('g-c', { scheduleType: 1, crontabExpression: '0 0 * * * ?' }) }),
    schedule('g-a'),
    schedule('g-d', { status: 'DELETED', version: 4 }),
    schedule('g-b', { status: 'PAUSED', engineId: 'quartz', createdAt: NOW - HOUR }),
  ];
  for (const record of records) await store.insertSchedule(record);

  for (const record of records)
    t.deepEqual(await store.getSchedule(record.groupId), record, `${record.groupId} reads back as written`);
  const a = await store.getSchedule('g-a');
  t.is(typeof a?.createdAt, 'number');
  t.is(typeof a?.info.startTime, 'number');
  t.is(await store.getSchedule('g-missing'), undefined);

  t.deepEqual(ids(await store.listSchedules({ limit: 100 })), ['g-a', 'g-b', 'g-c', 'g-d']);
  t.deepEqual(
    await store.listSchedules({ limit: 100 }),
    [...records].sort((x, y) => x.groupId.localeCompare(y.groupId)),
    'whole records',
  );
  t.deepEqual(ids(await store.listSchedules({ limit: 2 })), ['g-a', 'g-b']);
  t.deepEqual(ids(await store.listSchedules({ limit: 2, afterGroupId: 'g-b' })), ['g-c', 'g-d']);
  t.deepEqual(ids(await store.listSchedules({ limit: 2, afterGroupId: 'g-d' })), []);
  t.deepEqual(
    ids(await store.listSchedules({ limit: 100, afterGroupId: 'g-' })),
    ['g-a', 'g-b', 'g-c', 'g-d'],
    'after a key that is not stored',
  );
  t.deepEqual(ids(await store.listSchedules({ limit: 100, statuses: ['PAUSED', 'DELETED'] })), ['g-b', 'g-d']);
  t.deepEqual(ids(await store.listSchedules({ limit: 1, statuses: ['PAUSED', 'DELETED'], afterGroupId: 'g-b' })), [
    'g-d',
  ]);
  t.deepEqual(ids(await store.listSchedules({ limit: 100, statuses: [] })), []);
  t.deepEqual(ids(await store.listSchedules({ limit: 0 })), []);

  // Paging through everything one at a time visits each schedule once, in order.
  const seen: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.listSchedules({ limit: 1, ...(after === undefined ? {} : { afterGroupId: after }) });
    if (page.length === 0) break;
    seen.push(...ids(page));
    after = page[page.length - 1]!.groupId;
  }
  t.deepEqual(seen, ['g-a', 'g-b', 'g-c', 'g-d']);
});

contract('insertSchedule: ALREADY_EXISTS while the group has a schedule that is not DELETED', async (t, db) => {
  const store = await db.open();
  for (const status of ['NEW', 'REGISTERED', 'PAUSED'] as const) {
    const groupId = `g-${status.toLowerCase()}`;
    const original = schedule(groupId, { status });
    await store.insertSchedule(original);
    await t.throwsAsync(store.insertSchedule(schedule(groupId, { engineId: 'other', version: 7 })), {
      code: 'ALREADY_EXISTS',
      message: new RegExp(groupId),
    });
    t.deepEqual(await store.getSchedule(groupId), original, `${status}: the stored schedule is untouched`);
  }
});

contract('insertSchedule: a DELETED schedule is replaced, atomically under concurrency', async (t, db) => {
  const [a, b] = [await db.open(), await db.open()];
  await a.insertSchedule(schedule('g-1'));
  await a.updateSchedule(schedule('g-1', { status: 'DELETED', version: 2, updatedAt: NOW + 1 }), 1);

  const replacement = schedule('g-1', {
    info: info('g-1', { scheduleUnit: 'D', timeZone: 'UTC' }),
    engineId: 'quartz',
    createdAt: NOW + 2,
    updatedAt: NOW + 2,
  });
  t.deepEqual(await b.insertSchedule(replacement), { replaced: true, version: 3 });
  t.deepEqual(
    await a.getSchedule('g-1'),
    { ...replacement, version: 3 },
    'the DELETED row is replaced by the new record; its version goes on from the deleted row (2 + 1)',
  );
  await t.throwsAsync(a.insertSchedule(replacement), { code: 'ALREADY_EXISTS' }, 'once replaced, it is live again');

  // Many replicas re-creating the same deleted group: exactly one wins, the others see ALREADY_EXISTS.
  await a.updateSchedule({ ...replacement, status: 'DELETED', version: 4 }, 3);
  const attempts = Array.from({ length: 10 }, (_, i) =>
    (i % 2 ? a : b).insertSchedule(schedule('g-1', { engineId: `engine-${i}` })),
  );
  const results = await Promise.allSettled(attempts);
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  t.is(won.length, 1, 'exactly one insert replaces the DELETED row');
  for (const r of results) if (r.status === 'rejected') t.is((r.reason as { code?: string }).code, 'ALREADY_EXISTS');
  t.is((await a.getSchedule('g-1'))?.engineId, `engine-${won[0]}`);
});

contract('insertSchedule: calls made together go in together, each answered as if alone', async (t, db) => {
  const store = await db.open();
  await store.insertSchedule(schedule('g-live', { status: 'REGISTERED' }));
  await store.insertSchedule(schedule('g-gone'));
  await store.updateSchedule(schedule('g-gone', { status: 'DELETED', version: 2 }), 1);

  // Values that must come back exactly: text beyond ASCII, quotes, and epoch milliseconds past 2^32.
  const fresh = schedule('g-new', {
    info: info('g-new', { crontabExpression: '0 "ü" ☃ \\ 0', startTime: 2 ** 41 + 7 }),
    status: 'REGISTERED',
    version: 2,
  });
  const calls = [
    store.insertSchedule(fresh),
    store.insertSchedule(schedule('g-live', { engineId: 'other' })),
    store.insertSchedule(schedule('g-gone', { engineId: 'again', createdAt: NOW + 5 })),
    store.insertSchedule(schedule('g-new', { engineId: 'second' })),
    store.insertSchedule(schedule('g-other')),
  ];
  const results = await Promise.allSettled(calls);
  t.deepEqual(results[0], { status: 'fulfilled', value: { replaced: false, version: 2 } });
  t.is(results[1]!.status, 'rejected');
  t.like((results[1] as PromiseRejectedResult).reason, {
    code: 'ALREADY_EXISTS',
    message: "schedule 'g-live' already exists",
  });
  t.deepEqual(results[2], { status: 'fulfilled', value: { replaced: true, version: 3 } });
  t.like(
    (results[3] as PromiseRejectedResult).reason,
    { code: 'ALREADY_EXISTS' },
    'the first call for a group takes it',
  );
  t.deepEqual(results[4], { status: 'fulfilled', value: { replaced: false, version: 1 } });

  t.deepEqual(await store.getSchedule('g-new'), fresh);
  t.is((await store.getSchedule('g-live'))?.engineId, 'builtin');
  t.like(await store.getSchedule('g-gone'), { engineId: 'again', status: 'NEW', version: 3, createdAt: NOW + 5 });
  t.truthy(await store.getSchedule('g-other'));
});

contract(
  'updateSchedule: optimistic locking (VERSION_CONFLICT on a stale version, NOT_FOUND when missing)',
  async (t, db) => {
    const [a, b] = [await db.open(), await db.open()];
    const v1 = schedule('g-1');
    await a.insertSchedule(v1);

    const v2 = {
      ...v1,
      status: 'APPROVED' as const,
      info: info('g-1', { delayTime: 30 }),
      version: 2,
      updatedAt: NOW + 10,
    };
    await a.updateSchedule(v2, 1);
    t.deepEqual(await b.getSchedule('g-1'), v2, 'the write is visible to another store');

    const stale = { ...v1, status: 'PAUSED' as const, version: 2, updatedAt: NOW + 20 };
    await t.throwsAsync(b.updateSchedule(stale, 1), {
      code: 'VERSION_CONFLICT',
      message: 'schedule g-1 was changed: version 1 is stale (current 2)',
    });
    t.deepEqual(await a.getSchedule('g-1'), v2, 'a rejected update changes nothing');

    await t.throwsAsync(a.updateSchedule(schedule('g-missing', { version: 2 }), 1), {
      code: 'NOT_FOUND',
      message: /g-missing/,
    });
    await t.throwsAsync(
      a.updateSchedule({ ...v2, version: 5 }, 2),
      { code: 'INVALID_ARGUMENT' },
      'the new version must be expected + 1',
    );

    // createdAt is the insert's; every other field is the update's.
    const v3 = {
      ...v2,
      status: 'REGISTERED' as const,
      engineId: 'quartz',
      version: 3,
      createdAt: 1,
      updatedAt: NOW + 30,
    };
    await b.updateSchedule(v3, 2);
    t.deepEqual(await a.getSchedule('g-1'), { ...v3, createdAt: v1.createdAt });

    // Concurrent writers holding the same version: exactly one wins.
    const writers = Array.from({ length: 10 }, (_, i) =>
      (i % 2 ? a : b).updateSchedule({ ...v3, engineId: `engine-${i}`, version: 4 }, 3),
    );
    const results = await Promise.allSettled(writers);
    t.is(results.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one concurrent update succeeds');
    for (const r of results)
      if (r.status === 'rejected') t.is((r.reason as { code?: string }).code, 'VERSION_CONFLICT');
    t.is((await a.getSchedule('g-1'))?.version, 4);
  },
);

// ---------------------------------------------------------------------------------------------------------------------
// The instance ledger

contract('claimInstance: inserts a window once and returns it only to the call that inserted it', async (t, db) => {
  const store = await db.open();
  const first = instance('g-1', 0);
  t.deepEqual(await store.claimInstance(first), first);

  const rival = instance('g-1', 0, { instanceId: 'other-id', owner: 'replica-b', trigger: 'CATCH_UP' });
  t.is(await store.claimInstance(rival), undefined, 'the window is taken');
  t.deepEqual(await store.getInstance('g-1', first.windowStart), first, 'the first claim stays');
  t.is(await store.getInstanceById('other-id'), undefined);
  t.deepEqual(await store.getInstanceById(first.instanceId), first);
  t.is(await store.getInstance('g-1', first.windowStart + 1), undefined);
  t.is(await store.getInstance('g-2', first.windowStart), undefined);

  // Same window start in another group, and every optional field, round-trip.
  const full = instance('g-2', 0, {
    state: 'FAILED',
    trigger: 'MANUAL',
    jobIds: ['job-1', 'job-2'],
    attempt: 3,
    dispatchedAt: NOW + 1,
    finishedAt: NOW + 2,
    error: 'sink: table missing',
  });
  t.deepEqual(await store.claimInstance(full), full);
  t.deepEqual(await store.getInstanceById(full.instanceId), full);
});

contract('claimInstance: 20 concurrent claims of one window from two stores, exactly one wins', async (t, db) => {
  const [a, b] = [await db.open(), await db.open()];
  const claims = Array.from({ length: 20 }, (_, i) =>
    (i % 2 ? a : b).claimInstance(
      instance('g-1', 5, { instanceId: `claim-${i}`, owner: i % 2 ? 'replica-a' : 'replica-b' }),
    ),
  );
  const results = await Promise.all(claims);
  const winners = results.filter((r): r is InstanceRecord => r !== undefined);
  t.is(winners.length, 1, 'exactly one claim returns the row');
  const stored = await a.getInstance('g-1', T0 + 5 * HOUR);
  t.deepEqual(stored, winners[0]);
  t.deepEqual(windows(await b.listInstances({ groupId: 'g-1', limit: 100 })), ['g-1@5'], 'one row for the window');
});

contract(
  'claimInstances: one write claims the free windows and answers, in order, which it inserted',
  async (t, db) => {
    const store = await db.open();
    const taken = instance('g-1', 1);
    await store.claimInstance(taken);
    const wanted = [
      instance('g-2', 0, { state: 'DISPATCHED', dispatchedAt: NOW }),
      instance('g-1', 1, { instanceId: 'late-for-1' }),
      instance('g-1', 0),
      // The same window twice in one call: the first entry gets it.
      instance('g-3', 4, { instanceId: 'first-of-two' }),
      instance('g-3', 4, { instanceId: 'second-of-two' }),
    ];
    const rows = await store.claimInstances(wanted);
    t.deepEqual(rows, [wanted[0], undefined, wanted[2], wanted[3], undefined]);
    t.deepEqual(await store.getInstance('g-1', taken.windowStart), taken, 'a taken window keeps its row');
    t.deepEqual(windows(await store.listInstances({ limit: 100 })), ['g-1@0', 'g-1@1', 'g-2@0', 'g-3@4']);
    t.deepEqual(await store.claimInstances([]), []);
    const tooMany = Array.from({ length: 501 }, (_, i) => instance('g-4', i));
    const err = await t.throwsAsync(store.claimInstances(tooMany));
    t.regex(err.message, /instances.*at most 500/);
  },
);

contract(
  'claimInstances: a batch of 250 is all or nothing, and a window twice in it is claimed by its first entry',
  async (t, db) => {
    const store = await db.open();
    await store.claimInstance(instance('g-5', 3, { instanceId: 'earlier' }));
    // 250 rows: on SQLite one statement; the repeat comes after the row it repeats.
    const wanted = Array.from({ length: 249 }, (_, i) => instance(`g-${5 + (i % 3)}`, i));
    wanted.push(instance('g-5', 0, { instanceId: 'repeat-of-first' }));
    const rows = await store.claimInstances(wanted);
    t.deepEqual(
      rows.map((r, i) => (r ? 'claimed' : `taken ${wanted[i]!.instanceId}`)).filter((x) => x !== 'claimed'),
      ['taken g-5-3', 'taken repeat-of-first'],
    );
    t.deepEqual(rows[1], wanted[1], 'a claimed row answers as stored');
    t.is((await store.listInstances({ limit: 500 })).length, 249);
    // Columns with one value in every row (state, owner, times, NULLs) are stored as given too.
    for (const k of [1, 100, 248])
      t.deepEqual(await store.getInstance(wanted[k]!.groupId, wanted[k]!.windowStart), wanted[k], `row ${k} as read`);
    const uniform = Array.from({ length: 3 }, (_, i) =>
      instance(`g-9`, i, { state: 'DISPATCHED', dispatchedAt: NOW + 1, jobIds: ['j-"1"'], triggeredBy: 'x' }),
    );
    t.deepEqual(await store.claimInstances(uniform), uniform);
    t.deepEqual(await store.listInstances({ groupId: 'g-9', limit: 10 }), uniform, 'every column as given');

    // A row the database refuses (here: no group) fails the whole batch, rows before it included (on SQLite,
    // the statements of 64, 8, 8 and 1 rows before it, in one transaction).
    const bad = Array.from({ length: 80 }, (_, i) => instance('g-8', i));
    bad.push({ ...instance('g-8', 80), groupId: null as unknown as string });
    await t.throwsAsync(store.claimInstances(bad));
    t.deepEqual(await store.listInstances({ groupId: 'g-8', limit: 500 }), [], 'nothing of a failed batch is kept');
  },
);

contract(
  'claimInstances: texts read back as written, whatever their characters, and a missing value as missing',
  async (t, db) => {
    const store = await db.open();
    // Characters that mean something in a PostgreSQL array literal or in JSON, and the text NULL.
    const texts = ['NULL', 'a "quoted" \\ back\\slash', '{braces}, commas', ' spaced ', '', 'ünïcödé ✓', '\\"'];
    const wanted = texts.map((text, k) =>
      instance(`g-${k}`, k, {
        owner: text,
        error: text,
        triggeredBy: text,
        jobIds: [text, 'job'],
        state: 'FAILED',
        finishedAt: NOW + k,
        boundaries: { boundaryType: 'OFFSET', lowerBound: text, upperBound: `${text}!` },
      }),
    );
    wanted.push(instance('g-plain', 1));
    const rows = await store.claimInstances(wanted);
    t.deepEqual(rows, wanted, 'answered as stored');
    for (const w of wanted) t.deepEqual(await store.getInstanceById(w.instanceId), w, `${w.instanceId} read back`);
  },
);

contract('updateInstances: several updates in one transaction, in order per instance, each answered', async (t, db) => {
  const store = await db.open();
  for (const k of [0, 1, 2]) await store.claimInstance(instance('g-1', k, { state: 'DISPATCHED', dispatchedAt: NOW }));
  const rows = await store.updateInstances([
    { instanceId: 'g-1-2', patch: { state: 'RUNNING', jobIds: ['job-2'] }, now: NOW + 1, fromStates: ['DISPATCHED'] },
    { instanceId: 'g-1-0', patch: { state: 'RUNNING', jobIds: ['job-0'] }, now: NOW + 1, fromStates: ['DISPATCHED'] },
    // Its RUNNING comes first in the call, so its end finds it RUNNING.
    { instanceId: 'g-1-2', patch: { state: 'SUCCEEDED', finishedAt: NOW + 2 }, now: NOW + 2, fromStates: ['RUNNING'] },
    { instanceId: 'g-1-1', patch: { state: 'FAILED', error: 'boom' }, now: NOW + 3, fromStates: ['SCHEDULED'] },
    { instanceId: 'missing', patch: { state: 'RUNNING' }, now: NOW + 3 },
  ]);
  t.deepEqual(
    rows.map((r) => r && [r.instanceId, r.state, r.jobIds]),
    [
      ['g-1-2', 'RUNNING', ['job-2']],
      ['g-1-0', 'RUNNING', ['job-0']],
      ['g-1-2', 'SUCCEEDED', ['job-2']],
      undefined,
      undefined,
    ],
  );
  t.is((await store.getInstanceById('g-1-1'))?.state, 'DISPATCHED', 'a state not matched is left as it was');
  t.is((await store.getInstanceById('g-1-2'))?.finishedAt, NOW + 2);
  t.deepEqual(await store.updateInstances([]), []);
});

contract(
  'claimInstances: two stores claiming the same windows in opposite orders each get every window once',
  async (t, db) => {
    const [a, b] = [await db.open(), await db.open()];
    const keys = Array.from({ length: 40 }, (_, k) => k);
    const batch = (owner: string, order: number[]) =>
      order.map((k) => instance(`g-${k % 4}`, k, { instanceId: `${owner}-${k}`, owner }));
    const runs = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        i % 2 ? a.claimInstances(batch('replica-a', keys)) : b.claimInstances(batch('replica-b', [...keys].reverse())),
      ),
    );
    const won = runs.flat().filter((r): r is InstanceRecord => r !== undefined);
    t.is(won.length, keys.length, 'each window is claimed by exactly one entry');
    t.is(new Set(won.map((r) => `${r.groupId}@${r.windowStart}`)).size, keys.length);
    t.is((await a.listInstances({ limit: 100 })).length, keys.length);
  },
);

contract('takeOverInstance: of replicas finding the same orphaned row, exactly one takes it', async (t, db) => {
  const [a, b] = [await db.open(), await db.open()];
  const orphan = instance('g-1', 7, { owner: 'dead-replica' });
  await a.claimInstance(orphan);
  const takes = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? a : b).takeOverInstance(orphan.instanceId, orphan.updatedAt, `replica-${i}`, NOW + 10),
    ),
  );
  const winners = takes.filter((r): r is InstanceRecord => r !== undefined);
  t.is(winners.length, 1);
  t.is((await a.getInstanceById(orphan.instanceId))?.owner, winners[0]!.owner);
  t.true(winners[0]!.updatedAt > orphan.updatedAt);
  t.is(
    await a.takeOverInstance(orphan.instanceId, orphan.updatedAt, 'late', NOW + 20),
    undefined,
    'a stale view cannot take it',
  );
  await a.updateInstance(orphan.instanceId, { state: 'DISPATCHED' }, NOW + 30);
  const now = (await a.getInstanceById(orphan.instanceId))!;
  t.is(
    await b.takeOverInstance(orphan.instanceId, now.updatedAt, 'x', NOW + 40),
    undefined,
    'only SCHEDULED rows are taken over by default',
  );
  const dispatched = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      (i % 2 ? a : b).takeOverInstance(orphan.instanceId, now.updatedAt, `follower-${i}`, NOW + 50, [
        'DISPATCHED',
        'RUNNING',
      ]),
    ),
  );
  const followers = dispatched.filter((r): r is InstanceRecord => r !== undefined);
  t.is(followers.length, 1, 'of replicas taking over a dispatched row, exactly one gets it');
  t.is(followers[0]!.state, 'DISPATCHED');
});

contract(
  'renewInstances: the owner moves its unfinished rows on; a row taken over or ended is not renewed',
  async (t, db) => {
    const store = await db.open();
    const [kept, taken, ended] = [instance('g-1', 1), instance('g-1', 2), instance('g-1', 3)];
    for (const i of [kept, taken, ended]) await store.claimInstance({ ...i, owner: 'replica-a' });
    await store.takeOverInstance(taken.instanceId, taken.updatedAt, 'replica-b', NOW + 5);
    await store.updateInstance(ended.instanceId, { state: 'SUCCEEDED', finishedAt: NOW + 6 }, NOW + 6);
    const held = await store.renewInstances(
      'replica-a',
      [kept.instanceId, taken.instanceId, ended.instanceId],
      NOW + 100,
    );
    t.deepEqual(held, [kept.instanceId]);
    t.is((await store.getInstanceById(kept.instanceId))?.updatedAt, NOW + 100);
    t.is(
      await store.takeOverInstance(kept.instanceId, kept.updatedAt, 'replica-b', NOW + 101),
      undefined,
      'a renewed row is no longer as the taker saw it',
    );
    t.deepEqual(await store.renewInstances('replica-a', [], NOW + 200), []);
  },
);

contract('rearmInstance: only from the allowed states, clearing the last run', async (t, db) => {
  const store = await db.open();
  const claimed = instance('g-1', 0);
  await store.claimInstance(claimed);
  t.is(
    await store.rearmInstance('g-1', claimed.windowStart, ['FAILED', 'SUCCEEDED'], 'BACKFILL', 'replica-b', NOW + 1),
    undefined,
    'SCHEDULED is not re-armable',
  );
  t.is(
    await store.rearmInstance('g-1', claimed.windowStart, [], 'BACKFILL', 'replica-b', NOW + 1),
    undefined,
    'no allowed state',
  );
  t.is(
    await store.rearmInstance('g-1', claimed.windowStart + HOUR, ['SCHEDULED'], 'BACKFILL', 'replica-b', NOW + 1),
    undefined,
    'no such window',
  );
  t.deepEqual(await store.getInstanceById(claimed.instanceId), claimed, 'refused re-arms change nothing');

  await store.updateInstance(
    claimed.instanceId,
    { state: 'FAILED', jobIds: ['job-1'], dispatchedAt: NOW + 2, finishedAt: NOW + 3, error: 'boom' },
    NOW + 3,
  );
  const rearmed = await store.rearmInstance(
    'g-1',
    claimed.windowStart,
    ['FAILED', 'SUCCEEDED'],
    'BACKFILL',
    'replica-b',
    NOW + 4,
  );
  t.truthy(rearmed);
  t.like(rearmed, {
    instanceId: claimed.instanceId,
    groupId: 'g-1',
    windowStart: claimed.windowStart,
    windowEnd: claimed.windowEnd,
    dueTime: claimed.dueTime,
    state: 'SCHEDULED',
    trigger: 'BACKFILL',
    owner: 'replica-b',
    attempt: 2,
    createdAt: claimed.createdAt,
    updatedAt: NOW + 4,
  });
  t.deepEqual(rearmed?.jobIds, []);
  t.is(rearmed?.error, undefined);
  t.is(rearmed?.finishedAt, undefined);
  t.deepEqual(await store.getInstanceById(claimed.instanceId), rearmed, 'returns the row as stored');

  t.is(
    await store.rearmInstance('g-1', claimed.windowStart, ['FAILED'], 'MANUAL', 'replica-c', NOW + 5),
    undefined,
    're-armed already: SCHEDULED again',
  );
  const again = await store.rearmInstance('g-1', claimed.windowStart, ['SCHEDULED'], 'MANUAL', 'replica-c', NOW + 5);
  t.like(again, { attempt: 3, trigger: 'MANUAL', owner: 'replica-c' }, 'any listed state re-arms');
});

contract(
  'rearmInstance: a skipped window re-armed keeps attempt 1 (it never ran); a run one counts up',
  async (t, db) => {
    const store = await db.open();
    const skipped = await store.claimInstance(instance('g-1', 0, { state: 'SKIPPED' }));
    t.truthy(skipped);
    const rearmed = await store.rearmInstance(
      'g-1',
      skipped!.windowStart,
      ['SKIPPED'],
      'BACKFILL',
      'replica-b',
      NOW + 1,
    );
    t.like(rearmed, { state: 'SCHEDULED', attempt: 1, trigger: 'BACKFILL' });
    await store.updateInstance(skipped!.instanceId, { state: 'FAILED', finishedAt: NOW + 2 }, NOW + 2, ['SCHEDULED']);
    const again = await store.rearmInstance('g-1', skipped!.windowStart, ['FAILED'], 'BACKFILL', 'replica-b', NOW + 3);
    t.like(again, { state: 'SCHEDULED', attempt: 2 });
  },
);

contract('rearmInstance: 20 concurrent re-arms from two stores, exactly one wins', async (t, db) => {
  const [a, b] = [await db.open(), await db.open()];
  await a.claimInstance(instance('g-1', 0, { state: 'SUCCEEDED', jobIds: ['job-1'], finishedAt: NOW }));
  const rearms = Array.from({ length: 20 }, (_, i) =>
    (i % 2 ? a : b).rearmInstance('g-1', T0, ['SUCCEEDED', 'FAILED', 'SKIPPED'], 'BACKFILL', `replica-${i}`, NOW + i),
  );
  const winners = (await Promise.all(rearms)).filter((r) => r !== undefined);
  t.is(winners.length, 1, 'exactly one re-arm returns the row');
  const stored = await b.getInstance('g-1', T0);
  t.is(stored?.attempt, 2, 're-armed once');
  t.deepEqual(stored, winners[0]);
});

contract('updateInstance: applies the patch, guarded by fromStates', async (t, db) => {
  const [a, b] = [await db.open(), await db.open()];
  const claimed = instance('g-1', 0);
  await a.claimInstance(claimed);

  const dispatched = await a.updateInstance(
    claimed.instanceId,
    { state: 'DISPATCHED', jobIds: ['job-1', 'job-2'], dispatchedAt: NOW + 1 },
    NOW + 1,
    ['SCHEDULED'],
  );
  t.deepEqual(dispatched, {
    ...claimed,
    state: 'DISPATCHED',
    jobIds: ['job-1', 'job-2'],
    dispatchedAt: NOW + 1,
    updatedAt: NOW + 1,
  });
  t.deepEqual(await b.getInstanceById(claimed.instanceId), dispatched);

  t.is(
    await a.updateInstance(claimed.instanceId, { state: 'DISPATCHED' }, NOW + 2, ['SCHEDULED']),
    undefined,
    'not in a from-state',
  );
  t.is(
    await a.updateInstance(claimed.instanceId, { state: 'RUNNING' }, NOW + 2, []),
    undefined,
    'empty fromStates matches nothing',
  );
  t.is(await a.updateInstance('no-such-id', { state: 'RUNNING' }, NOW + 2), undefined, 'no such instance');
  t.deepEqual(await a.getInstanceById(claimed.instanceId), dispatched, 'refused updates change nothing');

  // A partial patch keeps the other fields; without fromStates any state is accepted.
  const failed = await b.updateInstance(
    claimed.instanceId,
    { state: 'FAILED', finishedAt: NOW + 3, error: 'sink unreachable' },
    NOW + 3,
  );
  t.deepEqual(failed, {
    ...dispatched!,
    state: 'FAILED',
    finishedAt: NOW + 3,
    error: 'sink unreachable',
    updatedAt: NOW + 3,
  });
  const noted = await a.updateInstance(claimed.instanceId, {}, NOW + 4);
  t.deepEqual(noted, { ...failed!, updatedAt: NOW + 4 }, 'an empty patch only touches updatedAt');

  // Concurrent transitions out of one state: exactly one applies.
  const next = instance('g-1', 1);
  await a.claimInstance(next);
  const moves = Array.from({ length: 20 }, (_, i) =>
    (i % 2 ? a : b).updateInstance(next.instanceId, { state: 'DISPATCHED', jobIds: [`job-${i}`] }, NOW + i, [
      'SCHEDULED',
    ]),
  );
  const applied = (await Promise.all(moves)).filter((r) => r !== undefined);
  t.is(applied.length, 1, 'exactly one SCHEDULED -> DISPATCHED transition');
  t.deepEqual(await a.getInstanceById(next.instanceId), applied[0]);
});

contract(
  'listInstances: filters (group, states, window range) and keyset paging in (groupId, windowStart) order',
  async (t, db) => {
    const store = await db.open();
    const states: InstanceState[] = ['SUCCEEDED', 'FAILED', 'SCHEDULED', 'RUNNING', 'SCHEDULED'];
    // Inserted out of order: the store must sort.
    const rows = [
      ...[4, 2, 0, 3, 1].map((k) => instance('g-b', k, { state: states[k]! })),
      ...[1, 0, 2].map((k) => instance('g-a', k, { state: states[k]! })),
      instance('g-c', -3, { state: 'SKIPPED' }),
    ];
    for (const row of rows) t.truthy(await store.claimInstance(row));

    const all = await store.listInstances({ limit: 100 });
    t.deepEqual(windows(all), ['g-a@0', 'g-a@1', 'g-a@2', 'g-b@0', 'g-b@1', 'g-b@2', 'g-b@3', 'g-b@4', 'g-c@-3']);
    t.deepEqual(all[0], instance('g-a', 0, { state: 'SUCCEEDED' }), 'whole records');

    t.deepEqual(windows(await store.listInstances({ groupId: 'g-b', limit: 100 })), [
      'g-b@0',
      'g-b@1',
      'g-b@2',
      'g-b@3',
      'g-b@4',
    ]);
    t.deepEqual(windows(await store.listInstances({ states: ['SCHEDULED'], limit: 100 })), ['g-a@2', 'g-b@2', 'g-b@4']);
    t.deepEqual(windows(await store.listInstances({ states: ['FAILED', 'SKIPPED'], limit: 100 })), [
      'g-a@1',
      'g-b@1',
      'g-c@-3',
    ]);
    t.deepEqual(windows(await store.listInstances({ states: [], limit: 100 })), []);
    t.deepEqual(
      windows(await store.listInstances({ windowFrom: T0 + HOUR, windowTo: T0 + 3 * HOUR, limit: 100 })),
      ['g-a@1', 'g-a@2', 'g-b@1', 'g-b@2'],
      '[from, to)',
    );
    t.deepEqual(
      windows(await store.listInstances({ windowFrom: T0 + 3 * HOUR, limit: 100 })),
      ['g-b@3', 'g-b@4'],
      'open end',
    );
    t.deepEqual(windows(await store.listInstances({ windowTo: T0, limit: 100 })), ['g-c@-3'], 'open start');
    t.deepEqual(
      windows(
        await store.listInstances({
          groupId: 'g-b',
          states: ['SCHEDULED', 'RUNNING'],
          windowFrom: T0 + 3 * HOUR,
          windowTo: T0 + 5 * HOUR,
          limit: 100,
        }),
      ),
      ['g-b@3', 'g-b@4'],
      'filters combine',
    );
    t.deepEqual(windows(await store.listInstances({ limit: 2 })), ['g-a@0', 'g-a@1']);
    t.deepEqual(windows(await store.listInstances({ limit: 0 })), []);
    t.deepEqual(
      windows(await store.listInstances({ after: { groupId: 'g-a', windowStart: T0 + 2 * HOUR }, limit: 2 })),
      ['g-b@0', 'g-b@1'],
      'paging crosses groups',
    );
    t.deepEqual(
      windows(
        await store.listInstances({
          groupId: 'g-b',
          after: { groupId: 'g-b', windowStart: T0 + 2 * HOUR },
          limit: 100,
        }),
      ),
      ['g-b@3', 'g-b@4'],
    );

    // Paging with filters visits exactly the filtered rows, in order.
    const pageAll = async (query: { states?: InstanceState[] }) => {
      const seen: InstanceRecord[] = [];
      let after: { groupId: string; windowStart: number } | undefined;
      for (let pages = 0; pages < 20; pages++) {
        const page = await store.listInstances({ ...query, limit: 2, ...(after ? { after } : {}) });
        if (page.length === 0) return seen;
        seen.push(...page);
        const last = page[page.length - 1]!;
        after = { groupId: last.groupId, windowStart: last.windowStart };
      }
      throw new Error('paging did not end');
    };
    t.deepEqual(await pageAll({}), all);
    t.deepEqual(windows(await pageAll({ states: ['SCHEDULED', 'RUNNING'] })), ['g-a@2', 'g-b@2', 'g-b@3', 'g-b@4']);
  },
);

contract('lastInstance: the greatest windowStart of the group', async (t, db) => {
  const store = await db.open();
  t.is(await store.lastInstance('g-1'), undefined);
  for (const k of [3, 10, 7]) await store.claimInstance(instance('g-1', k));
  await store.claimInstance(instance('g-0', 50));
  await store.claimInstance(instance('g-2', 99));
  t.deepEqual(await store.lastInstance('g-1'), instance('g-1', 10));
  t.deepEqual(await store.lastInstance('g-2'), instance('g-2', 99));
  t.is(await store.lastInstance('g-3'), undefined);
});

contract('lastInstance: TIME rows only; with dueBy, only rows due by then', async (t, db) => {
  const store = await db.open();
  await store.claimInstance(instance('g-1', 3));
  // A window recorded before it is due, and an OFFSET window (a negative key, never a watermark).
  await store.claimInstance(instance('g-1', 8, { trigger: 'EXTERNAL', triggeredBy: 'inlong:admin' }));
  await store.claimInstance(
    instance('g-1', 0, {
      instanceId: 'g-1-offset',
      windowStart: -42,
      windowEnd: -42,
      trigger: 'EXTERNAL',
      boundaries: { boundaryType: 'OFFSET', lowerBound: '0:10,1:12', upperBound: '0:20,1:30' },
    }),
  );
  t.is((await store.lastInstance('g-1'))?.windowStart, T0 + 8 * HOUR);
  t.is((await store.lastInstance('g-1', T0 + 8 * HOUR))?.windowStart, T0 + 3 * HOUR, 'window 8 is due later');
  t.is(await store.lastInstance('g-1', T0), undefined);
  const offset = await store.getInstanceById('g-1-offset');
  t.deepEqual(offset?.boundaries, { boundaryType: 'OFFSET', lowerBound: '0:10,1:12', upperBound: '0:20,1:30' });
  t.is((await store.getInstance('g-1', T0 + 8 * HOUR))?.triggeredBy, 'inlong:admin');
  t.is((await store.getInstance('g-1', T0 + 3 * HOUR))?.boundaries, undefined, 'a TIME row: its bounds are its window');
});

contract('lastInstances and getSchedules: several groups in one query, answered in the order asked', async (t, db) => {
  const store = await db.open();
  t.deepEqual(await store.lastInstances([]), []);
  t.deepEqual(await store.getSchedules([]), []);
  for (const k of [3, 10, 7]) await store.claimInstance(instance('g-1', k));
  await store.claimInstance(instance('g-2', 99));
  await store.claimInstance(offsetInstance('g-2'));
  // Each query's dueBy is its own: the same group twice, as of two instants.
  const lasts = await store.lastInstances([
    { groupId: 'g-2' },
    { groupId: 'g-3' },
    { groupId: 'g-1', dueBy: instance('g-1', 7).dueTime },
    { groupId: 'g-1' },
    { groupId: 'g-2', dueBy: T0 },
  ]);
  t.deepEqual(lasts, [instance('g-2', 99), undefined, instance('g-1', 7), instance('g-1', 10), undefined]);
  for (const k of [1, 2, 3]) {
    const [one] = await store.lastInstances([{ groupId: 'g-1', dueBy: instance('g-1', k).dueTime }]);
    t.deepEqual(one, await store.lastInstance('g-1', instance('g-1', k).dueTime), 'the same as lastInstance');
  }

  await store.insertSchedule(schedule('s-a'));
  await store.insertSchedule(schedule('s-b'));
  t.deepEqual(await store.getSchedules(['s-b', 'nobody', 's-a', 's-b']), [
    await store.getSchedule('s-b'),
    undefined,
    await store.getSchedule('s-a'),
    await store.getSchedule('s-b'),
  ]);
  t.is((await store.getSchedules(['s-a']))[0]?.groupId, 's-a');
});

contract(
  "firingHeads: each group's schedule version and status and its latest instance's id, in the order asked",
  async (t, db) => {
    const store = await db.open();
    t.deepEqual(await store.firingHeads([], NOW), []);
    await store.insertSchedule(schedule('h-1', { status: 'REGISTERED', version: 7 }));
    await store.insertSchedule(schedule('h-2', { status: 'PAUSED', version: 2 }));
    await store.updateSchedule(schedule('h-2', { status: 'PAUSED', version: 3, updatedAt: NOW + 5 }), 2);
    await store.insertSchedule(schedule('h-3'));
    for (const k of [3, 10, 7]) await store.claimInstance(instance('h-1', k));
    await store.claimInstance(offsetInstance('h-3'));
    const dueBy = instance('h-1', 7).dueTime;
    t.deepEqual(await store.firingHeads(['h-1', 'nobody', 'h-2', 'h-3', 'h-1'], dueBy), [
      { version: 7, status: 'REGISTERED', updatedAt: NOW, lastId: 'h-1-7' },
      undefined,
      { version: 3, status: 'PAUSED', updatedAt: NOW + 5 },
      { version: 1, status: 'NEW', updatedAt: NOW },
      { version: 7, status: 'REGISTERED', updatedAt: NOW, lastId: 'h-1-7' },
    ]);
    // The same latest instance as schedulesWithLast reads, whatever the instant.
    for (const at of [T0, dueBy - 1, dueBy, NOW]) {
      const [head] = await store.firingHeads(['h-1'], at);
      const [read] = await store.schedulesWithLast([{ groupId: 'h-1', dueBy: at }]);
      t.is(head?.lastId, read?.last?.instanceId, `due by ${at}`);
    }
    const err = await t.throwsAsync(
      store.firingHeads(
        Array.from({ length: 501 }, (_, i) => `g-${i}`),
        NOW,
      ),
    );
    t.regex(err.message, /group_ids.*at most 500/);
  },
);

contract(
  "schedulesWithLast: each group's schedule and latest instance in one query, in the order asked",
  async (t, db) => {
    const store = await db.open();
    t.deepEqual(await store.schedulesWithLast([]), []);
    for (const g of ['w-1', 'w-2', 'w-3']) await store.insertSchedule(schedule(g));
    for (const k of [3, 10, 7]) await store.claimInstance(instance('w-1', k));
    await store.claimInstance(offsetInstance('w-2'));
    // A window of a group with no schedule row is not read: only a group with a schedule fires.
    await store.claimInstance(instance('nobody', 1));
    const queries = [
      { groupId: 'w-1', dueBy: instance('w-1', 7).dueTime },
      { groupId: 'nobody' },
      { groupId: 'w-2' },
      { groupId: 'w-1' },
      { groupId: 'w-3', dueBy: T0 },
      { groupId: 'w-1', dueBy: T0 },
    ];
    const got = await store.schedulesWithLast(queries);
    t.deepEqual(got, [
      { schedule: await store.getSchedule('w-1'), last: instance('w-1', 7) },
      {},
      { schedule: await store.getSchedule('w-2') },
      { schedule: await store.getSchedule('w-1'), last: instance('w-1', 10) },
      { schedule: await store.getSchedule('w-3') },
      { schedule: await store.getSchedule('w-1') },
    ]);
    // The same answers as the two reads it stands for.
    const lasts = await store.lastInstances(queries);
    const schedules = await store.getSchedules(queries.map((q) => q.groupId));
    t.deepEqual(
      got.map((r) => r.last),
      lasts.map((l, i) => (schedules[i] ? l : undefined)),
    );
    t.deepEqual(
      got.map((r) => r.schedule),
      schedules,
    );
  },
);

contract(
  'getSchedules reads the info another replica wrote, also after a re-registration (whose versions go on)',
  async (t, db) => {
    const [a, b] = [await db.open(), await db.open()];
    await a.insertSchedule(schedule('s-c'));
    t.is((await a.getSchedules(['s-c']))[0]?.info.delayTime, 5);
    t.is((await b.getSchedules(['s-c']))[0]?.info.delayTime, 5);
    await b.updateSchedule(schedule('s-c', { info: info('s-c', { delayTime: 7 }), version: 2 }), 1);
    t.is((await a.getSchedules(['s-c']))[0]?.info.delayTime, 7, 'an update by the other replica');
    await b.updateSchedule(schedule('s-c', { status: 'DELETED', version: 3 }), 2);
    // Replaced at the same instants: the version, going on from the deleted row's, tells the rows apart.
    t.deepEqual(await b.insertSchedule(schedule('s-c', { info: info('s-c', { delayTime: 9 }) })), {
      replaced: true,
      version: 4,
    });
    const [again] = await a.getSchedules(['s-c']);
    t.is(again?.version, 4);
    t.is(again?.info.delayTime, 9, 'a re-registration by the other replica');
    t.deepEqual(await a.getSchedules(['s-c']), [await a.getSchedule('s-c')]);
  },
);

contract(
  'overlappingInstances and withdrawInstance: what a submitted window meets, and giving a claim up',
  async (t, db) => {
    const store = await db.open();
    for (const k of [0, 1, 2]) await store.claimInstance(instance('g-1', k));
    await store.claimInstance(instance('g-1', 5, { state: 'SKIPPED' }));
    await store.claimInstance(instance('g-2', 1));
    const meets = (from: number, to: number, except = '') =>
      store
        .overlappingInstances('g-1', T0 + from * HOUR, T0 + to * HOUR, except)
        .then((r) => r.map((i) => i.instanceId));
    t.deepEqual(await meets(0.5, 1.5), ['g-1-0', 'g-1-1']);
    t.deepEqual(await meets(1, 2), ['g-1-1'], 'edges touch, they do not overlap');
    t.deepEqual(await meets(1, 2, 'g-1-1'), []);
    t.deepEqual(await meets(4, 7), [], 'SKIPPED rows ran nothing');
    t.true(await store.withdrawInstance('g-1-2'));
    t.false(await store.withdrawInstance('g-1-2'), 'gone');
    await store.updateInstance('g-1-1', { state: 'DISPATCHED', dispatchedAt: NOW, jobIds: ['j'] }, NOW);
    t.false(await store.withdrawInstance('g-1-1'), 'a dispatched row is never withdrawn');
    t.deepEqual(await meets(0, 10), ['g-1-0', 'g-1-1']);
  },
);

contract(
  'lastSucceededWindows: per group not DELETED, the greatest windowEnd of a SUCCEEDED window; the first N by groupId',
  async (t, db) => {
    const store = await db.open();
    t.deepEqual(await store.lastSucceededWindows(10), []);
    for (const g of ['g-a', 'g-b', 'g-c', 'g-e']) await store.insertSchedule(schedule(g, { status: 'REGISTERED' }));
    await store.insertSchedule(schedule('g-d', { status: 'DELETED' }));
    for (const k of [3, 10, 7]) await store.claimInstance(instance('g-a', k, { state: 'SUCCEEDED' }));
    await store.claimInstance(instance('g-a', 11, { state: 'FAILED' }));
    await store.claimInstance(instance('g-b', 2, { state: 'SUCCEEDED' }));
    await store.claimInstance(instance('g-b', 5, { state: 'RUNNING' }));
    await store.claimInstance(instance('g-c', 4, { state: 'SCHEDULED' }));
    await store.claimInstance(instance('g-d', 9, { state: 'SUCCEEDED' }));
    await store.claimInstance(instance('g-e', 1, { state: 'SUCCEEDED' }));
    await store.claimInstance(instance('g-orphan', 1, { state: 'SUCCEEDED' }));
    const end = (k: number) => T0 + (k + 1) * HOUR;
    t.deepEqual(await store.lastSucceededWindows(10), [
      { groupId: 'g-a', windowEnd: end(10) },
      { groupId: 'g-b', windowEnd: end(2) },
      { groupId: 'g-e', windowEnd: end(1) },
    ]);
    t.deepEqual(await store.lastSucceededWindows(2), [
      { groupId: 'g-a', windowEnd: end(10) },
      { groupId: 'g-b', windowEnd: end(2) },
    ]);
    t.deepEqual(await store.lastSucceededWindows(0), []);
    await t.throwsAsync(store.lastSucceededWindows(-1), { message: /limit/ });
  },
);

// ---------------------------------------------------------------------------------------------------------------------
// Migrations and durability

contract(
  'migrations: applied once, recorded in schema_migrations, idempotent and safe to run concurrently',
  async (t, db) => {
    const started = Date.now();
    // Two replicas starting together on an empty database.
    const [a, b] = [await db.open({ migrate: false }), await db.open({ migrate: false })];
    await Promise.all([a.migrate(), b.migrate()]);
    const applied = await db.appliedMigrations();
    t.deepEqual(
      applied.map((m) => m.version),
      MIGRATIONS.map((m) => m.version),
      'every migration recorded once, in order',
    );
    for (const m of applied) t.true(m.appliedAt >= started && m.appliedAt <= Date.now(), 'applied_at is epoch ms');

    // Again, and from a third store: nothing changes.
    await a.migrate();
    await b.migrate();
    const c = await db.open();
    await c.migrate();
    t.deepEqual(await db.appliedMigrations(), applied, 'running them again is a no-op');

    // The schema works.
    await a.insertSchedule(schedule('g-1'));
    t.truthy(await b.getSchedule('g-1'));
    t.truthy(await c.claimInstance(instance('g-1', 0)));
  },
);

contract('data survives closing and reopening the store', async (t, db) => {
  const first = await db.open();
  const record = schedule('g-1', { status: 'REGISTERED', version: 3 });
  const claimed = instance('g-1', 0, { jobIds: ['job-1'], dispatchedAt: NOW + 1, state: 'DISPATCHED' });
  await first.insertSchedule(record);
  await first.claimInstance(claimed);
  await first.close();
  await t.throwsAsync(first.getSchedule('g-1'), { code: 'UNAVAILABLE' }, 'a closed store says so');

  const second = await db.open();
  t.deepEqual(await second.getSchedule('g-1'), record);
  t.deepEqual(await second.getInstanceById(claimed.instanceId), claimed);
  t.is(
    await second.claimInstance(instance('g-1', 0, { instanceId: 'again' })),
    undefined,
    'the window is still claimed',
  );
});

// ---------------------------------------------------------------------------------------------------------------------
// Opening

test('sqlite: open creates the folder; :memory: works', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'a', 'b', 'schedule.db');
  const store = await SqliteScheduleStore.open(file);
  await store.migrate();
  await store.close();
  t.true(existsSync(file));

  const memory = await SqliteScheduleStore.open(':memory:');
  t.teardown(() => memory.close());
  await memory.migrate();
  await memory.insertSchedule(schedule('g-1'));
  t.deepEqual(await memory.getSchedule('g-1'), schedule('g-1'));
});

test("sqlite: the WAL is checkpointed off the event loop, below the connection's own threshold", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'schedule.db');
  const store = await SqliteScheduleStore.open(file);
  t.teardown(() => store.close());
  await store.migrate();
  // About 900 WAL pages, below the connection's safety net (10,000): only the checkpoint thread copies them.
  for (let i = 0; i < 300; i++) await store.insertSchedule(schedule(`g-${i}`));
  // The database file alone (copied without its WAL) holds the rows once they are checkpointed. The copy takes no
  // lock, so one taken while a checkpoint writes pages can be torn: SQLite then finds it malformed (SQLITE_CORRUPT,
  // 11) or not a database (SQLITE_NOTADB, 26), and the next copy is looked at instead.
  const inFile = (): number | 'torn' => {
    copyFileSync(file, join(dir, 'copy.db'));
    let copy: DatabaseSync | undefined;
    try {
      copy = new DatabaseSync(join(dir, 'copy.db'));
      // Before the first checkpoint even the migrated tables are only in the WAL.
      const tables = copy.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'schedules'").get();
      if (Number((tables as { n: number }).n) === 0) return 0;
      return Number((copy.prepare('SELECT count(*) AS n FROM schedules').get() as { n: number }).n);
    } catch (error) {
      // errcode may be an extended code (SQLITE_CORRUPT_INDEX is 779): its low byte is the primary one.
      const errcode = ((error as { errcode?: number }).errcode ?? 0) & 0xff;
      if (errcode === 11 || errcode === 26) return 'torn';
      throw error;
    } finally {
      copy?.close();
      rmSync(join(dir, 'copy.db'));
    }
  };
  const deadline = Date.now() + 10_000;
  let rows = inFile();
  while (rows !== 300 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    rows = inFile();
  }
  t.is(rows, 300, 'every commit reached the database file');
  t.true(store.framesCheckpointed > 0, 'copied by the checkpoint thread');
  await store.close();
  t.false(existsSync(`${file}-wal`), 'closing the last connection leaves no WAL behind');
});

test('sqlite: the checkpoint thread is asked as writes add up, and an idle or read-only store wakes it not at all', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = await SqliteScheduleStore.open(join(dir, 'schedule.db'));
  t.teardown(() => store.close());
  await store.migrate();
  const before = store.checkpointsAsked;
  for (let i = 0; i < 700; i++) await store.insertSchedule(schedule(`g-${i}`));
  const asked = store.checkpointsAsked - before;
  t.true(asked >= 2, `writes ask for checkpoints as they add up, not only after a pause: ${asked}`);
  t.true(asked <= 4, `not after every write: ${asked}`);
  const settle = () => new Promise((r) => setTimeout(r, CHECKPOINT_INTERVAL_MS + 300));
  await settle();
  const afterWrites = store.checkpointsAsked;
  for (let i = 0; i < 50; i++) await store.getSchedule(`g-${i}`);
  await settle();
  t.is(store.checkpointsAsked, afterWrites, 'reads and idle time ask for none');
  await store.insertSchedule(schedule('g-late'));
  await settle();
  t.is(store.checkpointsAsked, afterWrites + 1, 'a lone write is checkpointed after the interval');
});

/** The project's folder: the child process below imports the store from its sources. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('sqlite: a store left unclosed does not keep its process alive (the checkpoint thread is unreferenced)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Writes enough to start the thread's work, then ends without close(): the process must exit by itself.
  const script = [
    `const { SqliteStore } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'services/store/sqlite.ts')).href)});`,
    `const store = await SqliteStore.open(${JSON.stringify(join(dir, 'schedule.db'))});`,
    'await store.migrate();',
    "for (let i = 0; i < 400; i++) await store.insertSchedule({ groupId: 'g-' + i, info: {}, status: 'REGISTERED', engineId: 'builtin', version: 1, createdAt: 1, updatedAt: 1 });",
    "console.log('asked', store.checkpointsAsked);",
  ].join('\n');
  const child = spawn(
    process.execPath,
    ['--conditions=development', '--import', 'tsx', '--input-type=module', '--eval', script],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  t.is(signal, null, `killed after 20 s: the process did not exit by itself; output: ${out}`);
  t.is(code, 0, out);
  t.regex(out, /^asked [1-9]/m, 'the checkpoint thread was asked to work before the end');
});

test('sqlite: a checkpoint thread that fails is reported with its error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The thread opens its own connection: a folder that is not there fails it at once.
  const failed = await new Promise<Error>((resolve) => {
    const checkpoints = startCheckpoints(join(dir, 'missing', 'schedule.db'), resolve);
    t.teardown(() => checkpoints.close());
  });
  t.true(failed instanceof Error);
  t.regex(failed.message, /unable to open database file|missing/i);
});

test('postgres: an unreachable server is UNAVAILABLE naming the host, never the password', async (t) => {
  const err = await t.throwsAsync(
    PostgresScheduleStore.open('postgres://sluice:Sup3rS3cret@127.0.0.1:1/ledger', { connectTimeoutMs: 2000 }),
    {
      code: 'UNAVAILABLE',
    },
  );
  t.regex(err?.message ?? '', /127\.0\.0\.1:1\/ledger/);
  t.notRegex(err?.message ?? '', /Sup3rS3cret/);
  await t.throwsAsync(PostgresScheduleStore.open('mysql://x@127.0.0.1/db'), { code: 'INVALID_ARGUMENT' });
});

test('openScheduleStore: SQLite unless the URL is postgres:// or postgresql://, migrated', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const databaseUrl of [undefined, '', 'mysql://root@127.0.0.1/db']) {
    const store = await openScheduleStore({ databaseUrl, sqlitePath: join(dir, 'schedule.db') });
    t.true(store instanceof SqliteScheduleStore, `${databaseUrl}: SQLite`);
    await store.listSchedules({ limit: 1 }); // migrated: the table is there
    await store.close();
  }
  for (const databaseUrl of ['postgres://u:pw@127.0.0.1:1/x', 'postgresql://u:pw@127.0.0.1:1/x']) {
    await t.throwsAsync(
      openScheduleStore({ databaseUrl, sqlitePath: join(dir, 'unused.db'), postgres: { connectTimeoutMs: 2000 } }),
      { code: 'UNAVAILABLE' },
      `${databaseUrl}: PostgreSQL`,
    );
  }
});

pgTest.serial('openScheduleStore: a PostgreSQL URL opens the PostgreSQL store, migrated', async (t) => {
  const schema = uniqueName('sluice_test');
  const store = await openScheduleStore({
    databaseUrl: PG_URL,
    sqlitePath: '/nonexistent/unused.db',
    postgres: { schema, poolSize: 2 },
  });
  t.teardown(async () => {
    await store.close();
    await withPgClient((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  });
  t.true(store instanceof PostgresScheduleStore);
  await store.insertSchedule(schedule('g-1'));
  t.deepEqual(await store.getSchedule('g-1'), schedule('g-1'));
  const tables = await withPgClient((client) =>
    client.query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
      [schema],
    ),
  );
  t.deepEqual(
    tables.rows.map((r) => r.table_name).sort(),
    ['groups', 'instances', 'jobs', 'schedules', 'schema_migrations'],
    'tables, the operator groups and jobs too, live in the schema',
  );
});
