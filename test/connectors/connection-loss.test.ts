/**
 * The database drops a connector's connection in the middle of a read or a write (an administrator's
 * KILL / pg_terminate_backend, the server's net_write_timeout on a paused read): the read or write must
 * fail within a bound with an error that names the connector and what happened, never wait forever on
 * an event that can no longer come. Needs MariaDB/MySQL and PostgreSQL; each part skips without its
 * database (fails under SLUICE_REQUIRE_INTEGRATION=1).
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import mysqlCallbacks from 'mysql2';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Boundaries, BoundedReader, ConnectorPlugin, Options, WindowRef } from 'sluice/sdk';
import { sluiceError } from '../../plugins/connectors/_sql/core.js';
import { streamReader } from '../../plugins/connectors/mysql/stream-reader.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import { MYSQL_URL, PG_URL, probeMysql, probePostgres, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';

interface Ctx {
  my: mysql.Pool;
  pg: pg.Pool;
}

const anyCtxTest = anyTest as TestFn<Ctx>;
const myTest = gate(anyCtxTest, await probeMysql());
const pgTest = gate(anyCtxTest, await probePostgres());

const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
const connector = (id: string) => plugins.connectors.get(id) as LoadedPlugin<ConnectorPlugin>;
const runner = new HookRunner({ timeoutMs: 15_000 });

/** Rows in each source table: several MB, far more than the socket buffers hold, so the read is mid-way. */
const ROWS = 20_000;
/** How long a read or write may take to fail once its connection is gone. */
const BOUND_MS = 10_000;
const myTables: string[] = [];
const pgTables: string[] = [];

anyCtxTest.before(async (t) => {
  t.context.my = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 });
  t.context.pg = new pg.Pool({ connectionString: PG_URL, max: 4 });
  // Unreachable databases show when the tests run (they skip or fail there); nothing to set up then.
  t.context.my.on('connection', (c) => c.on('error', () => {}));
  t.context.pg.on('error', () => {});
});

anyCtxTest.after.always(async (t) => {
  for (const name of myTables) await t.context.my.query(`DROP TABLE IF EXISTS \`${name}\``).catch(() => {});
  for (const name of pgTables) await t.context.pg.query(`DROP TABLE IF EXISTS "${name}"`).catch(() => {});
  await t.context.my.end().catch(() => {});
  await t.context.pg.end().catch(() => {});
});

/** Settles as `promise` does, or fails the test's wait after `ms` with "still pending" (the hang this file is about). */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `find` until it gives a value (the server shows a statement a moment after it is sent). */
async function poll<T>(find: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const found = await find();
    if (found !== undefined) return found;
    await sleep(50);
  }
  throw new Error(`not found: ${what}`);
}

/** Pulls every batch; the first one after `afterFirst` ran. */
async function drain(reader: BoundedReader, afterFirst: () => Promise<void>): Promise<number> {
  let rows = 0;
  for await (const batch of reader.batches()) {
    if (rows === 0) await afterFirst();
    rows += batch.length;
  }
  return rows;
}

interface Failure {
  code?: string;
  message: string;
}

function assertConnectionLost(t: ExecutionContext<Ctx>, err: unknown, connectorId: string, table: string): void {
  const e = err as Failure;
  t.log(e.message);
  t.not(e.message, `still pending after ${BOUND_MS} ms`, 'the operation waited instead of failing');
  t.is(e.code, 'UNAVAILABLE', e.message);
  t.true(e.message.startsWith(`${connectorId}: `), e.message);
  t.true(e.message.includes(table), e.message);
  t.false(/password|secret/i.test(e.message), e.message);
}

const offset = (lower: number, upper: number): Boundaries => ({
  boundaryType: 'OFFSET',
  lowerBound: String(lower),
  upperBound: String(upper),
});
const windowRef = (boundaries: Boundaries): WindowRef => ({
  groupId: 'g1',
  streamId: 's1',
  jobId: 'job-1',
  boundaries,
});

async function openReader(id: string, options: Options, boundaries: Boundaries): Promise<BoundedReader> {
  const bounded = await runner.call(connector(id), 'fillInBoundaries', { options, boundaries });
  return runner.call(connector(id), 'openReader', { options: bounded, boundaries });
}

