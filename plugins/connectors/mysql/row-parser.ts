import type { FieldPacket } from 'mysql2';
import { ValueError } from '../_sql/core.js';
import { parseJsonExact, timestampTextToIso } from '../_sql/values.js';

/**
 * The text-protocol row parser of the streamed read, compiled once per result from its field metadata.
 * It reads every column the way mysql2's own parser reads it under the connector's connection options
 * (`supportBigNumbers`, `dateStrings`, `jsonStrings`), except three kinds of column, which it reads
 * straight from the packet's bytes into their final value, with no intermediate text or per-cell call:
 *
 * - DATETIME / TIMESTAMP: the ISO 8601 UTC text (`2024-05-01T12:00:00.123Z`) built in one string from
 *   the bytes, every fractional digit kept (the session's zone is UTC);
 * - DOUBLE / FLOAT: the server's shortest round-trip digits read exactly. mysql2 adds the digits up in a
 *   double and divides (one value in twenty of a random sample came out one ulp off); here a value of at
 *   most 15 digits is one integer (exact below 2^53) divided by an exact power of ten, a single
 *   correctly rounded operation, and anything longer or with an exponent is parsed by `Number`. (A
 *   FLOAT column's own text has only 6 significant digits: the reader selects it as DOUBLE, so a FLOAT
 *   seen here is an expression's);
 * - JSON: parsed with `parseJsonExact` (numbers a double cannot hold stay their text).
 */

/** mysql2's packet: the methods its own compiled parsers call (not in its typings). */
export interface TextPacket {
  buffer: Buffer;
  offset: number;
  readLengthCodedString(encoding: string): string | null;
  readLengthCodedBuffer(): Buffer | null;
  readLengthCodedNumber(): number | null;
  parseLengthCodedInt(supportBigNumbers: boolean): number | string | null;
  parseLengthCodedIntNoBigCheck(): number | null;
  parseGeometryValue(): unknown;
  parseVector(): unknown;
}

/** What mysql2's query calls for each row packet (its `_rowParser`). */
export interface RowParser {
  next(packet: TextPacket, fields: unknown, options: unknown): Record<string, unknown>;
}

/** Protocol column types (mysql2's `columnType`). */
const T = {
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  VECTOR: 0xf2,
  JSON: 0xf5,
  DECIMAL: 0,
  NEWDECIMAL: 0xf6,
  GEOMETRY: 0xff,
} as const;
const BINARY_CHARSET = 63;

/** The length byte of SQL NULL in a text row. */
const NULL_LENGTH = 0xfb;
const ZERO = 48;
const SPACE = 32;
const DOT = 46;
const MINUS = 45;

/** Exact powers of ten (every one up to 10^22 is a double exactly). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** A DOUBLE or FLOAT column's value. */
export function readDouble(packet: TextPacket): number | null {
  const b = packet.buffer;
  const at = packet.offset;
  const len = b[at]!;
  if (len === NULL_LENGTH) {
    packet.offset = at + 1;
    return null;
  }
  // The text of a double is at most 25 bytes; a longer length (a coded one) is left to the general path.
  if (len > 250) return textDouble(packet.readLengthCodedString('latin1'));
  const end = at + 1 + len;
  packet.offset = end;
  let i = at + 1;
  const negative = b[i] === MINUS;
  if (negative) i++;
  let mantissa = 0;
  let digits = 0;
  let scale = 0;
  let dotAt = -1;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c >= ZERO && c <= ZERO + 9) {
      mantissa = mantissa * 10 + (c - ZERO);
      digits++;
    } else if (c === DOT && dotAt < 0) dotAt = i;
    else break;
  }
  // Only digits with at most one dot, at most 15 of them (so below 2^53: every step above was exact).
  if (i !== end || digits === 0 || digits > 15) return Number(b.toString('latin1', at + 1, end));
  if (dotAt >= 0) scale = end - dotAt - 1;
  const value = scale === 0 ? mantissa : mantissa / POW10[scale]!;
  return negative ? -value : value;
}

function textDouble(text: string | null): number | null {
  return text === null ? null : Number(text);
}

