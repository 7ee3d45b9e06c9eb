/**
 * The postgres connector, loaded as the services load it and called through the hook runner. The
 * data-free checks always run; the rest need PostgreSQL (PG_URL) and skip without it (fail under
 * SLUICE_REQUIRE_INTEGRATION=1). Every test works on tables of its own.
 */
import anyTest, { type TestFn } from 'ava';
import pg from 'pg';
import type { Boundaries, ConnectorPlugin, Options, Row, WindowRef, WindowWriter } from 'sluice/sdk';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import harness from '../conformance/harnesses/postgres.js';
import { PG_URL, probePostgres, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';

interface Ctx {
  /** Connections of the test's own, to set up and inspect tables behind the connector's back. */
  admin: pg.Pool;
}

const anyCtxTest = anyTest as TestFn<Ctx>;
const test = gate(anyCtxTest, await probePostgres());

const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
const loaded = plugins.connectors.get('postgres') as LoadedPlugin<ConnectorPlugin>;
const runner = new HookRunner({ timeoutMs: 15_000 });

const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);
const qi = (name: string) => `"${name.replaceAll('"', '""')}"`;
const created: string[] = [];
const schemas: string[] = [];

interface Failure {
  code: string;
  message: string;
  details: { field?: string };
}
const failure = (err: unknown) => err as Failure;

test.before(async (t) => {
  t.context.admin = new pg.Pool({ connectionString: PG_URL, max: 8 });
  await t.context.admin.query('SELECT 1');
});

