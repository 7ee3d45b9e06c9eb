/**
 * The column types createTable infers from a first batch (plugins/connectors/_sql/core.ts
 * inferColumnType): a type that holds every value seen exactly. The data-free checks always run; the
 * rest write through the PostgreSQL and MySQL connectors and skip without the database (fail under
 * SLUICE_REQUIRE_INTEGRATION=1). Every test works on tables of its own.
 */
import anyTest from 'ava';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Boundaries, ConnectorPlugin, Options, Row, WindowRef } from 'sluice/sdk';
import { type ColumnSpec, inferColumnType, type TypeNames } from '../../plugins/connectors/_sql/core.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { batchMapper } from '../../services/operator/domain/mapping.js';
import type { FieldMapping } from '../../services/operator/domain/model.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import { MYSQL_URL, PG_URL, probeMysql, probePostgres, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';

const pgUp = await probePostgres();
const mysqlUp = await probeMysql();
const pgTest = gate(anyTest, pgUp);
const mysqlTest = gate(anyTest, mysqlUp);
/** A copy from one database to the other: both must be there. */
const bothTest = gate(anyTest, pgUp.ok ? mysqlUp : pgUp);

const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
const runner = new HookRunner({ timeoutMs: 15_000 });
const connector = (id: string) => plugins.connectors.get(id) as LoadedPlugin<ConnectorPlugin>;

const T: TypeNames = {
  integer: 'INTEGER',
  float: 'FLOAT',
  decimal: 'DECIMAL',
  boolean: 'BOOLEAN',
  text: 'TEXT',
  keyText: 'KEYTEXT',
  timestamp: 'TIMESTAMP',
  binary: 'BINARY',
  keyBinary: 'KEYBINARY',
  json: 'JSON',
  window: 'WINDOW',
};
const spec = (values: unknown[], key = false, float = false): ColumnSpec => ({
  name: 'c',
  values,
  key,
  window: false,
  float,
});
const infer = (values: unknown[], key = false) => inferColumnType(spec(values, key), T);

/** 2^53 + 1: the first integer a double cannot hold, as a reader gives a 64-bit integer column's value. */
const WIDE = '9007199254740993';
const INT64_MAX = '9223372036854775807';
const BEYOND_INT64 = '9223372036854775808';

anyTest(
  'integers read as numbers and, beyond 2^53, as decimal text make an integer or decimal column, not a double',
  (t) => {
    t.is(infer([1, WIDE]), 'INTEGER');
    t.is(infer([WIDE, 1, null, `-${INT64_MAX}`]), 'INTEGER');
    t.is(infer([1, BEYOND_INT64]), 'DECIMAL');
    t.is(infer([2, 12345678901234567890n]), 'DECIMAL');
    t.is(infer([2, 3n]), 'INTEGER');
    // bigint alone: decimal as ever.
    t.is(infer([3n]), 'DECIMAL');
    // Exact integers beside a fraction: only text holds both.
    t.is(infer([1.5, WIDE]), 'TEXT');
    t.is(infer([1.5, WIDE], true), 'KEYTEXT');
  },
);

anyTest('numbers alone: integers make an integer column unless something says floating point; text stays text', (t) => {
  t.is(infer([1, 2, null]), 'INTEGER');
  t.is(infer([1, 2.5]), 'FLOAT');
  t.is(infer([2 ** 60]), 'FLOAT');
  // -0 exists only in floating point.
  t.is(infer([1, -0]), 'FLOAT');
  // Text, even of wide integers, or integer text a double holds (not how a reader gives a number).
  t.is(infer([WIDE]), 'TEXT');
  t.is(infer([1, '12']), 'FLOAT');
  t.is(infer([1, '0009007199254740993']), 'FLOAT');
  t.is(infer(['a', 1]), 'TEXT');
  t.is(infer([true, 1]), 'BOOLEAN');
  t.is(infer([null]), 'TEXT');
});

anyTest('a column a SQL reader marked floating point is a float column, whole numbers and nulls alone too', (t) => {
  const float = (values: unknown[]) => inferColumnType(spec(values, false, true), T);
  t.is(float([1, 2, null]), 'FLOAT');
  t.is(float([null]), 'FLOAT');
  t.is(float([]), 'FLOAT');
  t.is(float([1.5, Number.NaN]), 'FLOAT');
  // Not numbers after all (a mark the values contradict): typed from the values as ever.
  t.is(float(['a']), 'TEXT');
});

