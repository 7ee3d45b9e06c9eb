/**
 * Values the SQL connectors cannot write or read: the error names the column and the row, says what was
 * expected and what came (shortened), and never shows the connection's password. Also the timestamps
 * PostgreSQL holds beyond the years 1..9999, which are written as those instants. Needs the databases
 * (skips without them; fails under SLUICE_REQUIRE_INTEGRATION=1). Every test works on tables of its own.
 */
import anyTest from 'ava';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Boundaries, ConnectorPlugin, Options, Row, WindowRef } from 'sluice/sdk';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import { MYSQL_URL, PG_URL, probeMysql, probePostgres, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';

const pgTest = gate(anyTest, await probePostgres());
const mysqlTest = gate(anyTest, await probeMysql());

const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
const runner = new HookRunner({ timeoutMs: 30_000 });
const connector = (id: string) => plugins.connectors.get(id) as LoadedPlugin<ConnectorPlugin>;

interface Failure {
  code: string;
  message: string;
  details: { field?: string; expected?: string; received?: string };
}

const ALL: Boundaries = { boundaryType: 'OFFSET', lowerBound: '0', upperBound: '1000' };
const windowRef: WindowRef = { groupId: 'g', streamId: 's', jobId: 'j', boundaries: ALL };
const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);

/** A password the server does not check (trust / no password): it must not show in any message. */
const PASSWORD = 'sluice-test-secret-4711';

/** PG_URL with PASSWORD in it (unless it has one of its own). */
function withPassword(raw: string): string {
  const url = new URL(raw);
  if (!url.password) url.password = PASSWORD;
  return url.toString();
}

/** Writes the batches as one window; resolves to the error the window failed with (undefined: committed). */
async function writeBatches(id: string, options: Options, batches: readonly Row[][]): Promise<Failure | undefined> {
  const writer = await runner.call(connector(id), 'openWriter', { options, window: windowRef });
  try {
    for (const batch of batches) await writer.write(batch);
    await writer.commit();
    return undefined;
  } catch (err) {
    await writer.abort(err);
    return err as Failure;
  }
}

/**
 * Three batches of 1000 rows, ids 1..3000: `row` makes each, `bad` the window's row 2503 (the third
 * batch's 503rd). A server counts rows within one statement, so only a translated place names it.
 */
function threeBatches(row: (id: number) => Row, bad: (id: number) => Row): Row[][] {
  return [0, 1, 2].map((b) =>
    Array.from({ length: 1000 }, (_, i) => {
      const id = b * 1000 + i + 1;
      return id === 2503 ? bad(id) : row(id);
    }),
  );
}

/** Reads the window; resolves to the error the read failed with (undefined: read to the end). */
async function readAll(id: string, options: Options): Promise<Failure | undefined> {
  const bounded = await runner.call(connector(id), 'fillInBoundaries', { options, boundaries: ALL });
  const reader = await runner.call(connector(id), 'openReader', { options: bounded, boundaries: ALL });
  try {
    for await (const batch of reader.batches()) void batch;
    return undefined;
  } catch (err) {
    return err as Failure;
  } finally {
    await reader.close();
  }
}

// ------------------------------------------------------------------------------------------- PostgreSQL

pgTest(
  'postgres: epoch ms no Date holds and an invalid Date fail the write naming the column, the row, what was expected and what came',
  async (t) => {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    const table = uniqueName('pg_valerr');
    const url = withPassword(PG_URL);
    try {
      await admin.query(`CREATE TABLE ${table} (id int, ts timestamptz, d date, sluice_window text)`);
      const ms = await writeBatches('postgres', { url, table }, [
        [
          { id: 1, ts: T0 },
          { id: 2, ts: T0 },
        ],
        [
          { id: 3, ts: T0 },
          { id: 4, ts: 1e16 },
        ],
      ]);
      t.is(ms?.code, 'FAILED_PRECONDITION');
      t.regex(ms?.message ?? '', /column "ts", row 4 of the window \(row 2 of the batch\)/);
      t.regex(ms?.message ?? '', /expected epoch milliseconds a JavaScript Date holds .*, got 10000000000000000$/);
      t.is(ms?.details.field, 'ts');
      t.is(ms?.details.received, '10000000000000000');
      t.false(ms?.message.includes(PASSWORD));

      const date = await writeBatches('postgres', { url, table }, [[{ id: 1, d: new Date(Number.NaN) }]]);
      t.regex(
        date?.message ?? '',
        /column "d", row 1 of the window \(row 1 of the batch\): expected a valid Date, got an invalid Date/,
      );
      const count = await admin.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
      t.is(count.rows[0]!.n, '0', 'nothing was committed');
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await admin.end();
    }
  },
);

