/**
 * The MySQL streamed read's own row parser (plugins/connectors/mysql/row-parser.ts): DOUBLE text read
 * from the packet bytes equals `Number` of that text, bit for bit, for every shape the server writes;
 * DATETIME text becomes ISO 8601 UTC with every fractional digit; and, against the database, a read
 * through the connector gives for every row the value the server's own text of it gives.
 */
import anyTest, { type TestFn } from 'ava';
import mysqlCallbacks from 'mysql2';
import mysql from 'mysql2/promise';
import type { ConnectorPlugin, Row } from 'sluice/sdk';
import { sluiceError } from '../../plugins/connectors/_sql/core.js';
import { timestampTextToIso } from '../../plugins/connectors/_sql/values.js';
import {
  compileRowParser,
  readDouble,
  readTimestamp,
  type TextPacket,
} from '../../plugins/connectors/mysql/row-parser.js';
import { streamReader } from '../../plugins/connectors/mysql/stream-reader.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import { MYSQL_URL, probeMysql, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';

const test = anyTest as TestFn;
const dbTest = gate(test, await probeMysql());

/** A text-protocol packet holding `values` (null: SQL NULL), each length-coded, read from the start. */
function packet(values: readonly (string | null)[]): TextPacket {
  const parts = values.map((v) =>
    v === null ? Buffer.from([0xfb]) : Buffer.concat([Buffer.from([Buffer.byteLength(v)]), Buffer.from(v, 'latin1')]),
  );
  const p = {
    buffer: Buffer.concat([Buffer.from('xx'), ...parts]),
    offset: 2,
    readLengthCodedString(encoding: BufferEncoding) {
      const len = p.buffer[p.offset++]!;
      if (len === 0xfb) return null;
      p.offset += len;
      return p.buffer.toString(encoding, p.offset - len, p.offset);
    },
  };
  return p as unknown as TextPacket;
}

/** The texts MariaDB and MySQL write for doubles: shortest digits, exponents, signs, trailing zeros. */
function doubleTexts(): string[] {
  const texts = ['0', '-0', '1', '-1', '0.1', '0.01', '97.5', '100', '9678264.425626319', '97654017938146.89'];
  texts.push('1e20', '1e-7', '-1.5e-300', '1.7976931348623157e308', '2.2250738585072014e-308', '5e-324');
  texts.push('123456789012345', '1234567890123456', '0.000000000000001', '0.0000000000000001', '999999999999999.9');
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let i = 0; i < 20_000; i++) {
    const x = (random() - 0.5) * 10 ** Math.floor(random() * 30 - 10);
    texts.push(String(x), x.toFixed(Math.floor(random() * 8)), String(Math.round(x)));
  }
  return texts;
}

test('a DOUBLE read from the bytes is Number of its text, bit for bit, and the read moves past it', (t) => {
  let wrong = 0;
  for (const text of doubleTexts()) {
    const p = packet([text, '7']);
    const got = readDouble(p);
    if (!Object.is(got, Number(text))) {
      wrong++;
      if (wrong < 5) t.log(`${text}: got ${got}, Number gives ${Number(text)}`);
    }
    if (p.readLengthCodedString('latin1') !== '7') wrong++;
  }
  t.is(wrong, 0);
  const p = packet([null, '2']);
  t.is(readDouble(p), null);
  t.is(readDouble(p), 2);
});

test('DATETIME text becomes ISO 8601 UTC with every fractional digit; zero dates and odd text go as before', (t) => {
  const cases: [string | null, string | null][] = [
    ['2024-05-01 12:00:00', '2024-05-01T12:00:00Z'],
    ['2024-05-01 12:00:00.1', '2024-05-01T12:00:00.1Z'],
    ['2024-05-01 12:00:00.120', '2024-05-01T12:00:00.120Z'],
    ['9999-12-31 23:59:59.999999', '9999-12-31T23:59:59.999999Z'],
    ['1970-01-01 00:00:00.000001', '1970-01-01T00:00:00.000001Z'],
    ['0999-01-01 00:00:00', '0999-01-01T00:00:00Z'],
    ['0000-00-00 00:00:00', '0000-00-00 00:00:00'],
    ['0000-00-00 00:00:00.000', '0000-00-00 00:00:00.000'],
    [null, null],
  ];
  for (const [text, iso] of cases) {
    const p = packet([text, 'after']);
    t.is(readTimestamp(p), iso, String(text));
    t.is(p.readLengthCodedString('latin1'), 'after');
    if (text !== null) t.is(iso, timestampTextToIso(text));
  }
});

test('a compiled row has the columns in order, a __proto__ column as an own value, the later of two same names', (t) => {
  const field = (name: string, columnType: number) => ({ name, columnType, characterSet: 224, encoding: 'utf8' });
  const fields = [field('a', 253), field('__proto__', 253), field('a', 253), field('d', 5)];
  const parser = compileRowParser(fields as never);
  const row = parser.next(packet(['1', 'x', 'y', '0.5']), fields, {});
  t.deepEqual(Object.keys(row), ['a', '__proto__', 'd']);
  t.is(Object.getPrototypeOf(row), Object.prototype);
  t.is(row.a, 'y');
  t.is(Object.getOwnPropertyDescriptor(row, '__proto__')?.value, 'x');
  t.is(row.d, 0.5);
});

