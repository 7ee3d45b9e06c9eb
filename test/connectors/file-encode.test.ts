import test from 'ava';
import { jsonLine, jsonText } from '../../plugins/connectors/file/encode.js';

// jsonText takes plain JSON.stringify for values without bigint or bytes and the replacer for the rest:
// both paths must write the same exact text.

test('plain rows are written as JSON.stringify writes them', (t) => {
  const row = { id: 1, note: 'a "quoted" line\n', amount: 12.5, ok: true, none: null, tags: ['a', { b: 2 }] };
  t.is(jsonText(row), JSON.stringify(row));
  t.is(jsonLine(row), `${JSON.stringify(row)}\n`);
  t.is(jsonText(undefined), 'null');
});

test('a bigint is an exact JSON number, at the top and nested at any depth', (t) => {
  const big = 2n ** 63n - 1n;
  t.is(jsonText({ offset: big }), '{"offset":9223372036854775807}');
  t.is(jsonText({ a: [{ b: -9007199254740993n }] }), '{"a":[{"b":-9007199254740993}]}');
  // Deeper than the fast path looks: still exact.
  t.is(
    jsonText({ a: { b: { c: { d: { e: { f: 9007199254740993n } } } } } }),
    '{"a":{"b":{"c":{"d":{"e":{"f":9007199254740993}}}}}}',
  );
});

test('bytes are base64 and dates ISO-8601, at the top and nested', (t) => {
  const bytes = Buffer.from([0, 1, 254, 255]);
  const view = new Uint8Array([104, 105]);
  const at = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
  t.is(
    jsonText({ b: bytes, v: view, at, nested: { b: bytes, list: [view, at] } }),
    '{"b":"AAH+/w==","v":"aGk=","at":"2026-01-02T03:04:05.678Z","nested":{"b":"AAH+/w==","list":["aGk=","2026-01-02T03:04:05.678Z"]}}',
  );
  t.is(jsonText({ at }), JSON.stringify({ at }));
});

test('an object with its own toJSON goes through the replacer, which sees what toJSON returns', (t) => {
  t.is(jsonText({ v: { toJSON: () => 12n } }), '{"v":12}');
});

test('a cyclic value fails as JSON.stringify fails', (t) => {
  const row: Record<string, unknown> = { id: 1 };
  row.self = row;
  t.throws(() => jsonText(row), { instanceOf: TypeError });
});

test('NaN and infinities are the strings "NaN", "Infinity" and "-Infinity", never null (JSON has no number for them)', (t) => {
  t.is(
    jsonLine({ a: Number.NaN, b: Number.POSITIVE_INFINITY, c: [Number.NEGATIVE_INFINITY], d: null, e: 1.5 }),
    '{"a":"NaN","b":"Infinity","c":["-Infinity"],"d":null,"e":1.5}\n',
  );
});
