/**
 * The dialect-neutral half of the SQL connectors (postgres, mysql): options, bounds, identifiers, URLs,
 * timestamps, the keyset reader loop and the window writer's state machine. It lives in `_sql/`: the
 * plugin host skips folders whose name starts with `_`, so bundled plugins can share code without it
 * being taken for a plugin. Like the plugins, it imports only `sluice/sdk`.
 */
import {
  ERROR_CODES,
  SluiceError,
  applyDefaults,
  checkAllowedHost,
  describeValue,
  fieldError,
  floatColumnsOf,
  invalidArgument,
  markFloatColumns,
  type BoundedReader,
  type Boundaries,
  type FieldError,
  type JsonSchema,
  type Options,
  type Row,
  type WindowRef,
  type WindowWriter,
} from 'sluice/sdk';

/** Keys fillInBoundaries adds to the source options; openReader and flinkTableOptions read them. */
export const BOUND_TYPE = 'scan.boundary-type';
export const BOUND_LOWER = 'scan.lower';
export const BOUND_UPPER = 'scan.upper';

/** Window column used by replace-window mode when the option is not set. */
export const DEFAULT_WINDOW_COLUMN = 'sluice_window';

/** Exclusive upper limit of the timestamps the connectors convert (year 10000, epoch ms). */
export const MAX_TIME_MS = 253_402_300_800_000;

// ---------------------------------------------------------------------------------------------- options

export interface Dialect {
  /** Plugin id, for messages. */
  readonly name: string;
  /** URL schemes accepted, with the colon (`postgres:`). */
  readonly protocols: readonly string[];
  /** An example URL for descriptions and messages. */
  readonly exampleUrl: string;
  /** Identifier quote character. */
  readonly quote: string;
  /** JDBC URL prefix, e.g. `jdbc:postgresql:`. */
  readonly jdbcPrefix: string;
  readonly defaultPort: number;
  /** What the part before the table is called (schema / database). */
  readonly qualifier: string;
  /** The source's default `batchSize` (5000 when not set). */
  readonly sourceBatchSize?: number;
}

export function sourceSchema(d: Dialect): JsonSchema {
  return {
    type: 'object',
    required: ['url', 'table', 'keyColumn'],
    properties: {
      url: {
        type: 'string',
        minLength: 1,
        description: `Connection URL, e.g. ${d.exampleUrl} (user and password percent-encoded). Passwords never appear in messages.`,
        examples: [d.exampleUrl],
      },
      table: {
        type: 'string',
        minLength: 1,
        description: `Table to read, optionally qualified by its ${d.qualifier} (${d.qualifier}.table). Names are used exactly as written (case-sensitive where the database is); quote a part with ${d.quote} to put a dot in it.`,
      },
      keyColumn: {
        type: 'string',
        minLength: 1,
        description:
          'Unique, non-null column that grows with every insert, normally an integer primary key. OFFSET windows are ranges of it, and every read pages through the window in its order (keyset pagination). OFFSET windows need an integer column.',
      },
      timeColumn: {
        type: 'string',
        minLength: 1,
        description:
          'Timestamp column a TIME window filters on: rows with lower <= column < upper (epoch ms, UTC). Required for TIME windows.',
      },
      columns: {
        type: 'array',
        items: { type: 'string', minLength: 1, description: 'A column name, exactly as in the table.' },
        description:
          'Columns to read, in this order; default all columns (`*`). The key column is read in any case, and left out of the rows when not listed.',
      },
      batchSize: {
        type: 'integer',
        minimum: 1,
        maximum: 100_000,
        default: d.sourceBatchSize ?? 5000,
        description: 'Rows per page (one query each, `LIMIT batchSize`), and per batch handed to the sink.',
      },
      connectTimeoutMs: {
        type: 'integer',
        minimum: 100,
        maximum: 600_000,
        default: 10_000,
        description: 'How long to wait for a connection, in milliseconds, before the job fails as UNAVAILABLE.',
      },
      scanPartitions: {
        type: 'integer',
        minimum: 1,
        maximum: 1024,
        default: 1,
        description:
          'Flink runner only: how many key ranges an OFFSET window is read in, in parallel (scan.partition.num).',
      },
    },
  };
}

export function sinkSchema(d: Dialect): JsonSchema {
  return {
    type: 'object',
    required: ['url', 'table'],
    properties: {
      url: {
        type: 'string',
        minLength: 1,
        description: `Connection URL, e.g. ${d.exampleUrl} (user and password percent-encoded). Passwords never appear in messages.`,
        examples: [d.exampleUrl],
      },
      table: {
        type: 'string',
        minLength: 1,
        description: `Table to write, optionally qualified by its ${d.qualifier} (${d.qualifier}.table). Names are used exactly as written; quote a part with ${d.quote} to put a dot in it.`,
      },
      mode: {
        type: 'string',
        enum: ['replace-window', 'upsert'],
        default: 'replace-window',
        description:
          "'replace-window': one transaction deletes the rows an earlier run of the same window wrote (found by windowColumn) and inserts the new ones. 'upsert': insert, or update the row with the same keyColumns.",
      },
      windowColumn: {
        type: 'string',
        minLength: 1,
        description: `Text column that holds the window id of every row written (<groupId>/<streamId>/<boundaryType>:<lower>:<upper>). Default '${DEFAULT_WINDOW_COLUMN}' in replace-window mode; in upsert mode it is written only when set.`,
      },
      keyColumns: {
        type: 'array',
        items: { type: 'string', minLength: 1, description: 'A column name, exactly as in the table.' },
        description:
          'Upsert mode: the columns of the unique key a row is matched on (required for upsert). With createTable they become the primary key.',
      },
      createTable: {
        type: 'boolean',
        default: false,
        description:
          "Create the table when it does not exist, with columns typed from the first batch's values (and the window column). Create it yourself for control over types.",
      },
      batchSize: {
        type: 'integer',
        minimum: 1,
        maximum: 100_000,
        default: 1000,
        description:
          'Rows per INSERT statement (fewer when the rows are wide: at most 65535 parameters per statement).',
      },
      connectTimeoutMs: {
        type: 'integer',
        minimum: 100,
        maximum: 600_000,
        default: 10_000,
        description: 'How long to wait for a connection, in milliseconds, before the job fails as UNAVAILABLE.',
      },
    },
  };
}

