import type { Row } from 'sluice/sdk';

/** `JSON.rawJSON` (Node >= 21): writes a bigint as the exact number it is, not a rounded double. */
const rawJSON = (JSON as unknown as { rawJSON?: (text: string) => unknown }).rawJSON;

/**
 * JSON.stringify's replacer for row values: a bigint becomes an exact JSON number, bytes (Buffer,
 * Uint8Array) become a base64 string, and NaN and ±Infinity, which JSON has no number for (JSON.stringify
 * writes null, as for SQL NULL), the strings "NaN", "Infinity" and "-Infinity". Dates already become
 * ISO-8601 strings through their toJSON.
 */
function replacer(this: unknown, key: string, value: unknown): unknown {
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Uint8Array)
    return Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64');
  if (typeof value === 'bigint') return rawJSON ? rawJSON(value.toString()) : value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}

/** How deep plainJson looks into nested objects and arrays before it leaves a value to the replacer. */
const PLAIN_DEPTH = 4;

/**
 * True when JSON.stringify without the replacer writes `value` exactly as with it: no bigint, no bytes and no
 * NaN or infinity anywhere in it, and no object with a toJSON of its own other than a Date's. The replacer is a call per
 * key, about 2.5x the cost of the plain stringify; most rows (parsed JSON, SQL scalars) need none of it.
 */
function plainJson(value: unknown, depth: number): boolean {
  if (typeof value !== 'object' || value === null)
    return typeof value === 'number' ? Number.isFinite(value) : typeof value !== 'bigint';
  if (depth >= PLAIN_DEPTH || value instanceof Uint8Array) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!plainJson(item, depth + 1)) return false;
    return true;
  }
  if (value instanceof Date) return true;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  for (const key in value) {
    if (!plainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/** A value as JSON text, with the replacer above where the value needs it. */
export function jsonText(value: unknown): string {
  return (plainJson(value, 0) ? JSON.stringify(value) : JSON.stringify(value, replacer)) ?? 'null';
}

/** One JSON lines record: the row as one line of JSON, ended by `\n`. */
export function jsonLine(row: Row): string {
  return `${jsonText(row)}\n`;
}

/** Record separator of CSV files, as RFC 4180 says. */
export const CSV_EOL = '\r\n';

/**
 * One CSV field (RFC 4180): a field holding `"`, `,`, CR or LF is enclosed in double quotes, with each
 * `"` doubled. null and undefined are an empty field; the empty string is `""`, so the two stay apart
 * (as PostgreSQL's COPY reads them). Objects and arrays become their JSON text, bytes base64, dates
 * ISO-8601, everything else its string form.
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text: string;
  if (typeof value === 'string') text = value;
  else if (value instanceof Date) text = value.toISOString();
  else if (value instanceof Uint8Array)
    text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  else if (typeof value === 'object') text = jsonText(value);
  else text = String(value);
  if (text === '') return '""';
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One CSV record of the given columns, ended by CRLF. */
export function csvLine(values: readonly unknown[]): string {
  return values.map(csvField).join(',') + CSV_EOL;
}
