import { ERROR_CODES, SluiceError, invalidArgument, type Boundaries, type Options } from 'sluice/sdk';
import { checkMapping } from '../domain/mapping.js';
import type { FieldMapping, StreamSpec } from '../domain/model.js';
import { checkTableOptions } from './flink-connectors.js';

/**
 * The Flink SQL of one job (one stream of one window), for the Flink runner: pure, no I/O. See the
 * `## flink` section of docs/runners.md for what is generated and why.
 */

/** A TIME window the runner must apply itself, as `WHERE timeColumn >= lower AND timeColumn < upper` (epoch ms, UTC). */
export interface SourceTimeBounds {
  readonly timeColumn: string;
  /** Inclusive, epoch ms. */
  readonly lower: number;
  /** Exclusive, epoch ms. */
  readonly upper: number;
}

export interface FlinkStatementsInput {
  readonly jobId: string;
  readonly stream: StreamSpec;
  readonly boundaries: Boundaries;
  /** The source connector's flinkTableOptions, called with the bounded options (fillInBoundaries). */
  readonly sourceTable: Readonly<Record<string, string>>;
  /** The sink connector's flinkTableOptions. */
  readonly sinkTable: Readonly<Record<string, string>>;
  /** For sources whose Flink connector has no time-range option (postgres, mysql): see sourceTimeBounds(). */
  readonly sourceBounds?: SourceTimeBounds;
  /** The window's id, written to a SQL sink's window column (`<groupId>/<streamId>/<type>:<lower>:<upper>`). */
  readonly windowId?: string;
  /**
   * The source connector's flinkColumnTypes (JDBC sources): the Flink type of every source column, from the
   * database's metadata. When given, source columns are declared with these types instead of the casts'.
   */
  readonly sourceColumnTypes?: Readonly<Record<string, string>>;
}

/** Flink SQL type of a column, by the mapping's cast ('' and json are text). */
export const FLINK_SQL_TYPES: Readonly<Record<FieldMapping['cast'], string>> = {
  '': 'STRING',
  string: 'STRING',
  int: 'BIGINT',
  float: 'DOUBLE',
  bool: 'BOOLEAN',
  timestamp: 'TIMESTAMP(3)',
  json: 'STRING',
};

/** Type the time column of a TIME window is declared with, whatever its mapping: the WHERE compares it with TIMESTAMP literals. */
const TIME_COLUMN_TYPE = 'TIMESTAMP(3)';

/** Exclusive upper limit of the timestamps a TIMESTAMP literal can hold (year 10000, epoch ms); the SQL connectors use the same. */
const MAX_TIME_MS = 253_402_300_800_000;

/** Keys the SQL connectors (postgres, mysql) add to their bounded options (plugins/connectors/postgres/core.ts). */
const BOUND_TYPE = 'scan.boundary-type';
const BOUND_LOWER = 'scan.lower';
const BOUND_UPPER = 'scan.upper';

/** A Flink SQL identifier: backticks, a backtick inside doubled. */
export function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

/** A Flink SQL string literal: single quotes, a quote inside doubled (Flink SQL has no backslash escapes). */
export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** `TIMESTAMP 'YYYY-MM-DD HH:MM:SS.sss'` of epoch ms, in UTC. */
export function timestampLiteral(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms >= MAX_TIME_MS)
    throw invalidArgument('sourceBounds', 'epoch milliseconds in [0, 253402300800000)', ms);
  return `TIMESTAMP '${new Date(ms).toISOString().slice(0, 23).replace('T', ' ')}'`;
}
const wallTimeLiteral = timestampLiteral;

/** `TO_TIMESTAMP_LTZ(<ms>, 3)`: the instant of epoch ms, for TIMESTAMP_LTZ columns. */
function instantLiteral(ms: number): string {
  timestampLiteral(ms); // the same range check
  return `TO_TIMESTAMP_LTZ(${ms}, 3)`;
}

/**
 * The TIME window of bounded source options that carry it as the SQL connectors do (`scan.boundary-type`
 * = TIME, `scan.lower`, `scan.upper` and a `timeColumn` option), or undefined: sources whose Flink
 * connector applies the window itself (kafka, pulsar, datagen) carry no such keys.
 */