export interface SourceConfig {
  readonly url: string;
  readonly table: readonly string[];
  readonly keyColumn: string;
  readonly timeColumn?: string;
  readonly columns?: readonly string[];
  readonly batchSize: number;
  readonly connectTimeoutMs: number;
  readonly scanPartitions: number;
}

export interface SinkConfig {
  readonly url: string;
  readonly table: readonly string[];
  readonly mode: 'replace-window' | 'upsert';
  /** The window column to fill, if any (always set in replace-window mode). */
  readonly windowColumn?: string;
  readonly keyColumns: readonly string[];
  readonly createTable: boolean;
  readonly batchSize: number;
  readonly connectTimeoutMs: number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const strs = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.map(String) : undefined);
const int = (v: unknown, fallback: number): number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : fallback;

function tableOf(d: Dialect, raw: unknown): string[] {
  const parsed = parseTableName(String(raw ?? ''), d.quote);
  if (typeof parsed === 'string') throw invalidArgument('options.table', parsed, raw);
  return parsed;
}

/** Typed source options, defaults filled in. Throws INVALID_ARGUMENT for what validate would report. */
export function sourceConfig(d: Dialect, options: Options): SourceConfig {
  const o = applyDefaults(sourceSchema(d), options);
  const url = str(o.url);
  if (!url) throw invalidArgument('options.url', `a connection URL like ${d.exampleUrl}`, o.url);
  const keyColumn = str(o.keyColumn);
  if (!keyColumn) throw invalidArgument('options.keyColumn', 'a column name', o.keyColumn);
  const timeColumn = str(o.timeColumn);
  const columns = strs(o.columns);
  return {
    url,
    table: tableOf(d, o.table),
    keyColumn,
    ...(timeColumn ? { timeColumn } : {}),
    ...(columns ? { columns } : {}),
    batchSize: int(o.batchSize, d.sourceBatchSize ?? 5000),
    connectTimeoutMs: int(o.connectTimeoutMs, 10_000),
    scanPartitions: int(o.scanPartitions, 1),
  };
}

/** Typed sink options, defaults filled in. Throws INVALID_ARGUMENT for what validate would report. */
export function sinkConfig(d: Dialect, options: Options): SinkConfig {
  const o = applyDefaults(sinkSchema(d), options);
  const url = str(o.url);
  if (!url) throw invalidArgument('options.url', `a connection URL like ${d.exampleUrl}`, o.url);
  const mode = o.mode === 'upsert' ? 'upsert' : 'replace-window';
  const keyColumns = strs(o.keyColumns) ?? [];
  if (mode === 'upsert' && keyColumns.length === 0)
    throw invalidArgument('options.keyColumns', 'at least one key column in upsert mode', o.keyColumns);
  const windowColumn = str(o.windowColumn) ?? (mode === 'replace-window' ? DEFAULT_WINDOW_COLUMN : undefined);
  return {
    url,
    table: tableOf(d, o.table),
    mode,
    ...(windowColumn ? { windowColumn } : {}),
    keyColumns,
    createTable: o.createTable === true,
    batchSize: int(o.batchSize, 1000),
    connectTimeoutMs: int(o.connectTimeoutMs, 10_000),
  };
}

function checkNames(path: string, names: readonly string[] | undefined, errors: FieldError[]): void {
  if (!names) return;
  const seen = new Set<string>();
  names.forEach((n, i) => {
    if (n.includes('\0')) errors.push(fieldError(`${path}[${i}]`, 'a column name without NUL characters', n));
    if (seen.has(n)) errors.push(fieldError(path, 'distinct column names', names));
    seen.add(n);
  });
}

function checkCommon(d: Dialect, o: Options, errors: FieldError[]): void {
  if (typeof o.url === 'string') {
    const url = parseDbUrl(d, o.url);
    if (typeof url === 'string')
      errors.push(fieldError('options.url', `a connection URL like ${d.exampleUrl} (${url})`, redactUrl(o.url)));
    else {
      const refused = checkTarget(d, url);
      if (refused) errors.push(refused);
    }
  }
  if (typeof o.table === 'string') {
    const t = parseTableName(o.table, d.quote);
    if (typeof t === 'string') errors.push(fieldError('options.table', t, o.table));
  }
  for (const key of ['keyColumn', 'timeColumn', 'windowColumn']) {
    const v = o[key];
    if (typeof v === 'string' && v.includes('\0'))
      errors.push(fieldError(`options.${key}`, 'a column name without NUL characters', v));
  }
}

/** The cross-field checks of the validate hook (the schema has accepted the options). */
export function validateOptions(d: Dialect, role: 'source' | 'sink', options: Options): FieldError[] {
  const errors: FieldError[] = [];
  checkCommon(d, options, errors);
  if (role === 'source') {
    checkNames('options.columns', strs(options.columns), errors);
  } else {
    const keys = strs(options.keyColumns);
    checkNames('options.keyColumns', keys, errors);
    if ((options.mode ?? 'replace-window') === 'upsert' && (!keys || keys.length === 0)) {
      errors.push(
        fieldError(
          'options.keyColumns',
          'at least one key column (upsert mode matches rows on them)',
          options.keyColumns,
        ),
      );
    }
    const wc = str(options.windowColumn);
    if (wc && keys?.includes(wc))
      errors.push(fieldError('options.windowColumn', 'a column that is not one of keyColumns', wc));
  }
  return errors;
}

// ------------------------------------------------------------------------------------------ identifiers

/**
 * Splits a table name into its parts: `table` or `qualifier.table`. A part is either bare (taken
 * literally, up to the next dot) or quoted with `quote` (a doubled quote stands for one), which is how
 * a dot gets into a name. Returns the parts, or what is wrong as a string.
 */