pgTest(
  'postgres upsert: a timestamp the server refuses names the column and the row by its key; a huge refused value is shortened',
  async (t) => {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    const table = uniqueName('pg_valerr_up');
    const url = withPassword(PG_URL);
    try {
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, ts timestamptz)`);
      const options = { url, table, mode: 'upsert', keyColumns: ['id'] };
      const year = await writeBatches('postgres', options, [
        [
          { id: 1, ts: '2024-05-01T00:00:00Z' },
          { id: 2, ts: '300000-01-01T00:00:00Z' },
        ],
      ]);
      t.is(year?.code, 'FAILED_PRECONDITION');
      t.regex(
        year?.message ?? '',
        /timestamp out of range: "300000-01-01T00:00:00Z" \(column ts, the row with id = 2\)/,
      );

      const huge = 'x'.repeat(100_000);
      for (const mode of ['upsert', 'replace-window']) {
        if (mode === 'replace-window') await admin.query(`ALTER TABLE ${table} ADD COLUMN sluice_window text`);
        const err = await writeBatches('postgres', { ...options, mode }, [[{ id: 3, ts: huge }]]);
        t.is(err?.code, 'FAILED_PRECONDITION', mode);
        t.regex(err?.message ?? '', /column ts/, mode);
        t.regex(err?.message ?? '', /characters left out/, mode);
        t.true((err?.message.length ?? 0) < 1000, `${mode}: ${err?.message.length} characters`);
        t.false(err?.message.includes(PASSWORD));
      }
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await admin.end();
    }
  },
);

pgTest(
  'postgres: a value the server refuses in a later batch names the row of the window, however the COPYs were cut',
  async (t) => {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    const table = uniqueName('pg_valerr_row');
    const url = withPassword(PG_URL);
    try {
      await admin.query(
        `CREATE TABLE ${table} (id int PRIMARY KEY, n int, note text, m int NOT NULL DEFAULT 0, sluice_window text)`,
      );
      // A run of rows with other columns starts a new COPY, whose lines count from 1 again: the second
      // batch has no note, the third has one in its first 300 rows only (the bad row is line 203 of its COPY).
      const noted = (id: number) => id <= 1000 || (id > 2000 && id <= 2300);
      const cases: [string, Row[][], RegExp][] = [
        [
          'one COPY',
          threeBatches(
            (id) => ({ id, n: id, note: 'x' }),
            (id) => ({ id, n: 'not a number', note: 'x' }),
          ),
          /: invalid input syntax for type integer: "not a number" \(column n, row 2503 of the window \(row 503 of the batch\)\)$/,
        ],
        [
          'a COPY per run of columns',
          threeBatches(
            (id) => (noted(id) ? { id, n: id, note: 'x' } : { id, n: id }),
            (id) => ({ id, n: 'not a number' }),
          ),
          /: invalid input syntax for type integer: "not a number" \(column n, row 2503 of the window \(row 503 of the batch\)\)$/,
        ],
        // A constraint names the line only (and the column as a field of its own).
        [
          'a not-null constraint',
          threeBatches(
            (id) => ({ id, n: id }),
            (id) => ({ id, n: id, m: null }),
          ),
          /: null value in column "m" .*violates not-null constraint \(row 2503 of the window \(row 503 of the batch\), table pg_valerr_row_\w+, column m\)$/,
        ],
        // A unique index is checked when the COPY's buffered rows go in, each under its own line.
        [
          'a unique index',
          threeBatches(
            (id) => ({ id, n: id }),
            () => ({ id: 7, n: 7 }),
          ),
          /: duplicate key value violates unique constraint "pg_valerr_row_\w+_pkey" \(row 2503 of the window \(row 503 of the batch\), table pg_valerr_row_\w+, constraint pg_valerr_row_\w+_pkey\)$/,
        ],
      ];
      for (const [label, batches, expected] of cases) {
        const err = await writeBatches('postgres', { url, table }, batches);
        t.is(err?.code, 'FAILED_PRECONDITION', label);
        t.regex(err?.message ?? '', expected, label);
        t.false(err?.message.includes(PASSWORD), label);
      }
      const count = await admin.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
      t.is(count.rows[0]!.n, '0', 'nothing was committed');
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await admin.end();
    }
  },
);

pgTest(
  'postgres: timestamps past the year 9999 and before the year 1 are written as those instants (ms, Date and expanded ISO years)',
  async (t) => {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    const table = uniqueName('pg_years');
    try {
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, ts timestamptz, d date, sluice_window text)`);
      // 3e14 ms is 11476-08-15 05:20 UTC; JavaScript's year 0 is 1 BC, its year -1 2 BC.
      const year0 = Date.parse('0000-03-01T00:00:00Z');
      const rows = [
        { id: 1, ts: 3e14, d: 3e14 },
        { id: 2, ts: new Date(3e14), d: '+011476-08-15' },
        { id: 3, ts: '+011476-08-15T05:20:00.000Z', d: null },
        { id: 4, ts: year0, d: year0 },
        { id: 5, ts: '-000001-01-01T00:00:00Z', d: '-000001-01-01' },
        { id: 6, ts: '+275761-01-01T00:00:00Z', d: null },
      ];
      const expected = [
        ['1', '11476-08-15 05:20:00+00', '11476-08-15'],
        ['2', '11476-08-15 05:20:00+00', '11476-08-15'],
        ['3', '11476-08-15 05:20:00+00', null],
        ['4', '0001-03-01 00:00:00+00 BC', '0001-03-01 BC'],
        ['5', '0002-01-01 00:00:00+00 BC', '0002-01-01 BC'],
        ['6', '275761-01-01 00:00:00+00', null],
      ];
      for (const mode of ['replace-window', 'upsert']) {
        await admin.query(`TRUNCATE ${table}`);
        t.is(await writeBatches('postgres', { url: PG_URL, table, mode, keyColumns: ['id'] }, [rows]), undefined, mode);
        const res = await admin.query<{ id: string; ts: string; d: string | null }>(
          `SET TIME ZONE 'UTC'; SELECT id::text, ts::text, d::text FROM ${table} ORDER BY id`,
        );
        const result = (res as unknown as pg.QueryResult[])[1]!.rows as { id: string; ts: string; d: string | null }[];
        t.deepEqual(
          result.map((r) => [r.id, r.ts, r.d]),
          expected,
          mode,
        );
      }
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await admin.end();
    }
  },
);