/** Builders of the ISO text for each length of the server's `YYYY-MM-DD HH:MM:SS[.f]` (19, 21-26 bytes). */
const ISO_BUILDERS: ((b: Buffer, s: number) => string)[] = [];
for (const len of [19, 21, 22, 23, 24, 25, 26]) {
  const codes = Array.from({ length: len }, (_, i) => (i === 10 ? '84' : `b[s + ${i}]`));
  // One string of the final text: 'T' (84) in place of the space and 'Z' (90) after the last digit.
  ISO_BUILDERS[len] = new Function('b', 's', `return String.fromCharCode(${codes.join(', ')}, 90);`) as (
    b: Buffer,
    s: number,
  ) => string;
}

/** A DATETIME or TIMESTAMP column's value as ISO 8601 UTC text. */
export function readTimestamp(packet: TextPacket): string | null {
  const b = packet.buffer;
  const at = packet.offset;
  const len = b[at]!;
  if (len === NULL_LENGTH) {
    packet.offset = at + 1;
    return null;
  }
  const build = len < 27 ? ISO_BUILDERS[len] : undefined;
  // The common shape; zero dates, years before 1000 and any other text take the careful path.
  if (build !== undefined && b[at + 11] === SPACE && b[at + 1] !== ZERO) {
    packet.offset = at + 1 + len;
    return build(b, at + 1);
  }
  const text = packet.readLengthCodedString('latin1');
  return text === null ? null : timestampTextToIso(text);
}

/**
 * A JSON column's value (its text read by mysql2 in the given encoding). Text JavaScript cannot parse
 * (MariaDB's json_valid takes `1.` and `"\x"`) is a ValueError naming the column.
 */
export function readJson(text: string | null, column: string): unknown {
  if (text === null) return null;
  try {
    return parseJsonExact(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const e = new ValueError(`JSON text JavaScript can parse (${reason})`, text, { cause: err });
    e.column = column;
    throw e;
  }
}

/** The read of one column: mysql2's text parser under the connector's options, or one of the readers above. */
function readCode(field: FieldPacket, i: number): string {
  const type = field.columnType;
  if ((field as { extendedFormat?: string }).extendedFormat === 'json')
    return `readJson(packet.readLengthCodedString(fields[${i}].encoding), ${JSON.stringify(field.name)})`;
  switch (type) {
    case T.TINY:
    case T.SHORT:
    case T.LONG:
    case T.INT24:
    case T.YEAR:
      return 'packet.parseLengthCodedIntNoBigCheck()';
    case T.LONGLONG:
      // BIGINT as a number when a double holds it exactly, as its decimal text beyond 2^53.
      return 'packet.parseLengthCodedInt(true)';
    case T.FLOAT:
    case T.DOUBLE:
      return 'readDouble(packet)';
    case T.NULL:
      return 'packet.readLengthCodedNumber()';
    case T.DECIMAL:
    case T.NEWDECIMAL:
    case T.DATE:
    case T.TIME:
      return 'packet.readLengthCodedString("ascii")';
    case T.DATETIME:
    case T.TIMESTAMP:
      return 'readTimestamp(packet)';
    case T.GEOMETRY:
      return 'packet.parseGeometryValue()';
    case T.VECTOR:
      return 'packet.parseVector()';
    case T.JSON:
      return `readJson(packet.readLengthCodedString("utf8"), ${JSON.stringify(field.name)})`;
    default:
      return field.characterSet === BINARY_CHARSET
        ? 'packet.readLengthCodedBuffer()'
        : `packet.readLengthCodedString(fields[${i}].encoding)`;
  }
}

/**
 * The parser for a result with these fields: one function whose row is an object literal of the
 * columns in order (as mysql2's rows: a later column of the same name wins), so that every row has
 * the same shape from its creation.
 */
export function compileRowParser(fields: readonly FieldPacket[]): RowParser {
  const reads = fields.map((f, i) => `  const v${i} = ${readCode(f, i)};`);
  // A column named __proto__ becomes an own property, as it does in a row assigned key by key.
  const props = fields.map(
    (f, i) => `${f.name === '__proto__' ? `[${JSON.stringify(f.name)}]` : JSON.stringify(f.name)}: v${i}`,
  );
  const body = `return function next(packet, fields) {\n${reads.join('\n')}\n  return { ${props.join(', ')} };\n};`;
  const make = new Function('readDouble', 'readTimestamp', 'readJson', body) as (
    ...readers: unknown[]
  ) => RowParser['next'];
  return { next: make(readDouble, readTimestamp, readJson) };
}