export function parseTableName(raw: string, quote: string): string[] | string {
  const expected = `a table name or qualifier.table (quote a part with ${quote} to put a dot in it)`;
  if (raw.includes('\0')) return `${expected}, without NUL characters`;
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = '';
    if (raw[i] === quote) {
      i++;
      for (;;) {
        if (i >= raw.length) return `${expected}; a quoted part is not closed`;
        if (raw[i] === quote) {
          if (raw[i + 1] === quote) {
            part += quote;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += raw[i];
        i++;
      }
      if (i < raw.length && raw[i] !== '.') return `${expected}; a quoted part must be followed by a dot or the end`;
    } else {
      const dot = raw.indexOf('.', i);
      const end = dot === -1 ? raw.length : dot;
      part = raw.slice(i, end);
      i = end;
    }
    if (part === '') return `${expected}; a part is empty`;
    parts.push(part);
    if (i >= raw.length) break;
    i++; // the dot
    if (i >= raw.length) return `${expected}; a part is empty`;
  }
  if (parts.length > 2) return `${expected}; at most two parts`;
  return parts;
}

export function quoteIdent(name: string, quote: string): string {
  return quote + name.split(quote).join(quote + quote) + quote;
}

export function quoteTable(parts: readonly string[], quote: string): string {
  return parts.map((p) => quoteIdent(p, quote)).join('.');
}

/** The table as the options would name it, for messages. */
export function tableText(parts: readonly string[], quote: string): string {
  return parts.map((p) => (p.includes('.') || p.startsWith(quote) ? quoteIdent(p, quote) : p)).join('.');
}

// ----------------------------------------------------------------------------------------------- bounds

const TIME_BOUND = /^(0|[1-9]\d*)$/;
const KEY_BOUND = /^-?(0|[1-9]\d*)$/;

/** A window as the reader applies it. */
export type Scan =
  | { readonly type: 'TIME'; readonly lower: number; readonly upper: number }
  | { readonly type: 'OFFSET'; readonly lower: bigint; readonly upper: bigint };

function parseTime(field: string, raw: string): number {
  if (!TIME_BOUND.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw invalidArgument(field, 'epoch milliseconds as a non-negative integer', raw);
  return Number(raw);
}

function parseKey(field: string, raw: string): bigint {
  if (!KEY_BOUND.test(raw)) throw invalidArgument(field, 'a key column value as a decimal integer', raw);
  return BigInt(raw);
}

/**
 * fillInBoundaries: pure. TIME bounds are epoch ms on timeColumn, OFFSET bounds are keyColumn values;
 * lower inclusive, upper exclusive. Adds the canonical bounds to the options.
 */
export function boundedOptions(d: Dialect, options: Options, b: Boundaries): Options {
  const withDefaults = applyDefaults(sourceSchema(d), options);
  let lower: string;
  let upper: string;
  if (b.boundaryType === 'TIME') {
    const lo = parseTime('boundaries.lower_bound', b.lowerBound);
    const hi = parseTime('boundaries.upper_bound', b.upperBound);
    if (lo > hi) throw invalidArgument('boundaries.upper_bound', `a bound >= the lower bound ${lo}`, b.upperBound);
    if (!str(withDefaults.timeColumn))
      throw invalidArgument(
        'options.timeColumn',
        'a timestamp column (a TIME window filters on it)',
        withDefaults.timeColumn,
      );
    [lower, upper] = [String(lo), String(hi)];
  } else if (b.boundaryType === 'OFFSET') {
    const lo = parseKey('boundaries.lower_bound', b.lowerBound);
    const hi = parseKey('boundaries.upper_bound', b.upperBound);
    if (lo > hi) throw invalidArgument('boundaries.upper_bound', `a bound >= the lower bound ${lo}`, b.upperBound);
    [lower, upper] = [lo.toString(), hi.toString()];
  } else {
    throw invalidArgument('boundaries.boundary_type', 'TIME or OFFSET', (b as { boundaryType: unknown }).boundaryType);
  }
  return { ...withDefaults, [BOUND_TYPE]: b.boundaryType, [BOUND_LOWER]: lower, [BOUND_UPPER]: upper };
}

/** The window of bounded options (from fillInBoundaries). */
export function scanOf(options: Options): Scan {
  const type = options[BOUND_TYPE];
  const lower = String(options[BOUND_LOWER] ?? '');
  const upper = String(options[BOUND_UPPER] ?? '');
  if (type === 'TIME')
    return {
      type,
      lower: parseTime(`options.${BOUND_LOWER}`, lower),
      upper: parseTime(`options.${BOUND_UPPER}`, upper),
    };
  if (type === 'OFFSET')
    return { type, lower: parseKey(`options.${BOUND_LOWER}`, lower), upper: parseKey(`options.${BOUND_UPPER}`, upper) };
  throw invalidArgument(`options.${BOUND_TYPE}`, 'bounded options, as fillInBoundaries returns them', type);
}

/**
 * A TIME window as conditions: `undefined` when it cannot hold a row; `upper` absent when no timestamp reaches it.
 * `limitMs`: the first instant the dialect's timestamps cannot hold (MySQL DATETIME: the year 10000).
 */
export function timeRange(
  scan: { lower: number; upper: number },
  limitMs = MAX_TIME_MS,
): { lower: number; upper?: number } | undefined {
  if (scan.upper <= scan.lower || scan.lower >= limitMs) return undefined;
  return scan.upper >= limitMs ? { lower: scan.lower } : { lower: scan.lower, upper: scan.upper };
}

/** An OFFSET window within the key type's range [min, max]: `undefined` when empty; a side is absent when every key passes it. */
export function keyRange(
  scan: { lower: bigint; upper: bigint },
  min: bigint,
  max: bigint,
): { lower?: bigint; upper?: bigint } | undefined {
  if (scan.upper <= scan.lower || scan.lower > max || scan.upper <= min) return undefined;
  return { ...(scan.lower > min ? { lower: scan.lower } : {}), ...(scan.upper <= max ? { upper: scan.upper } : {}) };
}

// -------------------------------------------------------------------------------------------- timestamps

const TS_TEXT = /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d(?::?\d\d){0,2})?$/;

/**
 * A database timestamp as text (`2024-05-01 12:00:00.123456+00`, or without zone, read as UTC) to epoch
 * ms, sub-millisecond digits dropped (rounded down). Text it cannot read (infinity, BC dates, MySQL's
 * zero dates) is returned unchanged.
 */
export function timestampTextToMs(text: string): number | string {
  const m = TS_TEXT.exec(text);
  if (!m) return text;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, Number(`${m[7] ?? ''}000`.slice(0, 3)));
  if (
    date.getUTCFullYear() !== y ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    h > 23 ||
    mi > 59 ||
    s > 59
  )
    return text;
  let ms = date.getTime();
  const zone = m[8];
  if (zone && zone !== 'Z') {
    const digits = zone.slice(1).replaceAll(':', '');
    const offset =
      (Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4) || 0) * 60 + Number(digits.slice(4, 6) || 0)) *
      1000;
    ms -= zone.startsWith('-') ? -offset : offset;
  }
  return Number.isFinite(ms) ? ms : text;
}

