/**
 * The Flink runner's JDBC source columns are typed from the database (flinkColumnTypes of the postgres and
 * mysql connectors, read from information_schema), as flink-connector-jdbc's PostgresTypeMapper and
 * MySqlTypeMapper type them, not from Sluice's casts: a column declared STRING that the driver reads as an
 * Integer fails on Flink with a ClassCastException. Real PostgreSQL and MariaDB tables of many types, each in
 * a database of this file's own. No Flink cluster runs here: the test checks the generated DDL.
 */
import anyTest, { type TestFn } from 'ava';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Boundaries, ConnectorPlugin, Options } from 'sluice/sdk';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import type { FieldMapping, StreamSpec } from '../../services/operator/domain/model.js';
import type { JobSpec } from '../../services/operator/domain/runner.js';
import type { FlinkRunner } from '../../services/operator/runners/flink.js';
import { FlinkJobRunner } from '../../services/operator/runners/flink-adapter.js';
import { flinkStatements, sourceTimeBounds } from '../../services/operator/runners/flink-sql.js';
import { MYSQL_URL, PG_URL, probeMysql, probePostgres, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';

const pgTest = gate(anyTest as TestFn, await probePostgres());
const myTest = gate(anyTest as TestFn, await probeMysql());

const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
const runner = new HookRunner({ timeoutMs: 15_000 });
const connector = (id: string) => plugins.connectors.get(id) as LoadedPlugin<ConnectorPlugin>;

const PG_DB = uniqueName('sluice_flink_types');
const MY_DB = uniqueName('sluice_flink_types');
const withDb = (url: string, db: string) => {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
};

const H0 = Date.UTC(2026, 0, 1, 10);
const window: Boundaries = { boundaryType: 'TIME', lowerBound: String(H0), upperBound: String(H0 + 3_600_000) };
const field = (sourceField: string, cast: FieldMapping['cast'] = ''): FieldMapping => ({
  sourceField,
  targetField: '',
  cast,
});

/** The bounded options, the Flink column types and the statements of a JDBC source → Kafka stream. */
async function generate(id: string, options: Options, fields: readonly FieldMapping[]) {
  const plugin = connector(id);
  const bounded = await runner.call(plugin, 'fillInBoundaries', { options, boundaries: window });
  const bounds = sourceTimeBounds(bounded);
  const columns = [...new Set([...fields.map((f) => f.sourceField), ...(bounds ? [bounds.timeColumn] : [])])];
  const types = await runner.call(plugin, 'flinkColumnTypes', { options: bounded, columns });
  const stream: StreamSpec = {
    streamId: 's',
    source: { connectorId: id, options },
    sink: { connectorId: 'kafka', options: {} },
    fields,
  };
  const statements = flinkStatements({
    jobId: 'job-types',
    stream,
    boundaries: window,
    sourceTable: await runner.call(plugin, 'flinkTableOptions', { role: 'source', options: bounded }),
    sinkTable: { connector: 'kafka', topic: 't', 'properties.bootstrap.servers': 'k:9092', format: 'json' },
    ...(bounds ? { sourceBounds: bounds } : {}),
    sourceColumnTypes: types,
  });
  return { types, statements };
}

/** `name TYPE` pairs of a CREATE TABLE statement (a Postgres name carries its own double quotes: the dialect does not quote). */
function declared(createTable: string): Record<string, string> {
  const body = createTable.slice(createTable.indexOf('(') + 1, createTable.lastIndexOf(') WITH'));
  const out: Record<string, string> = {};
  for (const m of body.matchAll(/^\s*`((?:[^`]|``)+)` (.+?),?$/gm))
    out[m[1]!.replaceAll('``', '`').replace(/^"(.*)"$/, '$1')] = m[2]!;
  return out;
}

// ---------------------------------------------------------------------------------------------------- PostgreSQL

const PG_TYPES: readonly [string, string, string][] = [
  ['c_smallint', 'smallint', 'SMALLINT'],
  ['c_int', 'integer', 'INT'],
  ['c_serial', 'serial', 'INT'],
  ['c_bigint', 'bigint', 'BIGINT'],
  ['c_real', 'real', 'FLOAT'],
  ['c_double', 'double precision', 'DOUBLE'],
  ['c_numeric', 'numeric(12, 3)', 'DECIMAL(12, 3)'],
  ['c_numeric_any', 'numeric', 'DECIMAL(38, 18)'],
  ['c_bool', 'boolean', 'BOOLEAN'],
  ['c_char', 'char(5)', 'CHAR(5)'],
  ['c_varchar', 'varchar(40)', 'VARCHAR(40)'],
  ['c_varchar_any', 'varchar', 'STRING'],
  ['c_text', 'text', 'STRING'],
  ['c_bytea', 'bytea', 'BYTES'],
  ['c_date', 'date', 'DATE'],
  ['c_time', 'time(3)', 'TIME(3)'],
  ['c_ts', 'timestamp', 'TIMESTAMP(6)'],
  ['c_ts3', 'timestamp(3)', 'TIMESTAMP(3)'],
  ['c_tstz', 'timestamptz', 'TIMESTAMP_LTZ(6)'],
  ['c_uuid', 'uuid', 'VARCHAR(36)'],
  ['c_json', 'json', 'STRING'],
  ['c_jsonb', 'jsonb', 'STRING'],
  ['c_int_array', 'integer[]', 'ARRAY<INT>'],
  ['c_text_array', 'text[]', 'ARRAY<STRING>'],
  ['MixedCase', 'integer', 'INT'],
];

