import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import type { Boundaries, ScheduleInfo } from 'sluice/sdk';
import type { GroupRecord, JobRecord, JobState, StreamSpec } from '../../services/operator/domain/model.js';
import {
  MIGRATIONS,
  PostgresScheduleStore,
  SqliteScheduleStore,
  type SluiceStore,
  openScheduleStore,
  openSluiceStore,
} from '../../services/store/index.js';
import { PG_URL, probePostgres, uniqueName } from '../helpers/databases.js';
import { VERSION_1_DDL, VERSION_1_DESCRIPTION } from '../helpers/store-v1.js';
import { gate } from '../helpers/integration.js';

/** One test's database: every `open()` is a new handle (connection, pool) on it, as a second replica would have. */
interface Db {
  readonly kind: 'sqlite' | 'postgres';
  /** A new store on this test's database, migrated unless `migrate: false`; closed after the test. */
  open(options?: { readonly migrate?: boolean }): Promise<SluiceStore>;
  /** The rows of schema_migrations, read directly from the database. */
  appliedMigrations(): Promise<{ version: number; description: string; appliedAt: number }[]>;
  /** Brings an empty database to schema version 1 only, as a build before the operator tables left it. */
  applyVersion1(): Promise<void>;
  /** The database's tables, sorted. */
  tables(): Promise<string[]>;
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

const VERSION_1 = { ...VERSION_1_DDL, description: VERSION_1_DESCRIPTION };

const sqlite: Backend = {
  name: 'sqlite',
  declare: (title, fn) => test(title, fn),
  async setup(t) {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-operator-store-'));
    const file = join(dir, 'sluice.db');
    const stores: SluiceStore[] = [];
    t.teardown(async () => {
      for (const store of stores) await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const withRaw = <T>(fn: (raw: DatabaseSync) => T, readOnly = true): T => {
      const raw = new DatabaseSync(file, { readOnly });
      try {
        return fn(raw);
      } finally {
        raw.close();
      }
    };
    return {
      kind: 'sqlite',
      async open(options = {}) {
        const store = await SqliteScheduleStore.open(file);
        stores.push(store);
        if (options.migrate !== false) await store.migrate();
        return store;
      },
      async appliedMigrations() {
        return withRaw((raw) =>
          (
            raw.prepare('SELECT version, description, applied_at FROM schema_migrations ORDER BY version').all() as {
              version: number;
              description: string;
              applied_at: number;
            }[]
          ).map((r) => ({ version: r.version, description: r.description, appliedAt: r.applied_at })),
        );
      },
      async applyVersion1() {
        withRaw((raw) => {
          raw.exec(
            'CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)',
          );
          for (const sql of VERSION_1.sqlite) raw.exec(sql);
          raw
            .prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (1, ?, ?)')
            .run(VERSION_1.description, Date.now());
        }, false);
      },
      async tables() {
        return withRaw((raw) =>
          (
            raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]
          ).map((r) => r.name),
        );
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
    const stores: SluiceStore[] = [];
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
          client.query<{ version: number; description: string; applied_at: string }>(
            `SELECT version, description, applied_at FROM "${schema}".schema_migrations ORDER BY version`,
          ),
        );
        return result.rows.map((r) => ({
          version: r.version,
          description: r.description,
          appliedAt: Number(r.applied_at),
        }));
      },
      async applyVersion1() {
        await withPgClient(async (client) => {
          await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
          await client.query(`SET search_path = "${schema}"`);
          await client.query(
            'CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)',
          );
          for (const sql of VERSION_1.postgres) await client.query(sql);
          await client.query('INSERT INTO schema_migrations (version, description, applied_at) VALUES (1, $1, $2)', [
            VERSION_1.description,
            Date.now(),
          ]);
        });
      },
      async tables() {
        const result = await withPgClient((client) =>
          client.query<{ table_name: string }>(
            'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
            [schema],
          ),
        );
        return result.rows.map((r) => r.table_name).sort();
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

function scheduleInfo(groupId: string, patch: Partial<ScheduleInfo> = {}): ScheduleInfo {
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

function stream(streamId: string): StreamSpec {
  return {
    streamId,
    source: {
      connectorId: 'kafka',
      // Nested values, unicode, numbers beyond 2^31, floats, booleans and null: JSON must round-trip them all.
      options: {
        brokers: ['k1:9092', 'k2:9092'],
        topic: `t-${streamId}`,
        'group.id': 'ßluice ✓',
        startMs: T0,
        ratio: 0.125,
        ssl: false,
        sasl: null,
        nested: { a: [1, { b: 'c' }] },
      },
    },
    sink: { connectorId: 'postgres', options: { table: `public.${streamId}`, batchSize: 500 } },
    fields: [
      { sourceField: 'id', targetField: 'id', cast: 'int' },
      { sourceField: 'ts', targetField: 'event_time', cast: 'timestamp' },
      { sourceField: 'payload', targetField: 'payload', cast: '' },
    ],
  };
}

function group(groupId: string, patch: Partial<GroupRecord> = {}): GroupRecord {
  return {
    groupId,
    description: `sync ${groupId} – nightly`,
    streams: [stream('s-1'), stream('s-2')],
    schedule: scheduleInfo(groupId),
    runner: 'embedded',
    retry: { maxAttempts: 3, initialBackoffMs: 1000 },
    status: 'NEW',
    version: 1,
    createdAt: NOW,
    updatedAt: NOW,
    ...patch,
  };
}

/** TIME window k (hours after T0). */
function timeWindow(k: number): Boundaries {
  return { boundaryType: 'TIME', lowerBound: String(T0 + k * HOUR), upperBound: String(T0 + (k + 1) * HOUR) };
}

function job(
  jobId: string,
  groupId: string,
  streamId: string,
  boundaries: Boundaries,
  patch: Partial<JobRecord> = {},
): JobRecord {
  return {
    jobId,
    groupId,
    streamId,
    instanceId: `${groupId}-instance`,
    boundaries,
    generation: 1,
    state: 'PENDING',
    runner: 'embedded',
    attempt: 0,
    resolvedSourceOptions: {
      topic: `t-${streamId}`,
      startMs: Number(boundaries.lowerBound) || 0,
      stopMs: Number(boundaries.upperBound) || 0,
      brokers: ['k1:9092'],
    },
    resolvedPositions: {},
    progress: { records: 0, bytes: 0, positions: {} },
    error: '',
    owner: 'replica-a',
    createdAt: NOW,
    updatedAt: NOW,
    ...patch,
  };
}

/** The jobs of one window, one per stream; job ids `<prefix>-<stream>`. */
function windowJobs(
  prefix: string,
  groupId: string,
  boundaries: Boundaries,
  streams: readonly string[],
  patch: Partial<JobRecord> = {},
): JobRecord[] {
  return streams.map((streamId) => job(`${prefix}-${streamId}`, groupId, streamId, boundaries, patch));
}

const groupIds = (records: readonly GroupRecord[]) => records.map((r) => r.groupId);
const jobIds = (records: readonly JobRecord[]) => records.map((r) => r.jobId);
const byJobId = (x: JobRecord, y: JobRecord) => (x.jobId < y.jobId ? -1 : x.jobId > y.jobId ? 1 : 0);

// ---------------------------------------------------------------------------------------------------------------------
// Groups

contract('groups: insert, get, list in groupId order with status filter and keyset paging', async (t, db) => {
  const store = await db.open();
  const records = [
    group('g-c', {
      status: 'REGISTERED',
      runner: 'flink',
      schedule: scheduleInfo('g-c', { scheduleType: 1, crontabExpression: '0 0 * * * ?' }),
    }),
    group('g-a'),
    group('g-d', { status: 'DELETED', version: 4, streams: [] }),
    group('g-b', {
      status: 'APPROVED',
      runner: '',
      retry: { maxAttempts: 1, initialBackoffMs: 0 },
      description: '',
      createdAt: NOW - HOUR,
    }),
  ];
  for (const record of records) await store.insertGroup(record);

  for (const record of records)
    t.deepEqual(await store.getGroup(record.groupId), record, `${record.groupId} reads back as written`);
  const a = await store.getGroup('g-a');
  t.is(typeof a?.createdAt, 'number');
  t.is(typeof a?.schedule.startTime, 'number');
  t.is(a?.streams[0]?.source.options.startMs, T0, 'epoch ms inside JSON stay numbers');
  t.is(await store.getGroup('g-missing'), undefined);

  t.deepEqual(groupIds(await store.listGroups({ limit: 100 })), ['g-a', 'g-b', 'g-c', 'g-d']);
  t.deepEqual(
    await store.listGroups({ limit: 100 }),
    [...records].sort((x, y) => x.groupId.localeCompare(y.groupId)),
    'whole records',
  );
  t.deepEqual(groupIds(await store.listGroups({ limit: 2 })), ['g-a', 'g-b']);
  t.deepEqual(groupIds(await store.listGroups({ limit: 2, afterGroupId: 'g-b' })), ['g-c', 'g-d']);
  t.deepEqual(groupIds(await store.listGroups({ limit: 2, afterGroupId: 'g-d' })), []);
  t.deepEqual(
    groupIds(await store.listGroups({ limit: 100, afterGroupId: 'g-' })),
    ['g-a', 'g-b', 'g-c', 'g-d'],
    'after a key that is not stored',
  );
  t.deepEqual(groupIds(await store.listGroups({ limit: 100, statuses: ['APPROVED', 'DELETED'] })), ['g-b', 'g-d']);
  t.deepEqual(groupIds(await store.listGroups({ limit: 1, statuses: ['APPROVED', 'DELETED'], afterGroupId: 'g-b' })), [
    'g-d',
  ]);
  t.deepEqual(groupIds(await store.listGroups({ limit: 100, statuses: [] })), []);
  t.deepEqual(groupIds(await store.listGroups({ limit: 0 })), []);
  await t.throwsAsync(store.listGroups({ limit: -1 }), { code: 'INVALID_ARGUMENT' });

  // Paging through everything one at a time visits each group once, in order.
  const seen: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.listGroups({ limit: 1, ...(after === undefined ? {} : { afterGroupId: after }) });
    if (page.length === 0) break;
    seen.push(...groupIds(page));
    after = page[page.length - 1]!.groupId;
  }
  t.deepEqual(seen, ['g-a', 'g-b', 'g-c', 'g-d']);

  // Groups and schedules share the database but not their rows.
  t.deepEqual(await store.listSchedules({ limit: 100 }), []);
});

contract('insertGroup: ALREADY_EXISTS while the group exists and is not DELETED', async (t, db) => {
  const store = await db.open();
  for (const status of ['NEW', 'APPROVED', 'REGISTERED'] as const) {
    const groupId = `g-${status.toLowerCase()}`;
    const original = group(groupId, { status });
    await store.insertGroup(original);
    await t.throwsAsync(store.insertGroup(group(groupId, { runner: 'flink', version: 7 })), {
      code: 'ALREADY_EXISTS',
      message: new RegExp(groupId),
    });
    t.deepEqual(await store.getGroup(groupId), original, `${status}: the stored group is untouched`);
  }
});

contract('insertGroup: a DELETED group is replaced, atomically under concurrency', async (t, db) => {
  const [a, b] = [await db.open(), await db.open()];
  await a.insertGroup(group('g-1'));
  await a.updateGroup(group('g-1', { status: 'DELETED', version: 2, updatedAt: NOW + 1 }), 1);

  const replacement = group('g-1', {
    streams: [stream('s-9')],
    runner: 'flink',
    description: 'again',
    createdAt: NOW + 2,
    updatedAt: NOW + 2,
  });
  t.is(await b.insertGroup(replacement), 3);
  t.deepEqual(
    await a.getGroup('g-1'),
    { ...replacement, version: 3 },
    "the DELETED row is replaced by the new record, createdAt included; the version goes on from the deleted row's",
  );
  await t.throwsAsync(a.insertGroup(replacement), { code: 'ALREADY_EXISTS' }, 'once replaced, it is live again');

  // Many replicas re-creating the same deleted group: exactly one wins, the others see ALREADY_EXISTS.
  await a.updateGroup({ ...replacement, status: 'DELETED', version: 4 }, 3);
  const attempts = Array.from({ length: 10 }, (_, i) =>
    (i % 2 ? a : b).insertGroup(group('g-1', { description: `attempt-${i}` })),
  );
  const results = await Promise.allSettled(attempts);
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  t.is(won.length, 1, 'exactly one insert replaces the DELETED row');
  for (const r of results) if (r.status === 'rejected') t.is((r.reason as { code?: string }).code, 'ALREADY_EXISTS');
  t.is((await a.getGroup('g-1'))?.description, `attempt-${won[0]}`);
});

contract(
  'updateGroup: optimistic locking (VERSION_CONFLICT on a stale version, NOT_FOUND when missing)',
  async (t, db) => {
    const [a, b] = [await db.open(), await db.open()];
    const v1 = group('g-1');
    await a.insertGroup(v1);

    const v2 = {
      ...v1,
      status: 'APPROVED' as const,
      streams: [stream('s-3')],
      retry: { maxAttempts: 5, initialBackoffMs: 250 },
      version: 2,
      updatedAt: NOW + 10,
    };
    await a.updateGroup(v2, 1);
    t.deepEqual(await b.getGroup('g-1'), v2, 'the write is visible to another store');

    const stale = { ...v1, status: 'REGISTERED' as const, version: 2, updatedAt: NOW + 20 };
    await t.throwsAsync(b.updateGroup(stale, 1), {
      code: 'VERSION_CONFLICT',
      message: 'group g-1 was changed: version 1 is stale (current 2)',
    });
    t.deepEqual(await a.getGroup('g-1'), v2, 'a rejected update changes nothing');

    await t.throwsAsync(a.updateGroup(group('g-missing', { version: 2 }), 1), {
      code: 'NOT_FOUND',
      message: /g-missing/,
    });
    await t.throwsAsync(
      a.updateGroup({ ...v2, version: 5 }, 2),
      { code: 'INVALID_ARGUMENT' },
      'the new version must be expected + 1',
    );
    t.deepEqual(await a.getGroup('g-1'), v2);

    // createdAt is the insert's; every other field is the update's.
    const v3 = {
      ...v2,
      status: 'REGISTERED' as const,
      description: 'changed',
      schedule: scheduleInfo('g-1', { scheduleUnit: 'D', timeZone: 'UTC' }),
      runner: 'flink',
      version: 3,
      createdAt: 1,
      updatedAt: NOW + 30,
    };
    await b.updateGroup(v3, 2);
    t.deepEqual(await a.getGroup('g-1'), { ...v3, createdAt: v1.createdAt });

    // Concurrent writers holding the same version: exactly one wins.
    const writers = Array.from({ length: 10 }, (_, i) =>
      (i % 2 ? a : b).updateGroup({ ...v3, description: `writer-${i}`, version: 4 }, 3),
    );
    const results = await Promise.allSettled(writers);
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    t.is(won.length, 1, 'exactly one concurrent update succeeds');
    for (const r of results)
      if (r.status === 'rejected') t.is((r.reason as { code?: string }).code, 'VERSION_CONFLICT');
    t.like(await a.getGroup('g-1'), { version: 4, description: `writer-${won[0]}` });
  },
);

// ---------------------------------------------------------------------------------------------------------------------
// Jobs

contract('getJobs: the jobs among many ids in any number of batches, unknown ids left out', async (t, db) => {
  const store = await db.open();
  const written: JobRecord[] = [];
  // 120 windows of 5 streams: 600 jobs, more than one query's 500 ids.
  for (let i = 0; i < 120; i++) {
    const jobs = windowJobs(`m${i}`, 'g-many', timeWindow(i), ['s-1', 's-2', 's-3', 's-4', 's-5']);
    t.true(await store.insertWindowJobs(jobs));
    written.push(...jobs);
  }
  const ids = [...written.map((j) => j.jobId), 'no-such-job'];
  const read = await store.getJobs(ids);
  const byId = (a: JobRecord, b: JobRecord) => (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0);
  t.deepEqual([...read].sort(byId), [...written].sort(byId));
  t.deepEqual(await store.getJobs([]), []);
  t.deepEqual(await store.getJobs(['no-such-job']), []);
});

contract(
  "renewJobLeases: renews any number of leases (70k ids: past SQLite's and PostgreSQL's bound parameters), answering only those still held",
  async (t, db) => {
    const store = await db.open();
    // 120 windows of 5 streams: 600 jobs of replica-a, some of them no longer its to renew.
    const written: JobRecord[] = [];
    for (let i = 0; i < 120; i++) {
      const jobs = windowJobs(`r${i}`, 'g-renew', timeWindow(i), ['s-1', 's-2', 's-3', 's-4', 's-5'], {
        leaseUntil: NOW,
        ...(i % 3 === 1 ? { owner: 'replica-b' } : i % 3 === 2 ? { state: 'CANCELLED' as const } : {}),
      });
      t.true(await store.insertWindowJobs(jobs));
      written.push(...jobs);
    }
    const held = written.filter((j) => j.owner === 'replica-a' && j.state === 'PENDING').map((j) => j.jobId);
    t.is(held.length, 200);
    // The ids a replica holding 70k jobs passes in: the known ones spread among them (first, middle, last chunks).
    const unknown = Array.from({ length: 70_000 }, (_, i) => `unknown-${i}`);
    const ids = [...written.slice(0, 300).map((j) => j.jobId), ...unknown.slice(0, 35_000)];
    ids.push(...written.slice(300).map((j) => j.jobId), ...unknown.slice(35_000));
    const renewed = await store.renewJobLeases('replica-a', ids, NOW + 60_000);
    t.deepEqual([...renewed].sort(), [...held].sort());
    for (const j of await store.getJobs(jobIds(written)))
      t.is(j.leaseUntil, held.includes(j.jobId) ? NOW + 60_000 : NOW, `${j.jobId}'s lease`);
    t.deepEqual(await store.renewJobLeases('replica-a', [], NOW + 60_000), []);
  },
);

contract(
  'insertWindowJobs: inserts a window once; a repeat (or any overlap) inserts nothing and returns false',
  async (t, db) => {
    const store = await db.open();
    const w = timeWindow(0);
    const first = windowJobs('j1', 'g-1', w, ['s-2', 's-1', 's-3'], {
      resolvedPositions: { '0': '42', '1': '9007199254740993' },
    });
    t.true(await store.insertWindowJobs(first));
    for (const j of first) t.deepEqual(await store.getJob(j.jobId), j, `${j.jobId} reads back as written`);
    t.is(await store.getJob('no-such-job'), undefined);

    t.false(await store.insertWindowJobs(first), 'the same call again');
    t.false(
      await store.insertWindowJobs(windowJobs('j2', 'g-1', w, ['s-1', 's-2', 's-3'])),
      'the same window with other job ids',
    );
    t.false(
      await store.insertWindowJobs(windowJobs('j3', 'g-1', w, ['s-3', 's-4'])),
      'one stream of the window exists',
    );
    t.is(await store.getJob('j3-s-4'), undefined, 'nothing of a refused call is inserted');
    t.deepEqual(jobIds(await store.listJobs({ groupId: 'g-1', limit: 100 })), ['j1-s-1', 'j1-s-2', 'j1-s-3']);

    // Other windows, groups and boundary types are other keys.
    t.true(await store.insertWindowJobs(windowJobs('j4', 'g-1', timeWindow(1), ['s-1'])), 'the next window');
    t.true(
      await store.insertWindowJobs(windowJobs('j5', 'g-1', { ...w, upperBound: String(T0 + 2 * HOUR) }, ['s-1'])),
      'same lower, other upper bound',
    );
    t.true(await store.insertWindowJobs(windowJobs('j6', 'g-2', w, ['s-1'])), 'another group');
    const offsets: Boundaries = { boundaryType: 'OFFSET', lowerBound: w.lowerBound, upperBound: w.upperBound };
    const offsetJobs = windowJobs('j7', 'g-1', offsets, ['s-1'], {
      startedAt: NOW + 1,
      finishedAt: NOW + 2,
      state: 'SUCCEEDED',
      error: 'warn: ✓',
    });
    t.true(await store.insertWindowJobs(offsetJobs), 'an OFFSET window with the same bounds');
    t.deepEqual(await store.getJob('j7-s-1'), offsetJobs[0], 'optional fields round-trip');

    // Not the jobs of one window: refused before anything is written.
    await t.throwsAsync(store.insertWindowJobs([]), { code: 'INVALID_ARGUMENT' });
    await t.throwsAsync(
      store.insertWindowJobs([job('x-1', 'g-3', 's-1', w), job('x-2', 'g-3', 's-2', timeWindow(5))]),
      { code: 'INVALID_ARGUMENT', message: /jobs\[1\]/ },
    );
    await t.throwsAsync(store.insertWindowJobs([job('x-1', 'g-3', 's-1', w), job('x-2', 'g-4', 's-2', w)]), {
      code: 'INVALID_ARGUMENT',
    });
    await t.throwsAsync(
      store.insertWindowJobs([job('x-1', 'g-3', 's-1', w), job('x-2', 'g-3', 's-2', w, { generation: 2 })]),
      { code: 'INVALID_ARGUMENT' },
    );
    await t.throwsAsync(store.insertWindowJobs([job('x-1', 'g-3', 's-1', w), job('x-2', 'g-3', 's-1', w)]), {
      code: 'INVALID_ARGUMENT',
      message: /one job per stream/,
    });
    t.deepEqual(await store.listJobs({ groupId: 'g-3', limit: 100 }), []);
  },
);

contract('insertWindowJobs: 20 concurrent calls for one window from two stores, exactly one inserts', async (t, db) => {
  const [a, b] = [await db.open(), await db.open()];
  const streams = ['s-1', 's-2', 's-3', 's-4'];
  const calls = Array.from({ length: 20 }, (_, i) =>
    // Each caller lists the streams in its own order: the store must not deadlock on that.
    (i % 2 ? a : b).insertWindowJobs(
      windowJobs(`c${String(i).padStart(2, '0')}`, 'g-1', timeWindow(3), i % 3 ? streams : [...streams].reverse(), {
        owner: `replica-${i}`,
      }),
    ),
  );
  const results = await Promise.all(calls);
  const winners = results.flatMap((inserted, i) => (inserted ? [i] : []));
  t.is(winners.length, 1, 'exactly one call returns true');
  const prefix = `c${String(winners[0]).padStart(2, '0')}`;
  const stored = await a.listJobs({ groupId: 'g-1', limit: 100 });
  t.deepEqual(
    jobIds(stored),
    streams.map((s) => `${prefix}-${s}`),
    "one row per stream, all the winner's",
  );
  t.true(stored.every((j) => j.owner === `replica-${winners[0]}`));
  t.deepEqual(await b.latestWindowJobs('g-1', timeWindow(3)), stored);
});

contract(
  'insertWindowJobs: a higher generation inserts again; latestWindowJobs returns only the latest',
  async (t, db) => {
    const [a, b] = [await db.open(), await db.open()];
    const w = timeWindow(2);
    t.deepEqual(await a.latestWindowJobs('g-1', w), [], 'no jobs yet');

    const gen1 = windowJobs('g1', 'g-1', w, ['s-b', 's-a'], { state: 'SUCCEEDED', finishedAt: NOW + 5 });
    t.true(await a.insertWindowJobs(gen1));
    t.deepEqual(await b.latestWindowJobs('g-1', w), [...gen1].reverse(), 'generation 1, ordered by streamId');

    const gen2 = windowJobs('g2', 'g-1', w, ['s-c', 's-a', 's-b'], { generation: 2, instanceId: '' });
    t.true(await b.insertWindowJobs(gen2), 'a re-run: the next generation');
    t.false(
      await a.insertWindowJobs(windowJobs('g2x', 'g-1', w, ['s-a'], { generation: 2 })),
      'generation 2 exists now',
    );
    t.deepEqual(
      await a.latestWindowJobs('g-1', w),
      [gen2[1], gen2[2], gen2[0]],
      'only generation 2, ordered by streamId',
    );
    t.deepEqual(await a.getJob('g1-s-a'), gen1[1], 'generation 1 stays');

    // Other windows are not mixed in: another upper bound, boundary type, group.
    t.deepEqual(await a.latestWindowJobs('g-1', { ...w, upperBound: String(T0 + 9 * HOUR) }), []);
    t.deepEqual(await a.latestWindowJobs('g-1', { ...w, boundaryType: 'OFFSET' }), []);
    t.deepEqual(await a.latestWindowJobs('g-2', w), []);
    const otherWindow = windowJobs('o1', 'g-1', timeWindow(3), ['s-a'], { generation: 7 });
    t.true(await a.insertWindowJobs(otherWindow));
    t.deepEqual(
      await a.latestWindowJobs('g-1', w),
      [gen2[1], gen2[2], gen2[0]],
      "another window's higher generation does not count",
    );
    t.deepEqual(await a.latestWindowJobs('g-1', timeWindow(3)), otherWindow);

    // OFFSET windows: connector-defined bounds.
    const offsets: Boundaries = { boundaryType: 'OFFSET', lowerBound: '{"0":"100"}', upperBound: '{"0":"200"}' };
    const offsetJobs = windowJobs('off', 'g-1', offsets, ['s-a']);
    t.true(await a.insertWindowJobs(offsetJobs));
    t.deepEqual(await b.latestWindowJobs('g-1', offsets), offsetJobs);
  },
);

contract('updateJob: applies the patch, guarded by fromStates and the run; returns the row after', async (t, db) => {
  const [a, b] = [await db.open(), await db.open()];
  const [pending] = windowJobs('j', 'g-1', timeWindow(0), ['s-1']) as [JobRecord];
  await a.insertWindowJobs([pending]);

  const running = await a.updateJob(
    pending.jobId,
    { state: 'RUNNING', attempt: 1, owner: 'replica-b', startedAt: NOW + 1 },
    NOW + 1,
    ['PENDING'],
  );
  t.deepEqual(running, {
    ...pending,
    state: 'RUNNING',
    attempt: 1,
    owner: 'replica-b',
    startedAt: NOW + 1,
    updatedAt: NOW + 1,
  });
  t.deepEqual(await b.getJob(pending.jobId), running);

  t.is(await a.updateJob(pending.jobId, { state: 'RUNNING' }, NOW + 2, ['PENDING']), undefined, 'not in a from-state');
  t.is(
    await a.updateJob(pending.jobId, { state: 'FAILED' }, NOW + 2, []),
    undefined,
    'empty fromStates matches nothing',
  );
  t.is(await a.updateJob('no-such-job', { state: 'FAILED' }, NOW + 2), undefined, 'no such job');
  for (const [run, what] of [
    [{ owner: 'replica-a', attempt: 1 }, 'another owner'],
    [{ owner: 'replica-b', attempt: 2 }, 'another attempt'],
  ] as const)
    t.is(await a.updateJob(pending.jobId, { state: 'FAILED' }, NOW + 2, ['RUNNING'], run), undefined, `run of ${what}`);
  t.deepEqual(await a.getJob(pending.jobId), running, 'refused updates change nothing');

  // JSON fields are replaced whole; a partial patch keeps the rest.
  const progressed = await b.updateJob(
    pending.jobId,
    {
      progress: { records: 1200, bytes: 2 ** 40, positions: { '0': '17', '3': '9' } },
      resolvedPositions: { '0': '5', '3': '1' },
    },
    NOW + 3,
    ['RUNNING'],
  );
  t.like(
    await a.updateJob(pending.jobId, {}, NOW + 3, ['RUNNING'], { owner: 'replica-b', attempt: 1 }),
    { updatedAt: NOW + 3 },
    "the run's own write",
  );
  t.deepEqual(progressed, {
    ...running!,
    progress: { records: 1200, bytes: 2 ** 40, positions: { '0': '17', '3': '9' } },
    resolvedPositions: { '0': '5', '3': '1' },
    updatedAt: NOW + 3,
  });
  const failed = await a.updateJob(
    pending.jobId,
    { state: 'FAILED', error: 'sink: connection refused', finishedAt: NOW + 4 },
    NOW + 4,
  );
  t.deepEqual(
    failed,
    { ...progressed!, state: 'FAILED', error: 'sink: connection refused', finishedAt: NOW + 4, updatedAt: NOW + 4 },
    'any state without fromStates',
  );
  const noted = await a.updateJob(pending.jobId, {}, NOW + 5);
  t.deepEqual(noted, { ...failed!, updatedAt: NOW + 5 }, 'an empty patch only touches updatedAt');
  const retried = await a.updateJob(pending.jobId, { state: 'PENDING', attempt: 2, error: '' }, NOW + 6, ['FAILED']);
  t.like(retried, { state: 'PENDING', attempt: 2, error: '' }, "an empty error string is a value, not 'absent'");

  // Concurrent transitions out of one state: exactly one applies.
  const [next] = windowJobs('k', 'g-1', timeWindow(1), ['s-1']) as [JobRecord];
  await a.insertWindowJobs([next]);
  const moves = Array.from({ length: 20 }, (_, i) =>
    (i % 2 ? a : b).updateJob(next.jobId, { state: 'RUNNING', owner: `replica-${i}`, startedAt: NOW + i }, NOW + i, [
      'PENDING',
    ]),
  );
  const applied = (await Promise.all(moves)).filter((r) => r !== undefined);
  t.is(applied.length, 1, 'exactly one PENDING -> RUNNING transition');
  t.deepEqual(await a.getJob(next.jobId), applied[0]);
});

contract('listJobs: filters (group, states, window range) and keyset paging in jobId order', async (t, db) => {
  const store = await db.open();
  const states: JobState[] = ['SUCCEEDED', 'FAILED', 'RUNNING', 'PENDING', 'PENDING'];
  // Inserted out of order: the store must sort. Job ids `<group>-<window>-<stream>`.
  for (const k of [4, 2, 0, 3, 1])
    t.true(
      await store.insertWindowJobs(windowJobs(`b-${k}`, 'g-b', timeWindow(k), ['s-2', 's-1'], { state: states[k]! })),
    );
  for (const k of [1, 0, 2])
    t.true(await store.insertWindowJobs(windowJobs(`a-${k}`, 'g-a', timeWindow(k), ['s-1'], { state: states[k]! })));
  t.true(await store.insertWindowJobs(windowJobs('c--3', 'g-c', timeWindow(-3), ['s-1'], { state: 'CANCELLED' })));
  const offsets: Boundaries = {
    boundaryType: 'OFFSET',
    lowerBound: String(T0 + HOUR),
    upperBound: String(T0 + 2 * HOUR),
  };
  t.true(await store.insertWindowJobs(windowJobs('d-off', 'g-d', offsets, ['s-1'])));

  const all = await store.listJobs({ limit: 100 });
  t.deepEqual(jobIds(all), [
    'a-0-s-1',
    'a-1-s-1',
    'a-2-s-1',
    'b-0-s-1',
    'b-0-s-2',
    'b-1-s-1',
    'b-1-s-2',
    'b-2-s-1',
    'b-2-s-2',
    'b-3-s-1',
    'b-3-s-2',
    'b-4-s-1',
    'b-4-s-2',
    'c--3-s-1',
    'd-off-s-1',
  ]);
  t.deepEqual(all[0], job('a-0-s-1', 'g-a', 's-1', timeWindow(0), { state: 'SUCCEEDED' }), 'whole records');
  t.deepEqual([...all].sort(byJobId), all, 'jobId order');

  t.deepEqual(jobIds(await store.listJobs({ groupId: 'g-a', limit: 100 })), ['a-0-s-1', 'a-1-s-1', 'a-2-s-1']);
  t.deepEqual(jobIds(await store.listJobs({ groupId: 'g-none', limit: 100 })), []);
  t.deepEqual(jobIds(await store.listJobs({ states: ['PENDING'], limit: 100 })), [
    'b-3-s-1',
    'b-3-s-2',
    'b-4-s-1',
    'b-4-s-2',
    'd-off-s-1',
  ]);
  t.deepEqual(jobIds(await store.listJobs({ states: ['FAILED', 'CANCELLED'], limit: 100 })), [
    'a-1-s-1',
    'b-1-s-1',
    'b-1-s-2',
    'c--3-s-1',
  ]);
  t.deepEqual(jobIds(await store.listJobs({ states: [], limit: 100 })), []);
  t.deepEqual(
    jobIds(await store.listJobs({ windowFrom: T0 + HOUR, windowTo: T0 + 3 * HOUR, limit: 100 })),
    ['a-1-s-1', 'a-2-s-1', 'b-1-s-1', 'b-1-s-2', 'b-2-s-1', 'b-2-s-2'],
    '[from, to) on the TIME lower bound; OFFSET windows have none',
  );
  t.deepEqual(
    jobIds(await store.listJobs({ windowFrom: T0 + 3 * HOUR, limit: 100 })),
    ['b-3-s-1', 'b-3-s-2', 'b-4-s-1', 'b-4-s-2'],
    'open end',
  );
  t.deepEqual(
    jobIds(await store.listJobs({ windowTo: T0, limit: 100 })),
    ['c--3-s-1'],
    'open start, negative offsets from T0',
  );
  t.deepEqual(
    jobIds(
      await store.listJobs({
        groupId: 'g-b',
        states: ['PENDING', 'RUNNING'],
        windowFrom: T0 + 2 * HOUR,
        windowTo: T0 + 4 * HOUR,
        limit: 100,
      }),
    ),
    ['b-2-s-1', 'b-2-s-2', 'b-3-s-1', 'b-3-s-2'],
    'filters combine',
  );
  t.deepEqual(jobIds(await store.listJobs({ limit: 2 })), ['a-0-s-1', 'a-1-s-1']);
  t.deepEqual(jobIds(await store.listJobs({ limit: 0 })), []);
  await t.throwsAsync(store.listJobs({ limit: 1.5 }), { code: 'INVALID_ARGUMENT' });
  t.deepEqual(
    jobIds(await store.listJobs({ afterJobId: 'a-2-s-1', limit: 2 })),
    ['b-0-s-1', 'b-0-s-2'],
    'paging crosses groups',
  );
  t.deepEqual(
    jobIds(await store.listJobs({ groupId: 'g-b', afterJobId: 'b-3', limit: 100 })),
    ['b-3-s-1', 'b-3-s-2', 'b-4-s-1', 'b-4-s-2'],
    'after a key that is not stored',
  );

  // Paging with filters visits exactly the filtered rows, in order.
  const pageAll = async (query: { states?: JobState[]; groupId?: string }) => {
    const seen: JobRecord[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 50; pages++) {
      const page = await store.listJobs({ ...query, limit: 2, ...(after === undefined ? {} : { afterJobId: after }) });
      if (page.length === 0) return seen;
      seen.push(...page);
      after = page[page.length - 1]!.jobId;
    }
    throw new Error('paging did not end');
  };
  t.deepEqual(await pageAll({}), all);
  t.deepEqual(jobIds(await pageAll({ groupId: 'g-b', states: ['SUCCEEDED', 'RUNNING'] })), [
    'b-0-s-1',
    'b-0-s-2',
    'b-2-s-1',
    'b-2-s-2',
  ]);
});

// ---------------------------------------------------------------------------------------------------------------------
// Migrations and sharing the database

contract(
  'migrations: version 2 (groups, jobs) recorded once, idempotent and safe to run concurrently',
  async (t, db) => {
    const started = Date.now();
    const [a, b] = [await db.open({ migrate: false }), await db.open({ migrate: false })];
    await Promise.all([a.migrate(), b.migrate()]);
    const applied = await db.appliedMigrations();
    t.deepEqual(
      applied.map((m) => m.version),
      MIGRATIONS.map((m) => m.version),
      'every migration recorded once, in order',
    );
    const v2 = applied.filter((m) => m.version === 2);
    t.is(v2.length, 1, 'version 2 recorded once');
    t.is(v2[0]!.description, 'operator groups and jobs');
    t.true(v2[0]!.appliedAt >= started && v2[0]!.appliedAt <= Date.now(), 'applied_at is epoch ms');
    t.deepEqual(await db.tables(), ['groups', 'instances', 'jobs', 'schedules', 'schema_migrations']);

    await a.migrate();
    const c = await db.open();
    await c.migrate();
    t.deepEqual(await db.appliedMigrations(), applied, 'running them again is a no-op');

    await a.insertGroup(group('g-1'));
    t.truthy(await b.getGroup('g-1'));
    t.true(await c.insertWindowJobs(windowJobs('j', 'g-1', timeWindow(0), ['s-1'])));
  },
);

contract('migrations: a database at version 1 is upgraded to version 2, keeping its schedules', async (t, db) => {
  await db.applyVersion1();
  t.deepEqual(
    (await db.appliedMigrations()).map((m) => m.version),
    [1],
  );
  t.deepEqual(await db.tables(), ['instances', 'schedules', 'schema_migrations']);

  const store = await db.open();
  const applied = await db.appliedMigrations();
  t.deepEqual(
    applied.map((m) => m.version),
    MIGRATIONS.map((m) => m.version),
  );
  t.deepEqual(await db.tables(), ['groups', 'instances', 'jobs', 'schedules', 'schema_migrations']);
  await store.insertGroup(group('g-1'));
  t.deepEqual(await store.getGroup('g-1'), group('g-1'));
});

contract('data survives closing and reopening the store; a closed store is UNAVAILABLE', async (t, db) => {
  const first = await db.open();
  const record = group('g-1', { status: 'REGISTERED', version: 3 });
  const jobs = windowJobs('j', 'g-1', timeWindow(0), ['s-1', 's-2'], { state: 'RUNNING', startedAt: NOW + 1 });
  await first.insertGroup(record);
  t.true(await first.insertWindowJobs(jobs));
  await first.close();
  await t.throwsAsync(first.getGroup('g-1'), { code: 'UNAVAILABLE' });
  await t.throwsAsync(first.getJob('j-s-1'), { code: 'UNAVAILABLE' });

  const second = await db.open();
  t.deepEqual(await second.getGroup('g-1'), record);
  t.deepEqual(await second.latestWindowJobs('g-1', timeWindow(0)), jobs);
  t.false(
    await second.insertWindowJobs(windowJobs('again', 'g-1', timeWindow(0), ['s-1'])),
    'the window still has its jobs',
  );
});

test('openSluiceStore (and its former name openScheduleStore): one migrated SQLite store for both services', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-operator-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'sluice.db');
  const store = await openSluiceStore({ sqlitePath: path });
  t.true(store instanceof SqliteScheduleStore);
  await store.insertGroup(group('g-1'));
  await store.insertSchedule({
    groupId: 'g-1',
    info: scheduleInfo('g-1'),
    status: 'NEW',
    engineId: 'builtin',
    version: 1,
    createdAt: NOW,
    updatedAt: NOW,
  });
  await store.close();

  const again = await openScheduleStore({ sqlitePath: path });
  t.teardown(() => again.close());
  t.deepEqual(await again.getGroup('g-1'), group('g-1'));
  t.is((await again.getSchedule('g-1'))?.engineId, 'builtin');
});
