/**
 * Struct limits of the request guard (services/core/limits.ts) and the cost of reporting schema errors
 * (services/sdk/schema.ts): a wide options object, long option names and long option values are refused
 * with INVALID_ARGUMENT naming the field, quickly, and never reach the client as INTERNAL.
 */
import anyTest, { type TestFn } from 'ava';
import { credentials, status } from '@grpc/grpc-js';
import { isSluiceError, validateAgainstSchema } from 'sluice/sdk';
import {
  MAX_LIST_LENGTH,
  MAX_STRING_LENGTH,
  MAX_STRUCT_KEY_LENGTH,
  checkRequestLimits,
} from '../../services/core/limits.js';
import { ConnectorRole } from '../../proto/gen/sluice/catalog/v1/catalog.js';
import { OperatorServiceClient, type Group } from '../../proto/gen/sluice/operator/v1/operator.js';
import { encodeInfo } from '../../services/schedule/grpc/adapter.js';
import { schedule } from '../helpers/operator.js';
import { healthCheck } from '../helpers/probes.js';
import { call, callError, type Running, startTestSluice } from '../helpers/sluice.js';

const test = anyTest as TestFn<{ s: Running; operator: OperatorServiceClient }>;
const FUTURE = Date.UTC(2100, 0, 1);

test.before(async (t) => {
  const s = await startTestSluice();
  t.context = { s, operator: new OperatorServiceClient(s.address, credentials.createInsecure()) };
});
test.after.always(async (t) => {
  t.context.operator?.close();
  await t.context.s?.close();
});

function wide(n: number, value: unknown = 1): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) o[`k${i}`] = value;
  return o;
}

function refusal(fn: () => void): { field: string; expected: string; received: string } {
  try {
    fn();
  } catch (err) {
    if (!isSluiceError(err) || err.code !== 'INVALID_ARGUMENT') throw err;
    return err.details as { field: string; expected: string; received: string };
  }
  throw new Error('expected INVALID_ARGUMENT');
}

test('the guard counts the keys of a Struct object toward the entries limit', (t) => {
  t.notThrows(() => checkRequestLimits({ options: wide(MAX_LIST_LENGTH) }));
  const started = performance.now();
  const d = refusal(() => checkRequestLimits({ connectorId: 'x', options: wide(MAX_LIST_LENGTH + 1) }));
  t.true(performance.now() - started < 500);
  t.is(d.field, 'options');
  t.regex(d.expected, /at most 10000 keys/);
  t.regex(d.received, /10001 keys/);
  // Nested objects count too, each on its own.
  const nested = refusal(() =>
    checkRequestLimits({ group: { streams: [{ source: { options: { a: wide(20_000) } } }] } }),
  );
  t.is(nested.field, 'group.streams[0].source.options.a');
});

test('the guard limits Struct key length and keeps the reported path short', (t) => {
  t.notThrows(() => checkRequestLimits({ options: { ['k'.repeat(MAX_STRUCT_KEY_LENGTH)]: 1 } }));
  const long = 'x'.repeat(60_000);
  const d = refusal(() => checkRequestLimits({ options: { [long]: 1, [`${long}y`]: 2 } }));
  t.true(d.field.startsWith('options.xxx'));
  t.true(d.field.length <= 200, `path of ${d.field.length} characters`);
  t.regex(d.expected, new RegExp(`at most ${MAX_STRUCT_KEY_LENGTH} characters`));
  t.regex(d.received, /60000 characters/);
  t.false(d.received.includes('xxxxxxxxxx'));
  // Deep in a list too.
  const deep = refusal(() => checkRequestLimits({ options: { a: [{ [long]: 1 }] } }));
  t.true(deep.field.startsWith('options.a[0].xxx'));
});

test('the guard holds string values inside a Struct to the string limit', (t) => {
  t.notThrows(() => checkRequestLimits({ options: { a: 'v'.repeat(MAX_STRING_LENGTH) } }));
  const d = refusal(() => checkRequestLimits({ options: { a: { b: ['ok', 'v'.repeat(200_000)] } } }));
  t.is(d.field, 'options.a.b[1]');
  t.regex(d.expected, new RegExp(`at most ${MAX_STRING_LENGTH} characters`));
  t.regex(d.received, /200000 characters/);
});

test('schema errors of a wide object are ordered in linear time', (t) => {
  const schema = { type: 'object', properties: { a: { type: 'integer' } } } as const;
  const value = wide(MAX_LIST_LENGTH, 'x');
  const started = performance.now();
  const errors = validateAgainstSchema(schema, value);
  const ms = performance.now() - started;
  t.is(errors.length, MAX_LIST_LENGTH);
  // Quadratic ordering took ~10 s here; linear takes well under a second.
  t.true(ms < 2000, `${Math.round(ms)} ms`);
  t.is(errors[0]!.path, 'options.k0');
  t.is(errors[MAX_LIST_LENGTH - 1]!.path, `options.k${MAX_LIST_LENGTH - 1}`);
});