// ------------------------------------------------------------------------------------------- MySQL

async function mySource(admin: mysql.Pool): Promise<string> {
  const name = uniqueName('hang_loss');
  myTables.push(name);
  await admin.query(`CREATE TABLE \`${name}\` (id BIGINT PRIMARY KEY, name TEXT NOT NULL) ENGINE=InnoDB`);
  // One connection, so the session's recursion limit (MariaDB and MySQL name it differently) applies.
  const conn = await admin.getConnection();
  try {
    await conn.query('SET SESSION max_recursive_iterations = 1000000').catch(() => {});
    await conn.query('SET SESSION cte_max_recursion_depth = 1000000').catch(() => {});
    await conn.query(
      `INSERT INTO \`${name}\` WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${ROWS}) SELECT n, REPEAT('x', 300) FROM s`,
    );
  } finally {
    conn.release();
  }
  return name;
}

/** The id of the connection running a statement that starts with `prefix` and names `table`. */
async function myConnectionRunning(admin: mysql.Pool, prefix: string, table: string): Promise<number> {
  return poll(async () => {
    const [rows] = await admin.query<mysql.RowDataPacket[]>(
      'SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE ? AND INFO LIKE ?',
      [`${prefix}%`, `%${table}%`],
    );
    return rows[0]?.ID as number | undefined;
  }, `a connection running ${prefix} on ${table}`);
}

myTest('mysql: a streamed read whose connection is killed mid-read fails promptly, naming the table', async (t) => {
  const { my } = t.context;
  const table = await mySource(my);
  const reader = await openReader(
    'mysql',
    { url: MYSQL_URL, table, keyColumn: 'id', batchSize: 100 },
    offset(1, ROWS + 1),
  );
  try {
    const err = await t.throwsAsync(
      within(
        BOUND_MS,
        drain(reader, async () => {
          await my.query(`KILL ${await myConnectionRunning(my, 'SELECT', table)}`);
        }),
      ),
    );
    assertConnectionLost(t, err, 'mysql', table);
  } finally {
    await reader.close();
  }
});

myTest('mysql: a read paused while its connection is killed fails once it resumes', async (t) => {
  const { my } = t.context;
  const table = await mySource(my);
  const reader = await openReader(
    'mysql',
    { url: MYSQL_URL, table, keyColumn: 'id', batchSize: 100 },
    offset(1, ROWS + 1),
  );
  try {
    const err = await t.throwsAsync(
      within(
        BOUND_MS,
        drain(reader, async () => {
          // The consumer stops pulling (the connection is paused), the server drops it, then the consumer goes on.
          await my.query(`KILL ${await myConnectionRunning(my, 'SELECT', table)}`);
          await sleep(1000);
        }),
      ),
    );
    assertConnectionLost(t, err, 'mysql', table);
  } finally {
    await reader.close();
  }
});

myTest('mysql: a streamed read paused longer than the session net_write_timeout fails once it resumes', async (t) => {
  const { my } = t.context;
  const table = await mySource(my);
  // The connector sets a long net_write_timeout on its own session; a session of the test's own with a
  // 2 s one runs the connector's stream reader, to see what the server's timeout does to a paused read.
  const conn = mysqlCallbacks.createConnection({ uri: MYSQL_URL });
  conn.on('error', () => {});
  await conn.promise().query('SET SESSION net_write_timeout = 2');
  await conn.promise().query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
  const reader = streamReader(conn, {
    sql: `SELECT id, name FROM \`${table}\` ORDER BY id`,
    keyField: 'id',
    batchSize: 100,
    close: async () => conn.destroy(),
    mapError: (err, doing) =>
      // The connector's own mapping is checked by the tests above; here what counts is that the read fails.
      sluiceError('UNAVAILABLE', `mysql: ${doing} of ${table}: ${(err as Error).message}`, err),
  });
  try {
    // The consumer stops pulling after the first batch, well past the 2 s, then goes on.
    const err = await t.throwsAsync(
      within(
        BOUND_MS + 5000,
        drain(reader, () => sleep(5000)),
      ),
    );
    assertConnectionLost(t, err, 'mysql', table);
  } finally {
    await reader.close();
  }
});

