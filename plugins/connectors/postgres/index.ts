import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { type JsonSchema, defineConnectorPlugin, invalidArgument, type SluiceError } from 'sluice/sdk';
import * as core from '../_sql/core.js';
import { type ColumnMeta, flinkColumnTypes, postgresFlinkType } from '../_sql/flink-types.js';
import { stringifyJsonExact } from '../_sql/values.js';
import { copyReader } from './copy-reader.js';
import * as idle from './idle-pool.js';
import { COPY_TEXT_FORM, CopyText } from './copy-text.js';
import { arrayLiteral, copyField, numberText, timestampInput, timestampText, types } from './values.js';

/**
 * PostgreSQL source and sink. A read is one REPEATABLE READ, READ ONLY transaction on one connection:
 * one `COPY (SELECT … ORDER BY key) TO STDOUT` streamed batch by batch, or (readMethod `keyset`, or when
 * the server refuses COPY) pages by key (`WHERE <window> AND key > $last ORDER BY key LIMIT n`); either
 * way it sees one snapshot and holds one batch in memory. A write is one transaction: nothing is visible
 * before commit; replace-window rows go in by `COPY FROM STDIN`, upserts as multi-row INSERTs.
 */

const DIALECT: core.Dialect = {
  name: 'postgres',
  protocols: ['postgres:', 'postgresql:'],
  exampleUrl: 'postgres://user:password@localhost:5432/database',
  quote: '"',
  jdbcPrefix: 'jdbc:postgresql:',
  defaultPort: 5432,
  qualifier: 'schema',
  // A batch lives until the sink has written all of it. At 5000 rows it outlived two young-generation
  // collections of a job thread (young generation capped at 24 MiB), so nearly every row read was
  // promoted and collected by the old generation: a mark-compact every 100-300 ms, and a heap that
  // overshot as far as the concurrent marker lagged on a busy machine. At 1000 rows (the sink's own
  // batch) few rows are promoted. docs/benchmarks.md, "Flat memory".
  sourceBatchSize: 1000,
};

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;
/**
 * Past the last instant a JavaScript Date holds (year 275760): a TIME bound from the year 10000 on still
 * limits the window, as PostgreSQL timestamps hold later years (the sink writes them).
 */
const TIME_LIMIT_MS = 8.64e15 + 1;

const q = (name: string) => core.quoteIdent(name, '"');

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
  if (err instanceof core.ValueError) return core.valueFailure(DIALECT, doing, err, url);
  const names: string[] = [];
  let located = false;
  if (err instanceof core.AtRow) {
    located = true;
    names.push(err.at);
    err = err.error;
  }
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
  // Shortened (a refused value is quoted whole: a huge text into a timestamp column), after the password
  // is out: a cut through it would leave a part that scrub no longer finds.
  const text = core.shortenMessage(core.scrub(err instanceof Error ? err.message || err.name : String(err), url));
  // The names the server gives, which its message leaves out (not its detail: "Failing row contains" a whole row).
  const fields = err as Partial<Record<'table' | 'column' | 'constraint' | 'where', unknown>> | undefined;
  // A COPY line the writer could not place in the window (none it wrote): the line as the server counts it.
  const copyAt = located ? null : copyContext(fields?.where);
  if (copyAt)
    names.push([`line ${copyAt.line}`, ...(copyAt.column === undefined ? [] : [`column ${copyAt.column}`])].join(', '));
  for (const k of ['table', 'column', 'constraint'] as const) {
    const v = fields?.[k];
    if (typeof v === 'string' && v !== '') names.push(`${k} ${v}`);
  }
  const message = core.scrub(`postgres: ${doing}: ${text}${names.length ? ` (${names.join(', ')})` : ''}`, url);
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

