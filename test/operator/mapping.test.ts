/**
 * The embedded runner's field mapping (services/operator/domain/mapping.ts): select, rename and cast,
 * as docs/runners.md lists the casts. A value that cannot be converted becomes null, never a failed window.
 */
import test from 'ava';
import { type BoundedReader, type WindowWriter, floatColumnsOf, markFloatColumns } from 'sluice/sdk';
import { batchMapper, offerNativeForm, rowMapper } from '../../services/operator/domain/mapping.js';
import type { FieldMapping } from '../../services/operator/domain/model.js';

const map = (cast: FieldMapping['cast'], value: unknown) =>
  rowMapper([{ sourceField: 'v', targetField: 'out', cast }])({ v: value }).out;

test('no mapping passes rows through; a mapping selects and renames, missing fields become null', (t) => {
  const row = { a: 1, b: 'x' };
  t.is(rowMapper([])(row), row);
  t.deepEqual(
    rowMapper([
      { sourceField: 'b', targetField: 'renamed', cast: '' },
      { sourceField: 'absent', targetField: '', cast: 'int' },
    ])(row),
    { renamed: 'x', absent: null },
  );
});

test("a batch's floating-point columns keep their mark through the mapping, under their target names", (t) => {
  const batch = markFloatColumns([{ price: 3, ratio: 1, qty: 2, label: 'a' }], new Set(['price', 'ratio']));
  const field = (sourceField: string, targetField: string, cast: FieldMapping['cast']): FieldMapping => ({
    sourceField,
    targetField,
    cast,
  });
  const mapped = batchMapper([
    field('price', 'amount', ''), // taken as it is, renamed: still a float column
    field('ratio', '', 'string'), // cast to text: no longer one
    field('qty', '', 'float'), // cast to float: one, whatever the reader said
    field('label', 'name', ''),
  ])(batch);
  t.deepEqual(mapped, [{ amount: 3, ratio: '1', qty: 2, name: 'a' }]);
  t.deepEqual([...(floatColumnsOf(mapped) ?? [])].sort(), ['amount', 'qty']);
  // An unmarked batch (a reader that does not know its types): only the float casts are marked.
  t.deepEqual([...(floatColumnsOf(batchMapper([field('qty', 'q', 'float')])([{ qty: 1 }])) ?? [])], ['q']);
  t.is(floatColumnsOf(batchMapper([field('qty', 'q', '')])([{ qty: 1 }])), undefined);
  // No mapping: the batch itself, its mark with it.
  t.is(batchMapper([])(batch), batch);
});

test('int: integers stay exact; fractions, non-numeric text and values beyond 64 bits become null', (t) => {
  t.is(map('int', 42), 42);
  t.is(map('int', -42), -42);
  t.is(map('int', '17'), 17);
  t.is(map('int', ' -17 '), -17);
  t.is(map('int', '17.00'), 17, "a DECIMAL column's integral text");
  t.is(map('int', 12n), 12);
  t.is(map('int', true), 1);
  t.is(map('int', false), 0);
  for (const bad of [42.9, -42.9, '42.9', '1.5e3', 'abc', '', Number.NaN, Number.POSITIVE_INFINITY, {}, [5]])
    t.is(map('int', bad), null, String(bad));
});

test('int: values beyond 2^53 stay exact as bigint, positive and negative, up to the 64-bit limits', (t) => {
  t.is(map('int', 2 ** 53), 2 ** 53, '2^53 is exact as a number');
  t.is(map('int', -(2 ** 53)), -(2 ** 53));
  t.is(map('int', 9007199254740993n), 9007199254740993n, 'a bigint is kept, not rounded to ...992');
  t.is(map('int', '9007199254740993'), 9007199254740993n, 'a decimal string (BIGINT column) is kept');
  t.is(map('int', '-9007199254740993'), -9007199254740993n);
  t.is(map('int', -9007199254740993n), -9007199254740993n);
  t.is(map('int', '9223372036854775807'), 9223372036854775807n, 'max int64');
  t.is(map('int', '-9223372036854775808'), -9223372036854775808n, 'min int64');
  t.is(map('int', '9223372036854775808'), null, 'beyond int64');
  t.is(map('int', -9223372036854775809n), null, 'beyond int64, negative');
  t.is(map('int', 1e20), null, 'a double beyond int64');
  t.is(map('int', 2 ** 60), 2n ** 60n, 'an integral double beyond 2^53 becomes the exact bigint of its value');
});