pgTest.before(async () => {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${PG_DB}`);
  await admin.end();
  const client = new pg.Client({ connectionString: withDb(PG_URL, PG_DB) });
  await client.connect();
  await client.query('CREATE SCHEMA sales');
  await client.query(
    `CREATE TABLE sales.orders (id bigint PRIMARY KEY, ${PG_TYPES.map(([c, t]) => `"${c}" ${t}`).join(', ')}, c_money money)`,
  );
  await client.end();
});

pgTest.after.always(async () => {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${PG_DB} WITH (FORCE)`);
  await admin.end();
});

const pgOptions = (): Options => ({
  url: withDb(PG_URL, PG_DB),
  table: 'sales.orders',
  keyColumn: 'id',
  timeColumn: 'c_tstz',
});

pgTest(
  'postgres: every column is declared with the Flink type of its database type, casts only in the SELECT',
  async (t) => {
    const fields = [
      ...PG_TYPES.map(([c]) => field(c)),
      { sourceField: 'c_int', targetField: 'c_int_text', cast: 'string' as const },
    ];
    const { types, statements } = await generate('postgres', pgOptions(), fields);
    t.deepEqual(types, Object.fromEntries(PG_TYPES.map(([c, , flink]) => [c, flink])));
    const source = declared(statements[3]!);
    for (const [column, , flink] of PG_TYPES) t.is(source[column], flink, column);
    // Not the casts' types: an integer mapped without a cast stays INT (no cast → STRING was a ClassCastException).
    t.is(source.c_int, 'INT');
    const insert = statements.at(-1)!;
    t.regex(insert, /CAST\(`"c_int"` AS STRING\)/);
    // The time column is timestamptz: the window compares instants.
    t.regex(
      insert,
      new RegExp(`\`"c_tstz"\` >= TO_TIMESTAMP_LTZ\\(${H0}, 3\\) AND \`"c_tstz"\` < TO_TIMESTAMP_LTZ\\(`),
    );
    // The sink columns without a cast have the source's types.
    t.is(declared(statements[4]!).c_numeric, 'DECIMAL(12, 3)');
  },
);

pgTest('postgres: a TIMESTAMP time column compares with UTC wall-time literals', async (t) => {
  const { statements } = await generate('postgres', { ...pgOptions(), timeColumn: 'c_ts3' }, [field('c_int')]);
  t.is(declared(statements[3]!).c_ts3, 'TIMESTAMP(3)');
  t.regex(statements.at(-1)!, /`"c_ts3"` >= TIMESTAMP '2026-01-01 10:00:00.000' AND/);
});

pgTest('postgres: a type Flink cannot read, and a column that does not exist, fail naming the column', async (t) => {
  const money = await t.throwsAsync(generate('postgres', pgOptions(), [field('c_money')]));
  t.is((money as { code?: string }).code, 'FAILED_PRECONDITION');
  t.regex(money!.message, /column 'c_money' of sales\.orders has the type 'money'/);
  const missing = await t.throwsAsync(generate('postgres', pgOptions(), [field('nope')]));
  t.regex(missing!.message, /column 'nope' is not a column of/);
  const table = await t.throwsAsync(generate('postgres', { ...pgOptions(), table: 'sales.none' }, [field('c_int')]));
  t.regex(table!.message, /does not exist/);
});

// ---------------------------------------------------------------------------------------------------- MariaDB

const MY_TYPES: readonly [string, string, string][] = [
  ['c_bit1', 'BIT(1)', 'BOOLEAN'],
  ['c_bit8', 'BIT(8)', 'BYTES'],
  ['c_bool', 'BOOLEAN', 'BOOLEAN'],
  ['c_tinyint', 'TINYINT', 'TINYINT'],
  ['c_tinyint_u', 'TINYINT UNSIGNED', 'SMALLINT'],
  ['c_smallint', 'SMALLINT', 'SMALLINT'],
  ['c_smallint_u', 'SMALLINT UNSIGNED', 'INT'],
  ['c_mediumint', 'MEDIUMINT', 'INT'],
  ['c_int', 'INT', 'INT'],
  ['c_int_u', 'INT UNSIGNED', 'BIGINT'],
  ['c_bigint', 'BIGINT', 'BIGINT'],
  ['c_bigint_u', 'BIGINT UNSIGNED', 'DECIMAL(20, 0)'],
  ['c_decimal', 'DECIMAL(12, 3)', 'DECIMAL(12, 3)'],
  ['c_decimal_u', 'DECIMAL(12, 3) UNSIGNED', 'DECIMAL(13, 3)'],
  ['c_float', 'FLOAT', 'FLOAT'],
  ['c_double', 'DOUBLE', 'DOUBLE'],
  ['c_char', 'CHAR(5)', 'CHAR(5)'],
  ['c_varchar', 'VARCHAR(40)', 'VARCHAR(40)'],
  ['c_text', 'TEXT', 'VARCHAR(65535)'],
  ['c_longtext', 'LONGTEXT', 'STRING'],
  ['c_json', 'JSON', 'STRING'],
  ['c_blob', 'BLOB', 'BYTES'],
  ['c_varbinary', 'VARBINARY(16)', 'BYTES'],
  ['c_date', 'DATE', 'DATE'],
  ['c_time', 'TIME(3)', 'TIME(3)'],
  ['c_datetime', 'DATETIME', 'TIMESTAMP(0)'],
  ['c_datetime6', 'DATETIME(6)', 'TIMESTAMP(6)'],
  ['c_timestamp3', 'TIMESTAMP(3) NULL', 'TIMESTAMP(3)'],
];