const windowRef = (jobId: string): WindowRef => ({
  groupId: 'g1',
  streamId: 's1',
  jobId,
  boundaries: { boundaryType: 'OFFSET', lowerBound: '1', upperBound: '3' },
});

async function writeWindow(id: string, options: Record<string, unknown>, rows: readonly Row[]): Promise<void> {
  const writer = await runner.call(connector(id), 'openWriter', { options, window: windowRef(`job-${rows.length}`) });
  try {
    await writer.write(rows);
    await writer.commit();
  } catch (err) {
    await writer.abort(err);
    throw err;
  }
}

/** A 64-bit integer column as the readers give it: numbers while exact, decimal text beyond 2^53. */
const int8Rows = [
  { id: 1, v: 1 },
  { id: 2, v: WIDE },
  { id: 3, v: `-${INT64_MAX}` },
];

pgTest(
  'postgres: createTable keeps int8 values read as numbers and text exact (bigint), and beyond 64 bits (numeric)',
  async (t) => {
    const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
    const name = uniqueName('pg_infer');
    const wide = uniqueName('pg_infer_wide');
    try {
      await writeWindow('postgres', { url: PG_URL, table: name, createTable: true }, int8Rows);
      const res = await admin.query(`SELECT v::text AS v, pg_typeof(v)::text AS type FROM ${name} ORDER BY id`);
      t.deepEqual(
        res.rows.map((r) => r.v),
        ['1', WIDE, `-${INT64_MAX}`],
      );
      t.is(res.rows[0].type, 'bigint');

      await writeWindow('postgres', { url: PG_URL, table: wide, createTable: true }, [
        { id: 1, v: 1 },
        { id: 2, v: BEYOND_INT64 },
      ]);
      const w = await admin.query(`SELECT v::text AS v, pg_typeof(v)::text AS type FROM ${wide} ORDER BY id`);
      t.deepEqual(
        w.rows.map((r) => [r.v, r.type]),
        [
          ['1', 'numeric'],
          [BEYOND_INT64, 'numeric'],
        ],
      );
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${name}`).catch(() => {});
      await admin.query(`DROP TABLE IF EXISTS ${wide}`).catch(() => {});
      await admin.end();
    }
  },
);

mysqlTest(
  'mysql: createTable keeps BIGINT values read as numbers and text exact, and refuses a later fraction for a whole-number column',
  async (t) => {
    const admin = await mysql.createConnection({ uri: MYSQL_URL, supportBigNumbers: true, bigNumberStrings: true });
    const name = uniqueName('my_infer');
    const whole = uniqueName('my_infer_whole');
    try {
      await writeWindow('mysql', { url: MYSQL_URL, table: name, createTable: true }, int8Rows);
      const [rows] = await admin.query<mysql.RowDataPacket[]>(`SELECT CAST(v AS CHAR) AS v FROM ${name} ORDER BY id`);
      t.deepEqual(
        rows.map((r) => r.v),
        ['1', WIDE, `-${INT64_MAX}`],
      );
      const [[column]] = await admin.query<mysql.RowDataPacket[]>(
        `SELECT DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'v'`,
        [name],
      );
      t.is(column!.type, 'bigint');

      // Rows not from a SQL reader say nothing of their source's types: whole numbers make BIGINT, and a
      // later 2.5 fails the write instead of going in as 2, as it does on PostgreSQL.
      const options = { url: MYSQL_URL, table: whole, createTable: true };
      await writeWindow('mysql', options, [
        { id: 1, x: 1 },
        { id: 2, x: 2 },
      ]);
      const err = await t.throwsAsync(writeWindow('mysql', options, [{ id: 3, x: 2.5 }]));
      t.is((err as unknown as { code: string }).code, 'FAILED_PRECONDITION');
      t.regex(
        err!.message,
        /column "x", row 1 of the window \(row 1 of the batch\): expected an integer .*, got 2\.5$/,
      );
      const [stored] = await admin.query<mysql.RowDataPacket[]>(`SELECT id, x FROM ${whole} ORDER BY id`);
      t.deepEqual(
        stored.map((r) => [Number(r.id), Number(r.x)]),
        [
          [1, 1],
          [2, 2],
        ],
      );
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${name}`).catch(() => {});
      await admin.query(`DROP TABLE IF EXISTS ${whole}`).catch(() => {});
      await admin.end();
    }
  },
);