/** What a JavaScript Date holds: epoch ms within ±8.64e15 (the years -271821 to 275760). */
const DATE_MS = 'epoch milliseconds a JavaScript Date holds (within ±8640000000000000, the years -271821..275760)';

/**
 * Epoch ms to `YYYY-MM-DDTHH:MM:SS.sssZ` (UTC); outside the years 0..9999 JavaScript's expanded form
 * (`+010000-01-01T…`). A ValueError when no Date holds it.
 */
export function msToIso(ms: number): string {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) throw new ValueError(DATE_MS, ms);
  return date.toISOString();
}

/** Epoch ms to `YYYY-MM-DD HH:MM:SS.sss` (UTC), the form MySQL DATETIME takes; a ValueError outside the years 0..9999. */
export function msToSqlDateTime(ms: number): string {
  const date = new Date(ms);
  const iso = Number.isNaN(date.getTime()) ? '' : date.toISOString();
  // DATETIME has four-digit years: the expanded form of another year would be refused or misread.
  if (!/^\d{4}-/.test(iso))
    throw new ValueError('epoch milliseconds within the years 0000..9999 (what DATETIME holds)', ms);
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}

/** A Date's epoch ms; a ValueError for an invalid Date (no time to write). */
export function dateMs(date: Date): number {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new ValueError('a valid Date', date);
  return ms;
}

// ------------------------------------------------------------------------------------------------- URLs

export interface DbUrl {
  readonly host: string;
  readonly port?: number;
  readonly database?: string;
  readonly user?: string;
  readonly password?: string;
  /** The query string, with its `?`, or ''. */
  readonly search: string;
}

/** Parses a connection URL, or says what is wrong with it (never echoing the URL). */
export function parseDbUrl(d: Dialect, raw: string): DbUrl | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'the URL does not parse';
  }
  if (!d.protocols.includes(url.protocol)) return `scheme ${url.protocol} is not one of ${d.protocols.join(' ')}`;
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const database = decode(url.pathname.replace(/^\//, ''));
  return {
    host: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    ...(database ? { database } : {}),
    ...(url.username ? { user: decode(url.username) } : {}),
    ...(url.password ? { password: decode(url.password) } : {}),
    search: url.search,
  };
}

/**
 * Where a connection URL leads: host and port, or a unix socket (PostgreSQL's `?host=/path`, MySQL's
 * `?socketPath=`), which must be allowed as `unix:/path`.
 */
export function connectTarget(d: Dialect, u: DbUrl): { host: string; port: number } {
  const params = new URLSearchParams(u.search);
  const socket = params.get('host') ?? params.get('socketPath') ?? params.get('socket');
  if (socket && socket.startsWith('/')) return { host: socket, port: 0 };
  return { host: u.host || socket || 'localhost', port: u.port ?? d.defaultPort };
}

/** A field error (options.url) when SLUICE_ALLOWED_HOSTS does not allow where the URL leads; never more of the URL. */
export function checkTarget(d: Dialect, u: DbUrl): FieldError | undefined {
  const { host, port } = connectTarget(d, u);
  return checkAllowedHost(host, 'options.url', port === 0 ? undefined : port);
}

/**
 * Refuses to connect where SLUICE_ALLOWED_HOSTS does not allow (checked again at connect time: the policy
 * may be stricter than when the group was made). FAILED_PRECONDITION naming the host, not what is there.
 */
export function assertAllowed(d: Dialect, raw: string): { host: string; port: number } {
  const u = parseDbUrl(d, raw);
  if (typeof u === 'string')
    throw invalidArgument('options.url', `a connection URL like ${d.exampleUrl} (${u})`, redactUrl(raw));
  const target = connectTarget(d, u);
  const refused = checkTarget(d, u);
  if (refused)
    throw new SluiceError(
      ERROR_CODES.FAILED_PRECONDITION,
      `connecting to ${target.host}${target.port ? `:${target.port}` : ''} is not allowed: ${refused.expected}`,
      {
        field: 'options.url',
        expected: refused.expected,
        received: target.host,
      },
    );
  return target;
}

/**
 * One message for every way a connection can fail before the server answered as a database (refused,
 * timed out, reset, a server that is not this database): callers cannot tell open, closed and foreign ports apart.
 */
export function couldNotConnect(d: Dialect, target: { host: string; port: number }, cause: unknown): SluiceError {
  const where = target.port ? `${target.host}:${target.port}` : target.host;
  return new SluiceError(ERROR_CODES.UNAVAILABLE, `${d.name}: could not connect to ${where}`, {}, { cause });
}

/** The URL with its password replaced by `***`, safe for messages; nothing of it when it does not parse. */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return '<a connection URL that does not parse>';
  }
  const auth = url.username ? `${url.username}${url.password ? ':***' : ''}@` : url.password ? ':***@' : '';
  return `${url.protocol}//${auth}${url.host}${url.pathname}`;
}

/** Removes the URL's password from a text (driver messages may quote connection details). */
export function scrub(text: string, rawUrl: string): string {
  let password: string | undefined;
  try {
    const url = new URL(rawUrl);
    password = url.password ? decodeURIComponent(url.password) : undefined;
    text = text.split(rawUrl).join(redactUrl(rawUrl));
    if (url.password) text = text.split(url.password).join('***');
  } catch {
    return text.split(rawUrl).join('<connection URL>');
  }
  return password && password.length >= 3 ? text.split(password).join('***') : text;
}

