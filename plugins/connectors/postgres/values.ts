import pg from 'pg';
import { parseJsonExact, stringifyJsonExact, timestampTextToIso } from '../_sql/values.js';

/**
 * PostgreSQL values, text format in and out, exact: the parsers turn a column's text output into the
 * row value (the same for the keyset reader, through node-postgres, and for the COPY reader), and the
 * encoder turns a row value back into COPY text. Nothing passes through a JS `Date`.
 */

type Parser = (text: string) => unknown;

const int8: Parser = (text) => (Number.isSafeInteger(Number(text)) ? Number(text) : text);
const bytea: Parser = (text) =>
  text.startsWith('\\x') ? Buffer.from(text.slice(2), 'hex') : pg.types.getTypeParser(17, 'text')(text);
/** pg-types' array parser (its typings describe an older shape). */
const arrays = pg.types.arrayParser as unknown as {
  create(source: string, transform: (entry: string | null) => unknown): { parse(): unknown[] };
};
const arrayOf =
  (element: Parser): Parser =>
  (text) =>
    arrays.create(text, (v) => (v === null ? null : element(v))).parse();

/** Parsers by type OID where node-postgres' own would lose precision or go through Date. */
const PARSERS: Readonly<Record<number, Parser>> = {
  20: int8,
  1016: arrayOf(int8),
  1082: (text) => text,
  1182: arrayOf((text) => text),
  1114: timestampTextToIso,
  1184: timestampTextToIso,
  1115: arrayOf(timestampTextToIso),
  1185: arrayOf(timestampTextToIso),
  1231: arrayOf((text) => text), // numeric[]: exact text, not floats
  114: parseJsonExact,
  3802: parseJsonExact,
  199: arrayOf(parseJsonExact),
  3807: arrayOf(parseJsonExact),
  17: bytea,
  // Text, not node-postgres' objects: an interval or a point object does not read back as the value.
  1186: (text) => text,
  1187: (text) => text,
  600: (text) => text,
  718: (text) => text,
  1017: (text) => text,
};

/** The row value of a column's text output. */
export function parserFor(oid: number): Parser {
  return PARSERS[oid] ?? (pg.types.getTypeParser(oid, 'text') as Parser);
}

/** node-postgres type config for the keyset reader (the process-wide parsers stay untouched). */
export const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    format === 'binary'
      ? pg.types.getTypeParser(oid, format)
      : parserFor(oid)) as pg.CustomTypesConfig['getTypeParser'],
};

// ---------------------------------------------------------------------------------------- COPY text

const COPY_ESCAPES: Readonly<Record<string, string>> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** A COPY text field (not `\N`) unescaped: `\\`, `\n`, `\t`, …, octal `\123` and hex `\x41`. */
export function unescapeCopy(field: string): string {
  if (!field.includes('\\')) return field;
  return field.replace(
    /\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))/gs,
    (_m, oct?: string, hex?: string, ch?: string) => {
      if (oct) return String.fromCharCode(parseInt(oct, 8));
      if (hex) return String.fromCharCode(parseInt(hex, 16));
      return COPY_ESCAPES[ch!] ?? ch!;
    },
  );
}

const NEEDS_ESCAPE = /[\\\n\r\t]/;
const ESCAPE_ALL = /[\\\n\r\t]/g;
const ESCAPED: Readonly<Record<string, string>> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeCopy(text: string): string {
  return NEEDS_ESCAPE.test(text) ? text.replace(ESCAPE_ALL, (c) => ESCAPED[c]!) : text;
}

function arrayElement(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (Array.isArray(v)) return arrayLiteral(v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 't' : 'f';
  let text: string;
  if (typeof v === 'string') text = v;
  else if (v instanceof Date) text = v.toISOString();
  else if (v instanceof Uint8Array) text = `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
  else text = stringifyJsonExact(v);
  return `"${text.replace(/[\\"]/g, '\\$&')}"`;
}

/** A JS array as a PostgreSQL array literal (`{1,"a b",NULL}`), nested arrays as dimensions. */
export function arrayLiteral(values: readonly unknown[]): string {
  return `{${values.map(arrayElement).join(',')}}`;
}

/**
 * A bind-ready value (after the writer's `convert`) as one COPY text field. Strings go as they are
 * (the column's input function reads them, so a timestamp keeps every digit); Buffers as bytea hex.
 */
export function copyField(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'string') return escapeCopy(v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (v instanceof Uint8Array) return `\\\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
  if (Array.isArray(v)) return escapeCopy(arrayLiteral(v));
  if (v instanceof Date) return v.toISOString();
  return escapeCopy(stringifyJsonExact(v));
}