export function sourceTimeBounds(boundedOptions: Options): SourceTimeBounds | undefined {
  if (boundedOptions[BOUND_TYPE] !== 'TIME') return undefined;
  const timeColumn = boundedOptions.timeColumn;
  const lower = boundedOptions[BOUND_LOWER];
  const upper = boundedOptions[BOUND_UPPER];
  if (lower === undefined && upper === undefined) return undefined;
  if (typeof timeColumn !== 'string' || timeColumn === '')
    throw invalidArgument('options.timeColumn', 'the timestamp column a TIME window filters on', timeColumn);
  const ms = (key: string, v: unknown) => {
    const n = typeof v === 'string' && /^(0|[1-9]\d*)$/.test(v) ? Number(v) : typeof v === 'number' ? v : NaN;
    if (!Number.isSafeInteger(n) || n < 0)
      throw invalidArgument(`options.${key}`, 'epoch milliseconds as a non-negative integer', v);
    return n;
  };
  return { timeColumn, lower: ms(BOUND_LOWER, lower), upper: ms(BOUND_UPPER, upper) };
}

/** A job id as a bare table-name suffix: letters, digits and '_' only. */
function safeSuffix(jobId: string): string {
  return jobId.replace(/[^A-Za-z0-9_]/g, '_') || 'job';
}

function withClause(options: Readonly<Record<string, string>>, which: string): string {
  const entries = Object.entries(options);
  if (typeof options.connector !== 'string' || options.connector === '') {
    throw new SluiceError(
      ERROR_CODES.FAILED_PRECONDITION,
      `the ${which} table options name no Flink connector ('connector' is missing)`,
    );
  }
  return entries.map(([k, v]) => `  ${quoteLiteral(k)} = ${quoteLiteral(String(v))}`).join(',\n');
}

function createTable(
  name: string,
  columns: readonly (readonly [string, string])[],
  options: Readonly<Record<string, string>>,
  which: string,
  primaryKey: readonly string[] = [],
): string {
  const lines = columns.map(([c, type]) => `  ${quoteIdentifier(c)} ${type}`);
  if (primaryKey.length > 0) lines.push(`  PRIMARY KEY (${primaryKey.map(quoteIdentifier).join(', ')}) NOT ENFORCED`);
  return `CREATE TEMPORARY TABLE ${quoteIdentifier(name)} (\n${lines.join(',\n')}\n) WITH (\n${withClause(options, which)}\n)`;
}

/**
 * The sink's upsert key: the SQL sinks (postgres, mysql) in `mode: 'upsert'` name it in `keyColumns`, and
 * Flink's JDBC sink upserts only when the table declares it as its PRIMARY KEY ... NOT ENFORCED.
 */
function upsertKey(
  stream: StreamSpec,
  sinkColumns: readonly (readonly [string, string])[],
  name: (column: string) => string,
): string[] {
  const { mode, keyColumns } = stream.sink.options;
  if (mode !== 'upsert' || !Array.isArray(keyColumns) || keyColumns.length === 0) return [];
  const targets = new Set(sinkColumns.map(([c]) => c));
  const keys = keyColumns.map((k) => name(String(k)));
  const missing = keys.filter((k) => !targets.has(k));
  if (missing.length > 0) {
    throw new SluiceError(
      ERROR_CODES.FAILED_PRECONDITION,
      `stream '${stream.streamId}': the sink's keyColumns ${missing.map((k) => `'${k}'`).join(', ')} must be target fields of the mapping (the Flink sink table's primary key)`,
    );
  }
  return keys;
}

/** The WHERE clause of a TIME window applied by the runner; '' when there is none. */
function whereClause(bounds: SourceTimeBounds | undefined, columnType: string | undefined): string {
  if (!bounds) return '';
  const col = quoteIdentifier(bounds.timeColumn);
  // A TIMESTAMP_LTZ column (timestamptz) is compared with instants; a TIMESTAMP column with UTC wall times.
  const timestampLiteral = columnType?.startsWith('TIMESTAMP_LTZ') ? instantLiteral : wallTimeLiteral;
  // The same edges as the SQL connectors' own readers (timeRange in their core.ts): an empty window reads
  // nothing, and an upper bound at or past the year 10000 leaves the window open upwards.
  if (bounds.upper <= bounds.lower || bounds.lower >= MAX_TIME_MS) return '\nWHERE FALSE';
  const lower = `${col} >= ${timestampLiteral(bounds.lower)}`;
  return bounds.upper >= MAX_TIME_MS
    ? `\nWHERE ${lower}`
    : `\nWHERE ${lower} AND ${col} < ${timestampLiteral(bounds.upper)}`;
}