/** The JDBC URL of a connection URL: same host, port, database and query string. */
export function jdbcUrl(d: Dialect, u: DbUrl): string {
  const host = u.host || 'localhost';
  return `${d.jdbcPrefix}//${host}:${u.port ?? d.defaultPort}/${encodeURIComponent(u.database ?? '')}${u.search}`;
}

// ------------------------------------------------------------------------------------------------ errors

export function sluiceError(code: keyof typeof ERROR_CODES, message: string, cause?: unknown): SluiceError {
  return new SluiceError(ERROR_CODES[code], message, {}, cause === undefined ? undefined : { cause });
}

/**
 * A value its column cannot take (on write) or that cannot be read as its column's type: what was
 * expected and what came. Thrown where the column is not known (a conversion); the writer or reader
 * that knows them fills in `column` and `row`, and the dialect's mapError makes it a SluiceError
 * (valueFailure).
 */
export class ValueError extends Error {
  /** The column, once known. */
  column?: string;
  /** Where the row is, once known (`row 3 of the window`). */
  row?: string;

  constructor(
    readonly expected: string,
    readonly received: unknown,
    options?: { cause?: unknown },
  ) {
    super(`expected ${expected}, got ${describeReceived(received)}`, options);
    this.name = 'ValueError';
  }
}

/** A value for a message, shortened: numbers as JS prints them (NaN, -0), Dates by their time, else as JSON. */
export function describeReceived(value: unknown): string {
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : `Date ${value.toISOString()}`;
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  return describeValue(value);
}

/**
 * A ValueError as FAILED_PRECONDITION (the data, not the options, is at fault), naming the column and
 * the row where known, what was expected and what came (shortened); the URL's password never shows.
 */
export function valueFailure(d: Dialect, doing: string, err: ValueError, url: string): SluiceError {
  const where = [err.column === undefined ? undefined : `column ${JSON.stringify(err.column)}`, err.row]
    .filter((x) => x !== undefined)
    .join(', ');
  // The password out before the value is shortened: a cut through it would leave a part scrub cannot find.
  const received = describeReceived(typeof err.received === 'string' ? scrub(err.received, url) : err.received);
  const message = scrub(
    `${d.name}: ${doing}: ${where ? `${where}: ` : ''}expected ${err.expected}, got ${received}`,
    url,
  );
  return new SluiceError(
    ERROR_CODES.FAILED_PRECONDITION,
    message,
    { ...(err.column === undefined ? {} : { field: err.column }), expected: err.expected, received },
    { cause: err },
  );
}

/** Longest driver message kept whole: a server quoting a refused value may quote all of it. */
const MAX_MESSAGE = 400;

/** A driver's message, its middle left out when it is long (a huge refused value it quotes). */
export function shortenMessage(text: string): string {
  if (text.length <= MAX_MESSAGE) return text;
  return `${text.slice(0, 300)}... (${text.length - 360} characters left out) ...${text.slice(-60)}`;
}

export function isSluice(err: unknown): err is SluiceError {
  return (
    typeof err === 'object' && err !== null && (err as { [k: symbol]: unknown })[Symbol.for('sluice.error')] === true
  );
}

// ------------------------------------------------------------------------------------------------ reader

export interface KeysetPager {
  /** The row key by which rows are ordered and paged, as the rows name it. */
  readonly keyField: () => string;
  /** Rows after `after` (the last key of the previous page), in key order, at most batchSize of them. */
  page(after: { readonly value: unknown } | undefined): Promise<Record<string, unknown>[]>;
  /** Ends the transaction and releases the connection. */
  close(): Promise<void>;
  /** Maps a driver error to a SluiceError. */
  mapError(err: unknown, doing: string): SluiceError;
}

/**
 * The reader over pages: every row of the window once, in key order, one page per batch; the loop
 * ends on a short page. `stripKey` leaves the key out of the rows (when `columns` did not list it);
 * every page is marked with `floatColumns` (markFloatColumns).
 */
export function keysetReader(
  pager: KeysetPager,
  batchSize: number,
  stripKey: boolean,
  floatColumns?: ReadonlySet<string>,
): BoundedReader {
  let last: { value: unknown } | undefined;
  let rows = 0;
  let finished = false;
  let closed = false;
  return {
    async *batches() {
      while (!finished) {
        let page: Record<string, unknown>[];
        try {
          page = await pager.page(last);
        } catch (err) {
          throw isSluice(err) ? err : pager.mapError(err, 'reading a page');
        }
        if (page.length < batchSize) finished = true;
        if (page.length === 0) break;
        const key = pager.keyField();
        last = { value: page[page.length - 1]![key] };
        if (stripKey) for (const row of page) delete row[key];
        rows += page.length;
        yield markFloatColumns(page, floatColumns);
      }
    },
    positions: (): Record<string, string> =>
      last === undefined ? { rows: String(rows) } : { key: String(last.value), rows: String(rows) },
    async close() {
      if (closed) return;
      closed = true;
      await pager.close();
    },
  };
}

// ------------------------------------------------------------------------------------------------ writer

/**
 * How a value must be converted for its column. `integer`: a column that holds integers only and would
 * round a fraction without an error (MySQL's integer types and DECIMAL(p,0)).
 */
export type ColumnKind = 'timestamp' | 'date' | 'json' | 'array' | 'integer' | 'other';

/** The target table's columns: name (lower-cased when the database ignores case) to kind. */
export type ColumnMap = ReadonlyMap<string, ColumnKind>;

/** One column of a table to create, typed from sample values. */
export interface ColumnSpec {
  readonly name: string;
  readonly values: readonly unknown[];
  readonly key: boolean;
  readonly window: boolean;
  /** The source column is floating point (the batch said so: floatColumnsOf). */
  readonly float?: boolean;
}

