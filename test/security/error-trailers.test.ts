/**
 * An error answer's trailers stay within what gRPC clients accept (services/core/limits.ts), whatever made the
 * error: a connector whose own validate returns thousands of long field errors still gets the caller a status
 * with the first field errors and a count of the rest, not a call broken by an oversized trailer.
 */
import anyTest, { type TestFn } from 'ava';
import { status } from '@grpc/grpc-js';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERROR_CODES, MAX_REPORTED_FIELD_ERRORS, SluiceError, fieldError, type FieldError } from 'sluice/sdk';
import { BoundaryType } from '../../proto/gen/sluice/common/v1/common.js';
import { FIELD_ERRORS_TRAILER, toServiceError } from '../../services/core/grpc-status.js';
import {
  MAX_FIELD_ERROR_PART_BYTES,
  MAX_FIELD_ERRORS_TRAILER_BYTES,
  MAX_STATUS_MESSAGE_BYTES,
} from '../../services/core/limits.js';
import { silentLogger } from '../../services/core/logger.js';
import { type Running, callError, startTestSluice } from '../helpers/sluice.js';

const test = anyTest as TestFn<{ s: Running; dir: string }>;

/** How many field errors the noisy connector's validate returns, and how long each part of one is. */
const COUNT = 5000;
const LENGTH = 3000;

/** A plain-JavaScript connector whose validate returns COUNT field errors with parts of LENGTH characters. */
const NOISY = `export default {
  roles: ['source'],
  boundaryTypes: ['TIME'],
  sourceOptions: { type: 'object', properties: { table: { type: 'string', description: 'Table to read.' } } },
  validate() {
    return Array.from({ length: ${COUNT} }, (_, i) => ({
      path: 'f' + i + 'p'.repeat(${LENGTH}),
      expected: 'e'.repeat(${LENGTH}),
      received: '\\u00fc'.repeat(${LENGTH}),
      message: 'options.f' + i + ': ' + 'm'.repeat(${LENGTH}),
    }));
  },
  fillInBoundaries({ options }) {
    return options;
  },
};
`;

test.before(async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-noisy-'));
  await mkdir(join(dir, 'noisy'));
  await writeFile(
    join(dir, 'noisy', 'plugin.json'),
    JSON.stringify({ id: 'noisy', kind: 'connector', apiVersion: 1, version: '1.0.0', description: 'many errors' }),
  );
  await writeFile(join(dir, 'noisy', 'index.js'), NOISY);
  t.context = { dir, s: await startTestSluice({ SLUICE_PLUGIN_PATH: dir }) };
});
test.after.always(async (t) => {
  await t.context.s?.close();
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});

test("thousands of long field errors from a connector's validate: the call ends with its status and bounded trailers", async (t) => {
  const { catalog } = t.context.s;
  const err = await callError(catalog.resolveBoundaries.bind(catalog), {
    connectorId: 'noisy',
    options: { table: 'orders' },
    boundaries: { boundaryType: BoundaryType.BOUNDARY_TYPE_TIME, lowerBound: '0', upperBound: '10' },
  });
  t.is(err.code, status.INVALID_ARGUMENT, err.message);
  t.is(err.sluiceCode, 'INVALID_ARGUMENT');
  const trailer = String(err.metadata.get(FIELD_ERRORS_TRAILER)[0]);
  t.true(trailer.length <= MAX_FIELD_ERRORS_TRAILER_BYTES, `${trailer.length} bytes`);
  t.true(encodeURI(err.details).length <= MAX_STATUS_MESSAGE_BYTES, `${encodeURI(err.details).length} bytes`);
  t.regex(err.details, /^options of connector 'noisy' are invalid: options\.f0: m+\.\.\.$/);
  const fields = err.fieldErrors!;
  t.true(fields.length >= 2, 'at least the first field error and the count of the rest');
  t.true(fields[0]!.path.startsWith('options.f0ppp'), 'the first field error comes first');
  t.true(fields[0]!.path.endsWith('...'), 'its parts are cut');
  for (const f of fields.slice(0, -1)) t.true(f.expected.length <= MAX_FIELD_ERROR_PART_BYTES);
  const kept = fields.length - 1;
  t.deepEqual(fields.at(-1), {
    path: 'options',
    expected: `at most ${MAX_REPORTED_FIELD_ERRORS} field errors in ${MAX_FIELD_ERRORS_TRAILER_BYTES} bytes`,
    // invalidFields keeps the first MAX_REPORTED_FIELD_ERRORS; of those, what the trailer could not carry is counted.
    received: `${MAX_REPORTED_FIELD_ERRORS - kept} more field errors`,
    message: `options: ${MAX_REPORTED_FIELD_ERRORS - kept} more field errors left out (the sluice-field-errors trailer carries at most ${MAX_REPORTED_FIELD_ERRORS} field errors in ${MAX_FIELD_ERRORS_TRAILER_BYTES} bytes)`,
  });
});

test('any error carrying field errors, however many, gets a trailer within the limit that counts what it left out', (t) => {
  const many: FieldError[] = Array.from({ length: COUNT }, (_, i) => fieldError(`options.list[${i}]`, 'a number', 'x'));
  const err = toServiceError(
    new SluiceError(ERROR_CODES.INVALID_ARGUMENT, 'many', { fieldErrors: many }),
    silentLogger,
    'Test',
  );
  const trailer = String(err.metadata!.get(FIELD_ERRORS_TRAILER)[0]);
  t.true(trailer.length <= MAX_FIELD_ERRORS_TRAILER_BYTES);
  const fields = JSON.parse(trailer) as FieldError[];
  t.is(fields.length, MAX_REPORTED_FIELD_ERRORS + 1, 'short entries: as many as are reported, then the count');
  t.deepEqual(fields.slice(0, -1), many.slice(0, MAX_REPORTED_FIELD_ERRORS));
  t.like(fields.at(-1), { path: 'options', received: `${COUNT - MAX_REPORTED_FIELD_ERRORS} more field errors` });

  // One field error of any size (a message of a megabyte, an astral character cut in half) still fits.
  const huge = toServiceError(
    new SluiceError(ERROR_CODES.FAILED_PRECONDITION, `${'\u{1F600}'.repeat(250_000)}\ud800`, {
      field: `options.${'k'.repeat(100_000)}`,
      expected: 'x'.repeat(100_000),
      received: '"\ud800"',
    }),
    silentLogger,
    'Test',
  );
  t.true(encodeURI(huge.details!).length <= MAX_STATUS_MESSAGE_BYTES, 'encodeURI does not throw: no lone surrogate');
  const one = JSON.parse(String(huge.metadata!.get(FIELD_ERRORS_TRAILER)[0])) as FieldError[];
  t.is(one.length, 1);
  t.true(one[0]!.path.startsWith('options.kkk') && one[0]!.path.endsWith('...'));
  t.is(one[0]!.received, '"\ufffd"');
  t.true(String(huge.metadata!.get(FIELD_ERRORS_TRAILER)[0]).length <= MAX_FIELD_ERRORS_TRAILER_BYTES);
});
