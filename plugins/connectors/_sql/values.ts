/**
 * Exact row values shared by the SQL connectors: timestamps as ISO 8601 text with every fractional
 * digit the database gave, JSON parsed without rounding its numbers. A value read is the value written:
 * nothing passes through a JS `Date` or a double unless it fits one exactly.
 */
import { parseJsonExact as parseExact } from 'sluice/sdk';

const TS_TEXT = /^(\d{4,})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[ T](\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]00(?::?00){0,2})?$/;

/**
 * A database timestamp as text in UTC (`2024-05-01 12:00:00.123456+00`, or without zone, read as UTC)
 * to ISO 8601 (`2024-05-01T12:00:00.123456Z`), every fractional digit kept. Text in another zone or
 * that it cannot read (infinity, BC dates, MySQL's zero dates) is returned unchanged.
 */
export function timestampTextToIso(text: string): string {
  const m = TS_TEXT.exec(text);
  if (!m) return text;
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}${m[5] ?? ''}Z`;
}

const ISO_UTC = /^(\d{4})-(\d\d)-(\d\d)T(\d\d:\d\d:\d\d(?:\.\d{1,6})?)Z$/;

/** ISO 8601 UTC text (as the readers give) to `YYYY-MM-DD HH:MM:SS.ffffff`, the form MySQL DATETIME takes; other text unchanged. */
export function isoToSqlDateTime(text: string): string {
  const m = ISO_UTC.exec(text);
  return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}` : text;
}

const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/**
 * A JSON column's text parsed so that every number is exact (the SDK's `parseJsonExact`: a number a double
 * cannot hold as written stays its own text, which `JSON.stringify` writes back unchanged). A scalar at the top
 * (a string, number, boolean or null) stays its JSON text as a `JSON.rawJSON` value: as a bare JS value, a writer
 * would take the string `"123"` for the JSON text `123` and a boolean for 1, and a JSON null would be SQL NULL.
 */
export function parseJsonExact(text: string): unknown {
  const value = parseExact(text);
  // Objects and arrays (and exact numbers, already raw JSON) as they are; rawJSON wants no outer whitespace.
  return typeof value === 'object' && value !== null ? value : rawJSON(text.trim());
}

/**
 * The text each value of parseJsonText came from. A JSON text is more than its value: key order (JS puts
 * integer-like keys first), duplicate keys and whitespace are part of a PostgreSQL `json` value, and a
 * re-serialised value loses them. Weak: the text lives as long as the value (the row) does.
 */
const JSON_TEXTS = new WeakMap<object, string>();

/**
 * A JSON text kept as it is (a PostgreSQL `json` column, which stores its input text): the value as
 * parseJsonExact gives it, which stringifyJsonExact writes back as the very text read. Row values are
 * not changed in place on their way from reader to writer, so the text stays the value's.
 */
export function parseJsonText(text: string): unknown {
  const value = parseJsonExact(text);
  // Objects, arrays and raw JSON (parseJsonExact's scalars): all objects. A JSON null is raw JSON too.
  if (typeof value === 'object' && value !== null) JSON_TEXTS.set(value, text);
  return value;
}

/** Every exact number as it came; a bigint as the exact JSON number; -0 as -0 (JSON.stringify writes 0). */
const exactNumbers = (_key: string, v: unknown) =>
  typeof v === 'bigint' ? rawJSON(v.toString()) : Object.is(v, -0) ? rawJSON('-0') : v;

/**
 * A value as JSON text: the text it was read from when parseJsonText read it, else serialised with bigint
 * as the exact JSON number, exact numbers from parseJsonExact as they came and -0 as -0.
 */
export function stringifyJsonExact(value: unknown): string {
  const text = typeof value === 'object' && value !== null ? JSON_TEXTS.get(value) : undefined;
  return text ?? JSON.stringify(value, exactNumbers);
}