export interface WriterSession {
  /** Column names compare without case (MySQL). */
  readonly caseInsensitive: boolean;
  /** DDL takes part in the transaction (PostgreSQL); otherwise the table is created before it starts. */
  readonly transactionalDdl: boolean;
  /** Most bind parameters one statement may have. */
  readonly maxParams: number;
  /**
   * Most bytes of values one statement should carry (MySQL: its `max_allowed_packet`, less room for
   * the SQL); wide rows make statements of fewer rows. Undefined: no limit but maxParams.
   */
  readonly maxStatementBytes?: number;
  begin(): Promise<void>;
  /**
   * Waits for, and holds until the transaction ends, a lock on this table's window: a second run of
   * the same window waits for the first to finish, then deletes what it wrote (the later commit wins).
   */
  lockWindow(windowId: string): Promise<void>;
  deleteWindow(column: string, windowId: string): Promise<void>;
  /**
   * Multi-row insert (upsert on `conflictKeys` when given) of rows of values, in `columns` order. `at`
   * says where each row is in the window, for a server error that names a row of its statement.
   */
  insert(
    columns: readonly string[],
    rows: readonly (readonly unknown[])[],
    conflictKeys: readonly string[] | undefined,
    at: StatementRows,
  ): Promise<void>;
  /** Creates the table; returns its columns. */
  create(columns: readonly ColumnSpec[], primaryKey: readonly string[]): Promise<ColumnMap>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  release(): Promise<void>;
  convert(value: unknown, kind: ColumnKind): unknown;
  mapError(err: unknown, doing: string): SluiceError;
}

/**
 * Where the rows of one statement are in the window. A server counts rows within its statement (MySQL's
 * `at row N`, the line of a COPY), which restarts with every statement; messages name the window's row.
 */
export interface StatementRows {
  /** Rows of the window's batches before the one this statement's rows came from. */
  readonly before: number;
  /** The window row (from 1) of the statement's row `k` (from 0). */
  row(k: number): number;
}

/**
 * The StatementRows of a statement whose row k is row `first + k` of its batch, or row `places[k]` where an
 * upsert dropped rows. Made here, at the top level, so that it holds these numbers and nothing else: a
 * PostgreSQL COPY keeps one per statement until it ends, and one made inside the writer's loop would keep
 * the loop's rows alive with it (a whole window's, in one COPY).
 */
export function statementRows(before: number, first: number, places?: readonly number[]): StatementRows {
  return places ? { before, row: (k) => before + places[k]! + 1 } : { before, row: (k) => before + first + k + 1 };
}

/**
 * A server error with where in the window it is about, in words (`at`: a column, a row of the window as windowRow
 * names it, or a row by its key values), made by a dialect's insert and taken apart by its mapError.
 */
export class AtRow extends Error {
  constructor(
    readonly error: unknown,
    readonly at: string,
  ) {
    super(at);
  }
}

/** A row of the window as messages name it: `row 2503 of the window (row 503 of the batch)`. */
export function windowRow(row: number, before: number): string {
  return `row ${row} of the window (row ${row - before} of the batch)`;
}

/**
 * The window id written to the window column: the group, the stream and the window's bounds. The same
 * window of the same stream always gets the same id, so a re-run finds (and replaces) its earlier rows,
 * and two streams writing one table never replace each other's rows.
 */
export function windowId(window: WindowRef): string {
  const b = window.boundaries;
  return `${window.groupId}/${window.streamId}/${b.boundaryType}:${b.lowerBound}:${b.upperBound}`;
}

/** Whether two column lists are the same names in the same order (compared in place: this runs per row). */
function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Consecutive runs of rows with the same columns, so that one INSERT has one column list. */
export function runsOfColumns(rows: readonly Row[]): { columns: string[]; rows: Row[] }[] {
  const runs: { columns: string[]; rows: Row[] }[] = [];
  let current: { columns: string[]; rows: Row[] } | undefined;
  for (const row of rows) {
    const columns = Object.keys(row);
    if (!current || !sameNames(columns, current.columns)) {
      current = { columns, rows: [] };
      runs.push(current);
    }
    current.rows.push(row);
  }
  return runs;
}

function keyText(value: unknown): string {
  if (value instanceof Uint8Array) return `b:${Buffer.from(value).toString('hex')}`;
  if (value instanceof Date) return `d:${value.getTime()}`;
  return `${typeof value}:${typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)}`;
}

/** The last row of each key, in the order of their last occurrence: one statement may not touch a row twice. */
export function lastPerKey(rows: readonly Row[], keys: readonly string[]): Row[] {
  const byKey = new Map<string, Row>();
  for (const row of rows) {
    const k = JSON.stringify(keys.map((c) => keyText(row[c])));
    byKey.delete(k);
    byKey.set(k, row);
  }
  return [...byKey.values()];
}

/**
 * A value's size in a statement, at most: text at 3 bytes per UTF-16 unit (its UTF-8 worst case),
 * bytes as they are, objects as their JSON, anything else a few bytes.
 */
function valueBytes(v: unknown): number {
  if (typeof v === 'string') return v.length * 3 + 9;
  if (v instanceof Uint8Array) return v.byteLength + 9;
  if (typeof v === 'object' && v !== null && !(v instanceof Date)) {
    try {
      return (JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))?.length ?? 4) * 3 + 9;
    } catch {
      return 64;
    }
  }
  return 16;
}

/**
 * A window-scoped writer over one connection. Nothing is visible before commit: the rows go in one
 * transaction, which (in replace-window mode) starts by deleting the window's earlier rows. The
 * transaction starts with the first write, not when the writer opens, so opening stays quick.
 */