dbTest('a streamed read gives every DOUBLE, FLOAT and DATETIME as the server text of it says', async (t) => {
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  const loaded = plugins.connectors.get('mysql') as LoadedPlugin<ConnectorPlugin>;
  const runner = new HookRunner({ timeoutMs: 15_000 });
  const admin = await mysql.createConnection({ uri: MYSQL_URL, dateStrings: true });
  const table = uniqueName('my_rowparser');
  try {
    await admin.query("SET time_zone = '+00:00', sql_mode = ''");
    await admin.query(
      `CREATE TABLE ${table} (id INT PRIMARY KEY, dbl DOUBLE, flt FLOAT, dt0 DATETIME, dt3 DATETIME(3), ts6 TIMESTAMP(6) NULL)`,
    );
    const texts = doubleTexts().slice(0, 3000);
    const values = texts.map(
      (x, i) =>
        `(${i}, ${x}, ${x}, TIMESTAMP'2026-01-01 00:00:00' + INTERVAL ${i * 7777777} MICROSECOND, ` +
        `TIMESTAMP'1999-12-31 23:59:59' + INTERVAL ${i * 1234567} MICROSECOND, ` +
        `${i % 10 === 0 ? 'NULL' : `TIMESTAMP'2001-02-03 04:05:06' + INTERVAL ${i * 999} MICROSECOND`})`,
    );
    values.push(`(${texts.length}, NULL, NULL, '0000-00-00 00:00:00', '0000-00-00 00:00:00.000', NULL)`);
    await admin.query(`INSERT INTO ${table} VALUES ${values.join(', ')}`);
    // FLOAT's own text has 6 significant digits (123456792 as 123457000): its value is the text of it as DOUBLE.
    const [expected] = await admin.query<mysql.RowDataPacket[]>(
      `SELECT id, CAST(dbl AS CHAR) AS dbl, CAST(CAST(flt AS DOUBLE) AS CHAR) AS flt, dt0, dt3, ts6 FROM ${table} ORDER BY id`,
    );

    const options = { url: MYSQL_URL, table, keyColumn: 'id', batchSize: 700 };
    const boundaries = { boundaryType: 'OFFSET' as const, lowerBound: '0', upperBound: String(texts.length + 1) };
    const bounded = await runner.call(loaded, 'fillInBoundaries', { options, boundaries });
    const reader = await runner.call(loaded, 'openReader', { options: bounded, boundaries });
    const rows: Row[] = [];
    try {
      for await (const batch of reader.batches()) rows.push(...batch);
    } finally {
      await reader.close();
    }
    t.is(rows.length, expected.length);
    const num = (text: unknown) => (text === null ? null : Number(text));
    const iso = (text: unknown) => (text === null ? null : timestampTextToIso(String(text)));
    let wrong = 0;
    for (let i = 0; i < rows.length; i++) {
      const got = rows[i]!;
      const want = expected[i]!;
      const same =
        Object.is(got.dbl, num(want.dbl)) &&
        Object.is(got.flt, num(want.flt)) &&
        got.dt0 === iso(want.dt0) &&
        got.dt3 === iso(want.dt3) &&
        got.ts6 === iso(want.ts6);
      if (!same && wrong++ < 5) t.log(JSON.stringify({ got, want }));
    }
    t.is(wrong, 0);
    // The zero date stays the server's text; a fractional DATETIME keeps its digits.
    t.is(rows[rows.length - 1]!.dt0, '0000-00-00 00:00:00');
    t.regex(String(rows[1]!.dt3), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  } finally {
    await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await admin.end();
  }
});

dbTest('a mysql2 that parses the rows itself fails the read instead of giving its inexact values', async (t) => {
  const conn = mysqlCallbacks.createConnection({ uri: MYSQL_URL });
  conn.on('error', () => {});
  // As a mysql2 would that keeps its row parser elsewhere: the reader's hook on `_rowParser` is gone
  // before the result arrives.
  const query = conn.query.bind(conn) as (sql: string) => mysqlCallbacks.Query;
  (conn as unknown as { query: (sql: string) => mysqlCallbacks.Query }).query = (sql) => {
    const q = query(sql);
    queueMicrotask(() => delete (q as unknown as { _rowParser?: unknown })._rowParser);
    return q;
  };
  const reader = streamReader(conn, {
    sql: 'SELECT 1 AS id, 0.1 AS d',
    keyField: 'id',
    batchSize: 10,
    close: async () => conn.destroy(),
    mapError: (err, doing) => sluiceError('FAILED_PRECONDITION', `mysql: ${doing}: ${(err as Error).message}`, err),
  });
  try {
    const err = await t.throwsAsync(async () => {
      for await (const batch of reader.batches()) t.fail(`a batch of ${batch.length} came through`);
    });
    t.regex(err?.message ?? '', /did not parse the rows with the reader's row parser/);
  } finally {
    await reader.close();
  }
});
