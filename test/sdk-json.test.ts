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