export function windowWriter(
  s: WriterSession,
  cfg: SinkConfig,
  window: WindowRef,
  table: ColumnMap | undefined,
  tableName: string,
): WindowWriter {
  const id = windowId(window);
  const norm = (name: string) => (s.caseInsensitive ? name.toLowerCase() : name);
  let columns = table;
  let started = false;
  let failed = false;
  let done = false;
  /** Rows of the window's batches written so far. */
  let written = 0;

  async function start(first?: readonly Row[]): Promise<void> {
    if (started) return;
    if (!columns) {
      // Only with createTable (checked at open): created from the first batch's columns.
      if (!first) return;
      const names = [...new Set(first.flatMap((r) => Object.keys(r)))].filter((n) => n !== cfg.windowColumn);
      const floats = floatColumnsOf(first);
      const specs: ColumnSpec[] = names.map((name) => ({
        name,
        values: first.map((r) => r[name]),
        key: cfg.keyColumns.includes(name),
        window: false,
        float: floats?.has(name) ?? false,
      }));
      if (cfg.windowColumn) specs.push({ name: cfg.windowColumn, values: [], key: false, window: true });
      const pk = cfg.mode === 'upsert' ? cfg.keyColumns : [];
      if (s.transactionalDdl) {
        await s.begin();
        started = true;
        columns = await s.create(specs, pk);
      } else {
        columns = await s.create(specs, pk);
        await s.begin();
        started = true;
      }
      return;
    }
    await s.begin();
    started = true;
    if (cfg.mode === 'replace-window' && cfg.windowColumn) {
      await s.lockWindow(id);
      await s.deleteWindow(cfg.windowColumn, id);
    }
  }

  /** `before`: the rows of the window's earlier batches. */
  async function insert(batch: readonly Row[], before: number): Promise<void> {
    /** The place of the run's first row in the batch (runs are consecutive rows). */
    let runStart = 0;
    for (const run of runsOfColumns(batch)) {
      const names = run.columns.filter((c) => c !== cfg.windowColumn);
      const all = cfg.windowColumn ? [...names, cfg.windowColumn] : names;
      const unknown = all.filter((c) => !columns!.has(norm(c)));
      if (unknown.length > 0) {
        throw sluiceError(
          'FAILED_PRECONDITION',
          `table ${tableName} has no column ${unknown.map((c) => JSON.stringify(c)).join(', ')} (columns: ${[...columns!.keys()].join(', ')})`,
        );
      }
      if (cfg.mode === 'upsert') {
        const missing = cfg.keyColumns.filter((k) => !run.columns.includes(k));
        if (missing.length > 0)
          throw sluiceError(
            'FAILED_PRECONDITION',
            `upsert into ${tableName}: a row has no key column ${missing.map((c) => JSON.stringify(c)).join(', ')}`,
          );
      }
      const kinds = all.map((c) => columns!.get(norm(c)) ?? 'other');
      const perStatement = Math.max(1, Math.min(cfg.batchSize, Math.floor(s.maxParams / all.length)));
      const budget = s.maxStatementBytes;
      /** `first`: the place of the chunk's first row in the batch (from 0). */
      const flush = async (chunk: Row[], first: number) => {
        if (chunk.length === 0) return;
        // The chunk is consecutive rows of the batch; an upsert keeps only the last row of a key, so its
        // statement's rows are looked up (only then: for other chunks a row's place is first + k).
        let places: readonly number[] | undefined;
        if (cfg.mode === 'upsert') {
          const kept = lastPerKey(chunk, cfg.keyColumns);
          if (kept.length < chunk.length) {
            const place = new Map(chunk.map((r, k) => [r, first + k]));
            places = kept.map((r) => place.get(r)!);
          }
          chunk = kept;
        }
        const at = statementRows(before, first, places);
        const values: unknown[][] = [];
        let row: Row | undefined;
        let j = 0;
        try {
          for (row of chunk) {
            const converted: unknown[] = [];
            for (j = 0; j < all.length; j++) {
              const c = all[j]!;
              converted.push(c === cfg.windowColumn ? id : s.convert(row[c] ?? null, kinds[j]!));
            }
            values.push(converted);
          }
        } catch (err) {
          if (err instanceof ValueError) {
            err.column = all[j];
            // The failing row is the statement's next one.
            if (row !== undefined) err.row = windowRow(at.row(values.length), before);
          }
          throw err;
        }
        await s.insert(all, values, cfg.mode === 'upsert' ? cfg.keyColumns : undefined, at);
      };
      if (budget === undefined) {
        for (let i = 0; i < run.rows.length; i += perStatement)
          await flush(run.rows.slice(i, i + perStatement), runStart + i);
        runStart += run.rows.length;
        continue;
      }
      const idBytes = cfg.windowColumn ? id.length * 3 : 0;
      let chunk: Row[] = [];
      let chunkStart = runStart;
      let bytes = 0;
      for (const row of run.rows) {
        let size = idBytes;
        for (const c of names) size += valueBytes(row[c]);
        if (chunk.length > 0 && (chunk.length >= perStatement || bytes + size > budget)) {
          await flush(chunk, chunkStart);
          chunkStart += chunk.length;
          chunk = [];
          bytes = 0;
        }
        chunk.push(row);
        bytes += size;
      }
      await flush(chunk, chunkStart);
      runStart += run.rows.length;
    }
  }

  async function finish(): Promise<void> {
    done = true;
    await s.release().catch(() => {});
  }

  async function abort(): Promise<void> {
    if (done) return;
    if (started) await s.rollback().catch(() => {});
    await finish();
  }

  return {
    async write(batch) {
      if (done) throw sluiceError('FAILED_PRECONDITION', `the writer of window ${id} is closed`);
      if (failed) throw sluiceError('FAILED_PRECONDITION', `an earlier write of window ${id} failed; abort the window`);
      if (batch.length === 0) return;
      try {
        await start(batch);
        await insert(batch, written);
        written += batch.length;
      } catch (err) {
        failed = true;
        throw isSluice(err) ? err : s.mapError(err, `writing window ${id} to ${tableName}`);
      }
    },
    async commit() {
      if (done) throw sluiceError('FAILED_PRECONDITION', `the writer of window ${id} is closed`);
      if (failed) {
        await abort();
        throw sluiceError('FAILED_PRECONDITION', `an earlier write of window ${id} failed; nothing was committed`);
      }
      try {
        await start();
        if (started) await s.commit();
      } catch (err) {
        if (started) await s.rollback().catch(() => {});
        throw isSluice(err) ? err : s.mapError(err, `committing window ${id} to ${tableName}`);
      } finally {
        await finish();
      }
    },
    abort: () => abort(),
  };
}

