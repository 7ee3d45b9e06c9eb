import test from 'ava';
import { applyDefaults, checkSchema, validateAgainstSchema, type JsonSchema } from 'sluice/sdk';

const schema: JsonSchema = {
  type: 'object',
  required: ['topic'],
  properties: {
    topic: { type: 'string', minLength: 1, pattern: '^[a-z.]+$' },
    partitions: { type: 'array', items: { type: 'integer', minimum: 0 } },
    mode: { type: 'string', enum: ['earliest', 'latest'], default: 'earliest' },
    ratio: { type: 'number', maximum: 1 },
    nested: { type: 'object', properties: { on: { type: 'boolean' } } },
  },
};

test('valid options have no errors', (t) => {
  t.deepEqual(
    validateAgainstSchema(schema, {
      topic: 'a.b',
      partitions: [0, 1],
      mode: 'latest',
      ratio: 0.5,
      nested: { on: true },
    }),
    [],
  );
});

test('every error is reported with its path, expected and received', (t) => {
  const errors = validateAgainstSchema(schema, {
    partitions: [0, -1, 'x'],
    mode: 'middle',
    ratio: 2,
    nested: { on: 'yes', off: 1 },
    extra: null,
  });
  t.deepEqual(
    errors.map((e) => [e.path, e.expected, e.received]),
    [
      ['options.topic', 'a string (required)', 'nothing'],
      ['options.partitions[1]', 'a number >= 0', '-1'],
      ['options.partitions[2]', 'an integer', '"x"'],
      ['options.mode', 'one of "earliest", "latest"', '"middle"'],
      ['options.ratio', 'a number <= 1', '2'],
      ['options.nested.on', 'a boolean', '"yes"'],
      ['options.nested.off', 'a known option (on)', '"off"'],
      ['options.extra', 'a known option (topic, partitions, mode, ratio, nested)', '"extra"'],
    ],
  );
  t.is(errors[0]!.message, 'options.topic: expected a string (required), got nothing');
});

test('string rules: empty and pattern', (t) => {
  t.deepEqual(
    validateAgainstSchema(schema, { topic: '' }).map((e) => e.expected),
    ['a non-empty string', 'a string matching /^[a-z.]+$/'],
  );
  t.deepEqual(
    validateAgainstSchema(schema, { topic: 'A' }).map((e) => e.path),
    ['options.topic'],
  );
});

test('a non-object where options belong is one error', (t) => {
  t.deepEqual(
    validateAgainstSchema(schema, ['topic']).map((e) => [e.path, e.expected]),
    [['options', 'an object']],
  );
});

test('additionalProperties: true lets unknown options through', (t) => {
  t.deepEqual(
    validateAgainstSchema({ type: 'object', additionalProperties: true, properties: {} }, { anything: 1 }),
    [],
  );
});

test('defaults fill only what was not given', (t) => {
  t.deepEqual(applyDefaults(schema, { topic: 't' }), { topic: 't', mode: 'earliest' });
  t.deepEqual(applyDefaults(schema, { topic: 't', mode: 'latest' }), { topic: 't', mode: 'latest' });
});

test('checkSchema rejects keywords outside the supported subset and bad types', (t) => {
  t.deepEqual(checkSchema(schema), []);
  t.deepEqual(
    checkSchema({ type: 'object', properties: { a: { anyOf: [] }, b: { type: 'date' }, c: { pattern: '(' } } }),
    [
      "$.properties.a: unsupported keyword 'anyOf'",
      '$.properties.b.type: expected one of object, string, integer, number, boolean, array',
      '$.properties.c.pattern: not a valid regular expression',
    ],
  );
  t.deepEqual(checkSchema(undefined, 'sourceOptions'), ['sourceOptions: expected a JSON Schema object']);
});