myTest.before(async () => {
  const admin = await mysql.createConnection({ uri: MYSQL_URL });
  await admin.query(`CREATE DATABASE ${MY_DB}`);
  await admin.query(
    `CREATE TABLE ${MY_DB}.orders (id BIGINT PRIMARY KEY, ${MY_TYPES.map(([c, t]) => `\`${c}\` ${t}`).join(', ')}, c_year YEAR)`,
  );
  await admin.end();
});

myTest.after.always(async () => {
  const admin = await mysql.createConnection({ uri: MYSQL_URL });
  await admin.query(`DROP DATABASE IF EXISTS ${MY_DB}`);
  await admin.end();
});

const myOptions = (): Options => ({
  url: withDb(MYSQL_URL, MY_DB),
  table: 'orders',
  keyColumn: 'id',
  timeColumn: 'c_datetime6',
});

myTest(
  'mariadb: every column is declared with the Flink type of its database type, casts only in the SELECT',
  async (t) => {
    const fields = [
      ...MY_TYPES.map(([c]) => field(c)),
      { sourceField: 'c_int', targetField: 'c_int_text', cast: 'string' as const },
    ];
    const { types, statements } = await generate('mysql', myOptions(), fields);
    t.deepEqual(types, Object.fromEntries(MY_TYPES.map(([c, , flink]) => [c, flink])));
    const source = declared(statements[3]!);
    for (const [column, , flink] of MY_TYPES) t.is(source[column], flink, column);
    t.regex(statements.at(-1)!, /CAST\(`c_int` AS STRING\)/);
    t.regex(statements.at(-1)!, /`c_datetime6` >= TIMESTAMP '2026-01-01 10:00:00.000' AND/);
  },
);

myTest('mariadb: a database-qualified table and column names in any case are found', async (t) => {
  const { types } = await generate('mysql', { ...myOptions(), table: `${MY_DB}.orders` }, [field('C_INT')]);
  t.deepEqual(types, { C_INT: 'INT', c_datetime6: 'TIMESTAMP(6)' });
});

myTest('mariadb: a type Flink cannot read, and a column that does not exist, fail naming the column', async (t) => {
  const year = await t.throwsAsync(generate('mysql', myOptions(), [field('c_year')]));
  t.is((year as { code?: string }).code, 'FAILED_PRECONDITION');
  t.regex(year!.message, /column 'c_year' of orders has the type 'year/);
  const missing = await t.throwsAsync(generate('mysql', myOptions(), [field('nope')]));
  t.regex(missing!.message, /column 'nope' is not a column of/);
});

pgTest('the flink runner asks a JDBC source for its column types before it generates the SQL', async (t) => {
  const submitted: (readonly string[])[] = [];
  const fakeFlink = { run: async (job: { statements: readonly string[] }) => void submitted.push(job.statements) };
  const jobRunner = new FlinkJobRunner(fakeFlink as unknown as FlinkRunner, runner);
  const options = pgOptions();
  const boundedSourceOptions = await runner.call(connector('postgres'), 'fillInBoundaries', {
    options,
    boundaries: window,
  });
  const stream: StreamSpec = {
    streamId: 's',
    source: { connectorId: 'postgres', options },
    sink: { connectorId: 'kafka', options: { brokers: ['k:9092'], topic: 't' } },
    fields: [field('c_int'), field('c_numeric')],
  };
  await jobRunner.run(
    {
      job: { jobId: 'job-1', groupId: 'g', streamId: 's', boundaries: window } as JobSpec['job'],
      group: {} as JobSpec['group'],
      stream,
      boundedSourceOptions,
      source: connector('postgres'),
      sink: connector('kafka'),
    },
    { signal: new AbortController().signal, onProgress: () => {}, onResolved: () => {} },
  );
  t.is(submitted.length, 1);
  t.deepEqual(declared(submitted[0]![3]!), { c_int: 'INT', c_numeric: 'DECIMAL(12, 3)', c_tstz: 'TIMESTAMP_LTZ(6)' });
});
