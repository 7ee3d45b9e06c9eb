import {
  type BoundedReader,
  floatColumnsOf,
  invalidArgument,
  markFloatColumns,
  type Row,
  type WindowWriter,
} from 'sluice/sdk';
import type { FieldMapping } from './model.js';

export const CASTS = ['', 'string', 'int', 'float', 'bool', 'timestamp', 'json'] as const;

function toMs(v: unknown): number | null {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    if (/^-?\d+$/.test(v)) return Number(v);
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const EXACT_DOUBLE = 2n ** 53n;
/** An integer in decimal: optional sign, digits, an optional fraction of zeros (a DECIMAL column's "17.00"). */
const INTEGER_TEXT = /^([+-]?\d+)(?:\.0*)?$/;

/**
 * The `int` cast, exact: a number when |v| <= 2^53 (as the SQL connectors read BIGINT columns), else a bigint,
 * so a 64-bit id is never rounded through a double. Values outside Flink's BIGINT range (64-bit signed) and
 * values that are not integers (1.5, "1.5", "abc", "") become null, as on Flink, where such a CAST fails.
 */
function toInt(value: unknown): number | bigint | null {
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number') {
    if (!Number.isInteger(value)) return null;
    n = BigInt(value);
  } else if (typeof value === 'boolean') n = value ? 1n : 0n;
  else if (typeof value === 'string') {
    const m = INTEGER_TEXT.exec(value.trim());
    if (m === null) return null;
    n = BigInt(m[1]!);
  } else return null;
  if (n < INT64_MIN || n > INT64_MAX) return null;
  return n >= -EXACT_DOUBLE && n <= EXACT_DOUBLE ? Number(n) : n;
}

/** Converts one value; a value that cannot be converted becomes null rather than failing the window. */
export function cast(value: unknown, to: FieldMapping['cast']): unknown {
  if (value === null || value === undefined || to === '') return value ?? null;
  switch (to) {
    case 'string':
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
    case 'int':
      return toInt(value);
    case 'float': {
      const n = Number(value);
      return Number.isFinite(n) ? n : null;
    }
    case 'bool':
      if (typeof value === 'string') return ['true', '1', 'yes', 't', 'y'].includes(value.toLowerCase());
      return Boolean(value);
    case 'timestamp':
      return toMs(value);
    case 'json':
      return typeof value === 'string'
        ? value
        : JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }
}

/** Checks a stream's field mapping; paths are relative to `prefix`. */
export function checkMapping(fields: readonly FieldMapping[], prefix: string): void {
  const targets = new Set<string>();
  fields.forEach((f, i) => {
    if (f.sourceField === '') throw invalidArgument(`${prefix}[${i}].source_field`, 'a field name', f.sourceField);
    if (!(CASTS as readonly string[]).includes(f.cast))
      throw invalidArgument(`${prefix}[${i}].cast`, `one of ${CASTS.filter(Boolean).join(', ')} or empty`, f.cast);
    const target = f.targetField || f.sourceField;
    if (targets.has(target))
      throw invalidArgument(`${prefix}[${i}].target_field`, 'a target field not used by another mapping', target);
    targets.add(target);
  });
}

/** A function applying the mapping to a row; the identity when there is no mapping. */
export function rowMapper(fields: readonly FieldMapping[]): (row: Row) => Row {
  if (fields.length === 0) return (row) => row;
  const plan = fields.map((f) => [f.sourceField, f.targetField || f.sourceField, f.cast] as const);
  return (row) => {
    const out: Record<string, unknown> = {};
    for (const [from, to, c] of plan) out[to] = cast(row[from], c);
    return out;
  };
}

/**
 * A function applying the mapping to a batch: its rows mapped (rowMapper), and its floating-point columns
 * (markFloatColumns) under their target names, so that a writer creating its table still makes them float
 * columns: a field taken as it is keeps its source column's mark, a field cast to `float` is marked whatever the
 * reader said, a field cast to anything else is not. The batch itself when there is no mapping.
 */
export function batchMapper(fields: readonly FieldMapping[]): (batch: readonly Row[]) => readonly Row[] {
  if (fields.length === 0) return (batch) => batch;
  const map = rowMapper(fields);
  const castFloat = fields.filter((f) => f.cast === 'float').map((f) => f.targetField || f.sourceField);
  const kept = fields.filter((f) => f.cast === '');
  return (batch) => {
    const mapped = batch.map(map);
    const source = floatColumnsOf(batch);
    const floats = new Set(castFloat);
    if (source) for (const f of kept) if (source.has(f.sourceField)) floats.add(f.targetField || f.sourceField);
    return markFloatColumns(mapped, floats);
  };
}

/**
 * Lets the reader put values in the writer's native form (e.g. PostgreSQL's COPY text, passed on
 * unparsed) when the mapping reads no value: no mapping, or one that only picks and renames fields.
 * A cast needs the plain value, so then nothing is offered. Call before the first batch; true when
 * the reader took the offer.
 */
export function offerNativeForm(reader: BoundedReader, writer: WindowWriter, fields: readonly FieldMapping[]): boolean {
  const form = writer.nativeForm;
  if (form === undefined || reader.offerNativeForm === undefined) return false;
  if (fields.some((f) => f.cast !== '')) return false;
  return reader.offerNativeForm(form);
}
