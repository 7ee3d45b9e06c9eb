import type { Connection as CoreConnection } from 'mysql2';
import mysql from 'mysql2/promise';
import { type JsonSchema, defineConnectorPlugin, invalidArgument, type SluiceError } from 'sluice/sdk';
import * as core from '../_sql/core.js';
import { flinkColumnTypes, mysqlFlinkType } from '../_sql/flink-types.js';
import { isoToSqlDateTime, stringifyJsonExact, timestampTextToIso } from '../_sql/values.js';
import { readJson } from './row-parser.js';
import { streamReader } from './stream-reader.js';

/**
 * MySQL and MariaDB (InnoDB) source and sink. A read is one REPEATABLE READ transaction started WITH
 * CONSISTENT SNAPSHOT, READ ONLY, on one connection: one `SELECT … WHERE <window> ORDER BY key` streamed
 * batch by batch (the connection paused while a batch waits), or (readMethod `keyset`) paged by key
 * (`WHERE <window> AND key > ? ORDER BY key LIMIT n`); either way it sees one snapshot and holds about
 * one batch in memory. A write is one transaction: nothing is visible before commit. Every value a user
 * gives is bound as a server-side prepared statement parameter; the streamed query holds only literals
 * the reader makes itself (integers, dates).
 */

const DIALECT: core.Dialect = {
  name: 'mysql',
  protocols: ['mysql:'],
  exampleUrl: 'mysql://user:password@localhost:3306/database',
  quote: '`',
  jdbcPrefix: 'jdbc:mysql:',
  defaultPort: 3306,
  qualifier: 'database',
};

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

const q = (name: string) => core.quoteIdent(name, '`');

/** The server's packet limit when it cannot be read (MySQL 8's default is 64 MiB, MariaDB's 16 MiB). */
const DEFAULT_MAX_PACKET = 16 * 1024 * 1024;
/** Room left in a packet for the statement's header, parameter types and NULL bitmap. */
const STATEMENT_OVERHEAD_BYTES = 256 * 1024;
/** One row always goes, however large; the server says so when it cannot take it. */
const MIN_STATEMENT_BYTES = 64 * 1024;

/** How long a re-run of a window waits for a concurrent run of the same window to finish, in seconds. */
const LOCK_WAIT_S = 600;

/** Column types (protocol codes) holding integers: TINY, SHORT, LONG, LONGLONG, INT24, YEAR. */
const INTEGER_TYPES = new Set([1, 2, 3, 8, 9, 13]);
/** The protocol code of FLOAT (single precision). */
const FLOAT_TYPE = 4;
/** The protocol code of DOUBLE. */
const DOUBLE_TYPE = 5;

/** An integer bound as a 64-bit integer parameter, so that comparisons stay exact beyond 2^53. */
function intParam(value: bigint): unknown {
  return value > INT64_MAX ? mysql.TypedParameter.LONGLONG.unsigned(value) : mysql.TypedParameter.LONGLONG(value);
}

/** A key value read from a row, bound back for the next page. */
function keyParam(value: unknown, integer: boolean): unknown {
  if (integer && (typeof value === 'number' || typeof value === 'string' || typeof value === 'bigint')) {
    try {
      return intParam(BigInt(value));
    } catch {
      return value;
    }
  }
  return value;
}

/** Protocol column types converted after a keyset page (binary protocol): DATETIME, TIMESTAMP, JSON. */
const TIMESTAMP_TYPES = new Set([7, 12]);
const JSON_TYPE = 245;

type Convert = (value: unknown) => unknown;
const timestamp: Convert = (v) => (typeof v === 'string' ? timestampTextToIso(v) : v);
const json =
  (column: string): Convert =>
  (v) =>
    typeof v === 'string' ? readJson(v, column) : v;