/** A dialect's column types for createTable. */
export interface TypeNames {
  readonly integer: string;
  readonly float: string;
  readonly decimal: string;
  readonly boolean: string;
  readonly text: string;
  /** Text in a primary key (MySQL cannot index unbounded text). */
  readonly keyText: string;
  readonly timestamp: string;
  readonly binary: string;
  readonly keyBinary: string;
  readonly json: string;
  /** The window column. */
  readonly window: string;
}

/** Integer text as a reader gives a 64-bit integer a double cannot hold: no '+', no leading zero, 16+ digits. */
const WIDE_INTEGER_TEXT = /^-?[1-9]\d{15,}$/;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_LOW = -(2n ** 63n);
const INT64_HIGH = 2n ** 63n - 1n;

/**
 * The type of a column of numbers; undefined when not every value is a number, a bigint or wide integer
 * text. Numbers beside integer text beyond 2^53 are a 64-bit integer column as the SQL readers read one
 * (a number when a double holds it exactly, else its decimal text), which a double column would round:
 * the integer type, or the decimal one beyond 64 bits. A column is an integer column only when every
 * value is an integer and none says floating point (a -0 does: no integer type has it). Only the first
 * batch is seen, and only the SQL readers say which columns are floating point (markFloatColumns):
 * from another source a floating-point column whose first batch is all whole numbers still becomes an
 * integer column (the sink then refuses a later fraction rather than round it).
 */
function numberColumnType(values: readonly unknown[], t: TypeNames, key: boolean): string | undefined {
  let numbers = false;
  let bigints = false;
  let wideText = false;
  let float = false;
  let beyond64 = false;
  for (const v of values) {
    if (typeof v === 'number') {
      numbers = true;
      if (!Number.isSafeInteger(v) || Object.is(v, -0)) float = true;
    } else if (typeof v === 'bigint') {
      bigints = true;
      if (v < INT64_LOW || v > INT64_HIGH) beyond64 = true;
    } else if (typeof v === 'string' && WIDE_INTEGER_TEXT.test(v)) {
      const n = BigInt(v);
      if (n >= -MAX_SAFE && n <= MAX_SAFE) return undefined;
      wideText = true;
      if (n < INT64_LOW || n > INT64_HIGH) beyond64 = true;
    } else return undefined;
  }
  // Text alone is text: nothing says it is a number.
  if (!numbers && !bigints) return undefined;
  if (!bigints && !wideText) return float ? t.float : t.integer;
  // Exact integers beside fractions: no numeric type here holds both exactly, text does.
  if (float) return key ? t.keyText : t.text;
  // bigint values alone: the decimal type, as ever (a bigint may be any size).
  if (!numbers && !wideText) return t.decimal;
  return beyond64 ? t.decimal : t.integer;
}

/**
 * The column type createTable gives a column, from the first batch's values (all null: text): see
 * numberColumnType for numbers; otherwise the type of the first value.
 */
export function inferColumnType(spec: ColumnSpec, t: TypeNames): string {
  if (spec.window) return t.window;
  const values = spec.values.filter((v) => v !== null && v !== undefined);
  // A floating-point source column (its values are numbers) is a floating-point column, whole numbers or not.
  if (spec.float && values.every((v) => typeof v === 'number')) return t.float;
  const numeric = numberColumnType(values, t, spec.key);
  if (numeric !== undefined) return numeric;
  const first = values[0];
  if (typeof first === 'number') return t.float;
  if (typeof first === 'bigint') return t.decimal;
  if (typeof first === 'boolean') return t.boolean;
  if (first instanceof Date) return t.timestamp;
  if (first instanceof Uint8Array) return spec.key ? t.keyBinary : t.binary;
  if (typeof first === 'object' && first !== null) return t.json;
  return spec.key ? t.keyText : t.text;
}

// -------------------------------------------------------------------------------------------------- flink

export interface FlinkNames {
  /** table-name for the table parts (the JDBC URL may take the qualifier instead). */
  tableName(parts: readonly string[]): string;
  column(name: string): string;
  /** MySQL: a qualified table's database goes into the URL. */
  readonly qualifierIsDatabase: boolean;
}

/** Flink JDBC connector options (the `WITH (...)` of the table) for the Flink runner. */
export function flinkOptions(
  d: Dialect,
  names: FlinkNames,
  role: 'source' | 'sink',
  options: Options,
): Record<string, string> {
  const rawUrl = String(options.url ?? '');
  const parsed = parseDbUrl(d, rawUrl);
  if (typeof parsed === 'string')
    throw invalidArgument('options.url', `a connection URL like ${d.exampleUrl} (${parsed})`, redactUrl(rawUrl));
  const cfg = role === 'source' ? sourceConfig(d, options) : sinkConfig(d, options);
  const url = names.qualifierIsDatabase && cfg.table.length === 2 ? { ...parsed, database: cfg.table[0]! } : parsed;
  const out: Record<string, string> = {
    connector: 'jdbc',
    url: jdbcUrl(d, url),
    'table-name': names.tableName(names.qualifierIsDatabase ? cfg.table.slice(-1) : cfg.table),
    ...(parsed.user !== undefined ? { username: parsed.user } : {}),
    ...(parsed.password !== undefined ? { password: parsed.password } : {}),
  };
  if (role === 'sink') {
    out['sink.buffer-flush.max-rows'] = String(cfg.batchSize);
    return out;
  }
  const source = cfg as SourceConfig;
  out['scan.fetch-size'] = String(source.batchSize);
  const scan = scanOf(options);
  if (scan.type === 'OFFSET') {
    if (scan.upper <= scan.lower) {
      throw sluiceError(
        'FAILED_PRECONDITION',
        `the OFFSET window [${scan.lower}, ${scan.upper}) is empty, and Flink's JDBC partition bounds cannot express an empty range; skip the window`,
      );
    }
    const size = scan.upper - scan.lower;
    const partitions = BigInt(source.scanPartitions) < size ? BigInt(source.scanPartitions) : size;
    out['scan.partition.column'] = names.column(source.keyColumn);
    out['scan.partition.num'] = partitions.toString();
    out['scan.partition.lower-bound'] = scan.lower.toString();
    // Flink's partition bounds are both inclusive.
    out['scan.partition.upper-bound'] = (scan.upper - 1n).toString();
  }
  return out;
}