// ------------------------------------------------------- a floating-point source column through a SQL reader

const ALL: Boundaries = { boundaryType: 'OFFSET', lowerBound: '0', upperBound: '1000' };

/** Copies the window from a SQL source to a sink that creates its table, as the embedded runner does (no mapping). */
/** Copies the whole window, through the runner's field mapping when `fields` are given (batchMapper). */
async function copyWindow(
  source: string,
  sourceOptions: Options,
  sink: string,
  sinkOptions: Options,
  fields: readonly FieldMapping[] = [],
): Promise<void> {
  const map = batchMapper(fields);
  const bounded = await runner.call(connector(source), 'fillInBoundaries', { options: sourceOptions, boundaries: ALL });
  const reader = await runner.call(connector(source), 'openReader', { options: bounded, boundaries: ALL });
  const writer = await runner.call(connector(sink), 'openWriter', {
    options: sinkOptions,
    window: { groupId: 'g', streamId: 's', jobId: 'j', boundaries: ALL },
  });
  try {
    for await (const batch of reader.batches()) await writer.write(map(batch));
    await writer.commit();
  } catch (err) {
    await writer.abort(err);
    throw err;
  } finally {
    await reader.close();
  }
}

/** Source rows: floating-point columns whose first batch (two rows) holds whole numbers only. */
const FLOAT_ROWS = '(1, 1, 1, 7), (2, 2, NULL, 8), (3, 2.5, 0.5, 9), (4, -0.125, 3, 10)';
const FLOAT_VALUES = [
  [1, 1, 1, 7],
  [2, 2, null, 8],
  [3, 2.5, 0.5, 9],
  [4, -0.125, 3, 10],
];

/** The created table's types of x, f and n (information_schema's data_type) and its rows. */
async function createdTable(
  sink: string,
  table: string,
  columns: readonly [string, string, string] = ['x', 'f', 'n'],
): Promise<{ types: string[]; rows: unknown[][] }> {
  const num = (v: unknown) => (v === null ? null : Number(v));
  const list = columns.map((c) => `'${c}'`).join(', ');
  const select = `SELECT id, ${columns.join(', ')} FROM ${table} ORDER BY id`;
  const values = (r: Record<string, unknown>) => [num(r.id), ...columns.map((c) => num(r[c]))];
  if (sink === 'postgres') {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      const types = await admin.query<{ t: string }>(
        `SELECT data_type AS t FROM information_schema.columns WHERE table_name = $1 AND column_name IN (${list}) ORDER BY ordinal_position`,
        [table],
      );
      const rows = await admin.query(select);
      return { types: types.rows.map((r) => r.t), rows: rows.rows.map(values) };
    } finally {
      await admin.end();
    }
  }
  const admin = await mysql.createConnection({ uri: MYSQL_URL });
  try {
    const [types] = await admin.query<mysql.RowDataPacket[]>(
      `SELECT DATA_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME IN (${list}) ORDER BY ORDINAL_POSITION`,
      [table],
    );
    const [rows] = await admin.query<mysql.RowDataPacket[]>(select);
    return { types: types.map((r) => String(r.t).toLowerCase()), rows: rows.map(values) };
  } finally {
    await admin.end();
  }
}

/** Runs one statement on the test database of `id` (postgres or mysql), on a connection of its own. */
async function execOn(id: string, sql: string): Promise<void> {
  if (id === 'postgres') {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await admin.query(sql);
    } finally {
      await admin.end();
    }
  } else {
    const admin = await mysql.createConnection({ uri: MYSQL_URL });
    try {
      await admin.query(sql);
    } finally {
      await admin.end();
    }
  }
}

async function dropTable(id: string, table: string): Promise<void> {
  await execOn(id, `DROP TABLE IF EXISTS ${table}`).catch(() => {});
}