test('float: numbers and numeric strings; what is not a finite number becomes null', (t) => {
  t.is(map('float', '1.25'), 1.25);
  t.is(map('float', 3), 3);
  t.is(map('float', '1e3'), 1000);
  t.is(map('float', '1.5abc'), null);
  t.is(map('float', Number.POSITIVE_INFINITY), null);
  t.is(map('float', 'x'), null);
});

test('bool: true/1/yes/t/y strings (any case) are true, other strings false; other values by truthiness', (t) => {
  for (const yes of ['true', 'TRUE', '1', 'yes', 'Y', 't']) t.is(map('bool', yes), true, yes);
  for (const no of ['false', '0', 'no', '', 'maybe']) t.is(map('bool', no), false, no);
  t.is(map('bool', 1), true);
  t.is(map('bool', 0), false);
  t.is(map('bool', true), true);
});

test('timestamp: epoch ms (number, digit string, bigint), ISO strings and dates become epoch ms; the rest null', (t) => {
  const ms = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
  t.is(map('timestamp', ms), ms);
  t.is(map('timestamp', String(ms)), ms);
  t.is(map('timestamp', BigInt(ms)), ms);
  t.is(map('timestamp', '2026-01-02T03:04:05.678Z'), ms);
  t.is(map('timestamp', new Date(ms)), ms, 'millisecond precision kept');
  t.is(map('timestamp', 'yesterday'), null);
  t.is(map('timestamp', true), null);
});

test('json: objects become their JSON text (64-bit integers as decimal strings, not rounded); strings stay', (t) => {
  t.is(map('json', { a: [1, 'x'], b: null }), '{"a":[1,"x"],"b":null}');
  t.is(map('json', { big: 9007199254740993n }), '{"big":"9007199254740993"}');
  t.is(map('json', '{"already":"json"}'), '{"already":"json"}');
  t.is(map('json', 5), '5');
});

test('string: scalars as text, objects as JSON; null and undefined stay null under every cast', (t) => {
  t.is(map('string', 12), '12');
  t.is(map('string', 9007199254740993n), '9007199254740993');
  t.is(map('string', { a: 1 }), '{"a":1}');
  for (const cast of ['', 'string', 'int', 'float', 'bool', 'timestamp', 'json'] as const) {
    t.is(map(cast, null), null, cast);
    t.is(map(cast, undefined), null, cast);
  }
});

/** A reader that records the native forms it is offered and takes `takes`; a writer with `form`. */
function pair(form: string | undefined, takes: boolean) {
  const offered: string[] = [];
  const reader: BoundedReader = {
    batches: async function* () {},
    close: async () => {},
    offerNativeForm(f) {
      offered.push(f);
      return takes;
    },
  };
  const writer: WindowWriter = {
    write: async () => {},
    commit: async () => {},
    abort: async () => {},
    ...(form === undefined ? {} : { nativeForm: form }),
  };
  return { reader, writer, offered };
}

test('native form: offered to the reader when the mapping reads no value; a cast, or a writer without one, offers nothing', (t) => {
  const plain = pair('x-text', true);
  t.true(offerNativeForm(plain.reader, plain.writer, []));
  t.deepEqual(plain.offered, ['x-text']);

  const renamed = pair('x-text', true);
  t.true(offerNativeForm(renamed.reader, renamed.writer, [{ sourceField: 'a', targetField: 'b', cast: '' }]));
  t.deepEqual(renamed.offered, ['x-text'], 'picking and renaming does not read values');

  const cast = pair('x-text', true);
  t.false(
    offerNativeForm(cast.reader, cast.writer, [
      { sourceField: 'a', targetField: '', cast: '' },
      { sourceField: 'b', targetField: '', cast: 'int' },
    ]),
  );
  t.deepEqual(cast.offered, [], 'a cast needs plain values: the reader is not asked');

  const none = pair(undefined, true);
  t.false(offerNativeForm(none.reader, none.writer, []));
  t.deepEqual(none.offered, []);

  const refused = pair('x-text', false);
  t.false(offerNativeForm(refused.reader, refused.writer, []), 'a reader that does not know the form says so');
});
