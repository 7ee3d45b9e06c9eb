/**
 * The mysql connector (MySQL and MariaDB), loaded as the services load it and called through the hook
 * runner. The data-free checks always run; the rest need MariaDB/MySQL (MYSQL_URL) and skip without it
 * (fail under SLUICE_REQUIRE_INTEGRATION=1). Every test works on tables of its own.
 */
import anyTest, { type TestFn } from 'ava';
import mysql from 'mysql2/promise';
import type { Boundaries, ConnectorPlugin, Options, Row, WindowRef, WindowWriter } from 'sluice/sdk';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import harness from '../conformance/harnesses/mysql.js';
import { MYSQL_URL, probeMysql, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';

interface Ctx {
  /** Connections of the test's own, to set up and inspect tables behind the connector's back. */
  admin: mysql.Pool;
}

const anyCtxTest = anyTest as TestFn<Ctx>;
const test = gate(anyCtxTest, await probeMysql());

const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
const loaded = plugins.connectors.get('mysql') as LoadedPlugin<ConnectorPlugin>;
const runner = new HookRunner({ timeoutMs: 15_000 });

const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);
const qi = (name: string) => `\`${name.replaceAll('`', '``')}\``;
/** `YYYY-MM-DD HH:MM:SS.sss` in UTC, as DATETIME takes it. */
const dateTime = (ms: number) => new Date(ms).toISOString().slice(0, 23).replace('T', ' ');
const created: string[] = [];

interface Failure {
  code: string;
  message: string;
  details: { field?: string };
}
const failure = (err: unknown) => err as Failure;