/**
 * The line (from 1, within its COPY) and the column a COPY FROM error's context names: `COPY t, line 3,
 * column n: "abc"`, `…, column n: null input`, or only the line (`COPY t, line 3: "<the line>"`, a
 * constraint, or `COPY t, line 3` for an index entry of a buffered multi-row insert). What comes after
 * the column is left out: the value or the whole line, which may be huge. Searched line by line: a
 * function the row called (a trigger, a check) puts its own context before the COPY's.
 */
function copyContext(where: unknown): { line: number; column?: string } | undefined {
  const m = typeof where === 'string' ? /^COPY .+?, line (\d+)(?:, column (.+?))?(?:: |$)/m.exec(where) : null;
  return m ? { line: Number(m[1]), ...(m[2] === undefined ? {} : { column: m[2] }) } : undefined;
}

/** A run of lines of one COPY: the statement rows an insert call wrote, from the COPY's line `line`. */
interface CopyLines {
  readonly line: number;
  readonly count: number;
  readonly at: core.StatementRows;
}

/**
 * A COPY FROM error naming a line, with the column and the row of the window it stands for: a COPY
 * counts the lines it was sent from 1 (no header: the writer sends none), and one COPY takes the rows of
 * many batches, or of part of one (a new COPY for every run of rows with other columns). Other errors as
 * they are.
 */
function atCopyLine(err: unknown, runs: readonly CopyLines[]): unknown {
  const at = copyContext((err as { where?: unknown } | null)?.where);
  if (!at) return err;
  const run = runs.findLast((r) => r.line <= at.line);
  if (!run || at.line >= run.line + run.count) return err;
  const row = run.at.row(at.line - run.line);
  return new core.AtRow(
    err,
    [...(at.column === undefined ? [] : [`column ${at.column}`]), core.windowRow(row, run.at.before)].join(', '),
  );
}

/**
 * A server error naming a bind parameter (a value its column's input function refused: `unnamed portal
 * parameter $7`), with the column and the row (by its key values) it stands for; other errors as they are.
 */
function atParameter(
  err: unknown,
  names: readonly string[],
  rows: readonly (readonly unknown[])[],
  keys: readonly string[],
): unknown {
  const where = (err as { where?: unknown } | null)?.where;
  const m = typeof where === 'string' ? /\bparameter \$(\d+)\b/.exec(where) : null;
  if (!m) return err;
  const n = Number(m[1]) - 1;
  const row = rows[Math.floor(n / names.length)];
  if (!row) return err;
  const key = keys.map((k) => `${k} = ${core.describeReceived(row[names.indexOf(k)])}`).join(', ');
  return new core.AtRow(err, `column ${names[n % names.length]}, the row with ${key}`);
}

// Timestamps cross the wire in UTC, and a timestamp without time zone is compared as UTC. Dates and
// intervals in one text form whatever the server's defaults: a value passed on as COPY text from one
// server is read by another's input function as it was meant. extra_float_digits 3 (the default since
// PostgreSQL 12, but a server, database or role may set less) prints every float exactly: at 0, float8
// 0.30000000000000004 is printed, and so read, as 0.3.
const SESSION_SETTINGS =
  "SET TIME ZONE 'UTC'; SET DateStyle TO ISO, YMD; SET IntervalStyle TO postgres; SET extra_float_digits = 3";

/**
 * A connection for one job: one a finished job left (idle-pool.ts), checked by setting the session
 * settings again, or a new one. Give it back with idle.give (kept when clean) or end it.
 */
