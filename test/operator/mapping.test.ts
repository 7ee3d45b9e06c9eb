/**
 * The embedded runner's field mapping (services/operator/domain/mapping.ts): select, rename and cast,
 * as docs/runners.md lists the casts. A value that cannot be converted becomes null, never a failed window.
 */
import test from 'ava';
import { rowMapper } from '../../services/operator/domain/mapping.js';
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

test('int: numbers and numeric strings truncate toward zero; what is not a number becomes null', (t) => {
  t.is(map('int', 42.9), 42);
  t.is(map('int', -42.9), -42);
  t.is(map('int', '17'), 17);
  t.is(map('int', 12n), 12);
  t.is(map('int', 'abc'), null);
  t.is(map('int', Number.NaN), null);
  t.is(map('int', {}), null);
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
