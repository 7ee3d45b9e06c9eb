import { invalidArgument, type Row } from 'sluice/sdk';
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

/** Converts one value; a value that cannot be converted becomes null rather than failing the window. */
export function cast(value: unknown, to: FieldMapping['cast']): unknown {
  if (value === null || value === undefined || to === '') return value ?? null;
  switch (to) {
    case 'string':
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
    case 'int': {
      const n = typeof value === 'bigint' ? Number(value) : Number(value);
      return Number.isFinite(n) ? Math.trunc(n) : null;
    }
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
