import pg from 'pg';
import { defineConnectorPlugin, invalidArgument, type SluiceError } from 'sluice/sdk';
import * as core from '../_sql/core.js';

/**
 * PostgreSQL source and sink. A read is one REPEATABLE READ, READ ONLY transaction on one connection,
 * paged by key (`WHERE <window> AND key > $last ORDER BY key LIMIT n`), so it sees one snapshot and
 * holds one page in memory. A write is one transaction: nothing is visible before commit.
 */

const DIALECT: core.Dialect = {
  name: 'postgres',
  protocols: ['postgres:', 'postgresql:'],
  exampleUrl: 'postgres://user:password@localhost:5432/database',
  quote: '"',
  jdbcPrefix: 'jdbc:postgresql:',
  defaultPort: 5432,
  qualifier: 'schema',
};

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

const q = (name: string) => core.quoteIdent(name, '"');

/**
 * Per-connection type parsers (the global pg parsers stay untouched): bigint as a number when it is
 * exact, timestamps as epoch ms (a timestamp without time zone is read as UTC), dates as `YYYY-MM-DD`.
 */
const PARSERS: Readonly<Record<number, (text: string) => unknown>> = {
  20: (text) => (Number.isSafeInteger(Number(text)) ? Number(text) : text),
  1082: (text) => text,
  1114: core.timestampTextToMs,
  1184: core.timestampTextToMs,
};
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    (format === 'binary' ? undefined : PARSERS[oid]) ??
    pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
]);
/** SQLSTATEs meaning the server is going away or full: retrying later may work. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '53400']);

/** A driver error as a SluiceError: UNAVAILABLE when the server cannot be reached; the password never shows. */
function mapError(err: unknown, doing: string, url: string): SluiceError {
  if (core.isSluice(err)) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
  const text = err instanceof Error ? err.message || err.name : String(err);
  const message = core.scrub(`postgres: ${doing}: ${text}`, url);
  if (
    NETWORK_CODES.has(code) ||
    code.startsWith('08') ||
    UNAVAILABLE_STATES.has(code) ||
    /connection terminated|connection timeout|timeout expired|not queryable|Client has encountered a connection error/i.test(
      text,
    )
  ) {
    return core.sluiceError('UNAVAILABLE', message, err);
  }
  if (code === '40001' || code === '40P01') return core.sluiceError('VERSION_CONFLICT', message, err);
  return core.sluiceError('FAILED_PRECONDITION', message, err);
}