test('schema error paths stay bounded whatever the option names', (t) => {
  const schema = { type: 'object', properties: { a: { type: 'object', properties: {} } } } as const;
  const key = 'é'.repeat(MAX_STRUCT_KEY_LENGTH);
  const errors = validateAgainstSchema(schema, { a: { [key]: 1 } });
  t.is(errors.length, 1);
  t.true(errors[0]!.path.length <= 200);
  t.true(errors[0]!.path.startsWith('options.a.éé'));
  t.true(errors[0]!.message.startsWith(errors[0]!.path));
});

test('ValidateOptions with 20,000 option keys is refused at once, naming options', async (t) => {
  const { catalog } = t.context.s;
  const started = Date.now();
  const err = await callError(catalog.validateOptions.bind(catalog), {
    connectorId: 'datagen',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options: wide(20_000),
  });
  t.is(err.code, status.INVALID_ARGUMENT);
  t.is(err.fieldErrors?.[0]?.path, 'options');
  t.true(Date.now() - started < 3000);
  // At the limit it is answered (every unknown option an error, 20 reported), quickly.
  const atLimit = Date.now();
  const res = await call(catalog.validateOptions.bind(catalog), {
    connectorId: 'datagen',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options: wide(MAX_LIST_LENGTH),
  });
  t.false(res.valid);
  t.true(Date.now() - atLimit < 3000, `${Date.now() - atLimit} ms`);
  t.is(await healthCheck(t.context.s.address, ''), 'SERVING');
});

test('ValidateOptions with many long non-ASCII option names answers with bounded field errors', async (t) => {
  const { catalog } = t.context.s;
  const options: Record<string, unknown> = {};
  for (let i = 0; i < 40; i++) options[`${i}${'ü'.repeat(MAX_STRUCT_KEY_LENGTH - 3)}`] = i;
  const res = await call(catalog.validateOptions.bind(catalog), {
    connectorId: 'datagen',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options,
  });
  t.false(res.valid);
  t.true(res.errors.every((e) => e.path.length <= 200));
});

function group(groupId: string, options: Record<string, unknown>): Group {
  return {
    groupId,
    description: '',
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'datagen', options },
        sink: { connectorId: 'file', options: { path: '/tmp' } },
        fields: [],
      },
    ],
    schedule: encodeInfo({ ...schedule(groupId), startTime: FUTURE, endTime: FUTURE + 86_400_000 }, 0),
    runner: '',
    retry: undefined,
    status: 0,
    version: 0,
    createdAt: 0,
    updatedAt: 0,
  };
}

test('CreateGroup with option names of 60,000 characters is INVALID_ARGUMENT, not INTERNAL', async (t) => {
  const { operator } = t.context;
  const long = (c: string) => c.repeat(60_000);
  const err = await callError(operator.createGroup.bind(operator), {
    group: group('long-keys', { [long('a')]: 1, [long('b')]: 2, [long('c')]: 3 }),
  });
  t.is(err.code, status.INVALID_ARGUMENT);
  t.is(err.sluiceCode, 'INVALID_ARGUMENT');
  t.true(err.fieldErrors![0]!.path.startsWith('group.streams[0].source.options.aaa'));
  t.true(err.details.length < 1000);
});

test('CreateGroup with an option value of 200,000 characters is INVALID_ARGUMENT naming it', async (t) => {
  const { operator } = t.context;
  const err = await callError(operator.createGroup.bind(operator), {
    group: group('long-value', { intervalMs: 10, note: 'v'.repeat(200_000) }),
  });
  t.is(err.code, status.INVALID_ARGUMENT);
  t.is(err.fieldErrors![0]!.path, 'group.streams[0].source.options.note');
  t.regex(err.fieldErrors![0]!.expected, /at most 65536 characters/);
});

test('CreateGroup with many long non-ASCII option names at the limit is INVALID_ARGUMENT with a status', async (t) => {
  const { operator } = t.context;
  const options: Record<string, unknown> = { intervalMs: 10 };
  let deep: Record<string, unknown> = options;
  for (let d = 0; d < 5; d++) {
    const next: Record<string, unknown> = {};
    deep[`${d}${'ü'.repeat(MAX_STRUCT_KEY_LENGTH - 1)}`] = next;
    deep = next;
  }
  for (let i = 0; i < 40; i++) options[`${i}${'ü'.repeat(MAX_STRUCT_KEY_LENGTH - 3)}`] = i;
  const err = await callError(operator.createGroup.bind(operator), { group: group('wide-names', options) });
  t.is(err.code, status.INVALID_ARGUMENT);
  t.is(err.sluiceCode, 'INVALID_ARGUMENT');
  t.true(err.fieldErrors!.length > 0);
  t.true(err.fieldErrors!.every((e) => e.path.length <= 200));
});