test.after.always(async (t) => {
  const admin = t.context.admin;
  if (!admin) return;
  for (const name of created) await admin.query(`DROP TABLE IF EXISTS ${name} CASCADE`).catch(() => {});
  for (const name of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`).catch(() => {});
  await admin.end();
  await harness.cleanup();
});

/** A fresh table name (already quoted, maybe qualified), dropped after the file. */
function track(quoted: string): string {
  created.push(quoted);
  return quoted;
}

/** A source table: id bigint key, ts timestamptz(precision), name text, with rows {id, ts (ms), name}. */
async function sourceTable(
  admin: pg.Pool,
  rows: readonly { id: number; ts: number; name: string }[],
  precision = 3,
): Promise<string> {
  const name = uniqueName('pg_src');
  track(qi(name));
  await admin.query(
    `CREATE TABLE ${qi(name)} (id bigint PRIMARY KEY, ts timestamptz(${precision}) NOT NULL, name text NOT NULL)`,
  );
  for (const r of rows)
    await admin.query(`INSERT INTO ${qi(name)} (id, ts, name) VALUES ($1, $2, $3)`, [
      r.id,
      new Date(r.ts).toISOString(),
      r.name,
    ]);
  return name;
}

const tenRows = Array.from({ length: 10 }, (_, i) => ({ id: i + 1, ts: T0 + (i + 1) * 1000, name: `n${i + 1}` }));

async function fill(options: Options, boundaries: Boundaries): Promise<Options> {
  return runner.call(loaded, 'fillInBoundaries', { options, boundaries });
}

/** Reads a window as the embedded runner does: bounded options, open, every batch, close. */
async function read(
  options: Options,
  boundaries: Boundaries,
): Promise<{ batches: Row[][]; positions: Record<string, string> }> {
  const bounded = await fill(options, boundaries);
  const reader = await runner.call(loaded, 'openReader', { options: bounded, boundaries });
  try {
    const batches: Row[][] = [];
    for await (const batch of reader.batches()) batches.push([...batch]);
    return { batches, positions: { ...reader.positions?.() } };
  } finally {
    await reader.close();
  }
}

const ids = (rows: readonly Row[]) => rows.map((r) => Number(r.id));
const time = (lower: number, upper: number): Boundaries => ({
  boundaryType: 'TIME',
  lowerBound: String(lower),
  upperBound: String(upper),
});
const offset = (lower: number | string, upper: number | string): Boundaries => ({
  boundaryType: 'OFFSET',
  lowerBound: String(lower),
  upperBound: String(upper),
});
const windowRef = (boundaries: Boundaries, jobId = 'job-1'): WindowRef => ({
  groupId: 'g1',
  streamId: 's1',
  jobId,
  boundaries,
});

async function openWriter(options: Options, window: WindowRef): Promise<WindowWriter> {
  return runner.call(loaded, 'openWriter', { options, window });
}

async function writeWindow(
  options: Options,
  window: WindowRef,
  rows: readonly Row[],
  end: 'commit' | 'abort' = 'commit',
): Promise<void> {
  const writer = await openWriter(options, window);
  await writer.write(rows);
  if (end === 'commit') await writer.commit();
  else await writer.abort(new Error('test abort'));
}

// ------------------------------------------------------------------------------------- data-free checks

anyCtxTest('loads as a source and sink connector with TIME and OFFSET windows; every option has a description', (t) => {
  t.deepEqual(
    plugins.problems.filter((p) => p.pluginId === 'postgres'),
    [],
  );
  t.deepEqual(loaded.plugin.roles, ['source', 'sink']);
  t.deepEqual(loaded.plugin.boundaryTypes, ['TIME', 'OFFSET']);
  for (const schema of [loaded.plugin.sourceOptions, loaded.plugin.sinkOptions]) {
    for (const [name, prop] of Object.entries(schema?.properties ?? {})) t.truthy(prop.description, name);
  }
  t.deepEqual(loaded.plugin.sourceOptions?.required, ['url', 'table', 'keyColumn']);
});

anyCtxTest('fillInBoundaries adds canonical bounds and defaults, and is deterministic', async (t) => {
  const options = { url: PG_URL, table: 'public.events', keyColumn: 'id', timeColumn: 'ts' };
  const tb = await fill(options, time(1000, 2000));
  t.deepEqual(tb, {
    ...options,
    batchSize: 1000,
    connectTimeoutMs: 10_000,
    scanPartitions: 1,
    'scan.boundary-type': 'TIME',
    'scan.lower': '1000',
    'scan.upper': '2000',
  });
  t.deepEqual(await fill(options, time(1000, 2000)), tb);
  const ob = await fill(options, offset('-0', '18446744073709551616'));
  t.is(ob['scan.boundary-type'], 'OFFSET');
  t.is(ob['scan.lower'], '0');
  t.is(ob['scan.upper'], '18446744073709551616');
});

anyCtxTest('bounds that do not parse are INVALID_ARGUMENT naming the field', async (t) => {
  const options = { url: PG_URL, table: 't', keyColumn: 'id', timeColumn: 'ts' };
  const cases: [Boundaries, Options, string][] = [
    [time(NaN, 5), options, 'boundaries.lower_bound'],
    [{ boundaryType: 'TIME', lowerBound: '-5', upperBound: '10' }, options, 'boundaries.lower_bound'],
    [{ boundaryType: 'TIME', lowerBound: '5', upperBound: '1e3' }, options, 'boundaries.upper_bound'],
    [time(10, 5), options, 'boundaries.upper_bound'],
    [offset('abc', 5), options, 'boundaries.lower_bound'],
    [offset(1, '1.5'), options, 'boundaries.upper_bound'],
    [offset(7, 3), options, 'boundaries.upper_bound'],
    [time(1, 2), { url: PG_URL, table: 't', keyColumn: 'id' }, 'options.timeColumn'],
  ];
  for (const [boundaries, opts, field] of cases) {
    const err = failure(await t.throwsAsync(fill(opts, boundaries)));
    t.is(err.code, 'INVALID_ARGUMENT', JSON.stringify(boundaries));
    t.is(err.details.field, field, JSON.stringify(boundaries));
  }
});

anyCtxTest(
  'validate reports bad table names, duplicate columns, upsert without keys and bad URLs, without the password',
  async (t) => {
    const v = (role: 'source' | 'sink', options: Options) => runner.call(loaded, 'validate', { role, options });
    t.deepEqual(
      await v('source', { url: PG_URL, table: 'public."we.ird"', keyColumn: 'id', columns: ['id', 'name'] }),
      [],
    );
    t.deepEqual(await v('sink', { url: PG_URL, table: 'out', mode: 'upsert', keyColumns: ['id'] }), []);
    const paths = async (role: 'source' | 'sink', options: Options) => (await v(role, options)).map((e) => e.path);
    t.deepEqual(await paths('source', { url: PG_URL, table: 'a..b', keyColumn: 'id' }), ['options.table']);
    t.deepEqual(await paths('source', { url: PG_URL, table: 'a.b.c', keyColumn: 'id' }), ['options.table']);
    t.deepEqual(await paths('source', { url: PG_URL, table: '"open', keyColumn: 'id' }), ['options.table']);
    t.deepEqual(await paths('source', { url: PG_URL, table: 't', keyColumn: 'id', columns: ['a', 'a'] }), [
      'options.columns',
    ]);
    t.deepEqual(await paths('sink', { url: PG_URL, table: 't', mode: 'upsert' }), ['options.keyColumns']);
    const bad = await v('source', { url: 'mysql://bob:hunter22@h/db', table: 't', keyColumn: 'id' });
    t.deepEqual(
      bad.map((e) => e.path),
      ['options.url'],
    );
    t.false(JSON.stringify(bad).includes('hunter22'));
    t.true(bad[0]!.received.includes('***'));
  },
);

anyCtxTest(
  'flinkTableOptions: JDBC options; an OFFSET window maps onto the inclusive scan.partition bounds',
  async (t) => {
    const options = {
      url: 'postgres://alice:p%40ss@db.example:6543/shop?sslmode=require',
      table: 'public.Orders',
      keyColumn: 'id',
      timeColumn: 'created_at',
      batchSize: 500,
      scanPartitions: 4,
    };
    const base = {
      connector: 'jdbc',
      url: 'jdbc:postgresql://db.example:6543/shop?sslmode=require',
      'table-name': '"public"."Orders"',
      username: 'alice',
      password: 'p@ss',
      'scan.fetch-size': '500',
    };
    t.deepEqual(
      await runner.call(loaded, 'flinkTableOptions', {
        role: 'source',
        options: await fill(options, offset(100, 200)),
      }),
      {
        ...base,
        'scan.partition.column': '"id"',
        'scan.partition.num': '4',
        'scan.partition.lower-bound': '100',
        'scan.partition.upper-bound': '199',
      },
    );
    // Fewer keys than partitions: one partition per key.
    t.is(
      (await runner.call(loaded, 'flinkTableOptions', { role: 'source', options: await fill(options, offset(7, 9)) }))[
        'scan.partition.num'
      ],
      '2',
    );
    // TIME: Flink's JDBC source has no time filter; the runner adds the WHERE clause (docs/connectors/postgres.md).
    t.deepEqual(
      await runner.call(loaded, 'flinkTableOptions', {
        role: 'source',
        options: await fill(options, time(T0, T0 + 1000)),
      }),
      base,
    );
    t.deepEqual(
      await runner.call(loaded, 'flinkTableOptions', {
        role: 'sink',
        options: { url: 'postgresql://h/db', table: 'out', mode: 'upsert', keyColumns: ['id'] },
      }),
      {
        connector: 'jdbc',
        url: 'jdbc:postgresql://h:5432/db',
        'table-name': '"out"',
        'sink.buffer-flush.max-rows': '1000',
      },
    );
    const empty = failure(
      await t.throwsAsync(
        runner.call(loaded, 'flinkTableOptions', { role: 'source', options: await fill(options, offset(5, 5)) }),
      ),
    );
    t.is(empty.code, 'FAILED_PRECONDITION');
  },
);

// ---------------------------------------------------------------------------------------- reading

test('a TIME window reads exactly [lower, upper): the row at lower in, the row at upper out, sub-ms edges right', async (t) => {
  const rows = [
    ...tenRows,
    { id: 11, ts: T0 + 6999.5, name: 'just before upper' },
    { id: 12, ts: T0 + 2999.5, name: 'just before lower' },
  ];
  const table = await sourceTable(t.context.admin, [], 6);
  for (const r of rows) {
    // Microsecond timestamps, written as text so that nothing rounds them.
    const micros = BigInt(Math.round(r.ts * 1000));
    await t.context.admin.query(
      `INSERT INTO ${qi(table)} VALUES ($1, to_timestamp(0) + $2::bigint * interval '1 microsecond', $3)`,
      [r.id, micros.toString(), r.name],
    );
  }
  const { batches } = await read({ url: PG_URL, table, keyColumn: 'id', timeColumn: 'ts' }, time(T0 + 3000, T0 + 7000));
  const got = batches.flat();
  t.deepEqual(ids(got), [3, 4, 5, 6, 11]);
  t.deepEqual(got[0], { id: 3, ts: new Date(T0 + 3000).toISOString().replace('.000Z', 'Z'), name: 'n3' });
  t.is(got[4]!.ts, '2026-03-01T12:00:06.9995Z', 'every sub-millisecond digit is kept');
  t.deepEqual(
    (await read({ url: PG_URL, table, keyColumn: 'id', timeColumn: 'ts' }, time(T0 + 3000, T0 + 3000))).batches,
    [],
    'an empty window yields nothing',
  );
});

test('TIME window bounds past the year 9999 are written as PostgreSQL reads them, and limit the window', async (t) => {
  // 10000-01-01T00:00:00Z: JavaScript's ISO text for it is +010000-01-01T00:00:00.000Z.
  const year10000 = 253402300800000;
  const day = 86_400_000;
  const table = await sourceTable(t.context.admin, tenRows);
  await t.context.admin.query(
    `INSERT INTO ${qi(table)} VALUES (11, '10000-06-01 00:00:00+00', 'y10000'), (12, '20000-01-01 00:00:00+00', 'y20000')`,
  );
  const options = { url: PG_URL, table, keyColumn: 'id', timeColumn: 'ts' };
  t.deepEqual(ids((await read(options, time(T0 + 8000, year10000))).batches.flat()), [8, 9, 10]);
  const later = (await read(options, time(year10000, year10000 + 365 * day))).batches.flat();
  t.deepEqual(ids(later), [11], 'a window in the year 10000 reads its row, not the later one');
});

test('an OFFSET window reads keys [lower, upper); positions report the last key', async (t) => {
  const table = await sourceTable(t.context.admin, tenRows);
  const options = { url: PG_URL, table, keyColumn: 'id' };
  const { batches, positions } = await read(options, offset(3, 7));
  t.deepEqual(ids(batches.flat()), [3, 4, 5, 6]);
  t.deepEqual(positions, { key: '6', rows: '4' });
  t.deepEqual((await read(options, offset(5, 5))).batches, []);
  t.deepEqual((await read(options, offset(11, 20))).batches, []);
  // Bounds beyond bigint: every key is inside.
  t.deepEqual(
    ids((await read(options, offset('-99999999999999999999', '99999999999999999999'))).batches.flat()),
    tenRows.map((r) => r.id),
  );

  // Keys past 2^53 page exactly (they come as strings) up to the largest bigint.
  const big = uniqueName('pg_big');
  track(qi(big));
  await t.context.admin.query(`CREATE TABLE ${qi(big)} (id bigint PRIMARY KEY, name text)`);
  const keys = [
    '9007199254740992',
    '9007199254740993',
    '9223372036854775805',
    '9223372036854775806',
    '9223372036854775807',
  ];
  for (const k of keys) await t.context.admin.query(`INSERT INTO ${qi(big)} VALUES ($1, $2)`, [k, `k${k}`]);
  const bigRead = await read(
    { url: PG_URL, table: big, keyColumn: 'id', batchSize: 1 },
    offset('9007199254740993', '9223372036854775808'),
  );
  t.deepEqual(
    bigRead.batches.flat().map((r) => String(r.id)),
    keys.slice(1),
  );
  t.deepEqual(
    bigRead.batches.flat()[0],
    { id: '9007199254740993', name: 'k9007199254740993' },
    'an unsafe bigint stays an exact string',
  );
  t.is(bigRead.positions.key, '9223372036854775807');
});

test('pages of batchSize rows: every row once, in key order, and the key left out when columns omit it', async (t) => {
  const shuffled = [7, 2, 10, 1, 5, 9, 3, 8, 4, 6].map((id) => tenRows[id - 1]!);
  const table = await sourceTable(t.context.admin, shuffled);
  const options = { url: PG_URL, table, keyColumn: 'id', timeColumn: 'ts', batchSize: 3 };
  for (const b of [offset(1, 11), time(T0, T0 + 60_000)]) {
    const { batches, positions } = await read(options, b);
    t.deepEqual(
      batches.map((x) => x.length),
      [3, 3, 3, 1],
      b.boundaryType,
    );
    t.deepEqual(ids(batches.flat()), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], b.boundaryType);
    t.is(positions.key, '10');
  }
  const named = await read({ ...options, columns: ['name'] }, offset(1, 11));
  t.deepEqual(
    named.batches.flat(),
    tenRows.map((r) => ({ name: r.name })),
  );
  t.deepEqual(
    named.batches.map((x) => x.length),
    [3, 3, 3, 1],
  );
});

test('a read sees one snapshot: rows changed by another connection after the reader opened are not seen', async (t) => {
  const table = await sourceTable(t.context.admin, tenRows);
  const admin = t.context.admin;
  const boundaries = offset(1, 100);
  const bounded = await fill({ url: PG_URL, table, keyColumn: 'id', batchSize: 3 }, boundaries);
  const reader = await runner.call(loaded, 'openReader', { options: bounded, boundaries });
  try {
    await admin.query(`INSERT INTO ${qi(table)} VALUES (11, now(), 'before the first page')`);
    const got: Row[] = [];
    for await (const batch of reader.batches()) {
      if (got.length === 0) {
        await admin.query(`INSERT INTO ${qi(table)} VALUES (12, now(), 'between pages')`);
        await admin.query(`DELETE FROM ${qi(table)} WHERE id = 9`);
        await admin.query(`UPDATE ${qi(table)} SET name = 'changed' WHERE id = 10`);
      }
      got.push(...batch);
    }
    t.deepEqual(
      got.map((r) => [r.id, r.name]),
      tenRows.map((r) => [r.id, r.name]),
    );
  } finally {
    await reader.close();
  }
});

test('hostile table, column names and values round-trip through source and sink; nothing else is touched', async (t) => {
  const admin = t.context.admin;
  const canary = uniqueName('pg_canary');
  track(qi(canary));
  await admin.query(`CREATE TABLE ${qi(canary)} (x int)`);
  const schema = uniqueName('sl_schema');
  await admin.query(`CREATE SCHEMA ${qi(schema)}`);
  schemas.push(qi(schema));
  const source = `we"ird; DROP TABLE ${canary};-- ${uniqueName('t')}`;
  track(qi(source));
  const key = 'k"ey';
  const ts = 't s';
  const col = `na"me; DROP TABLE ${canary};--`;
  await admin.query(
    `CREATE TABLE ${qi(source)} (${qi(key)} int PRIMARY KEY, ${qi(ts)} timestamptz(3), ${qi(col)} text)`,
  );
  const values = [`'; DROP TABLE ${canary};--`, '日本語 🎉 ünïcødé', 'back\\slash \\\' "dq" `bt`', '$1 $2 ?', ''];
  for (const [i, v] of values.entries())
    await admin.query(`INSERT INTO ${qi(source)} VALUES ($1, $2, $3)`, [i + 1, new Date(T0 + i).toISOString(), v]);

  const { batches } = await read(
    { url: PG_URL, table: source, keyColumn: key, timeColumn: ts, batchSize: 2 },
    time(T0, T0 + 1000),
  );
  const rows = batches.flat();
  t.deepEqual(
    rows.map((r) => r[col]),
    values,
  );
  t.deepEqual(
    rows.map((r) => r[key]),
    [1, 2, 3, 4, 5],
  );

  // The sink: a schema-qualified table whose name has a dot in it, a hostile window column.
  await admin.query(
    `CREATE TABLE ${qi(schema)}.${qi('si.nk')} (${qi(key)} int, ${qi(ts)} timestamptz(3), ${qi(col)} text, ${qi('win"dow')} text)`,
  );
  const sinkOptions = { url: PG_URL, table: `${schema}."si.nk"`, windowColumn: 'win"dow' };
  await writeWindow(sinkOptions, windowRef(time(T0, T0 + 1000)), rows);
  const back = await admin.query(`SELECT * FROM ${qi(schema)}.${qi('si.nk')} ORDER BY ${qi(key)}`);
  t.deepEqual(
    back.rows.map((r) => r[col]),
    values,
  );
  t.deepEqual(
    back.rows.map((r) => (r[ts] as Date).getTime()),
    values.map((_, i) => T0 + i),
  );
  t.true(back.rows.every((r) => r['win"dow'] === `g1/s1/TIME:${T0}:${T0 + 1000}`));
  t.is(
    (await admin.query('SELECT to_regclass($1) AS c', [qi(canary)])).rows[0].c !== null,
    true,
    'the canary table still exists',
  );
  t.is((await admin.query(`SELECT count(*)::int AS n FROM ${qi(source)}`)).rows[0].n, values.length);
});

test('a table or column that does not exist fails the reader as FAILED_PRECONDITION', async (t) => {
  const table = await sourceTable(t.context.admin, tenRows);
  const missing = failure(
    await t.throwsAsync(read({ url: PG_URL, table: uniqueName('nope'), keyColumn: 'id' }, offset(1, 2))),
  );
  t.is(missing.code, 'FAILED_PRECONDITION');
  t.regex(missing.message, /does not exist/);
  const column = failure(
    await t.throwsAsync(read({ url: PG_URL, table, keyColumn: 'id', columns: ['nope'] }, offset(1, 2))),
  );
  t.is(column.code, 'FAILED_PRECONDITION');
});

test('an unreachable database is UNAVAILABLE for reader and writer, and the password is never in the message', async (t) => {
  const url = 'postgres://sluice:s3cret-pw@127.0.0.1:1/test';
  const reader = failure(
    await t.throwsAsync(read({ url, table: 't', keyColumn: 'id', connectTimeoutMs: 2000 }, offset(1, 2))),
  );
  t.is(reader.code, 'UNAVAILABLE');
  t.false(reader.message.includes('s3cret-pw'));
  // One message however the connection failed (docs/security.md): the address, never the URL or the cause.
  t.true(reader.message.endsWith('postgres: could not connect to 127.0.0.1:1'), reader.message);
  const writer = failure(
    await t.throwsAsync(openWriter({ url, table: 't', connectTimeoutMs: 2000 }, windowRef(offset(1, 2)))),
  );
  t.is(writer.code, 'UNAVAILABLE');
  t.false(writer.message.includes('s3cret-pw'));
});

// ---------------------------------------------------------------------------------------- writing

async function sinkTable(admin: pg.Pool, extra = ''): Promise<string> {
  const name = uniqueName('pg_sink');
  track(qi(name));
  await admin.query(`CREATE TABLE ${qi(name)} (id bigint, ts timestamptz(3), name text, sluice_window text${extra})`);
  return name;
}

async function tableRows(admin: pg.Pool, table: string): Promise<[number, string, string][]> {
  const res = await admin.query(`SELECT id, name, sluice_window FROM ${qi(table)} ORDER BY sluice_window, id`);
  return res.rows.map((r) => [Number(r.id), r.name, r.sluice_window]);
}

test('replace-window: a re-run replaces its window rows only; nothing shows before commit', async (t) => {
  const admin = t.context.admin;
  const table = await sinkTable(admin);
  const options = { url: PG_URL, table };
  const a = windowRef(time(T0, T0 + 60_000), 'job-a');
  const b = windowRef(time(T0 + 60_000, T0 + 120_000), 'job-b');
  const idA = `g1/s1/TIME:${T0}:${T0 + 60_000}`;
  const idB = `g1/s1/TIME:${T0 + 60_000}:${T0 + 120_000}`;
  await writeWindow(
    options,
    a,
    [1, 2, 3].map((id) => ({ id, ts: T0 + id, name: `a${id}` })),
  );
  await writeWindow(
    options,
    b,
    [10, 11].map((id) => ({ id, ts: T0 + 60_000 + id, name: `b${id}` })),
  );
  t.deepEqual(await tableRows(admin, table), [
    [1, 'a1', idA],
    [2, 'a2', idA],
    [3, 'a3', idA],
    [10, 'b10', idB],
    [11, 'b11', idB],
  ]);

  const rerun = await openWriter(options, { ...a, jobId: 'job-a-rerun' });
  await rerun.write([{ id: 4, ts: T0 + 4, name: 'a4' }]);
  await rerun.write([{ id: 5, ts: T0 + 5, name: 'a5' }]);
  t.is(
    (await tableRows(admin, table)).length,
    5,
    'before commit the earlier rows are still there and the new ones hidden',
  );
  await rerun.commit();
  t.deepEqual(await tableRows(admin, table), [
    [4, 'a4', idA],
    [5, 'a5', idA],
    [10, 'b10', idB],
    [11, 'b11', idB],
  ]);
  const ts = await admin.query(`SELECT ts FROM ${qi(table)} WHERE id = 4`);
  t.is((ts.rows[0].ts as Date).getTime(), T0 + 4, 'epoch ms went into the timestamptz column as that instant');

  // A re-run that writes nothing still clears the window.
  const emptyRun = await openWriter(options, { ...b, jobId: 'job-b-rerun' });
  await emptyRun.commit();
  t.deepEqual(await tableRows(admin, table), [
    [4, 'a4', idA],
    [5, 'a5', idA],
  ]);
});

test('two concurrent runs of one window: the second waits for the first, and the later commit wins', async (t) => {
  const admin = t.context.admin;
  const table = await sinkTable(admin);
  const options = { url: PG_URL, table };
  const w = windowRef(time(T0, T0 + 60_000));
  const first = await openWriter(options, { ...w, jobId: 'run-1' });
  const second = await openWriter(options, { ...w, jobId: 'run-2' });
  await first.write([{ id: 1, name: 'first' }]);
  let secondWrote = false;
  const pending = second.write([{ id: 2, name: 'second' }]).then(() => (secondWrote = true));
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.false(secondWrote, 'the second run waits while the first is open');
  await first.commit();
  await pending;
  await second.commit();
  t.deepEqual(
    (await tableRows(admin, table)).map((r) => r[1]),
    ['second'],
    "the first run's rows were replaced, not doubled",
  );
  // Another window of the same table is not held up by an open run.
  const open = await openWriter(options, windowRef(time(T0, T0 + 1)));
  await open.write([{ id: 3, name: 'open' }]);
  await writeWindow(options, windowRef(time(T0 + 1, T0 + 2)), [{ id: 4, name: 'other' }]);
  await open.abort(new Error('done'));
  t.deepEqual((await tableRows(admin, table)).map((r) => r[1]).sort(), ['other', 'second']);
});

test('abort leaves nothing, also after a failed write; a failed writer cannot commit', async (t) => {
  const admin = t.context.admin;
  const table = await sinkTable(admin);
  const options = { url: PG_URL, table, batchSize: 2 };
  await writeWindow(
    options,
    windowRef(offset(1, 9)),
    [1, 2, 3, 4, 5].map((id) => ({ id, name: `x${id}` })),
    'abort',
  );
  t.deepEqual(await tableRows(admin, table), []);

  const writer = await openWriter(options, windowRef(offset(1, 9)));
  await writer.write([{ id: 1, name: 'ok' }]);
  const bad = failure(await t.throwsAsync(writer.write([{ id: 2, nope: 'no such column' }])));
  t.is(bad.code, 'FAILED_PRECONDITION');
  t.regex(bad.message, /no column "nope"/);
  const after = failure(await t.throwsAsync(writer.write([{ id: 3, name: 'x' }])));
  t.is(after.code, 'FAILED_PRECONDITION', 'no more writes after a failed one');
  const commit = failure(await t.throwsAsync(writer.commit()));
  t.is(commit.code, 'FAILED_PRECONDITION');
  await writer.abort(new Error('after failure'));
  await writer.abort(new Error('twice'));
  t.deepEqual(await tableRows(admin, table), []);

  // A value the database refuses (text into bigint) fails the window: rows stream by COPY, so the
  // refusal shows at a later write or at the latest at commit, which then commits nothing.
  const refused = await openWriter(options, windowRef(offset(1, 9)));
  const outcome = await refused
    .write([{ id: 'not a number', name: 'x' }])
    .then(() => refused.commit())
    .then(
      () => undefined,
      (err: unknown) => failure(err),
    );
  t.is(outcome?.code, 'FAILED_PRECONDITION');
  t.regex(
    outcome?.message ?? '',
    /\(column id, row 1 of the window \(row 1 of the batch\)\)$/,
    'the refusal names the column and the row',
  );
  await refused.abort(new Error('refused'));
  t.deepEqual(await tableRows(admin, table), []);
});

test('upsert: inserts new keys, updates existing ones, the last row of a key in a batch wins', async (t) => {
  const admin = t.context.admin;
  const name = uniqueName('pg_upsert');
  track(qi(name));
  await admin.query(`CREATE TABLE ${qi(name)} (id int PRIMARY KEY, name text, ts timestamptz(3))`);
  const options = { url: PG_URL, table: name, mode: 'upsert', keyColumns: ['id'] };
  await writeWindow(options, windowRef(offset(1, 3)), [
    { id: 1, name: 'one', ts: T0 },
    { id: 2, name: 'two', ts: T0 },
  ]);
  await writeWindow(options, windowRef(offset(2, 4)), [
    { id: 2, name: 'TWO', ts: T0 + 1 },
    { id: 3, name: 'three', ts: T0 },
    { id: 3, name: 'THREE', ts: T0 + 2 },
  ]);
  await writeWindow(options, windowRef(offset(5, 6)), [{ id: 4, name: 'aborted', ts: T0 }], 'abort');
  const res = await admin.query(`SELECT id, name, ts FROM ${qi(name)} ORDER BY id`);
  t.deepEqual(
    res.rows.map((r) => [r.id, r.name, (r.ts as Date).getTime()]),
    [
      [1, 'one', T0],
      [2, 'TWO', T0 + 1],
      [3, 'THREE', T0 + 2],
    ],
  );
});

test('createTable makes a missing table from the first batch; without it a missing table or window column fails', async (t) => {
  const admin = t.context.admin;
  const name = uniqueName('pg_created');
  track(qi(name));
  const missing = failure(await t.throwsAsync(openWriter({ url: PG_URL, table: name }, windowRef(offset(1, 2)))));
  t.is(missing.code, 'FAILED_PRECONDITION');
  t.regex(missing.message, /does not exist/);

  await writeWindow({ url: PG_URL, table: name, createTable: true }, windowRef(offset(1, 3)), [
    { id: 1, name: 'a', at: new Date(T0), score: 1.5, ok: true, doc: { k: [1] } },
    { id: 2, name: null, at: null, score: 2, ok: false, doc: null },
  ]);
  const res = await admin.query(`SELECT id, name, at, score, ok, doc, sluice_window FROM ${qi(name)} ORDER BY id`);
  t.deepEqual(
    res.rows.map((r) => ({ ...r, at: r.at === null ? null : (r.at as Date).getTime() })),
    [
      { id: '1', name: 'a', at: T0, score: 1.5, ok: true, doc: { k: [1] }, sluice_window: 'g1/s1/OFFSET:1:3' },
      { id: '2', name: null, at: null, score: 2, ok: false, doc: null, sluice_window: 'g1/s1/OFFSET:1:3' },
    ],
  );
  // Aborted creation leaves no table.
  const aborted = uniqueName('pg_not_created');
  await writeWindow({ url: PG_URL, table: aborted, createTable: true }, windowRef(offset(1, 2)), [{ id: 1 }], 'abort');
  t.is((await admin.query('SELECT to_regclass($1) AS c', [qi(aborted)])).rows[0].c, null);

  const noWindow = uniqueName('pg_nowin');
  track(qi(noWindow));
  await admin.query(`CREATE TABLE ${qi(noWindow)} (id int)`);
  const err = failure(await t.throwsAsync(openWriter({ url: PG_URL, table: noWindow }, windowRef(offset(1, 2)))));
  t.is(err.code, 'FAILED_PRECONDITION');
  t.regex(err.message, /window column/);
});

test('the conformance harness seeds, bounds and reads back what the connector reads and writes', async (t) => {
  const records = Array.from({ length: 12 }, (_, i) => ({ id: i + 1, ts: T0 + i * 1000, name: `r${i + 1}` }));
  const seeded = await harness.source!.seed(records);
  for (const type of ['TIME', 'OFFSET'] as const) {
    const b = (await seeded.boundaries(type, T0 + 3000, T0 + 8000))!;
    t.deepEqual(
      (await read(seeded.options, b)).batches.flat().map((r) => harness.source!.idOf(r)),
      [4, 5, 6, 7, 8],
      type,
    );
  }
  const options = await harness.sink!.options();
  const w = windowRef(time(T0, T0 + 60_000));
  await writeWindow(
    options,
    w,
    records.slice(0, 5).map((r) => ({ ...r })),
  );
  t.deepEqual(await harness.sink!.readBack(options, w), records.slice(0, 5));
});