async function connect(url: string, timeoutMs: number, signal: AbortSignal): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    types,
    application_name: 'sluice',
  });
  // A connection dropped while idle: the next query fails and says so; without a listener it would crash the process.
  client.on('error', () => {});
  const onAbort = () => void client.end().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
    // Timestamps cross the wire in UTC, and a timestamp without time zone is compared as UTC.
    await client.query("SET TIME ZONE 'UTC'");
    return client;
  } catch (err) {
    await client.end().catch(() => {});
    throw mapError(err, `cannot connect to ${core.redactUrl(url)}`, url);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** The table's columns and how values must be converted for them; undefined when it does not exist. */
async function describe(client: pg.Client, table: string): Promise<core.ColumnMap | undefined> {
  const found = await client.query<{ oid: number | null }>('SELECT to_regclass($1)::oid AS oid', [table]);
  const oid = found.rows[0]?.oid;
  if (oid === null || oid === undefined) return undefined;
  const res = await client.query<{ name: string; type: string; category: string }>(
    `SELECT a.attname AS name, t.typname AS type, t.typcategory AS category
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [oid],
  );
  return new Map(res.rows.map((r): [string, core.ColumnKind] => [r.name, kindOf(r.type, r.category)]));
}

function kindOf(type: string, category: string): core.ColumnKind {
  if (type === 'timestamp' || type === 'timestamptz') return 'timestamp';
  if (type === 'date') return 'date';
  if (type === 'json' || type === 'jsonb') return 'json';
  if (category === 'A') return 'array';
  return 'other';
}

const bigintsAsText = (_key: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

/** A row value as a bind parameter for a column of the kind: epoch ms into timestamps, JSON text into json. */
function convert(value: unknown, kind: core.ColumnKind): unknown {
  if (value === null || value === undefined) return null;
  if (kind === 'timestamp' || kind === 'date') {
    if (typeof value === 'number') return core.msToIso(value);
    if (value instanceof Date) return value.toISOString();
    return value;
  }
  // A string for a json column is taken as JSON text; anything else is serialised.
  if (kind === 'json') return typeof value === 'string' ? value : JSON.stringify(value, bigintsAsText);
  if (kind === 'array') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'object') return JSON.stringify(value, bigintsAsText);
  return value;
}

const TYPES: core.TypeNames = {
  integer: 'bigint',
  float: 'double precision',
  decimal: 'numeric',
  boolean: 'boolean',
  text: 'text',
  keyText: 'text',
  timestamp: 'timestamptz(3)',
  binary: 'bytea',
  keyBinary: 'bytea',
  json: 'jsonb',
  window: 'text NOT NULL',
};

const FLINK_NAMES: core.FlinkNames = {
  // Flink's Postgres dialect puts names into its SQL as they are: quoted here, they mean exactly what the reader reads.
  tableName: (parts) => core.quoteTable(parts, '"'),
  column: (name) => q(name),
  qualifierIsDatabase: false,
};

export default defineConnectorPlugin({
  roles: ['source', 'sink'],
  boundaryTypes: ['TIME', 'OFFSET'],
  sourceOptions: core.sourceSchema(DIALECT),
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
    const table = core.quoteTable(cfg.table, '"');
    const tableName = core.tableText(cfg.table, '"');
    const key = q(cfg.keyColumn);
    const stripKey = cfg.columns !== undefined && !cfg.columns.includes(cfg.keyColumn);
    const select = cfg.columns ? [...cfg.columns, ...(stripKey ? [cfg.keyColumn] : [])].map(q).join(', ') : '*';

    const client = await connect(cfg.url, cfg.connectTimeoutMs, ctx.signal);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      // The transaction's first statement takes its snapshot: every page reads the table as of now.
      // It also fails early when the table or a column does not exist.
      await client.query(`SELECT ${select} FROM ${table} LIMIT 0`);
    } catch (err) {
      await client.end().catch(() => {});
      throw mapError(err, `opening ${tableName}`, cfg.url);
    }

    // The window as conditions; `window` undefined: it cannot hold a row.
    let window: { sql: string[]; params: unknown[] } | undefined;
    if (scan.type === 'TIME') {
      const range = core.timeRange(scan);
      const tc = q(cfg.timeColumn!);
      if (range) {
        window = { sql: [], params: [] };
        window.params.push(core.msToIso(range.lower));
        window.sql.push(`${tc} >= $${window.params.length}`);
        if (range.upper !== undefined) {
          window.params.push(core.msToIso(range.upper));
          window.sql.push(`${tc} < $${window.params.length}`);
        }
      }
    } else {
      const range = core.keyRange(scan, INT8_MIN, INT8_MAX);
      if (range) {
        window = { sql: [`${key} IS NOT NULL`], params: [] };
        if (range.lower !== undefined) {
          window.params.push(range.lower.toString());
          window.sql.push(`${key} >= $${window.params.length}::int8`);
        }
        if (range.upper !== undefined) {
          window.params.push(range.upper.toString());
          window.sql.push(`${key} < $${window.params.length}::int8`);
        }
      }
    }
    // TIME: the window's smallest and largest key, so that paging by key stops at the window's end
    // instead of scanning the rest of the table for more matches.
    let keys: { min: unknown; max: unknown } | null | undefined = scan.type === 'TIME' ? undefined : null;

    return core.keysetReader(
      {
        keyField: () => cfg.keyColumn,
        async page(after) {
          if (!window) return [];
          if (keys === undefined) {
            const res = await client.query<{ lo: unknown; hi: unknown }>(
              `SELECT min(${key}) AS lo, max(${key}) AS hi FROM ${table} WHERE ${window.sql.join(' AND ')}`,
              window.params,
            );
            const row = res.rows[0];
            if (!row || row.lo === null || row.hi === null) {
              window = undefined;
              return [];
            }
            keys = { min: row.lo, max: row.hi };
          }
          const params = [...window.params];
          const param = (v: unknown) => {
            params.push(v);
            return `$${params.length}`;
          };
          const where = [...window.sql];
          if (keys) {
            where.push(`${key} <= ${param(keys.max)}`);
            if (!after) where.push(`${key} >= ${param(keys.min)}`);
          }
          if (after) where.push(`${key} > ${param(after.value)}`);
          const res = await client.query(
            `SELECT ${select} FROM ${table} WHERE ${where.join(' AND ')} ORDER BY ${key} LIMIT ${cfg.batchSize}`,
            params,
          );
          return res.rows as Record<string, unknown>[];
        },
        async close() {
          await client.query('ROLLBACK').catch(() => {});
          await client.end().catch(() => {});
        },
        mapError: (err, doing) => mapError(err, `${doing} of ${tableName}`, cfg.url),
      },
      cfg.batchSize,
      stripKey,
    );
  },

  async openWriter({ options, window }, ctx) {
    const cfg = core.sinkConfig(DIALECT, options);
    const table = core.quoteTable(cfg.table, '"');
    const tableName = core.tableText(cfg.table, '"');
    const client = await connect(cfg.url, cfg.connectTimeoutMs, ctx.signal);
    let columns: core.ColumnMap | undefined;
    try {
      columns = await describe(client, table);
    } catch (err) {
      await client.end().catch(() => {});
      throw mapError(err, `looking up ${tableName}`, cfg.url);
    }
    const problem = !columns
      ? cfg.createTable
        ? undefined
        : `table ${tableName} does not exist; create it, or set createTable`
      : [...(cfg.windowColumn ? [cfg.windowColumn] : []), ...(cfg.mode === 'upsert' ? cfg.keyColumns : [])]
          .filter((c) => !columns!.has(c))
          .map(
            (c) =>
              `table ${tableName} has no column ${JSON.stringify(c)} (${c === cfg.windowColumn ? 'the window column: add it as text, or set windowColumn' : 'a key column'})`,
          )[0];
    if (problem) {
      await client.end().catch(() => {});
      throw core.sluiceError('FAILED_PRECONDITION', `postgres: ${problem}`);
    }

    const session: core.WriterSession = {
      caseInsensitive: false,
      transactionalDdl: true,
      maxParams: 65_535,
      begin: async () => void (await client.query('BEGIN')),
      // A transaction-level advisory lock on (table, window): released by COMMIT or ROLLBACK.
      lockWindow: async (id) =>
        void (await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`sluice:${table}:${id}`])),
      deleteWindow: async (column, id) =>
        void (await client.query(`DELETE FROM ${table} WHERE ${q(column)} = $1`, [id])),
      async insert(names, rows, conflictKeys) {
        const params: unknown[] = [];
        const tuples = rows.map((row) => `(${row.map((v) => `$${params.push(v)}`).join(', ')})`);
        let sql = `INSERT INTO ${table} (${names.map(q).join(', ')}) VALUES ${tuples.join(', ')}`;
        if (conflictKeys) {
          const updates = names.filter((c) => !conflictKeys.includes(c)).map((c) => `${q(c)} = EXCLUDED.${q(c)}`);
          sql += ` ON CONFLICT (${conflictKeys.map(q).join(', ')}) DO ${updates.length > 0 ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING'}`;
        }
        await client.query(sql, params);
      },
      async create(specs, primaryKey) {
        const defs = specs.map((s) => `${q(s.name)} ${core.inferColumnType(s, TYPES)}`);
        if (primaryKey.length > 0) defs.push(`PRIMARY KEY (${primaryKey.map(q).join(', ')})`);
        await client.query(`CREATE TABLE ${table} (${defs.join(', ')})`);
        for (const s of specs.filter((x) => x.window)) await client.query(`CREATE INDEX ON ${table} (${q(s.name)})`);
        const created = await describe(client, table);
        if (!created)
          throw core.sluiceError('FAILED_PRECONDITION', `postgres: table ${tableName} was created but cannot be found`);
        return created;
      },
      async commit() {
        // COMMIT of a failed transaction answers ROLLBACK instead of an error.
        const res = await client.query('COMMIT');
        if (res.command === 'ROLLBACK')
          throw core.sluiceError(
            'FAILED_PRECONDITION',
            `postgres: the transaction writing ${tableName} failed and was rolled back`,
          );
      },
      rollback: async () => void (await client.query('ROLLBACK')),
      release: () => client.end(),
      convert,
      mapError: (err, doing) => mapError(err, doing, cfg.url),
    };
    return core.windowWriter(session, cfg, window, columns, tableName);
  },

  flinkTableOptions({ role, options }) {
    return core.flinkOptions(DIALECT, FLINK_NAMES, role, options);
  },
});
