import test from 'ava';
import {
  applyDefaults,
  capFieldErrors,
  checkSchema,
  MAX_REPORTED_FIELD_ERRORS,
  validateAgainstSchema,
  type JsonSchema,
} from 'sluice/sdk';

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

test('checkSchema reports every problem of a schema with its place: meta-schema, unknown keywords, then compiling', (t) => {
  t.deepEqual(checkSchema(schema), []);
  t.deepEqual(
    checkSchema({
      type: 'object',
      properties: { a: { onOf: [] }, b: { type: 'date' }, c: { type: 'string', minLength: -1, maxLen: 3 } },
      oneOf: [{ type: 'object', requird: ['a'] }],
    }),
    [
      '$.properties.b.type: expected one of "array", "boolean", "integer", "null", "number", "object", "string", got "date"',
      '$.properties.c.minLength: expected a number >= 0, got -1',
      '$.properties.a.onOf: expected a JSON Schema 2020-12 keyword, got "onOf"',
      '$.properties.c.maxLen: expected a JSON Schema 2020-12 keyword, got "maxLen"',
      '$.oneOf[0].requird: expected a JSON Schema 2020-12 keyword, got "requird"',
    ],
  );
  // What only compiling finds comes once the rest is right.
  t.regex(checkSchema({ type: 'object', properties: { c: { type: 'string', pattern: '(' } } })[0]!, /^\$: .*\(/);
  t.deepEqual(checkSchema(undefined, 'sourceOptions'), ['sourceOptions: expected a JSON Schema object']);
});

test('checkSchema stops listing at MAX_REPORTED_FIELD_ERRORS and counts the rest', (t) => {
  const properties = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`p${i}`, { typ: 'string' }]));
  const problems = checkSchema({ type: 'object', properties }, 'sinkOptions');
  t.is(problems.length, MAX_REPORTED_FIELD_ERRORS + 1);
  t.is(problems[0], 'sinkOptions.properties.p0.typ: expected a JSON Schema 2020-12 keyword, got "typ"');
  t.is(problems.at(-1), `sinkOptions: and ${30 - MAX_REPORTED_FIELD_ERRORS} more problems`);
});

test('validation reports every problem (Ajv allErrors); capFieldErrors keeps the shape and counts the rest', (t) => {
  const list: JsonSchema = { type: 'object', properties: { ids: { type: 'array', items: { type: 'integer' } } } };
  const errors = validateAgainstSchema(list, { ids: Array.from({ length: 50 }, (_, i) => `x${i}`) });
  t.is(errors.length, 50, 'not only the first');
  t.deepEqual(
    [errors[49]!.path, errors[49]!.expected, errors[49]!.received],
    ['options.ids[49]', 'an integer', '"x49"'],
  );
  const capped = capFieldErrors(errors, 'options');
  t.is(capped.length, MAX_REPORTED_FIELD_ERRORS + 1);
  t.deepEqual(capped.slice(0, -1), errors.slice(0, MAX_REPORTED_FIELD_ERRORS));
  t.like(capped.at(-1), {
    path: 'options',
    expected: `at most ${MAX_REPORTED_FIELD_ERRORS} problems reported`,
    received: `${50 - MAX_REPORTED_FIELD_ERRORS} more problems`,
  });
  t.deepEqual(capFieldErrors(errors.slice(0, 3), 'options'), errors.slice(0, 3));
});

test('any standard keyword: oneOf, format and $ref validate with field paths', (t) => {
  const endpoint: JsonSchema = {
    type: 'object',
    $defs: { port: { type: 'integer', minimum: 1, maximum: 65535 } },
    required: ['server'],
    properties: {
      server: {
        oneOf: [
          {
            type: 'object',
            required: ['host'],
            properties: { host: { type: 'string', format: 'hostname' }, port: { $ref: '#/$defs/port' } },
          },
          { type: 'object', required: ['url'], properties: { url: { type: 'string', format: 'uri' } } },
        ],
      },
      contact: { type: 'string', format: 'email', maxLength: 40 },
      mode: { const: 'copy' },
      backup: { $ref: '#/$defs/port' },
    },
  };
  t.deepEqual(checkSchema(endpoint), []);
  t.deepEqual(
    validateAgainstSchema(endpoint, { server: { host: 'db.local', port: 5432 }, contact: 'a@b.io', mode: 'copy' }),
    [],
  );
  t.deepEqual(validateAgainstSchema(endpoint, { server: { url: 'https://db.local/x' } }), []);
  t.deepEqual(
    validateAgainstSchema(endpoint, {
      server: { port: 5432 },
      contact: 'not an address',
      mode: 'move',
      backup: 70000,
      extra: 1,
    }).map((e) => [e.path, e.expected, e.received]),
    [
      ['options.server', 'exactly one of the alternatives the schema allows (oneOf)', '{"port":5432}'],
      ['options.contact', 'a string in the format email', '"not an address"'],
      ['options.mode', '"copy"', '"move"'],
      ['options.backup', 'a number <= 65535', '70000'],
      ['options.extra', 'a known option (server, contact, mode, backup)', '"extra"'],
    ],
  );
});
