import pg from 'pg';
import { dateMs, msToIso } from '../_sql/core.js';
import { parseJsonExact, parseJsonText, stringifyJsonExact, timestampTextToIso } from '../_sql/values.js';

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
  // json keeps its input text (key order, duplicate keys, whitespace): written back as read. jsonb's
  // text is the server's own rendering of its value, which the parsed value gives back.
  114: parseJsonText,
  3802: parseJsonExact,
  199: arrayOf(parseJsonText),
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

/**
 * An ISO 8601 year (astronomical: 0 is 1 BC) and the rest of the text (`-MM-DD…`) as PostgreSQL reads
 * them: years past 9999 with their digits alone (it holds years up to 294276), years before 1 as the BC
 * year it writes itself.
 */
function yearText(year: number, rest: string): string {
  if (year >= 1) return `${String(year).padStart(4, '0')}${rest}`;
  return `${String(1 - year).padStart(4, '0')}${rest} BC`;
}

/**
 * Epoch ms as timestamp text PostgreSQL reads as that instant: ISO 8601, a year outside 1..9999 as
 * yearText writes it (JavaScript writes `+010000-…`, which PostgreSQL misreads as a zone). A ValueError
 * when no JavaScript Date holds the ms.
 */
export function timestampText(ms: number): string {
  const iso = msToIso(ms);
  const year = new Date(ms).getUTCFullYear();
  return year >= 1 && year <= 9999 ? iso : yearText(year, iso.slice(iso.indexOf('-', 1)));
}

/** ISO 8601's expanded year (`+010000-01-01T…`, `-000001-…`), as JavaScript writes a year outside 0..9999. */
const EXPANDED_YEAR = /^([+-])(\d{6})(-\d\d-\d\d(?:[T ].*)?)$/s;

/** Timestamp text for a timestamp or date column: an expanded year as yearText writes it, other text as it is. */
export function timestampInput(text: string): string {
  const m = EXPANDED_YEAR.exec(text);
  if (!m) return text;
  return yearText(m[1] === '-' ? -Number(m[2]) : Number(m[2]), m[3]!);
}

/** A number as PostgreSQL text: -0 keeps its sign (JavaScript prints it as 0; float8 holds -0). */
export function numberText(v: number): string {
  return Object.is(v, -0) ? '-0' : String(v);
}

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
  if (typeof v === 'number') return numberText(v);
  if (typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 't' : 'f';
  let text: string;
  if (typeof v === 'string') text = v;
  else if (v instanceof Date) text = timestampText(dateMs(v));
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
  if (typeof v === 'number') return numberText(v);
  if (typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (v instanceof Uint8Array) return `\\\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
  if (Array.isArray(v)) return escapeCopy(arrayLiteral(v));
  if (v instanceof Date) return timestampText(dateMs(v));
  return escapeCopy(stringifyJsonExact(v));
}