const SINKS = [
  ['postgres', PG_URL, ['double precision', 'double precision', 'bigint']],
  ['mysql', MYSQL_URL, ['double', 'double', 'bigint']],
] as const;

/** The SQL sources whose floating-point columns createTable must keep floating point. */
const FLOAT_SOURCES = [
  {
    id: 'postgres',
    url: PG_URL,
    readMethods: ['copy', 'keyset'],
    columns: 'float8 and real',
    create: (t: string) => `CREATE TABLE ${t} (id bigint PRIMARY KEY, x float8, f real, n bigint)`,
  },
  {
    id: 'mysql',
    url: MYSQL_URL,
    readMethods: ['stream', 'keyset'],
    columns: 'DOUBLE and FLOAT',
    create: (t: string) => `CREATE TABLE ${t} (id BIGINT PRIMARY KEY, x DOUBLE, f FLOAT, n BIGINT) ENGINE=InnoDB`,
  },
] as const;

for (const source of FLOAT_SOURCES)
  for (const readMethod of source.readMethods)
    for (const [sink, sinkUrl, types] of SINKS) {
      (sink !== source.id ? bothTest : sink === 'postgres' ? pgTest : mysqlTest)(
        `${source.id} (${readMethod} read) → ${sink} createTable: ${source.columns} columns whose first batch is whole numbers are floating point`,
        async (t) => {
          const src = uniqueName(`${source.id === 'postgres' ? 'pg' : 'my'}_floatsrc`);
          const dst = uniqueName('float_dst');
          try {
            await execOn(source.id, source.create(src));
            await execOn(source.id, `INSERT INTO ${src} VALUES ${FLOAT_ROWS}`);
            await copyWindow(
              source.id,
              { url: source.url, table: src, keyColumn: 'id', readMethod, batchSize: 2 },
              sink,
              { url: sinkUrl, table: dst, createTable: true, batchSize: 2 },
            );
            const created = await createdTable(sink, dst);
            t.deepEqual(created.types, [...types], 'x and f floating point, n (an integer column) an integer');
            t.deepEqual(created.rows, FLOAT_VALUES);
          } finally {
            await dropTable(source.id, src);
            await dropTable(sink, dst);
          }
        },
      );
    }

/** A stream's field mapping: x renamed (y) and kept as it is, f cast to text, n cast to float. */
const FLOAT_MAPPING: FieldMapping[] = [
  { sourceField: 'id', targetField: '', cast: '' },
  { sourceField: 'x', targetField: 'y', cast: '' },
  { sourceField: 'f', targetField: '', cast: 'string' },
  { sourceField: 'n', targetField: '', cast: 'float' },
];

for (const source of FLOAT_SOURCES)
  for (const [sink, sinkUrl, types] of SINKS) {
    (sink !== source.id ? bothTest : sink === 'postgres' ? pgTest : mysqlTest)(
      `${source.id} → ${sink} createTable through a field mapping: a renamed float column and a float cast are floating point`,
      async (t) => {
        const src = uniqueName(`${source.id === 'postgres' ? 'pg' : 'my'}_floatmap`);
        const dst = uniqueName('floatmap_dst');
        try {
          await execOn(source.id, source.create(src));
          await execOn(source.id, `INSERT INTO ${src} VALUES ${FLOAT_ROWS}`);
          await copyWindow(
            source.id,
            { url: source.url, table: src, keyColumn: 'id', batchSize: 2 },
            sink,
            { url: sinkUrl, table: dst, createTable: true, batchSize: 2 },
            FLOAT_MAPPING,
          );
          const created = await createdTable(sink, dst, ['y', 'f', 'n']);
          t.deepEqual(created.types[0], types[0], 'y (x renamed) floating point');
          t.not(created.types[1], types[0], 'f cast to text is not a float column');
          t.deepEqual(created.types[2], types[0], 'n cast to float is floating point');
          t.deepEqual(
            created.rows.map(([id, y, , n]) => [id, y, n]),
            FLOAT_VALUES.map(([id, x, , n]) => [id, x, n]),
          );
        } finally {
          await dropTable(source.id, src);
          await dropTable(sink, dst);
        }
      },
    );
  }
