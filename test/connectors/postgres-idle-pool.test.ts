/**
 * The postgres connector's kept connections (plugins/connectors/postgres/idle-pool.ts): a job's
 * connections go back to the pool when their transaction ended cleanly, the next job takes them, and a
 * connection that is dirty, dropped or beyond the limit is closed. Needs PostgreSQL; skips without it.
 * Serial: the pool is this file's (one module instance per test worker).
 */
import anyTest, { type TestFn } from 'ava';
import pg from 'pg';
import type { Boundaries, ConnectorPlugin, Options, Row } from 'sluice/sdk';
import * as idle from '../../plugins/connectors/postgres/idle-pool.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import { PG_URL, probePostgres, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';

interface Ctx {
  admin: pg.Client;
  table: string;
}
const test = gate(anyTest as TestFn<Ctx>, await probePostgres());

const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
const loaded = plugins.connectors.get('postgres') as LoadedPlugin<ConnectorPlugin>;
const runner = new HookRunner({ timeoutMs: 15_000 });
const T0 = Date.UTC(2026, 2, 1, 12, 0, 0, 123);
const window: Boundaries = { boundaryType: 'OFFSET', lowerBound: '1', upperBound: '4' };

test.before(async (t) => {
  t.context.admin = new pg.Client({ connectionString: PG_URL });
  await t.context.admin.connect();
  t.context.table = uniqueName('pg_idle');
  await t.context.admin.query(`CREATE TABLE "${t.context.table}" (id bigint PRIMARY KEY, ts timestamptz NOT NULL)`);
  await t.context.admin.query(
    `INSERT INTO "${t.context.table}" SELECT g, $1::timestamptz + g * interval '1 second' FROM generate_series(1, 3) g`,
    [new Date(T0).toISOString()],
  );
});

test.after.always(async (t) => {
  await idle.closeAll();
  if (!t.context.admin) return;
  await t.context.admin.query(`DROP TABLE IF EXISTS "${t.context.table}"`).catch(() => {});
  await t.context.admin.end();
});

async function read(table: string): Promise<Row[]> {
  const options: Options = await runner.call(loaded, 'fillInBoundaries', {
    options: { url: PG_URL, table, keyColumn: 'id' },
    boundaries: window,
  });
  const reader = await runner.call(loaded, 'openReader', { options, boundaries: window });
  try {
    const rows: Row[] = [];
    for await (const batch of reader.batches()) rows.push(...batch);
    return rows;
  } finally {
    await reader.close();
  }
}

/** The server process of the one kept connection, given back after the look. */
async function keptPid(): Promise<number> {
  const client = idle.take(PG_URL);
  if (!client) throw new Error('no connection kept');
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  await idle.give(PG_URL, client);
  return pid;
}

const expected = [1, 2, 3].map((i) => ({ id: i, ts: new Date(T0 + i * 1000).toISOString() }));

test.serial('a finished read leaves its connection kept, and the next read takes the same one', async (t) => {
  t.deepEqual(await read(t.context.table), expected);
  t.is(idle.keptCount(), 1);
  const pid = await keptPid();
  t.deepEqual(await read(t.context.table), expected);
  t.is(idle.keptCount(), 1);
  t.is(await keptPid(), pid, 'the second read ran on the first one’s server process');
});

test.serial('session settings a kept connection drifted from are set again before it is used', async (t) => {
  const client = idle.take(PG_URL)!;
  await client.query("SET TIME ZONE 'Asia/Tokyo'; SET DateStyle TO German; SET IntervalStyle TO sql_standard");
  await idle.give(PG_URL, client);
  t.deepEqual(await read(t.context.table), expected);
});

test.serial('a kept connection the server dropped is closed, and the read opens a new one', async (t) => {
  const pid = await keptPid();
  await t.context.admin.query('SELECT pg_terminate_backend($1)', [pid]);
  // The kept connection learns of it only when used: the read's check fails over to a new connection.
  t.deepEqual(await read(t.context.table), expected);
  t.not(await keptPid(), pid);
});

test.serial('a connection inside a transaction, or that failed, is closed instead of kept', async (t) => {
  await idle.closeAll();
  const open = new pg.Client({ connectionString: PG_URL });
  idle.watch(open);
  await open.connect();
  await open.query('BEGIN');
  await idle.give(PG_URL, open);
  t.is(idle.keptCount(), 0);
  await t.throwsAsync(open.query('SELECT 1'), undefined, 'closed');

  const failed = new pg.Client({ connectionString: PG_URL });
  idle.watch(failed);
  await failed.connect();
  failed.emit('error', new Error('connection reset'));
  await idle.give(PG_URL, failed);
  t.is(idle.keptCount(), 0);
});

test.serial(`at most ${idle.MAX_IDLE_PER_URL} connections are kept per URL; the rest are closed`, async (t) => {
  await idle.closeAll();
  const clients = await Promise.all(
    Array.from({ length: idle.MAX_IDLE_PER_URL + 1 }, async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      idle.watch(c);
      await c.connect();
      return c;
    }),
  );
  for (const c of clients) await idle.give(PG_URL, c);
  t.is(idle.keptCount(), idle.MAX_IDLE_PER_URL);
  await t.throwsAsync(clients.at(-1)!.query('SELECT 1'), undefined, 'the one over the limit is closed');
  await idle.closeAll();
  t.is(idle.keptCount(), 0);
});

test.serial('a committed window write leaves the writer’s connection kept', async (t) => {
  await idle.closeAll();
  const sink = uniqueName('pg_idle_sink');
  await t.context.admin.query(`CREATE TABLE "${sink}" (id bigint, sluice_window text NOT NULL)`);
  try {
    const writer = await runner.call(loaded, 'openWriter', {
      options: { url: PG_URL, table: sink, mode: 'replace-window' },
      window: { groupId: 'g', streamId: 's', jobId: 'j', boundaries: window },
    });
    await writer.write([{ id: 1 }, { id: 2 }]);
    await writer.commit();
    t.is(idle.keptCount(), 1);
    const n = await t.context.admin.query<{ n: string }>(`SELECT count(*) AS n FROM "${sink}"`);
    t.is(n.rows[0]!.n, '2');
  } finally {
    await t.context.admin.query(`DROP TABLE IF EXISTS "${sink}"`);
  }
});