/**
 * The conversions a keyset page's columns need, decided once from its field metadata (mysql2 reads
 * every other column as the row value already, BIGINT as a number when exact and as text beyond 2^53):
 * DATETIME and TIMESTAMP, read as text with every fractional digit, become ISO 8601 UTC; JSON, read as
 * text, is parsed exactly.
 */
function conversions(fields: readonly mysql.FieldPacket[]): [string, Convert][] {
  const out: [string, Convert][] = [];
  for (const f of fields) {
    const type = f.columnType ?? f.type;
    const extended = (f as { extendedFormat?: string }).extendedFormat;
    if (type !== undefined && TIMESTAMP_TYPES.has(type)) out.push([f.name, timestamp]);
    else if (type === JSON_TYPE || extended === 'json') out.push([f.name, json(f.name)]);
  }
  return out;
}

/**
 * How long (s) the server waits on a paused streamed read before it gives up: the connection is paused
 * while the sink writes a batch, so the server's default (60 s) would cut a read whose sink is slow.
 */
const STREAM_WRITE_TIMEOUT_S = 3600;

/** The shared SQL source options, plus how a window is read. */
const SOURCE_SCHEMA: JsonSchema = (() => {
  const base = core.sourceSchema(DIALECT);
  return {
    ...base,
    properties: {
      ...base.properties,
      readMethod: {
        type: 'string',
        enum: ['stream', 'keyset'],
        default: 'stream',
        description:
          "'stream': the window is one SELECT ... ORDER BY keyColumn, streamed batchSize rows at a time (the connection paused while a batch waits for the sink). 'keyset': one query per batch, WHERE key > last ORDER BY key LIMIT batchSize.",
      },
    },
  };
})();

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_TOO_MANY_USER_CONNECTIONS',
  'ER_SERVER_SHUTDOWN',
  'ER_NORMAL_SHUTDOWN',
  'ER_SERVER_ISNT_AVAILABLE',
  'ER_CONNECTION_KILLED',
]);
/** Fatal, yet retrying cannot help: the credentials or the database are wrong. */
const CONFIG_CODES = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  'ER_NOT_SUPPORTED_AUTH_MODE',
  'HANDSHAKE_SSL_ERROR',
]);

/**
 * MySQL's place of a refused value, the row within its statement (`… for column 'n' at row 3`): last in
 * the message, counted from 1 in every INSERT (a window's rows go in many, cut by batchSize and by the
 * server's max_allowed_packet).
 */
const AT_STATEMENT_ROW = / at row (\d+)$/;

/** An insert's error naming a row of its statement (`at row N`), with the window's row; other errors as they are. */
function atRow(err: unknown, count: number, at: core.StatementRows): unknown {
  const m = err instanceof Error ? AT_STATEMENT_ROW.exec(err.message) : null;
  const n = m ? Number(m[1]) : 0;
  return n >= 1 && n <= count ? new core.AtRow(err, core.windowRow(at.row(n - 1), at.before)) : err;
}