test.before(async (t) => {
  t.context.admin = mysql.createPool({
    uri: MYSQL_URL,
    connectionLimit: 8,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
  await t.context.admin.query('SELECT 1');
});

test.after.always(async (t) => {
  const admin = t.context.admin;
  if (!admin) return;
  for (const name of created) await admin.query(`DROP TABLE IF EXISTS ${name}`).catch(() => {});
  await admin.end();
  await harness.cleanup();
});

/** A fresh table name (already quoted), dropped after the file. */
function track(quoted: string): string {
  created.push(quoted);
  return quoted;
}

async function sourceTable(
  admin: mysql.Pool,
  rows: readonly { id: number; ts: number; name: string }[],
  precision = 3,
): Promise<string> {
  const name = uniqueName('my_src');
  track(qi(name));
  await admin.query(
    `CREATE TABLE ${qi(name)} (id BIGINT PRIMARY KEY, ts DATETIME(${precision}) NOT NULL, name TEXT NOT NULL) ENGINE=InnoDB`,
  );
  for (const r of rows)
    await admin.execute(`INSERT INTO ${qi(name)} (id, ts, name) VALUES (?, ?, ?)`, [r.id, dateTime(r.ts), r.name]);
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

async function query(admin: mysql.Pool, sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> {
  const [rows] = await admin.query<mysql.RowDataPacket[]>(sql, params);
  return rows;
}

// ------------------------------------------------------------------------------------- data-free checks

anyCtxTest('loads as a source and sink connector with TIME and OFFSET windows; every option has a description', (t) => {
  t.deepEqual(
    plugins.problems.filter((p) => p.pluginId === 'mysql'),
    [],
  );
  t.deepEqual(loaded.plugin.roles, ['source', 'sink']);
  t.deepEqual(loaded.plugin.boundaryTypes, ['TIME', 'OFFSET']);
  for (const schema of [loaded.plugin.sourceOptions, loaded.plugin.sinkOptions]) {
    for (const [name, prop] of Object.entries(schema?.properties ?? {})) t.truthy(prop.description, name);
  }
});

anyCtxTest('fillInBoundaries adds canonical bounds and defaults, and is deterministic', async (t) => {
  const options = { url: MYSQL_URL, table: 'test.events', keyColumn: 'id', timeColumn: 'ts' };
  const tb = await fill(options, time(1000, 2000));
  t.deepEqual(tb, {
    ...options,
    batchSize: 5000,
    connectTimeoutMs: 10_000,
    scanPartitions: 1,
    'scan.boundary-type': 'TIME',
    'scan.lower': '1000',
    'scan.upper': '2000',
  });
  t.deepEqual(await fill(options, time(1000, 2000)), tb);
  const ob = await fill(options, offset('-0', '18446744073709551616'));
  t.deepEqual([ob['scan.boundary-type'], ob['scan.lower'], ob['scan.upper']], ['OFFSET', '0', '18446744073709551616']);
});

anyCtxTest('bounds that do not parse are INVALID_ARGUMENT naming the field', async (t) => {
  const options = { url: MYSQL_URL, table: 't', keyColumn: 'id', timeColumn: 'ts' };
  const cases: [Boundaries, Options, string][] = [
    [time(NaN, 5), options, 'boundaries.lower_bound'],
    [{ boundaryType: 'TIME', lowerBound: '5', upperBound: ' 10' }, options, 'boundaries.upper_bound'],
    [time(10, 5), options, 'boundaries.upper_bound'],
    [offset('0x10', 5), options, 'boundaries.lower_bound'],
    [offset(1, ''), options, 'boundaries.upper_bound'],
    [offset(7, 3), options, 'boundaries.upper_bound'],
    [time(1, 2), { url: MYSQL_URL, table: 't', keyColumn: 'id' }, 'options.timeColumn'],
  ];
  for (const [boundaries, opts, field] of cases) {
    const err = failure(await t.throwsAsync(fill(opts, boundaries)));
    t.is(err.code, 'INVALID_ARGUMENT', JSON.stringify(boundaries));
    t.is(err.details.field, field, JSON.stringify(boundaries));
  }
});

anyCtxTest('validate reports bad table names, upsert without keys and bad URLs, without the password', async (t) => {
  const v = (role: 'source' | 'sink', options: Options) => runner.call(loaded, 'validate', { role, options });
  t.deepEqual(await v('source', { url: MYSQL_URL, table: 'test.`we.ird`', keyColumn: 'id' }), []);
  t.deepEqual(await v('sink', { url: MYSQL_URL, table: 'out', mode: 'upsert', keyColumns: ['id'] }), []);
  const paths = async (role: 'source' | 'sink', options: Options) => (await v(role, options)).map((e) => e.path);
  t.deepEqual(await paths('source', { url: MYSQL_URL, table: 'a.', keyColumn: 'id' }), ['options.table']);
  t.deepEqual(await paths('source', { url: MYSQL_URL, table: '`a`b', keyColumn: 'id' }), ['options.table']);
  t.deepEqual(await paths('sink', { url: MYSQL_URL, table: 't', mode: 'upsert', keyColumns: [] }), [
    'options.keyColumns',
  ]);
  t.deepEqual(
    await paths('sink', { url: MYSQL_URL, table: 't', mode: 'upsert', keyColumns: ['id'], windowColumn: 'id' }),
    ['options.windowColumn'],
  );
  const bad = await v('sink', { url: 'postgres://bob:hunter22@h/db', table: 't' });
  t.deepEqual(
    bad.map((e) => e.path),
    ['options.url'],
  );
  t.false(JSON.stringify(bad).includes('hunter22'));
});

anyCtxTest(
  'flinkTableOptions: JDBC options with the database in the URL; an OFFSET window maps onto inclusive scan.partition bounds',
  async (t) => {
    const options = {
      url: 'mysql://alice:p%40ss@db.example:3307/shop?useSSL=true',
      table: 'analytics.Orders',
      keyColumn: 'id',
      timeColumn: 'created_at',
      batchSize: 500,
      scanPartitions: 3,
    };
    const base = {
      connector: 'jdbc',
      url: 'jdbc:mysql://db.example:3307/analytics?useSSL=true',
      'table-name': 'Orders',
      username: 'alice',
      password: 'p@ss',
      'scan.fetch-size': '500',
    };
    t.deepEqual(
      await runner.call(loaded, 'flinkTableOptions', {
        role: 'source',
        options: await fill(options, offset('18446744073709551000', '18446744073709551616')),
      }),
      {
        ...base,
        'scan.partition.column': 'id',
        'scan.partition.num': '3',
        'scan.partition.lower-bound': '18446744073709551000',
        'scan.partition.upper-bound': '18446744073709551615',
      },
    );
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
        options: { url: 'mysql://root@h/db', table: 'out', batchSize: 200 },
      }),
      {
        connector: 'jdbc',
        url: 'jdbc:mysql://h:3306/db',
        'table-name': 'out',
        username: 'root',
        'sink.buffer-flush.max-rows': '200',
      },
    );
  },
);

// ---------------------------------------------------------------------------------------- reading

test('a TIME window reads exactly [lower, upper): the row at lower in, the row at upper out, sub-ms edges right', async (t) => {
  const table = await sourceTable(t.context.admin, tenRows, 6);
  await t.context.admin.execute(
    `INSERT INTO ${qi(table)} VALUES (11, ?, 'just before upper'), (12, ?, 'just before lower')`,
    [`${dateTime(T0 + 6999)}500`, `${dateTime(T0 + 2999)}500`],
  );
  const options = { url: MYSQL_URL, table, keyColumn: 'id', timeColumn: 'ts' };
  const got = (await read(options, time(T0 + 3000, T0 + 7000))).batches.flat();
  t.deepEqual(ids(got), [3, 4, 5, 6, 11]);
  t.deepEqual({ ...got[0], ts: Date.parse(String(got[0]!.ts)) }, { id: 3, ts: T0 + 3000, name: 'n3' });
  t.is(got[4]!.ts, '2026-03-01T12:00:06.999500Z', 'every sub-millisecond digit is kept');
  t.deepEqual((await read(options, time(T0 + 3000, T0 + 3000))).batches, [], 'an empty window yields nothing');
  t.deepEqual(
    ids((await read(options, time(0, Number.MAX_SAFE_INTEGER))).batches.flat()),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    'an upper bound past year 9999 holds everything',
  );
});

test('an OFFSET window reads keys [lower, upper), exact beyond 2^53 on BIGINT UNSIGNED; positions report the last key', async (t) => {
  const table = await sourceTable(t.context.admin, tenRows);
  const options = { url: MYSQL_URL, table, keyColumn: 'id' };
  const { batches, positions } = await read(options, offset(3, 7));
  t.deepEqual(ids(batches.flat()), [3, 4, 5, 6]);
  t.deepEqual(positions, { key: '6', rows: '4' });
  t.deepEqual((await read(options, offset(5, 5))).batches, []);
  t.deepEqual(
    ids((await read(options, offset('-99999999999999999999', '99999999999999999999'))).batches.flat()),
    tenRows.map((r) => r.id),
  );

  const big = uniqueName('my_big');
  track(qi(big));
  await t.context.admin.query(`CREATE TABLE ${qi(big)} (id BIGINT UNSIGNED PRIMARY KEY, name TEXT)`);
  const keys = [
    '18446744073709551612',
    '18446744073709551613',
    '18446744073709551614',
    '18446744073709551615',
    '9007199254740993',
    '9007199254740992',
  ];
  for (const k of keys) await t.context.admin.query(`INSERT INTO ${qi(big)} VALUES (${k}, 'k${k}')`);
  const bigRead = await read(
    { url: MYSQL_URL, table: big, keyColumn: 'id', batchSize: 1 },
    offset('9007199254740993', '18446744073709551616'),
  );
  t.deepEqual(
    bigRead.batches.flat().map((r) => String(r.id)),
    [
      '9007199254740993',
      '18446744073709551612',
      '18446744073709551613',
      '18446744073709551614',
      '18446744073709551615',
    ],
  );
  t.is(bigRead.positions.key, '18446744073709551615');
});

test('pages of batchSize rows: every row once, in key order, and the key left out when columns omit it', async (t) => {
  const shuffled = [7, 2, 10, 1, 5, 9, 3, 8, 4, 6].map((id) => tenRows[id - 1]!);
  const table = await sourceTable(t.context.admin, shuffled);
  const options = { url: MYSQL_URL, table, keyColumn: 'id', timeColumn: 'ts', batchSize: 3 };
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
});

test('FLOAT reads exactly with both read methods (not the 6 digits of its text), and a FLOAT to FLOAT copy keeps it', async (t) => {
  const admin = t.context.admin;
  const name = uniqueName('my_float');
  const table = track(qi(name));
  await admin.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, flt FLOAT, dbl DOUBLE) ENGINE=InnoDB`);
  // Values whose FLOAT text (6 significant digits) names another float: 123457000, 16777200, 1.23457.
  const floats = [123456792, 16777216, 1.2345678, -3.4028234e38, 1.4e-45, null];
  for (const [i, f] of floats.entries()) await admin.execute(`INSERT INTO ${table} VALUES (?, ?, 0.1)`, [i + 1, f]);
  const exact = [123456792, 16777216, 1.2345677614212036, -3.4028234663852886e38, 1.401298464324817e-45, null];

  const options = { url: MYSQL_URL, table: name, keyColumn: 'id', batchSize: 4 };
  const window = offset(1, floats.length + 1);
  const stream = (await read(options, window)).batches.flat();
  const keyset = (await read({ ...options, readMethod: 'keyset' }, window)).batches.flat();
  t.deepEqual(
    stream.map((r) => r.flt),
    exact,
  );
  t.deepEqual(stream, keyset);
  t.deepEqual(Object.keys(stream[0]!), ['id', 'flt', 'dbl']);
  // Listed columns, named in another case and without the key: the rows keep the names a plain select gives.
  const listed = (await read({ ...options, columns: ['FLT', 'dbl'] }, window)).batches.flat();
  t.deepEqual(
    listed,
    exact.map((flt) => ({ FLT: flt, dbl: 0.1 })),
  );

  const copy = uniqueName('my_float_copy');
  track(qi(copy));
  await admin.query(
    `CREATE TABLE ${qi(copy)} (id INT, flt FLOAT, dbl DOUBLE, sluice_window VARCHAR(768)) ENGINE=InnoDB`,
  );
  await writeWindow({ url: MYSQL_URL, table: copy }, windowRef(window), stream);
  const [same] = await query(
    admin,
    `SELECT COUNT(*) AS n, SUM(a.flt <=> b.flt) AS flt FROM ${table} a JOIN ${qi(copy)} b ON a.id = b.id`,
  );
  t.deepEqual([Number(same!.n), Number(same!.flt)], [floats.length, floats.length]);
});

test('a read sees one snapshot: rows changed by another connection after the reader opened are not seen', async (t) => {
  const table = await sourceTable(t.context.admin, tenRows);
  const admin = t.context.admin;
  const boundaries = offset(1, 100);
  const bounded = await fill({ url: MYSQL_URL, table, keyColumn: 'id', batchSize: 3 }, boundaries);
  const reader = await runner.call(loaded, 'openReader', { options: bounded, boundaries });
  try {
    await admin.query(`INSERT INTO ${qi(table)} VALUES (11, NOW(), 'before the first page')`);
    const got: Row[] = [];
    for await (const batch of reader.batches()) {
      if (got.length === 0) {
        await admin.query(`INSERT INTO ${qi(table)} VALUES (12, NOW(), 'between pages')`);
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
  const canary = uniqueName('c');
  track(qi(canary));
  await admin.query(`CREATE TABLE ${qi(canary)} (x INT)`);
  const source = `we\`ird; DROP TABLE ${canary};-- ${Math.random().toString(36).slice(2, 8)}`;
  track(qi(source));
  const key = 'k`ey';
  const ts = 't s';
  const col = `na\`me"; DROP TABLE ${canary};--`;
  await admin.query(
    `CREATE TABLE ${qi(source)} (${qi(key)} INT PRIMARY KEY, ${qi(ts)} DATETIME(3), ${qi(col)} TEXT) DEFAULT CHARSET=utf8mb4`,
  );
  const values = [`'; DROP TABLE ${canary};--`, '日本語 🎉 ünïcødé', 'back\\slash \\\' "dq" `bt`', '? ?? $1', ''];
  for (const [i, v] of values.entries())
    await admin.execute(`INSERT INTO ${qi(source)} VALUES (?, ?, ?)`, [i + 1, dateTime(T0 + i), v]);

  const rows = (
    await read({ url: MYSQL_URL, table: source, keyColumn: key, timeColumn: ts, batchSize: 2 }, time(T0, T0 + 1000))
  ).batches.flat();
  t.deepEqual(
    rows.map((r) => r[col]),
    values,
  );
  t.deepEqual(
    rows.map((r) => Date.parse(String(r[ts]))),
    values.map((_, i) => T0 + i),
  );

  // The sink: a database-qualified table whose name has a dot in it, a hostile window column.
  const sinkName = `si.nk ${Math.random().toString(36).slice(2, 8)}`;
  track(`${qi('test')}.${qi(sinkName)}`);
  await admin.query(
    `CREATE TABLE ${qi('test')}.${qi(sinkName)} (${qi(key)} INT, ${qi(ts)} DATETIME(3), ${qi(col)} TEXT, ${qi('win`dow')} VARCHAR(255)) DEFAULT CHARSET=utf8mb4`,
  );
  await writeWindow(
    { url: MYSQL_URL, table: `test.\`${sinkName}\``, windowColumn: 'win`dow' },
    windowRef(time(T0, T0 + 1000)),
    rows,
  );
  const back = await query(admin, `SELECT * FROM ${qi('test')}.${qi(sinkName)} ORDER BY ${qi(key)}`);
  t.deepEqual(
    back.map((r) => r[col]),
    values,
  );
  t.deepEqual(
    back.map((r) => r[ts]),
    values.map((_, i) => dateTime(T0 + i)),
  );
  t.true(back.every((r) => r['win`dow'] === `g1/s1/TIME:${T0}:${T0 + 1000}`));
  t.is(
    (
      await query(
        admin,
        'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
        [canary],
      )
    )[0]!.n,
    '1',
    'the canary table still exists',
  );
  t.is((await query(admin, `SELECT COUNT(*) AS n FROM ${qi(source)}`))[0]!.n, String(values.length));
});