/** How the Flink table of a connector names a column: Flink's Postgres dialect puts names into its SQL unquoted. */
function columnNamer(options: Readonly<Record<string, string>>): (name: string) => string {
  const postgres = options.connector === 'jdbc' && /^jdbc:postgresql:/i.test(options.url ?? '');
  // Declared as "name", the column reaches PostgreSQL quoted, and means exactly the column Sluice reads and writes.
  return postgres ? (name) => `"${name.replaceAll('"', '""')}"` : (name) => name;
}

const refuse = (message: string) => new SluiceError(ERROR_CODES.FAILED_PRECONDITION, message);

/** Partitions of a Flink offsets list `partition:P,offset:O;...`. */
function partitionsOf(list: string | undefined): string[] {
  if (!list) return [];
  return list
    .split(';')
    .filter((e) => e !== '')
    .map((e) => /^partition:(\d+)/.exec(e)?.[1] ?? e)
    .sort((a, b) => Number(a) - Number(b));
}

/** The source table as Flink must get it for a bounded window (see docs/runners.md, "Per connector"). */
function adaptSource(
  table: Readonly<Record<string, string>>,
  boundaries: Boundaries,
  columnCount: number,
): Record<string, string> {
  const out = { ...table };
  if (out.connector === 'jdbc') {
    // Flink's JDBC factory wants both or neither ("Either all or none of ... username, password").
    if (out.username !== undefined && out.password === undefined) out.password = '';
    // PostgreSQL streams a result set through a cursor only outside auto-commit; else it loads the whole window.
    if (/^jdbc:postgresql:/i.test(out.url ?? '')) out['scan.auto-commit'] = 'false';
  }
  if (out.connector === 'kafka') {
    if (boundaries.boundaryType === 'TIME' && out['scan.startup.mode'] === 'specific-offsets') {
      // Specific offsets start every unlisted partition at EARLIEST; a timestamp starts each at the window.
      delete out['scan.startup.specific-offsets'];
      out['scan.startup.mode'] = 'timestamp';
      out['scan.startup.timestamp-millis'] = boundaries.lowerBound;
    }
    if (boundaries.boundaryType === 'OFFSET') {
      const start = partitionsOf(out['scan.startup.specific-offsets']);
      const stop = partitionsOf(out['scan.bounded.specific-offsets']);
      if (start.join(',') !== stop.join(',')) {
        throw refuse(
          `the Kafka OFFSET window must name the same partitions in both bounds on Flink (lower: ${start.join(',') || 'none'}, upper: ${stop.join(',') || 'none'}): Flink reads a partition missing from the lower bound from EARLIEST and stops one missing from the upper bound at once`,
        );
      }
    }
    const format = out['value.format'] ?? out.format;
    if (format === 'raw' && columnCount !== 1) {
      throw refuse(
        `the Kafka source reads format 'raw', whose Flink table has exactly one column, but the mapping reads ${columnCount} source fields`,
      );
    }
  }
  return out;
}

/** Whether the source's Flink format is JSON (its TIMESTAMP columns then need Sluice's parsing). */
function isJsonSource(table: Readonly<Record<string, string>>): boolean {
  return (table['value.format'] ?? table.format) === 'json';
}

/** Java (and JavaScript) regular expressions of the JSON timestamp parsing below; exported for its test. */
export const JSON_TIME_PATTERNS = {
  /** Epoch milliseconds as a JSON number (or digits). */
  epochMs: '^-?[0-9]+$',
  /** A trailing UTC offset, `+02:00` or `-0530`: sign, hours, minutes. */
  offset: '([+-])([0-9]{2}):?([0-9]{2})$',
  /** A trailing `Z` (UTC). */
  zulu: '[Zz]$',
} as const;

/**
 * A JSON value as TIMESTAMP(3) in UTC, read the way Sluice's readers read it: epoch milliseconds (a number),
 * or ISO-8601 / SQL text with a trailing `Z`, a UTC offset (`+02:00`, `-0530`) or none (taken as UTC).
 * Flink's JSON format takes none of these for a TIMESTAMP column, and for TIMESTAMP_LTZ only a literal `Z`
 * (its ISO-8601 parser, TimeFormats.ISO8601_TIMESTAMP_WITH_LOCAL_TIMEZONE_FORMAT, has no offset), so the
 * column is declared STRING and converted here: the wall time without its suffix, moved by the offset.
 */
