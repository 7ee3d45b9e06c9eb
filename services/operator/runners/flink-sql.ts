import { ERROR_CODES, SluiceError, invalidArgument, type Boundaries, type Options } from 'sluice/sdk';
import { checkMapping } from '../domain/mapping.js';
import type { FieldMapping, StreamSpec } from '../domain/model.js';

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
function upsertKey(stream: StreamSpec, sinkColumns: readonly (readonly [string, string])[]): string[] {
  const { mode, keyColumns } = stream.sink.options;
  if (mode !== 'upsert' || !Array.isArray(keyColumns) || keyColumns.length === 0) return [];
  const targets = new Set(sinkColumns.map(([c]) => c));
  const keys = keyColumns.map(String);
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
function whereClause(bounds: SourceTimeBounds | undefined): string {
  if (!bounds) return '';
  const col = quoteIdentifier(bounds.timeColumn);
  // The same edges as the SQL connectors' own readers (timeRange in their core.ts): an empty window reads
  // nothing, and an upper bound at or past the year 10000 leaves the window open upwards.
  if (bounds.upper <= bounds.lower || bounds.lower >= MAX_TIME_MS) return '\nWHERE FALSE';
  const lower = `${col} >= ${timestampLiteral(bounds.lower)}`;
  return bounds.upper >= MAX_TIME_MS
    ? `\nWHERE ${lower}`
    : `\nWHERE ${lower} AND ${col} < ${timestampLiteral(bounds.upper)}`;
}

/**
 * The statements of one job, in the order they must run in one SQL Gateway session: the runtime mode and
 * job name, the source and sink tables (TEMPORARY: they live only in the job's session), and the INSERT
 * that starts the Flink job. Every identifier is backtick-quoted and every value a quoted literal.
 *
 * Throws FAILED_PRECONDITION when the stream has no field mapping (the Flink tables' columns come from
 * it), INVALID_ARGUMENT for a bad mapping or bounds.
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

  // Source columns: each source field once, typed by the cast of its first mapping; the time column of a
  // TIME window is a TIMESTAMP whatever its mapping, and is declared even when it is not copied.
  const sourceColumns = new Map<string, string>();
  for (const f of stream.fields)
    if (!sourceColumns.has(f.sourceField)) sourceColumns.set(f.sourceField, FLINK_SQL_TYPES[f.cast]);
  if (sourceBounds) sourceColumns.set(sourceBounds.timeColumn, TIME_COLUMN_TYPE);

  // Sink columns and the SELECT list: the target type is the cast's, or the source column's type without a cast.
  const sinkColumns: [string, string][] = [];
  const select: string[] = [];
  for (const f of stream.fields) {
    const target = f.targetField || f.sourceField;
    const type = f.cast === '' ? sourceColumns.get(f.sourceField)! : FLINK_SQL_TYPES[f.cast];
    sinkColumns.push([target, type]);
    const value = f.cast === '' ? quoteIdentifier(f.sourceField) : `CAST(${quoteIdentifier(f.sourceField)} AS ${type})`;
    select.push(`  ${value} AS ${quoteIdentifier(target)}`);
  }

  const suffix = safeSuffix(jobId);
  const src = `src_${suffix}`;
  const sink = `sink_${suffix}`;
  return [
    `SET ${quoteLiteral('execution.runtime-mode')} = ${quoteLiteral('batch')}`,
    `SET ${quoteLiteral('pipeline.name')} = ${quoteLiteral(`sluice-${jobId}`)}`,
    createTable(src, [...sourceColumns], input.sourceTable, 'source'),
    createTable(sink, sinkColumns, input.sinkTable, 'sink', upsertKey(stream, sinkColumns)),
    `INSERT INTO ${quoteIdentifier(sink)}\nSELECT\n${select.join(',\n')}\nFROM ${quoteIdentifier(src)}${whereClause(sourceBounds)}`,
  ];
}