test('a table or column that does not exist fails the reader as FAILED_PRECONDITION', async (t) => {
  const table = await sourceTable(t.context.admin, tenRows);
  const missing = failure(
    await t.throwsAsync(read({ url: MYSQL_URL, table: uniqueName('nope'), keyColumn: 'id' }, offset(1, 2))),
  );
  t.is(missing.code, 'FAILED_PRECONDITION');
  t.regex(missing.message, /doesn't exist/);
  const column = failure(
    await t.throwsAsync(read({ url: MYSQL_URL, table, keyColumn: 'id', columns: ['nope'] }, offset(1, 2))),
  );
  t.is(column.code, 'FAILED_PRECONDITION');
});

test('an unreachable database is UNAVAILABLE for reader and writer, and the password is never in the message', async (t) => {
  const url = 'mysql://sluice:s3cret-pw@127.0.0.1:1/test';
  const reader = failure(
    await t.throwsAsync(read({ url, table: 't', keyColumn: 'id', connectTimeoutMs: 2000 }, offset(1, 2))),
  );
  t.is(reader.code, 'UNAVAILABLE');
  t.false(reader.message.includes('s3cret-pw'));
  // One message however the connection failed (docs/security.md): the address, never the URL or the cause.
  t.true(reader.message.endsWith('mysql: could not connect to 127.0.0.1:1'), reader.message);
  const writer = failure(
    await t.throwsAsync(openWriter({ url, table: 't', connectTimeoutMs: 2000 }, windowRef(offset(1, 2)))),
  );
  t.is(writer.code, 'UNAVAILABLE');
  t.false(writer.message.includes('s3cret-pw'));
});

// ---------------------------------------------------------------------------------------- writing

async function sinkTable(admin: mysql.Pool): Promise<string> {
  const name = uniqueName('my_sink');
  track(qi(name));
  await admin.query(
    `CREATE TABLE ${qi(name)} (id BIGINT, ts DATETIME(3), name TEXT, sluice_window VARCHAR(768), INDEX (sluice_window)) ENGINE=InnoDB`,
  );
  return name;
}

async function tableRows(admin: mysql.Pool, table: string): Promise<[number, string, string][]> {
  const rows = await query(admin, `SELECT id, name, sluice_window FROM ${qi(table)} ORDER BY sluice_window, id`);
  return rows.map((r) => [Number(r.id), String(r.name), String(r.sluice_window)]);
}

test('a batch larger than max_allowed_packet goes in as several INSERTs instead of failing', async (t) => {
  const admin = t.context.admin;
  const name = uniqueName('my_wide');
  const table = track(qi(name));
  await admin.query(`CREATE TABLE ${table} (id BIGINT, body LONGTEXT, sluice_window VARCHAR(768)) ENGINE=InnoDB`);
  const [{ bytes }] = (await query(admin, 'SELECT @@max_allowed_packet AS bytes')) as [{ bytes: string }];
  // More megabyte rows than one packet can carry, in one batch that the sink's batchSize would put in one INSERT.
  const count = Math.floor(Number(bytes) / 2 ** 20) + 4;
  const body = 'x'.repeat(2 ** 20 - 1);
  await writeWindow(
    { url: MYSQL_URL, table: name },
    windowRef(time(T0, T0 + 1), 'job-wide'),
    Array.from({ length: count }, (_, i) => ({ id: i, body: `${i % 10}${body}` })),
  );
  const [row] = await query(admin, `SELECT COUNT(*) AS n, SUM(LENGTH(body)) AS len FROM ${table}`);
  t.is(Number(row!.n), count);
  t.is(Number(row!.len), count * 2 ** 20);
});

test('replace-window: a re-run replaces its window rows only; nothing shows before commit', async (t) => {
  const admin = t.context.admin;
  const table = await sinkTable(admin);
  const options = { url: MYSQL_URL, table };
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
  // Another window's writer is not blocked by the open re-run.
  await writeWindow(options, windowRef(time(T0 + 120_000, T0 + 180_000), 'job-c'), [
    { id: 20, ts: T0 + 120_000, name: 'c20' },
  ]);
  await rerun.commit();
  const idC = `g1/s1/TIME:${T0 + 120_000}:${T0 + 180_000}`;
  t.deepEqual(await tableRows(admin, table), [
    [4, 'a4', idA],
    [5, 'a5', idA],
    [10, 'b10', idB],
    [11, 'b11', idB],
    [20, 'c20', idC],
  ]);
  t.deepEqual(
    (await query(admin, `SELECT ts FROM ${qi(table)} WHERE id = 4`))[0]!.ts,
    dateTime(T0 + 4),
    'epoch ms went into the DATETIME column in UTC',
  );

  const emptyRun = await openWriter(options, { ...b, jobId: 'job-b-rerun' });
  await emptyRun.commit();
  t.deepEqual(
    (await tableRows(admin, table)).map((r) => r[0]),
    [4, 5, 20],
  );
});

test('two concurrent runs of one window: the second waits for the first, and the later commit wins', async (t) => {
  const admin = t.context.admin;
  const table = await sinkTable(admin);
  const options = { url: MYSQL_URL, table };
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
  const options = { url: MYSQL_URL, table, batchSize: 2 };
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
  t.is(failure(await t.throwsAsync(writer.commit())).code, 'FAILED_PRECONDITION');
  await writer.abort(new Error('after failure'));
  await writer.abort(new Error('twice'));
  t.deepEqual(await tableRows(admin, table), []);

  const refused = await openWriter(options, windowRef(offset(1, 9)));
  await refused.write([{ id: 1, name: 'fine' }]);
  t.is(failure(await t.throwsAsync(refused.write([{ id: 'not a number', name: 'x' }]))).code, 'FAILED_PRECONDITION');
  await refused.abort(new Error('refused'));
  t.deepEqual(await tableRows(admin, table), []);

  // A window id longer than the window column fails the write instead of being cut (the writer's
  // session is strict whatever the server's sql_mode), so a re-run can always find its rows.
  const narrow = uniqueName('my_narrow');
  track(qi(narrow));
  await admin.query(`CREATE TABLE ${qi(narrow)} (id INT, sluice_window VARCHAR(8))`);
  const cut = await openWriter({ url: MYSQL_URL, table: narrow }, windowRef(offset(1, 9)));
  t.is(failure(await t.throwsAsync(cut.write([{ id: 1 }]))).code, 'FAILED_PRECONDITION');
  await cut.abort(new Error('too long'));
  t.deepEqual(await query(admin, `SELECT * FROM ${qi(narrow)}`), []);
});

test('upsert: inserts new keys, updates existing ones, the last row of a key in a batch wins', async (t) => {
  const admin = t.context.admin;
  const name = uniqueName('my_upsert');
  track(qi(name));
  await admin.query(`CREATE TABLE ${qi(name)} (id INT PRIMARY KEY, name TEXT, ts DATETIME(3))`);
  const options = { url: MYSQL_URL, table: name, mode: 'upsert', keyColumns: ['id'] };
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
  const rows = await query(admin, `SELECT id, name, ts FROM ${qi(name)} ORDER BY id`);
  t.deepEqual(
    rows.map((r) => [r.id, r.name, r.ts]),
    [
      [1, 'one', dateTime(T0)],
      [2, 'TWO', dateTime(T0 + 1)],
      [3, 'THREE', dateTime(T0 + 2)],
    ],
  );
});

test('a JSON column takes booleans, numbers, objects and null as JSON values, and a string as JSON text', async (t) => {
  const admin = t.context.admin;
  const name = uniqueName('my_json');
  const table = track(qi(name));
  // On MariaDB, JSON is LONGTEXT with a json_valid check: information_schema says only LONGTEXT.
  await admin.query(`CREATE TABLE ${table} (id INT, doc JSON, sluice_window VARCHAR(768)) ENGINE=InnoDB`);
  const docs: [unknown, string | null][] = [
    [true, 'true'],
    [false, 'false'],
    [{ a: [1, true, null], b: 'x' }, '{"a": [1, true, null], "b": "x"}'],
    [[false], '[false]'],
    [12.5, '12.5'],
    [0.1, '0.1'],
    [12345678901234567890n, '12345678901234567890'],
    ['{"text": true}', '{"text": true}'],
    [null, null],
  ];
  await writeWindow(
    { url: MYSQL_URL, table: name },
    windowRef(offset(1, 2)),
    docs.map(([doc], i) => ({ id: i + 1, doc })),
  );
  for (const [i, [doc, text]] of docs.entries()) {
    const [row] = await query(
      admin,
      `SELECT CAST(doc AS CHAR) AS got, JSON_EQUALS(doc, ?) AS same FROM ${table} WHERE id = ?`,
      [text, i + 1],
    );
    if (text === null) t.is(row!.got, null);
    else t.is(Number(row!.same), 1, `${String(doc)}: stored ${String(row!.got)}`);
  }
  // Read back through the connector: the same JSON values (scalars as their JSON text).
  const read1 = (await read({ url: MYSQL_URL, table: name, keyColumn: 'id', columns: ['doc'] }, offset(1, 100))).batches
    .flat()
    .map((r) => (r.doc === null ? null : JSON.stringify(r.doc)));
  t.deepEqual(read1.slice(0, 2), ['true', 'false']);
  t.is(read1[6], '12345678901234567890');
});

test('createTable makes a missing table from the first batch; without it a missing table or window column fails', async (t) => {
  const admin = t.context.admin;
  const name = uniqueName('my_created');
  track(qi(name));
  const missing = failure(await t.throwsAsync(openWriter({ url: MYSQL_URL, table: name }, windowRef(offset(1, 2)))));
  t.is(missing.code, 'FAILED_PRECONDITION');
  t.regex(missing.message, /does not exist/);

  await writeWindow({ url: MYSQL_URL, table: name, createTable: true }, windowRef(offset(1, 3)), [
    { id: 1, name: 'a', at: new Date(T0), score: 1.5, ok: true },
    { id: 2, name: null, at: null, score: 2, ok: false },
  ]);
  const rows = await query(admin, `SELECT id, name, at, score, ok, sluice_window FROM ${qi(name)} ORDER BY id`);
  t.deepEqual(
    rows.map((r) => ({ ...r })),
    [
      { id: '1', name: 'a', at: `${dateTime(T0)}000`, score: 1.5, ok: 1, sluice_window: 'g1/s1/OFFSET:1:3' },
      { id: '2', name: null, at: null, score: 2, ok: 0, sluice_window: 'g1/s1/OFFSET:1:3' },
    ],
  );
  // DDL is not transactional in MySQL: an aborted first window leaves the table, empty.
  const aborted = uniqueName('my_aborted');
  track(qi(aborted));
  await writeWindow(
    { url: MYSQL_URL, table: aborted, createTable: true },
    windowRef(offset(1, 2)),
    [{ id: 1 }],
    'abort',
  );
  t.deepEqual(await query(admin, `SELECT * FROM ${qi(aborted)}`), []);

  const noWindow = uniqueName('my_nowin');
  track(qi(noWindow));
  await admin.query(`CREATE TABLE ${qi(noWindow)} (id INT)`);
  const err = failure(await t.throwsAsync(openWriter({ url: MYSQL_URL, table: noWindow }, windowRef(offset(1, 2)))));
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
