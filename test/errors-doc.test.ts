import test from 'ava';
import { status } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from 'sluice/sdk';
import { GRPC_STATUS_BY_CODE, toServiceError } from '../services/core/grpc-status.js';
import { silentLogger } from '../services/core/logger.js';
import { PROBLEM_CODES } from '../services/host/problems.js';
import { SluiceError, fieldError, invalidFields, notFound } from '../services/sdk/errors.js';

/** The rows of the table in docs/errors.md: [code, gRPC status name]. */
function documented(): [string, string][] {
  const text = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  return [...text.matchAll(/^\| `([A-Z_]+)` \| `([A-Z_]+)` \|/gm)].map((m) => [m[1]!, m[2]!]);
}

test('docs/errors.md lists every domain code with the gRPC status it maps to, and nothing else', (t) => {
  const inCode = Object.values(ERROR_CODES).map((c) => [c, status[GRPC_STATUS_BY_CODE[c]]] as [string, string]);
  t.deepEqual(documented().sort(), inCode.sort());
});

test('each code maps to its status, with the code and field errors as trailers', (t) => {
  for (const code of Object.values(ERROR_CODES)) {
    const err = toServiceError(
      new SluiceError(code, `it is ${code}`, { field: 'a.b', expected: 'x', received: '"y"' }),
      silentLogger,
      'Test',
    );
    t.is(err.code, GRPC_STATUS_BY_CODE[code]);
    t.is(err.details, `it is ${code}`);
    t.deepEqual(err.metadata!.get('sluice-error-code'), [code]);
    t.deepEqual(JSON.parse(String(err.metadata!.get('sluice-field-errors')[0])), [
      { path: 'a.b', expected: 'x', received: '"y"', message: `it is ${code}` },
    ]);
  }
});

test('an error from another copy of the SDK is recognised by its code, not its class', (t) => {
  const foreign = Object.assign(new Error('stale'), {
    code: 'VERSION_CONFLICT',
    details: {},
    [Symbol.for('sluice.error')]: true,
  });
  t.is(toServiceError(foreign, silentLogger, 'Test').code, status.ABORTED);
});

test('anything unexpected becomes UNKNOWN with a generic message; the cause stays in the log', (t) => {
  const logged: unknown[] = [];
  const logger = { ...silentLogger, error: (_m: string, f?: Record<string, unknown>) => logged.push(f?.err) };
  const cause = new TypeError("Cannot read properties of undefined (reading 'password')");
  const err = toServiceError(cause, logger, 'Test');
  t.is(err.code, status.UNKNOWN);
  t.is(err.details, 'internal error; see the service log');
  t.deepEqual(err.metadata!.get('sluice-error-code'), []);
  t.deepEqual(logged, [cause]);
  const fake = Object.assign(new Error('x'), { code: 'NOT_A_CODE', [Symbol.for('sluice.error')]: true });
  t.is(toServiceError(fake, silentLogger, 'Test').code, status.UNKNOWN);
});

test('docs/plugins.md lists every plugin problem code, and nothing else', (t) => {
  const text = readFileSync(new URL('../docs/plugins.md', import.meta.url), 'utf8');
  const section = text.slice(text.indexOf('## Problems'));
  const listed = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  t.deepEqual(listed.sort(), [...PROBLEM_CODES].sort());
});

test('errors echo input within bounds: a huge id is shortened, and at most 20 field errors are reported', (t) => {
  const err = notFound('group', 'x'.repeat(200_000));
  t.true(err.message.length < 200);
  const many = invalidFields(Array.from({ length: 600 }, (_, i) => fieldError(`options.f${i}`, 'nothing', i)));
  t.is(many.details.fieldErrors!.length, 20);
  t.regex(many.message, /; and 580 more$/);
  const trailer = toServiceError(many, silentLogger, 'Test').metadata!.get('sluice-field-errors')[0];
  t.true(String(trailer).length < 8 * 1024, 'the trailer stays far below the 8 KiB header budget of common clients');
});
