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

/** The characters a number's digit run is counted over: digits and the decimal point. */
const RUN = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) RUN[c] = 1;
RUN[0x2e] = 1;
/** A number with this many digits and points in a row may have 16 significant digits, more than a double keeps. */
const LONG_RUN = 16;
/** A digit followed by an exponent mark: the number may be beyond a double's range (`1e400`, `1e-400`). */
const EXPONENT = /[0-9][eE]/;

/**
 * True when `text` has LONG_RUN digits and points in a row. Looks at every LONG_RUN-th character first and
 * walks back only from one that may end such a run, so JSON without long numbers costs a fraction of a loop
 * over every character (which took two thirds of JSON.parse's own time on short messages).
 */
function hasLongRun(text: string): boolean {
  const n = text.length;
  let i = 0;
  while (i + LONG_RUN <= n) {
    const last = i + LONG_RUN - 1;
    const c = text.charCodeAt(last);
    if (c >= 128 || RUN[c] === 0) {
      i = last + 1;
      continue;
    }
    let start = last;
    while (start > i) {
      const p = text.charCodeAt(start - 1);
      if (p >= 128 || RUN[p] === 0) break;
      start--;
    }
    if (start === i) return true;
    i = start;
  }
  return false;
}

/**
 * True when the JSON text may hold a number a double does not keep as written: 16 or more digits in a row,
 * counting across the decimal point (`12345678901234567890`, `1234567890.12345678`), or an exponent (`1e400`).
 * Doubles keep every number of at most 15 significant digits within their range, so text with neither takes the
 * plain parse. Matches inside strings only cost the slower parse, never a value.
 */
function mayLoseDigits(text: string): boolean {
  return hasLongRun(text) || EXPONENT.test(text);
}

function keepNumberText(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== 'number' || context?.source === undefined || String(value) === context.source) return value;
  return EXACT.rawJSON(context.source);
}

/**
 * `JSON.parse`, except that a number whose text a double would change (`12345678901234567890`,
 * `0.10000000000000000001`, `1e400`) becomes a `JSON.rawJSON` value holding that text, which
 * `JSON.stringify` writes back exactly as it came. Takes the text, or its UTF-8 bytes (a message payload).
 * Throws what `JSON.parse` throws.
 */
export function parseJsonExact(json: string | Uint8Array): unknown {
  const text =
    typeof json === 'string'
      ? json
      : Buffer.isBuffer(json)
        ? json.toString('utf8')
        : Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8');
  return mayLoseDigits(text) ? EXACT.parse(text, keepNumberText) : JSON.parse(text);
}

/** True for a value made by `JSON.rawJSON` (as `parseJsonExact` makes for exact numbers): it stands for its JSON text. */
export function isRawJson(value: unknown): boolean {
  return EXACT.isRawJSON(value);
}
