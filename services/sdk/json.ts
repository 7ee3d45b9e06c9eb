/**
 * Exact JSON for plugins: numbers that a double cannot hold as written survive a parse and a later
 * `JSON.stringify` unchanged. Built on `JSON.parse` source text access and `JSON.rawJSON` (Node >= 21).
 */

interface ExactJson {
  parse(
    text: string,
    reviver: (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown,
  ): unknown;
  rawJSON(text: string): unknown;
  isRawJSON(value: unknown): boolean;
}
const EXACT = JSON as unknown as ExactJson;

/**
 * Text that may hold a number a double does not keep as written: 16 or more digits in a row, counting across
 * one decimal point (`12345678901234567890`, `1234567890.12345678`), or an exponent (`1e400`). Doubles keep
 * every number of at most 15 significant digits, so text without either takes the plain parse. Matches inside
 * strings only cost the slower parse, never a value.
 */
const MAY_LOSE_DIGITS = /(?:\d\.?){16}|\d[eE]/;

function keepNumberText(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== 'number' || context?.source === undefined || String(value) === context.source) return value;
  return EXACT.rawJSON(context.source);
}

/**
 * `JSON.parse`, except that a number whose text a double would change (`12345678901234567890`,
 * `0.10000000000000000001`, `1e400`) becomes a `JSON.rawJSON` value holding that text, which
 * `JSON.stringify` writes back exactly as it came. Throws what `JSON.parse` throws.
 */
export function parseJsonExact(text: string): unknown {
  return MAY_LOSE_DIGITS.test(text) ? EXACT.parse(text, keepNumberText) : JSON.parse(text);
}

/** True for a value made by `JSON.rawJSON` (as `parseJsonExact` makes for exact numbers): it stands for its JSON text. */
export function isRawJson(value: unknown): boolean {
  return EXACT.isRawJSON(value);
}