function jsonTimestamp(column: string): string {
  const { epochMs, offset, zulu } = JSON_TIME_PATTERNS;
  const local = (text: string) => `CAST(REPLACE(${text}, 'T', ' ') AS TIMESTAMP(3))`;
  const part = (i: number) => `REGEXP_EXTRACT(${column}, '${offset}', ${i})`;
  // UTC = wall time − offset: +02:00 moves back 120 minutes, -05:30 forward 330.
  const minutes =
    `(CASE WHEN ${part(1)} = '-' THEN 1 ELSE -1 END) * ` + `(CAST(${part(2)} AS INT) * 60 + CAST(${part(3)} AS INT))`;
  return (
    `CASE WHEN REGEXP(${column}, '${epochMs}') THEN CAST(TO_TIMESTAMP_LTZ(CAST(${column} AS BIGINT), 3) AS TIMESTAMP(3)) ` +
    `WHEN REGEXP(${column}, '${offset}') THEN TIMESTAMPADD(MINUTE, ${minutes}, ${local(`REGEXP_REPLACE(${column}, '${offset}', '')`)}) ` +
    `ELSE ${local(`REGEXP_REPLACE(${column}, '${zulu}', '')`)} END`
  );
}

/** Name of the extra key column of a Kafka sink with a raw key: text, as Sluice's own Kafka writer keys. */
const KAFKA_KEY_COLUMN = 'sluice_kafka_key';

/**
 * The statements of one job, in the order they must run in one SQL Gateway session: the runtime mode,
 * the session time zone (UTC: time bounds and timestamps mean UTC whatever the cluster's zone) and job
 * name, the source and sink tables (TEMPORARY: they live only in the job's session), and the INSERT that
 * starts the Flink job. Every identifier is backtick-quoted and every value a quoted literal.
 *
 * Throws FAILED_PRECONDITION when the stream has no field mapping (the Flink tables' columns come from
 * it) or a connector pairing cannot keep the window's guarantee on Flink, INVALID_ARGUMENT for a bad
 * mapping or bounds.
 */