myTest('mysql: a write whose connection is killed mid-statement fails promptly, naming the table', async (t) => {
  const { my } = t.context;
  const table = uniqueName('hang_sink');
  myTables.push(table);
  await my.query(
    `CREATE TABLE \`${table}\` (id BIGINT PRIMARY KEY, name TEXT, sluice_window VARCHAR(255)) ENGINE=InnoDB`,
  );
  // A row lock held by another transaction keeps the writer's statement running until it is killed.
  const holder = await my.getConnection();
  try {
    await holder.query('START TRANSACTION');
    await holder.query(`INSERT INTO \`${table}\` VALUES (1, 'held', 'other')`);
    const writer = await runner.call(connector('mysql'), 'openWriter', {
      options: { url: MYSQL_URL, table, batchSize: 1 },
      window: windowRef(offset(1, 3)),
    });
    const writing = writer.write([{ id: 1, name: 'w' }]);
    const id = await myConnectionRunning(my, '', table);
    await my.query(`KILL ${id}`);
    const err = await t.throwsAsync(within(BOUND_MS, writing));
    assertConnectionLost(t, err, 'mysql', table);
    await writer.abort(new Error('test abort')).catch(() => {});
  } finally {
    await holder.query('ROLLBACK').catch(() => {});
    holder.release();
  }
});

// ---------------------------------------------------------------------------------------- PostgreSQL

async function pgSource(admin: pg.Pool): Promise<string> {
  const name = uniqueName('hang_loss');
  pgTables.push(name);
  await admin.query(`CREATE TABLE "${name}" (id BIGINT PRIMARY KEY, name TEXT NOT NULL)`);
  await admin.query(`INSERT INTO "${name}" SELECT n, repeat('x', 300) FROM generate_series(1, ${ROWS}) n`);
  return name;
}

/** The backend running a statement that starts with `prefix` and names `table`. */
async function pgBackendRunning(admin: pg.Pool, prefix: string, table: string): Promise<number> {
  return poll(async () => {
    const { rows } = await admin.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1 AND query LIKE $2",
      [`${prefix}%`, `%${table}%`],
    );
    return rows[0]?.pid;
  }, `a backend running ${prefix} on ${table}`);
}

for (const paused of [false, true]) {
  pgTest(
    `postgres: a read whose backend is terminated ${paused ? 'while the consumer is paused' : 'mid-read'} fails promptly, naming the table`,
    async (t) => {
      const admin = t.context.pg;
      const table = await pgSource(admin);
      const reader = await openReader(
        'postgres',
        { url: PG_URL, table, keyColumn: 'id', batchSize: 100 },
        offset(1, ROWS + 1),
      );
      try {
        const err = await t.throwsAsync(
          within(
            BOUND_MS,
            drain(reader, async () => {
              const pid = await pgBackendRunning(admin, 'COPY', table);
              await admin.query('SELECT pg_terminate_backend($1)', [pid]);
              if (paused) await sleep(1000);
            }),
          ),
        );
        assertConnectionLost(t, err, 'postgres', table);
      } finally {
        await reader.close();
      }
    },
  );
}

pgTest(
  'postgres: a write whose backend is terminated mid-COPY fails at commit promptly, naming the table',
  async (t) => {
    const admin = t.context.pg;
    const table = uniqueName('hang_sink');
    pgTables.push(table);
    await admin.query(`CREATE TABLE "${table}" (id BIGINT PRIMARY KEY, name TEXT, sluice_window TEXT)`);
    const holder = await admin.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`INSERT INTO "${table}" VALUES (1, 'held', 'other')`);
      const writer = await runner.call(connector('postgres'), 'openWriter', {
        options: { url: PG_URL, table, batchSize: 1 },
        window: windowRef(offset(1, 3)),
      });
      // Rows go in by COPY FROM STDIN: the write returns once the socket took them, the COPY waits on the lock.
      await writer.write([{ id: 1, name: 'w' }]);
      const pid = await pgBackendRunning(admin, 'COPY', table);
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      const err = await t.throwsAsync(within(BOUND_MS, writer.commit()));
      assertConnectionLost(t, err, 'postgres', table);
      await writer.abort(new Error('test abort')).catch(() => {});
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
  },
);
