import test from 'ava';
import { isRawJson, parseJsonExact } from 'sluice/sdk';
import { parseJsonExact as parseSqlJson, stringifyJsonExact } from '../plugins/connectors/_sql/values.js';

/** Texts whose numbers a double changes, each written back by JSON.stringify exactly as it came. */
const EXACT_TEXTS = [
  '{"big":12345678901234567890,"neg":-9007199254740993}',
  // 16 or more significant digits across the decimal point, with no longer run of digits anywhere in the text.
  '{"a":1234567890.12345678,"b":9007199254.740993}',
  '{"c":0.10000000000000000001}',
  // Exponents: beyond a double's range, below it, and one a double would write another way.
  '{"huge":1e400,"tiny":1e-400,"e":1.5E+3}',
  '[1.000000000000000000000000001,{"deep":[[123456789012345678]]}]',
];

test('parseJsonExact keeps every number a double would change, and JSON.stringify writes it back as it came', (t) => {
  for (const text of EXACT_TEXTS) t.is(JSON.stringify(parseJsonExact(text)), text, text);
  const parsed = parseJsonExact('{"big":12345678901234567890,"small":42,"s":"1e5 in a string"}') as Record<
    string,
    unknown
  >;
  t.true(isRawJson(parsed.big));
  t.is(parsed.small, 42, 'a number a double holds stays a number');
  t.is(parsed.s, '1e5 in a string');
});

test('parseJsonExact takes the UTF-8 bytes of the text just as well', (t) => {
  for (const text of [...EXACT_TEXTS, '{"s":"ü☃ 12345678901234567 in a string","n":1.5}', '{"ok":"€1e5"}'])
    t.deepEqual(JSON.stringify(parseJsonExact(Buffer.from(text))), JSON.stringify(parseJsonExact(text)), text);
  t.is(JSON.stringify(parseJsonExact(Buffer.from('{"big":12345678901234567890}'))), '{"big":12345678901234567890}');
  const view = new Uint8Array(Buffer.from('xx{"a":1}yy')).subarray(2, 9);
  t.deepEqual(parseJsonExact(view), { a: 1 }, 'a view into a larger buffer reads only its own bytes');
});

test('parseJsonExact is JSON.parse for text whose numbers a double holds, errors included', (t) => {
  const text = '{"id":1,"ts":1767225600000,"amount":12.34,"status":"cancelled","note":"order 7","n":null}';
  t.deepEqual(parseJsonExact(text), JSON.parse(text));
  t.false(isRawJson(parseJsonExact('3')));
  t.true(isRawJson(parseJsonExact('12345678901234567890')), 'a top-level number a double changes is raw JSON');
  t.is(parseJsonExact('null'), null);
  t.throws(() => parseJsonExact('{"a":'), { instanceOf: SyntaxError });
});

test('the SQL connectors keep JSON null a value and split-digit decimals exact', (t) => {
  t.is(stringifyJsonExact(parseSqlJson('null')), 'null');
  for (const text of EXACT_TEXTS) t.is(stringifyJsonExact(parseSqlJson(text)), text, text);
});

/** A decimal's value as sign, significant digits and exponent: `1.50`, `15e-1` and `1.5` are all `1.5`. */
function decimalValue(token: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(token);
  if (!m) return `not a JSON number: ${token}`;
  let digits = `${m[2]}${m[3] ?? ''}`.replace(/^0+/, '');
  let exp = Number(m[4] ?? 0) - (m[3]?.length ?? 0);
  while (digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    exp++;
  }
  return digits === '' ? '0' : `${m[1]}${digits}e${exp}`;
}

test('parseJsonExact, 20,000 random numbers among digits and points in strings: every value comes back equal', (t) => {
  let seed = 42;
  const next = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  const digits = (n: number) => Array.from({ length: n }, () => String(next(10))).join('');
  for (let k = 0; k < 20_000; k++) {
    const int = `${next(9) + 1}${digits(next(22))}`;
    const token = `${next(4) === 0 ? '-' : ''}${int}${next(2) ? `.${digits(next(12) + 1)}` : ''}${next(8) === 0 ? `e${next(2) ? '-' : ''}${next(400)}` : ''}`;
    const pad = Array.from({ length: next(40) }, () => '0123456789.eab '[next(15)]).join('');
    const out = JSON.stringify(parseJsonExact(`{"s":"${pad}","x":${token}}`));
    const written = /"x":(.*)}$/.exec(out)?.[1] ?? '';
    if (decimalValue(written) !== decimalValue(token)) {
      t.fail(`${token} came back as ${written}`);
      return;
    }
  }
  t.pass();
});