export function flinkStatements(input: FlinkStatementsInput): string[] {
  const { jobId, stream, boundaries, sourceBounds } = input;
  if (stream.fields.length === 0) {
    throw new SluiceError(
      ERROR_CODES.FAILED_PRECONDITION,
      `stream '${stream.streamId}' has no field mapping, and the Flink runner declares the tables' columns from it: map every field to copy (source_field, target_field, cast), or run the group on the embedded runner`,
    );
  }
  checkMapping(stream.fields, `stream '${stream.streamId}' fields`);
  if (sourceBounds && boundaries.boundaryType !== 'TIME') {
    throw invalidArgument('sourceBounds', 'a time filter only for a TIME window', boundaries.boundaryType);
  }
  checkTableOptions(input.sourceTable, 'source');
  checkTableOptions(input.sinkTable, 'sink');

  const sinkTable: Record<string, string> = { ...input.sinkTable };
  const sinkMode = stream.sink.options.mode;
  if (sinkTable.connector === 'filesystem') {
    throw refuse(
      `stream '${stream.streamId}': the file sink replaces a window's file on a re-run, and Flink's filesystem sink cannot (INSERT INTO adds part files, INSERT OVERWRITE empties the whole directory); run the group on the embedded runner`,
    );
  }
  if (sinkTable.connector === 'jdbc') {
    if (sinkMode !== 'upsert') {
      throw refuse(
        `stream '${stream.streamId}': the sink's mode '${String(sinkMode ?? 'replace-window')}' deletes a window's earlier rows before writing, which Flink's JDBC sink cannot; use mode 'upsert' with keyColumns, or run the group on the embedded runner`,
      );
    }
    if (sinkTable.username !== undefined && sinkTable.password === undefined) sinkTable.password = '';
  }

  // Source columns: each source field once, typed by the cast of its first mapping; the time column of a
  // TIME window is a TIMESTAMP whatever its mapping, and is declared even when it is not copied.
  // With the database's column types (JDBC sources) every source column has its own type instead.
  const jsonSource = isJsonSource(input.sourceTable);
  const known = input.sourceColumnTypes;
  const typeOf = (column: string, fallback: string): string => {
    if (!known) return fallback;
    const type = known[column];
    if (type === undefined) throw invalidArgument('sourceColumnTypes', `the Flink type of column '${column}'`, known);
    return type;
  };
  const sourceColumns = new Map<string, string>();
  for (const f of stream.fields) {
    if (sourceColumns.has(f.sourceField)) continue;
    const byCast = jsonSource && f.cast === 'timestamp' ? 'STRING' : FLINK_SQL_TYPES[f.cast];
    sourceColumns.set(f.sourceField, typeOf(f.sourceField, byCast));
  }
  if (sourceBounds) sourceColumns.set(sourceBounds.timeColumn, typeOf(sourceBounds.timeColumn, TIME_COLUMN_TYPE));
  const sourceTable = adaptSource(input.sourceTable, boundaries, sourceColumns.size);
  const srcName = columnNamer(sourceTable);
  const sinkName = columnNamer(sinkTable);

  // Sink columns and the SELECT list: the target type is the cast's, or the source column's type without a cast.
  const sinkColumns: [string, string][] = [];
  const select: string[] = [];
  const selected = new Map<string, string>();
  for (const f of stream.fields) {
    const target = f.targetField || f.sourceField;
    const declared = sourceColumns.get(f.sourceField)!;
    const type = f.cast === '' ? declared : FLINK_SQL_TYPES[f.cast];
    const column = quoteIdentifier(srcName(f.sourceField));
    const value =
      f.cast === 'timestamp' && declared === 'STRING' && !known
        ? jsonTimestamp(column)
        : f.cast === ''
          ? column
          : `CAST(${column} AS ${type})`;
    sinkColumns.push([sinkName(target), type]);
    selected.set(target, value);
    select.push(`  ${value} AS ${quoteIdentifier(sinkName(target))}`);
  }
  const primaryKey = upsertKey(
    stream,
    sinkColumns.map(([c, t]) => [c, t] as const),
    sinkName,
  );

  // The window column of a SQL sink: every row carries the window's id (the column is NOT NULL when Sluice creates the table).
  const windowColumn = stream.sink.options.windowColumn;
  if (sinkTable.connector === 'jdbc' && typeof windowColumn === 'string' && windowColumn !== '') {
    if (input.windowId === undefined)
      throw invalidArgument('windowId', 'the window id for the window column', undefined);
    sinkColumns.push([sinkName(windowColumn), 'STRING NOT NULL']);
    select.push(`  ${quoteLiteral(input.windowId)} AS ${quoteIdentifier(sinkName(windowColumn))}`);
  }

  // A raw Kafka key is the bytes of its column: Sluice keys with text, so the key is its own STRING column.
  if (sinkTable.connector === 'kafka' && sinkTable['key.format'] === 'raw' && sinkTable['key.fields']) {
    const keyField = sinkTable['key.fields'];
    const value = selected.get(keyField);
    if (value === undefined) {
      throw refuse(
        `stream '${stream.streamId}': the sink's keyField '${keyField}' must be a target field of the mapping (the Kafka key is read from it)`,
      );
    }
    sinkColumns.push([KAFKA_KEY_COLUMN, 'STRING']);
    select.push(`  CAST(${value} AS STRING) AS ${quoteIdentifier(KAFKA_KEY_COLUMN)}`);
    sinkTable['key.fields'] = KAFKA_KEY_COLUMN;
    sinkTable['value.fields-include'] = 'EXCEPT_KEY';
  }

  const suffix = safeSuffix(jobId);
  const src = `src_${suffix}`;
  const sink = `sink_${suffix}`;
  const bounds = sourceBounds ? { ...sourceBounds, timeColumn: srcName(sourceBounds.timeColumn) } : undefined;
  return [
    `SET ${quoteLiteral('execution.runtime-mode')} = ${quoteLiteral('batch')}`,
    `SET ${quoteLiteral('table.local-time-zone')} = ${quoteLiteral('UTC')}`,
    `SET ${quoteLiteral('pipeline.name')} = ${quoteLiteral(`sluice-${jobId}`)}`,
    createTable(
      src,
      [...sourceColumns].map(([c, t]) => [srcName(c), t] as const),
      sourceTable,
      'source',
    ),
    createTable(sink, sinkColumns, sinkTable, 'sink', primaryKey),
    `INSERT INTO ${quoteIdentifier(sink)}\nSELECT\n${select.join(',\n')}\nFROM ${quoteIdentifier(src)}${whereClause(bounds, sourceBounds && sourceColumns.get(sourceBounds.timeColumn))}`,
  ];
}