async function connect(url: string, timeoutMs: number, signal: AbortSignal): Promise<pg.Client> {
  const target = core.assertAllowed(DIALECT, url);
  for (let reused = idle.take(url); reused; reused = idle.take(url)) {
    if (signal.aborted) {
      void idle.give(url, reused);
      break;
    }
    try {
      await reused.query(SESSION_SETTINGS);
      return reused;
    } catch {
      // Dropped while it was kept (server restart, idle timeout on the server): try the next, or a new one.
      await reused.end().catch(() => {});
    }
  }
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    types,
    application_name: 'sluice',
  });
  // A connection dropped while idle: the next query fails and says so; without a listener it would crash the process.
  client.on('error', () => {});
  idle.watch(client);
  const onAbort = () => void client.end().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
    await client.query(SESSION_SETTINGS);
    return client;
  } catch (err) {
    await client.end().catch(() => {});
    // A server that answered as PostgreSQL (a SQLSTATE: bad password, unknown database) says so; anything
    // else (refused, timed out, reset, another protocol) is one message, so ports cannot be told apart.
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('08'))
      throw mapError(err, `cannot connect to ${core.redactUrl(url)}`, url);
    throw core.couldNotConnect(DIALECT, target, err);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** A table's columns: how values must be converted for each, and each one's type OID. */
interface TableColumns {
  readonly kinds: core.ColumnMap;
  readonly oids: ReadonlyMap<string, number>;
}