/** A driver error as a SluiceError: UNAVAILABLE when the server cannot be reached; the password never shows. */
function mapError(err: unknown, doing: string, url: string): SluiceError {
  if (core.isSluice(err)) return err;
  if (err instanceof core.ValueError) return core.valueFailure(DIALECT, doing, err, url);
  let row: string | undefined;
  if (err instanceof core.AtRow) {
    row = err.at;
    err = err.error;
  }
  const e = (err ?? {}) as { code?: unknown; fatal?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const raw = err instanceof Error ? err.message || code || err.name : String(err);
  // Shortened (a refused value is quoted whole: a huge text into a DATETIME column), after the password
  // is out: a cut through it would leave a part that scrub no longer finds. The statement's row is
  // replaced by the window's after the cut, which keeps the column the server names before it.
  const text = core.shortenMessage(core.scrub(row ? raw.replace(AT_STATEMENT_ROW, '') : raw, url));
  const message = core.scrub(`mysql: ${doing}: ${text}${row ? ` at ${row}` : ''}`, url);
  if (
    UNAVAILABLE_CODES.has(code) ||
    (e.fatal === true && !CONFIG_CODES.has(code)) ||
    /connection is in closed state|Can't add new command when connection is in closed state/i.test(text)
  ) {
    return core.sluiceError('UNAVAILABLE', message, err);
  }
  if (code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT')
    return core.sluiceError('VERSION_CONFLICT', message, err);
  return core.sluiceError('FAILED_PRECONDITION', message, err);
}

async function connect(url: string, timeoutMs: number, signal: AbortSignal): Promise<mysql.Connection> {
  const target = core.assertAllowed(DIALECT, url);
  let conn: mysql.Connection | undefined;
  try {
    conn = await mysql.createConnection({
      uri: url,
      connectTimeout: timeoutMs,
      // BIGINT as a number when a double holds it exactly, as its decimal text beyond 2^53.
      supportBigNumbers: true,
      dateStrings: true,
      jsonStrings: true,
      timezone: 'Z',
      charset: 'UTF8MB4_UNICODE_CI',
    });
    // A connection dropped while idle: the next query fails and says so; without a listener it would crash the process.
    conn.on('error', () => {});
    if (signal.aborted) throw signal.reason ?? new Error('aborted');
    // TIMESTAMP columns are converted in UTC; DATETIME has no zone and is taken as UTC.
    await conn.query("SET time_zone = '+00:00'");
    return conn;
  } catch (err) {
    conn?.destroy();
    if (core.isSluice(err)) throw err;
    // A server that answered as MySQL (an SQL state: bad password, unknown database) says so; anything else
    // (refused, timed out, reset, another protocol) is one message, so ports cannot be told apart.
    const sqlState = (err as { sqlState?: unknown } | null)?.sqlState;
    if (typeof sqlState === 'string' && sqlState !== '' && !sqlState.startsWith('08'))
      throw mapError(err, `cannot connect to ${core.redactUrl(url)}`, url);
    throw core.couldNotConnect(DIALECT, target, err);
  }
}

/** The table's columns (names lower-cased) and how values must be converted for them; undefined when it does not exist. */
async function describe(conn: mysql.Connection, parts: readonly string[]): Promise<core.ColumnMap | undefined> {
  const where =
    parts.length === 2 ? 'TABLE_SCHEMA = ? AND TABLE_NAME = ?' : 'TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?';
  const [rows] = await conn.execute<mysql.RowDataPacket[]>(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS type, NUMERIC_SCALE AS scale FROM information_schema.COLUMNS WHERE ${where} ORDER BY ORDINAL_POSITION`,
    [...parts],
  );
  if (rows.length === 0) return undefined;
  const kinds = new Map(
    rows.map((r): [string, core.ColumnKind] => [
      String(r.name).toLowerCase(),
      kindOf(String(r.type).toLowerCase(), r.scale === null ? null : Number(r.scale)),
    ]),
  );
  // MariaDB's JSON is LONGTEXT with a json_valid check, and information_schema says only LONGTEXT; the
  // column metadata of a result marks it as JSON (MariaDB 10.5+), so a LONGTEXT column is looked up there.
  if (rows.some((r) => String(r.type).toLowerCase() === 'longtext')) {
    const [, fields] = await conn.query(`SELECT * FROM ${core.quoteTable(parts, '`')} LIMIT 0`);
    for (const f of fields)
      if ((f as { extendedFormat?: string }).extendedFormat === 'json') kinds.set(f.name.toLowerCase(), 'json');
  }
  return kinds;
}

/** The integer column types (information_schema's DATA_TYPE). */
const INTEGER_COLUMNS = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'bigint']);

function kindOf(type: string, scale: number | null): core.ColumnKind {
  if (type === 'datetime' || type === 'timestamp') return 'timestamp';
  if (type === 'date') return 'date';
  if (type === 'json') return 'json';
  if (INTEGER_COLUMNS.has(type) || (type === 'decimal' && scale === 0)) return 'integer';
  return 'other';
}

/** A year of five or more digits, or ISO 8601's expanded year (`+010000-`, `-000001-`). */
const LONG_YEAR = /^(?:[+-]\d{6}|\d{5,})-/;

/**
 * Timestamp text for a DATETIME/TIMESTAMP/DATE column, refused here when its year has more than four
 * digits: the server would refuse it too, but name only its statement's row.
 */
function beforeYear10000(text: string): string {
  if (LONG_YEAR.test(text))
    throw new core.ValueError('a timestamp within the years 0000..9999 (what DATETIME holds)', text);
  return text;
}

/** A row value as a bind parameter for a column of the kind: epoch ms into DATETIME/TIMESTAMP, objects as JSON text. */
function convert(value: unknown, kind: core.ColumnKind): unknown {
  if (value === null || value === undefined) return null;
  if (kind === 'timestamp') {
    if (typeof value === 'number') return core.msToSqlDateTime(value);
    if (value instanceof Date) return core.msToSqlDateTime(core.dateMs(value));
    // ISO 8601 UTC text, as the readers give timestamps: every fractional digit kept.
    if (typeof value === 'string') return isoToSqlDateTime(beforeYear10000(value));
    return value;
  }
  if (kind === 'date') {
    if (typeof value === 'number') return core.msToSqlDateTime(value).slice(0, 10);
    if (value instanceof Date) return core.msToSqlDateTime(core.dateMs(value)).slice(0, 10);
    if (typeof value === 'string') return beforeYear10000(value);
    return value;
  }
  // The server rounds a fraction into an integer column with only a note, strict mode or not (2.5 into
  // BIGINT is 2): such a value fails the write instead, as it does on PostgreSQL. A table createTable made
  // from a first batch of whole numbers has BIGINT where the source's column may be floating point (when
  // the rows did not come from a SQL reader, which marks its floating-point columns).
  if (kind === 'integer' && typeof value === 'number' && !Number.isInteger(value))
    throw new core.ValueError(
      'an integer (the column has an integer type, which would round a fraction; give it a type that holds one)',
      value,
    );
  if (kind === 'json') {
    // A string (or bytes) is JSON text already; any other value is the JSON value itself, as its text:
    // bound as it is, a boolean would go in as 1 or 0 and a number as the server's text of a double.
    if (typeof value === 'string') return value;
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    // NaN and the infinities have no JSON text (JSON.stringify would write null): bound as they are, the
    // server refuses them.
    if (typeof value === 'number' && !Number.isFinite(value)) return value;
    return stringifyJsonExact(value);
  }
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return core.msToSqlDateTime(core.dateMs(value));
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'object') return stringifyJsonExact(value);
  return value;
}

const TYPES: core.TypeNames = {
  integer: 'BIGINT',
  float: 'DOUBLE',
  decimal: 'DECIMAL(65,0)',
  boolean: 'BOOLEAN',
  text: 'LONGTEXT',
  keyText: 'VARCHAR(255)',
  timestamp: 'DATETIME(6)',
  binary: 'LONGBLOB',
  keyBinary: 'VARBINARY(255)',
  json: 'JSON',
  window: 'VARCHAR(768) NOT NULL',
};

const FLINK_NAMES: core.FlinkNames = {
  // Flink's MySQL dialect wraps table-name and the partition column in backticks itself (as one
  // identifier each): the bare name goes here, and a qualifying database goes into the URL.
  tableName: (parts) => parts[parts.length - 1]!,
  column: (name) => name,
  qualifierIsDatabase: true,
};

export default defineConnectorPlugin({
  roles: ['source', 'sink'],
  boundaryTypes: ['TIME', 'OFFSET'],
  sourceOptions: SOURCE_SCHEMA,
  sinkOptions: core.sinkSchema(DIALECT),

  validate({ role, options }) {
    return core.validateOptions(DIALECT, role, options);
  },

  fillInBoundaries({ options, boundaries }) {
    return core.boundedOptions(DIALECT, options, boundaries);
  },

  async openReader({ options }, ctx) {
    const cfg = core.sourceConfig(DIALECT, options);
    const scan = core.scanOf(options);
    if (scan.type === 'TIME' && !cfg.timeColumn)
      throw invalidArgument('options.timeColumn', 'a timestamp column (a TIME window filters on it)', undefined);
    const table = core.quoteTable(cfg.table, '`');
    const tableName = core.tableText(cfg.table, '`');
    const key = q(cfg.keyColumn);
    // Column names ignore case in MySQL: the key counts as listed whatever its case.
    const stripKey =
      cfg.columns !== undefined && !cfg.columns.some((c) => c.toLowerCase() === cfg.keyColumn.toLowerCase());
    const select = cfg.columns ? [...cfg.columns, ...(stripKey ? [cfg.keyColumn] : [])].map(q).join(', ') : '*';

    const conn = await connect(cfg.url, cfg.connectTimeoutMs, ctx.signal);
    let keyField = cfg.keyColumn;
    let integerKey = false;
    let selected: mysql.FieldPacket[] = [];
    try {
      await conn.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      // The snapshot is taken here: every page reads the table as of now.
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      // Fails early when the table or a column does not exist, and tells the key's name and type.
      const [, fields] = await conn.execute(`SELECT ${select} FROM ${table} LIMIT 0`);
      const field =
        fields.find((f) => f.name === cfg.keyColumn) ??
        fields.find((f) => f.name.toLowerCase() === cfg.keyColumn.toLowerCase());
      if (!field)
        throw core.sluiceError(
          'FAILED_PRECONDITION',
          `mysql: table ${tableName} has no column ${JSON.stringify(cfg.keyColumn)} (keyColumn)`,
        );
      keyField = field.name;
      integerKey = INTEGER_TYPES.has(field.columnType ?? -1);
      selected = fields;
    } catch (err) {
      conn.destroy();
      throw mapError(err, `opening ${tableName}`, cfg.url);
    }

    // The window as conditions, each bound through `bind` (a parameter, or a literal: the values are
    // digits and dates the reader made, nothing a user wrote); undefined: it cannot hold a row.
    const windowSql = <P>(
      bindTime: (ms: number) => P,
      bindInt: (v: bigint) => P,
    ): { sql: string[]; params: P[] } | undefined => {
      if (scan.type === 'TIME') {
        const range = core.timeRange(scan);
        if (!range) return undefined;
        const tc = q(cfg.timeColumn!);
        const w = { sql: [`${tc} >= ?`], params: [bindTime(range.lower)] };
        if (range.upper !== undefined) {
          w.sql.push(`${tc} < ?`);
          w.params.push(bindTime(range.upper));
        }
        return w;
      }
      const range = core.keyRange(scan, INT64_MIN, UINT64_MAX);
      if (!range) return undefined;
      const w = { sql: [`${key} IS NOT NULL`], params: [] as P[] };
      if (range.lower !== undefined) {
        w.sql.push(`${key} >= ?`);
        w.params.push(bindInt(range.lower));
      }
      if (range.upper !== undefined) {
        w.sql.push(`${key} < ?`);
        w.params.push(bindInt(range.upper));
      }
      return w;
    };

    // FLOAT and DOUBLE: createTable makes them floating point whatever the values (markFloatColumns).
    const floatColumns = new Set(
      selected.filter((f) => f.columnType === FLOAT_TYPE || f.columnType === DOUBLE_TYPE).map((f) => f.name),
    );

    if (options.readMethod !== 'keyset') {
      const literal = windowSql(
        (ms) => `'${core.msToSqlDateTime(ms)}'`,
        (v) => v.toString(),
      );
      let where = 'FALSE';
      if (literal) {
        let i = 0;
        where = literal.sql.map((c) => c.replace('?', () => literal.params[i++]!)).join(' AND ');
      }
      // A listed-columns read leaves the key out of the rows: it is only needed for the order.
      let columns = stripKey ? cfg.columns!.map(q).join(', ') : select;
      // The text protocol prints FLOAT with 6 significant digits (123456792 as 123457000), so the stream
      // selects a FLOAT column as DOUBLE, whose text is the shortest digits of the same value: what the
      // keyset read (binary protocol) gives. Under the name the column has in the result (the LIMIT 0
      // query above selected the same list, plus the key last when it is left out here).
      if (selected.some((f) => f.columnType === FLOAT_TYPE)) {
        const names = cfg.columns ?? selected.map((f) => f.name);
        columns = names
          .map((name, i) => {
            const f = selected[i]!;
            return f.columnType === FLOAT_TYPE ? `CAST(${q(name)} AS DOUBLE) AS ${q(f.name)}` : q(name);
          })
          .join(', ');
      }
      try {
        await conn.query(`SET SESSION net_write_timeout = ${STREAM_WRITE_TIMEOUT_S}`);
      } catch (err) {
        conn.destroy();
        throw mapError(err, `opening ${tableName}`, cfg.url);
      }
      // The callback connection under the promise wrapper: its events give rows one at a time.
      const callbacks = (conn as unknown as { connection: CoreConnection }).connection;
      return streamReader(callbacks, {
        sql: `SELECT ${columns} FROM ${table} WHERE ${where} ORDER BY ${key}`,
        keyField: stripKey ? undefined : keyField,
        batchSize: cfg.batchSize,
        floatColumns,
        async close(abandoned) {
          // Left mid-stream: the connection goes, and the server ends the query and the transaction with it.
          if (abandoned) return conn.destroy();
          await conn.query('ROLLBACK').catch(() => {});
          await conn.end().catch(() => conn.destroy());
        },
        mapError: (err, doing) => mapError(err, `${doing} of ${tableName}`, cfg.url),
      });
    }

    let window = windowSql(core.msToSqlDateTime, intParam);
    // TIME: the window's smallest and largest key, so that paging by key stops at the window's end
    // instead of scanning the rest of the table for more matches.
    let keys: { min: unknown; max: unknown } | null | undefined = scan.type === 'TIME' ? undefined : null;
    let convert: [string, Convert][] | undefined;
    /** Rows of the earlier pages, to say where a value that cannot be read is. */
    let rowsRead = 0;

    return core.keysetReader(
      {
        keyField: () => keyField,
        async page(after) {
          if (!window) return [];
          if (keys === undefined) {
            const [rows] = await conn.execute<mysql.RowDataPacket[]>(
              `SELECT MIN(${key}) AS lo, MAX(${key}) AS hi FROM ${table} WHERE ${window.sql.join(' AND ')}`,
              window.params as never[],
            );
            const row = rows[0];
            if (!row || row.lo === null || row.hi === null) {
              window = undefined;
              return [];
            }
            keys = { min: row.lo, max: row.hi };
          }
          const where = [...window.sql];
          const params = [...window.params];
          if (keys) {
            where.push(`${key} <= ?`);
            params.push(keyParam(keys.max, integerKey));
            if (!after) {
              where.push(`${key} >= ?`);
              params.push(keyParam(keys.min, integerKey));
            }
          }
          if (after) {
            where.push(`${key} > ?`);
            params.push(keyParam(after.value, integerKey));
          }
          const [rows, fields] = await conn.execute<mysql.RowDataPacket[]>(
            `SELECT ${select} FROM ${table} WHERE ${where.join(' AND ')} ORDER BY ${key} LIMIT ${cfg.batchSize}`,
            params as never[],
          );
          convert ??= conversions(fields);
          let i = 0;
          try {
            if (convert.length > 0)
              for (; i < rows.length; i++) for (const [name, fn] of convert) rows[i]![name] = fn(rows[i]![name]);
          } catch (err) {
            if (err instanceof core.ValueError) err.row = `row ${rowsRead + i + 1} of the window`;
            throw err;
          }
          rowsRead += rows.length;
          return rows as Record<string, unknown>[];
        },
        async close() {
          await conn.query('ROLLBACK').catch(() => {});
          await conn.end().catch(() => conn.destroy());
        },
        mapError: (err, doing) => mapError(err, `${doing} of ${tableName}`, cfg.url),
      },
      cfg.batchSize,
      stripKey,
      floatColumns,
    );
  },

  async openWriter({ options, window }, ctx) {
    const cfg = core.sinkConfig(DIALECT, options);
    const table = core.quoteTable(cfg.table, '`');
    const tableName = core.tableText(cfg.table, '`');
    const conn = await connect(cfg.url, cfg.connectTimeoutMs, ctx.signal);
    let columns: core.ColumnMap | undefined;
    let maxPacket = DEFAULT_MAX_PACKET;
    try {
      // Strict: a value that does not fit (a window id longer than its column, text in a number
      // column) fails the write instead of being truncated or zeroed with a warning.
      await conn.query(
        "SET SESSION sql_mode = IF(@@SESSION.sql_mode = '', 'STRICT_ALL_TABLES', CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES'))",
      );
      columns = await describe(conn, cfg.table);
      const [packet] = await conn.query<mysql.RowDataPacket[]>('SELECT @@SESSION.max_allowed_packet AS bytes');
      const bytes = Number(packet[0]?.bytes);
      if (Number.isSafeInteger(bytes) && bytes > 0) maxPacket = bytes;
    } catch (err) {
      conn.destroy();
      throw mapError(err, `looking up ${tableName}`, cfg.url);
    }
    const problem = !columns
      ? cfg.createTable
        ? undefined
        : `table ${tableName} does not exist; create it, or set createTable`
      : [...(cfg.windowColumn ? [cfg.windowColumn] : []), ...(cfg.mode === 'upsert' ? cfg.keyColumns : [])]
          .filter((c) => !columns!.has(c.toLowerCase()))
          .map(
            (c) =>
              `table ${tableName} has no column ${JSON.stringify(c)} (${c === cfg.windowColumn ? 'the window column: add it as VARCHAR, or set windowColumn' : 'a key column'})`,
          )[0];
    if (problem) {
      conn.destroy();
      throw core.sluiceError('FAILED_PRECONDITION', `mysql: ${problem}`);
    }

    let locked = false;
    const session: core.WriterSession = {
      caseInsensitive: true,
      // DDL commits implicitly in MySQL: a table is created before the transaction starts.
      transactionalDdl: false,
      maxParams: 65_535,
      // One INSERT is one packet: wide rows make statements of fewer rows instead of failing.
      maxStatementBytes: Math.max(MIN_STATEMENT_BYTES, Math.floor(maxPacket * 0.9) - STATEMENT_OVERHEAD_BYTES),
      async begin() {
        // READ COMMITTED: the window's DELETE locks only the rows it deletes, not gaps other windows insert into.
        await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
        await conn.query('START TRANSACTION');
      },
      async lockWindow(id) {
        // A named lock on (table, window), held by the session: the connection ends with the commit or
        // abort, which releases it (so does RELEASE_LOCK there). Names are at most 64 characters: hashed.
        const [rows] = await conn.execute<mysql.RowDataPacket[]>(
          "SELECT GET_LOCK(CONCAT('sluice:', SHA1(?)), ?) AS got",
          [`${table}:${id}`, LOCK_WAIT_S],
        );
        if (Number(rows[0]?.got) !== 1) {
          throw core.sluiceError(
            'VERSION_CONFLICT',
            `mysql: another run of window ${id} of ${tableName} held its lock for ${LOCK_WAIT_S} s`,
          );
        }
        locked = true;
      },
      deleteWindow: async (column, id) =>
        void (await conn.execute(`DELETE FROM ${table} WHERE ${q(column)} = ?`, [id])),
      async insert(names, rows, conflictKeys, at) {
        const tuple = `(${names.map(() => '?').join(', ')})`;
        let sql = `INSERT INTO ${table} (${names.map(q).join(', ')}) VALUES ${rows.map(() => tuple).join(', ')}`;
        if (conflictKeys) {
          const lowerKeys = conflictKeys.map((k) => k.toLowerCase());
          const updates = names
            .filter((c) => !lowerKeys.includes(c.toLowerCase()))
            .map((c) => `${q(c)} = VALUES(${q(c)})`);
          sql += ` ON DUPLICATE KEY UPDATE ${updates.length > 0 ? updates.join(', ') : `${q(conflictKeys[0]!)} = ${q(conflictKeys[0]!)}`}`;
        }
        try {
          await conn.execute(sql, rows.flat() as never[]);
        } catch (err) {
          throw atRow(err, rows.length, at);
        }
      },
      async create(specs, primaryKey) {
        const defs = specs.map((s) => `${q(s.name)} ${core.inferColumnType(s, TYPES)}`);
        if (primaryKey.length > 0) defs.push(`PRIMARY KEY (${primaryKey.map(q).join(', ')})`);
        for (const s of specs.filter((x) => x.window)) defs.push(`INDEX (${q(s.name)})`);
        await conn.query(`CREATE TABLE ${table} (${defs.join(', ')}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
        const created = await describe(conn, cfg.table);
        if (!created)
          throw core.sluiceError('FAILED_PRECONDITION', `mysql: table ${tableName} was created but cannot be found`);
        return created;
      },
      commit: async () => void (await conn.query('COMMIT')),
      rollback: async () => void (await conn.query('ROLLBACK')),
      async release() {
        if (locked) await conn.query('DO RELEASE_ALL_LOCKS()').catch(() => {});
        await conn.end().catch(() => conn.destroy());
      },
      convert,
      mapError: (err, doing) => mapError(err, doing, cfg.url),
    };
    return core.windowWriter(session, cfg, window, columns, tableName);
  },

  flinkTableOptions({ role, options }) {
    return core.flinkOptions(DIALECT, FLINK_NAMES, role, options);
  },

  async flinkColumnTypes({ options, columns }, ctx) {
    const cfg = core.sourceConfig(DIALECT, options);
    const tableName = core.tableText(cfg.table, '`');
    const conn = await connect(cfg.url, cfg.connectTimeoutMs, ctx.signal);
    try {
      const where =
        cfg.table.length === 2 ? 'TABLE_SCHEMA = ? AND TABLE_NAME = ?' : 'TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?';
      const [rows] = await conn.execute<mysql.RowDataPacket[]>(
        `SELECT COLUMN_NAME AS name, DATA_TYPE AS type, COLUMN_TYPE AS columnType,
                CHARACTER_MAXIMUM_LENGTH AS charLength, NUMERIC_PRECISION AS \`precision\`, NUMERIC_SCALE AS scale,
                DATETIME_PRECISION AS dtPrecision
           FROM information_schema.COLUMNS WHERE ${where} ORDER BY ORDINAL_POSITION`,
        [...cfg.table],
      );
      if (rows.length === 0)
        throw core.sluiceError('FAILED_PRECONDITION', `the table ${tableName} does not exist (or has no columns)`);
      const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
      const meta = rows.map((r) => ({
        name: String(r.name),
        type: String(r.type).toLowerCase(),
        columnType: String(r.columnType).toLowerCase(),
        charLength: num(r.charLength),
        precision: num(r.precision),
        scale: num(r.scale),
        datetimePrecision: num(r.dtPrecision),
      }));
      return flinkColumnTypes(tableName, meta, columns, mysqlFlinkType, true);
    } catch (err) {
      throw core.isSluice(err) ? err : mapError(err, `reading the columns of ${tableName}`, cfg.url);
    } finally {
      conn.destroy();
    }
  },
});