// ------------------------------------------------------------------------------------------------ MySQL

mysqlTest(
  'mysql: timestamps outside DATETIME, an invalid Date and a fraction for an integer column fail the write naming the column and the row',
  async (t) => {
    const admin = await mysql.createConnection({ uri: MYSQL_URL });
    const table = uniqueName('my_valerr');
    try {
      await admin.query(
        `CREATE TABLE ${table} (id INT, ts DATETIME(6), d DATE, n BIGINT, sluice_window VARCHAR(255)) ENGINE=InnoDB`,
      );
      const options = { url: MYSQL_URL, table, batchSize: 1 };
      const first = [
        { id: 1, ts: T0 },
        { id: 2, ts: T0 },
      ];
      const cases: [Row, string, string, string][] = [
        [{ id: 3, ts: 3e14 }, 'ts', 'epoch milliseconds within the years 0000..9999', '300000000000000'],
        [
          { id: 3, ts: '10000-01-01T00:00:00Z' },
          'ts',
          'a timestamp within the years 0000..9999',
          '"10000-01-01T00:00:00Z"',
        ],
        [
          { id: 3, ts: '+275761-01-01T00:00:00Z' },
          'ts',
          'a timestamp within the years 0000..9999',
          '"+275761-01-01T00:00:00Z"',
        ],
        [{ id: 3, ts: new Date(Number.NaN) }, 'ts', 'a valid Date', 'an invalid Date'],
        [{ id: 3, d: 1e16 }, 'd', 'epoch milliseconds within the years 0000..9999', '10000000000000000'],
        [{ id: 3, n: 2.5 }, 'n', 'an integer', '2.5'],
      ];
      for (const [row, column, expected, received] of cases) {
        const err = await writeBatches('mysql', options, [first, [{ id: 9 }, row]]);
        const label = JSON.stringify(row);
        t.is(err?.code, 'FAILED_PRECONDITION', label);
        t.true(
          err?.message.includes(`column "${column}", row 4 of the window (row 2 of the batch): expected ${expected}`),
          `${label}: ${err?.message}`,
        );
        t.true(err?.message.endsWith(`got ${received}`), `${label}: ${err?.message}`);
        t.is(err?.details.field, column, label);
      }
      const [count] = await admin.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table}`);
      t.is(Number(count[0]!.n), 0, 'nothing was committed');
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await admin.end();
    }
  },
);

mysqlTest(
  'mysql: a value the server refuses in a later batch names the row of the window, not the row of its INSERT',
  async (t) => {
    const admin = await mysql.createConnection({ uri: MYSQL_URL });
    const table = uniqueName('my_valerr_row');
    try {
      await admin.query(
        `CREATE TABLE ${table} (id INT PRIMARY KEY, n INT, note VARCHAR(5), pad LONGTEXT, sluice_window VARCHAR(255)) ENGINE=InnoDB`,
      );
      const plain = (id: number): Row => ({ id, n: id });
      const badNumber = (id: number): Row => ({ id, n: 'not a number' });
      const number =
        /: Incorrect integer value: 'not a number' for column .*n[`'] at row 2503 of the window \(row 503 of the batch\)$/;
      // Rows of the same columns go in one INSERT of up to batchSize rows, unless they are wide: the
      // server's max_allowed_packet (MariaDB's default 16 MiB) cuts the third batch's first 503 rows, with 20,000
      // characters each, into INSERTs of about 250 rows, and the bad row is about the 10th of its own.
      const pad = 'p'.repeat(20_000);
      const cases: [string, Options, Row[][], RegExp][] = [
        ['an INSERT per batch', {}, threeBatches(plain, badNumber), number],
        ['INSERTs of 100 rows', { batchSize: 100 }, threeBatches(plain, badNumber), number],
        [
          'INSERTs cut by max_allowed_packet',
          {},
          threeBatches(
            (id) => (id > 2000 && id < 2503 ? { id, n: id, pad } : plain(id)),
            (id) => ({ ...badNumber(id), pad }),
          ),
          number,
        ],
        [
          'text too long for its column',
          {},
          threeBatches(
            (id) => ({ id, n: id, note: 'x' }),
            (id) => ({ id, n: id, note: 'far too long' }),
          ),
          /: Data too long for column 'note' at row 2503 of the window \(row 503 of the batch\)$/,
        ],
        // An upsert sends only the last row of a key: the third batch's first row is dropped (its second
        // has the same key), so the bad row is the 502nd of its statement.
        [
          'an upsert, a repeated key left out',
          { mode: 'upsert', keyColumns: ['id'] },
          threeBatches((id) => (id === 2001 ? plain(2002) : plain(id)), badNumber),
          number,
        ],
      ];
      for (const [label, extra, batches, expected] of cases) {
        const err = await writeBatches('mysql', { url: MYSQL_URL, table, ...extra }, batches);
        t.is(err?.code, 'FAILED_PRECONDITION', label);
        t.regex(err?.message ?? '', expected, label);
      }
      const [count] = await admin.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table}`);
      t.is(Number(count[0]!.n), 0, 'nothing was committed');
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await admin.end();
    }
  },
);

mysqlTest(
  'mysql: JSON text JavaScript cannot parse fails the read naming the column and the row, the value shortened',
  async (t) => {
    const admin = await mysql.createConnection({ uri: MYSQL_URL, jsonStrings: true });
    const table = uniqueName('my_badjson');
    try {
      const [[{ v }]] = (await admin.query('SELECT VERSION() AS v')) as unknown as [[{ v: string }]];
      if (!/mariadb/i.test(v)) {
        // MySQL's JSON type stores a binary form and prints it as JSON JavaScript reads: nothing to refuse.
        t.pass('MySQL prints every JSON value as standard JSON');
        return;
      }
      await admin.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, doc JSON) ENGINE=InnoDB`);
      // MariaDB's json_valid takes an unknown escape (\x) and a number ending in a point; JSON.parse takes neither.
      const bad = `{"a": "\\x", "pad": "${'p'.repeat(50_000)}"}`;
      await admin.query(`INSERT INTO ${table} VALUES (1, '[1]'), (2, '{"b": 2}'), (3, ?), (4, '[4]')`, [bad]);
      for (const readMethod of ['stream', 'keyset']) {
        const err = await readAll('mysql', { url: MYSQL_URL, table, keyColumn: 'id', readMethod, batchSize: 2 });
        t.is(err?.code, 'FAILED_PRECONDITION', readMethod);
        t.regex(
          err?.message ?? '',
          /column "doc", row 3 of the window: expected JSON text JavaScript can parse \(.+\), got "\{\\"a\\": \\"\\\\x\\", \\"pad\\": \\"ppp/,
          readMethod,
        );
        t.true((err?.message.length ?? 0) < 500, `${readMethod}: ${err?.message.length} characters`);
        t.is(err?.details.field, 'doc');
      }
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await admin.end();
    }
  },
);