/** The table's columns and how values must be converted for them; undefined when it does not exist. */
async function describe(client: pg.Client, table: string): Promise<TableColumns | undefined> {
  const found = await client.query<{ oid: number | null }>('SELECT to_regclass($1)::oid AS oid', [table]);
  const oid = found.rows[0]?.oid;
  if (oid === null || oid === undefined) return undefined;
  const res = await client.query<{ name: string; type: string; category: string; oid: number }>(
    `SELECT a.attname AS name, t.typname AS type, t.typcategory AS category, a.atttypid::int4 AS oid
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [oid],
  );
  return {
    kinds: new Map(res.rows.map((r): [string, core.ColumnKind] => [r.name, kindOf(r.type, r.category)])),
    oids: new Map(res.rows.map((r) => [r.name, r.oid])),
  };
}

function kindOf(type: string, category: string): core.ColumnKind {
  if (type === 'timestamp' || type === 'timestamptz') return 'timestamp';
  if (type === 'date') return 'date';
  if (type === 'json' || type === 'jsonb') return 'json';
  if (category === 'A') return 'array';
  return 'other';
}

/**
 * A row value as a bind parameter (or COPY field) for a column of the kind: epoch ms into timestamps, JSON
 * text into json, arrays as array literals (elements exact: JSON as read, -0 kept), -0 as '-0'.
 */
function convert(value: unknown, kind: core.ColumnKind): unknown {
  if (value === null || value === undefined) return null;
  // Left for insert, which knows the column's type: as it is, or as the value a plain read gives.
  if (value instanceof CopyText) return value;
  if (kind === 'timestamp' || kind === 'date') {
    if (typeof value === 'number') return timestampText(value);
    if (value instanceof Date) return timestampText(core.dateMs(value));
    if (typeof value === 'string') return timestampInput(value);
    return value;
  }
  // A string for a json column is taken as JSON text; anything else is serialised.
  if (kind === 'json') return typeof value === 'string' ? value : stringifyJsonExact(value);
  // node-postgres' own array literal prints -0 as 0 and JSON elements re-serialised: ours keeps both.
  if (kind === 'array') return Array.isArray(value) ? arrayLiteral(value) : value;
  // node-postgres prints -0 as 0.
  if (typeof value === 'number') return Object.is(value, -0) ? numberText(value) : value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return timestampText(core.dateMs(value));
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'object') return stringifyJsonExact(value);
  return value;
}

const TYPES: core.TypeNames = {
  integer: 'bigint',
  float: 'double precision',
  decimal: 'numeric',
  boolean: 'boolean',
  text: 'text',
  keyText: 'text',
  timestamp: 'timestamptz',
  binary: 'bytea',
  keyBinary: 'bytea',
  json: 'jsonb',
  window: 'text NOT NULL',
};

/** The shared SQL source options, plus how a window is read. */
const SOURCE_SCHEMA: JsonSchema = (() => {
  const base = core.sourceSchema(DIALECT);
  return {
    ...base,
    properties: {
      ...base.properties,
      readMethod: {
        type: 'string',
        enum: ['copy', 'keyset'],
        default: 'copy',
        description:
          "'copy': the window is one COPY (SELECT ... ORDER BY keyColumn) TO STDOUT, streamed batchSize rows at a time (falls back to keyset when the server refuses COPY). 'keyset': one query per batch, WHERE key > last ORDER BY key LIMIT batchSize.",
      },
    },
  };
})();

const FLINK_NAMES: core.FlinkNames = {
  // Flink's Postgres dialect puts names into its SQL as they are: quoted here, they mean exactly what the reader reads.
  tableName: (parts) => core.quoteTable(parts, '"'),
  column: (name) => q(name),
  qualifierIsDatabase: false,
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
    const table = core.quoteTable(cfg.table, '"');
    const tableName = core.tableText(cfg.table, '"');
    const key = q(cfg.keyColumn);
    const stripKey = cfg.columns !== undefined && !cfg.columns.includes(cfg.keyColumn);
    const select = cfg.columns ? [...cfg.columns, ...(stripKey ? [cfg.keyColumn] : [])].map(q).join(', ') : '*';

    const client = await connect(cfg.url, cfg.connectTimeoutMs, ctx.signal);
    let fields: readonly { name: string; dataTypeID: number }[];
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      // The transaction's first statement takes its snapshot: every page reads the table as of now.
      // It also fails early when the table or a column does not exist, and gives the columns' types.
      fields = (await client.query(`SELECT ${select} FROM ${table} LIMIT 0`)).fields;
    } catch (err) {
      await client.end().catch(() => {});
      throw mapError(err, `opening ${tableName}`, cfg.url);
    }

    // The window as conditions, values through `bind` (a parameter, or a literal inside COPY);
    // undefined: the window cannot hold a row.
    const windowSql = (bind: (value: string, cast: string) => string): string[] | undefined => {
      if (scan.type === 'TIME') {
        const range = core.timeRange(scan, TIME_LIMIT_MS);
        if (!range) return undefined;
        const tc = q(cfg.timeColumn!);
        // timestampText, not ISO: PostgreSQL misreads JavaScript's expanded year (`+010000-…`) as a zone.
        const sql = [`${tc} >= ${bind(timestampText(range.lower), '')}`];
        if (range.upper !== undefined) sql.push(`${tc} < ${bind(timestampText(range.upper), '')}`);
        return sql;
      }
      const range = core.keyRange(scan, INT8_MIN, INT8_MAX);
      if (!range) return undefined;
      const sql = [`${key} IS NOT NULL`];
      if (range.lower !== undefined) sql.push(`${key} >= ${bind(range.lower.toString(), '::int8')}`);
      if (range.upper !== undefined) sql.push(`${key} < ${bind(range.upper.toString(), '::int8')}`);
      return sql;
    };
    const mapErr = (err: unknown, doing: string) => mapError(err, `${doing} of ${tableName}`, cfg.url);
    // real and double precision: createTable makes them floating point whatever the values (markFloatColumns).
    const floatColumns = new Set(fields.filter((f) => f.dataTypeID === 700 || f.dataTypeID === 701).map((f) => f.name));
    // Read or not, the snapshot's transaction is rolled back and the connection kept for the next job;
    // one left in a COPY (abandoned) or that failed is closed.
    const end = async (abandoned: boolean) => {
      if (
        abandoned ||
        !(await client.query('ROLLBACK').then(
          () => true,
          () => false,
        ))
      )
        await client.end().catch(() => {});
      else await idle.give(cfg.url, client);
    };

    if (options.readMethod !== 'keyset') {
      const literal = (v: string, cast: string) => `'${v.replaceAll("'", "''")}'${cast}`;
      const where = windowSql(literal) ?? ['false'];
      const sql = `COPY (SELECT ${select} FROM ${table} WHERE ${where.join(' AND ')} ORDER BY ${key}) TO STDOUT`;
      // A server that refuses COPY (a pooler, a proxy, a restricted role) gets the keyset reader instead;
      // the savepoint keeps the snapshot usable after the refusal.
      let refused = false;
      try {
        await client.query('SAVEPOINT sluice_copy');
        await client.query(`COPY (SELECT ${select} FROM ${table} LIMIT 0) TO STDOUT`);
        await client.query('RELEASE SAVEPOINT sluice_copy');
      } catch (err) {
        refused = true;
        const rolled = await client.query('ROLLBACK TO SAVEPOINT sluice_copy').then(
          () => true,
          () => false,
        );
        if (!rolled) {
          await end(false);
          throw mapErr(err, 'opening a COPY');
        }
        ctx.logger.info('postgres: COPY refused, reading by keyset pages', {
          table: tableName,
          reason: err instanceof Error ? err.message : String(err),
        });
      }
      if (!refused)
        return copyReader(client, {
          sql,
          fields,
          keyColumn: cfg.keyColumn,
          stripKey,
          batchSize: cfg.batchSize,
          floatColumns,
          close: end,
          mapError: mapErr,
        });
    }

    const params: unknown[] = [];
    let window = windowSql((v, cast) => `$${params.push(v)}${cast}`);
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
              `SELECT min(${key}) AS lo, max(${key}) AS hi FROM ${table} WHERE ${window.join(' AND ')}`,
              params,
            );
            const row = res.rows[0];
            if (!row || row.lo === null || row.hi === null) {
              window = undefined;
              return [];
            }
            keys = { min: row.lo, max: row.hi };
          }
          const pageParams = [...params];
          const param = (v: unknown) => {
            pageParams.push(v);
            return `$${pageParams.length}`;
          };
          const where = [...window];
          if (keys) {
            where.push(`${key} <= ${param(keys.max)}`);
            if (!after) where.push(`${key} >= ${param(keys.min)}`);
          }
          if (after) where.push(`${key} > ${param(after.value)}`);
          const res = await client.query(
            `SELECT ${select} FROM ${table} WHERE ${where.join(' AND ')} ORDER BY ${key} LIMIT ${cfg.batchSize}`,
            pageParams,
          );
          return res.rows as Record<string, unknown>[];
        },
        close: () => end(false),
        mapError: mapErr,
      },
      cfg.batchSize,
      stripKey,
      floatColumns,
    );
  },

  async openWriter({ options, window }, ctx) {
    const cfg = core.sinkConfig(DIALECT, options);
    const table = core.quoteTable(cfg.table, '"');
    const tableName = core.tableText(cfg.table, '"');
    const client = await connect(cfg.url, cfg.connectTimeoutMs, ctx.signal);
    let described: TableColumns | undefined;
    try {
      described = await describe(client, table);
    } catch (err) {
      await client.end().catch(() => {});
      throw mapError(err, `looking up ${tableName}`, cfg.url);
    }
    let columns = described?.kinds;
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

    // Values the reader passed on as COPY text: how many went in as they came, how many were converted
    // because the column's type differs (reported at commit; the fidelity test checks the path by them).
    let asReceived = 0;
    let converted = 0;
    /** A CopyText for a column of another type: the value a plain read gives, converted for the column. */
    const materialise = (v: CopyText, name: string): unknown => {
      converted++;
      return convert(v.value(), columns?.get(name) ?? 'other');
    };
    const upsert = async (names: readonly string[], rows: readonly (readonly unknown[])[], keys: readonly string[]) => {
      // Bind parameters take plain values. No CopyText reaches an upsert (nativeForm is offered only in
      // replace-window mode); one that did would still be written as the value a plain read gives.
      rows = rows.map((row) => row.map((v, i) => (v instanceof CopyText ? materialise(v, names[i]!) : v)));
      // At most 65535 bind parameters per statement.
      const per = Math.max(1, Math.floor(65_535 / names.length));
      const updates = names.filter((c) => !keys.includes(c)).map((c) => `${q(c)} = EXCLUDED.${q(c)}`);
      const conflict = ` ON CONFLICT (${keys.map(q).join(', ')}) DO ${updates.length > 0 ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING'}`;
      for (let i = 0; i < rows.length; i += per) {
        const params: unknown[] = [];
        const statement = rows.slice(i, i + per);
        const tuples = statement.map((row) => `(${row.map((v) => `$${params.push(v)}`).join(', ')})`);
        try {
          await client.query(
            `INSERT INTO ${table} (${names.map(q).join(', ')}) VALUES ${tuples.join(', ')}${conflict}`,
            params,
          );
        } catch (err) {
          throw atParameter(err, names, statement, keys);
        }
      }
    };
    // The open COPY of replace-window rows: one per run of rows with the same columns; `lines`: the
    // window's rows it was sent, to say which one a refusal of a line is about.
    let copy:
      { columns: string; stream: ReturnType<typeof copyFrom>; done: Promise<void>; lines: CopyLines[] } | undefined;
    const endCopy = async () => {
      if (!copy) return;
      const { stream, done } = copy;
      copy = undefined;
      stream.end();
      await done;
    };
    const session: core.WriterSession = {
      caseInsensitive: false,
      transactionalDdl: true,
      // COPY takes no parameters: a write's rows go in whole (upserts are cut by maxParams themselves).
      maxParams: Number.MAX_SAFE_INTEGER,
      begin: async () => void (await client.query('BEGIN')),
      // A transaction-level advisory lock on (table, window): released by COMMIT or ROLLBACK.
      lockWindow: async (id) =>
        void (await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`sluice:${table}:${id}`])),
      deleteWindow: async (column, id) =>
        void (await client.query(`DELETE FROM ${table} WHERE ${q(column)} = $1`, [id])),
      async insert(names, rows, conflictKeys, at) {
        if (conflictKeys) {
          await endCopy();
          await upsert(names, rows, conflictKeys);
          return;
        }
        // Rows of the window go straight into the table by COPY, inside the window's transaction (after
        // its DELETE): nothing shows before commit, and each row is written once.
        const columns = names.map(q).join(', ');
        if (copy?.columns !== columns) await endCopy();
        if (!copy) {
          const stream = client.query(copyFrom(`COPY ${table} (${columns}) FROM STDIN`));
          const lines: CopyLines[] = [];
          const done = new Promise<void>((resolve, reject) => {
            stream.on('finish', resolve);
            // The refusal may come with a later batch, or at commit: placed by the lines sent until then.
            stream.on('error', (err) => reject(atCopyLine(err, lines)));
          });
          done.catch(() => {});
          copy = { columns, stream, done, lines };
        }
        const last = copy.lines.at(-1);
        copy.lines.push({ line: last ? last.line + last.count : 1, count: rows.length, at });
        // The type of each column written: a CopyText of the same type goes in as its text.
        const oids = names.map((n) => described?.oids.get(n));
        let text = '';
        for (const row of rows) {
          let line = '';
          for (let i = 0; i < row.length; i++) {
            const v = row[i];
            let field: string;
            if (v instanceof CopyText) {
              if (v.oid === oids[i]) {
                asReceived++;
                field = v.field;
              } else field = copyField(materialise(v, names[i]!));
            } else field = copyField(v);
            line += (i === 0 ? '' : '\t') + field;
          }
          text += `${line}\n`;
        }
        const { stream, done } = copy;
        // Backpressure: wait until the socket has taken what is buffered (or the COPY failed).
        if (!stream.write(text)) await Promise.race([new Promise((r) => stream.once('drain', r)), done]);
      },
      async create(specs, primaryKey) {
        const defs = specs.map((s) => `${q(s.name)} ${core.inferColumnType(s, TYPES)}`);
        if (primaryKey.length > 0) defs.push(`PRIMARY KEY (${primaryKey.map(q).join(', ')})`);
        await client.query(`CREATE TABLE ${table} (${defs.join(', ')})`);
        for (const s of specs.filter((x) => x.window)) await client.query(`CREATE INDEX ON ${table} (${q(s.name)})`);
        described = await describe(client, table);
        if (!described)
          throw core.sluiceError('FAILED_PRECONDITION', `postgres: table ${tableName} was created but cannot be found`);
        columns = described.kinds;
        return columns;
      },
      async commit() {
        await endCopy();
        if (asReceived + converted > 0)
          ctx.logger.debug('postgres: values passed on as COPY text', { table: tableName, asReceived, converted });
        // COMMIT of a failed transaction answers ROLLBACK instead of an error.
        const res = await client.query('COMMIT');
        if (res.command === 'ROLLBACK')
          throw core.sluiceError(
            'FAILED_PRECONDITION',
            `postgres: the transaction writing ${tableName} failed and was rolled back`,
          );
      },
      async rollback() {
        if (copy) {
          // CopyFail: the server ends the COPY with an error, the transaction is then rolled back.
          const { stream, done } = copy;
          copy = undefined;
          stream.destroy(new Error('window aborted'));
          await done.catch(() => {});
        }
        await client.query('ROLLBACK');
      },
      // Kept for the next job when the transaction ended (committed or rolled back); closed otherwise.
      release: () => idle.give(cfg.url, client),
      convert,
      mapError: (err, doing) => mapError(err, doing, cfg.url),
    };
    const writer = core.windowWriter(session, cfg, window, columns, tableName);
    // Values as the PostgreSQL reader's COPY text, only where they go into COPY FROM as they are: into a
    // table that exists (createTable infers column types from values) in replace-window mode (an upsert
    // binds parameters and compares keys).
    return columns && cfg.mode === 'replace-window' ? { ...writer, nativeForm: COPY_TEXT_FORM } : writer;
  },

  flinkTableOptions({ role, options }) {
    return core.flinkOptions(DIALECT, FLINK_NAMES, role, options);
  },

  async flinkColumnTypes({ options, columns }, ctx) {
    const cfg = core.sourceConfig(DIALECT, options);
    const tableName = core.tableText(cfg.table, '"');
    const client = await connect(cfg.url, cfg.connectTimeoutMs, ctx.signal);
    try {
      // The table as the reader resolves it (search_path for an unqualified name), then its columns.
      const res = await client.query<Record<string, string | number | null>>(
        `SELECT c.column_name AS name, c.udt_name AS type, c.character_maximum_length AS char_length,
                c.numeric_precision AS precision, c.numeric_scale AS scale, c.datetime_precision AS dt_precision
           FROM information_schema.columns c
           JOIN pg_catalog.pg_class t ON t.relname = c.table_name
           JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace AND n.nspname = c.table_schema
          WHERE t.oid = to_regclass($1) ORDER BY c.ordinal_position`,
        [core.quoteTable(cfg.table, '"')],
      );
      if (res.rows.length === 0)
        throw core.sluiceError('FAILED_PRECONDITION', `the table ${tableName} does not exist (or has no columns)`);
      const rows = res.rows.map((r) => columnMeta(r));
      return flinkColumnTypes(tableName, rows, columns, postgresFlinkType, false);
    } catch (err) {
      throw core.isSluice(err) ? err : mapError(err, `reading the columns of ${tableName}`, cfg.url);
    } finally {
      await client.end().catch(() => {});
    }
  },
});

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** An information_schema.columns row (names as selected in flinkColumnTypes). */
function columnMeta(r: Record<string, unknown>): ColumnMeta {
  const type = String(r.type);
  return {
    name: String(r.name),
    type,
    columnType: type,
    charLength: num(r.char_length),
    precision: num(r.precision),
    scale: num(r.scale),
    datetimePrecision: num(r.dt_precision),
  };
}
