/**
 * Integer fields of the JSON API (services/operator/http/json-api.ts): a fraction, a value past the field's
 * proto range, or a value that is no number, under either spelling of the key (camelCase or snake_case, which
 * fromJSON both reads), is 400 INVALID_ARGUMENT naming the field, not 500 (and no longer read as 0 or 1).
 */
import test from 'ava';
import { type Running, startTestSluice } from '../helpers/sluice.js';

const ADMIN = 'json-api-int-admin-token-0123456789';
let sluice: Running;
let base: string;

test.before(async () => {
  sluice = await startTestSluice({ SLUICE_AUTH_TOKENS: `${ADMIN}:admin`, SLUICE_HTTP_ADDR: '127.0.0.1:0' });
  base = `http://127.0.0.1:${sluice.sluice.callbackPort}`;
});
test.after.always(async () => {
  await sluice?.close();
});

async function request(path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${ADMIN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const INT32 = 'an integer from -2147483648 to 2147483647';
const NUMBER = 'a number';
const INT64 = `an integer from -${Number.MAX_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}`;

const CASES: [string, unknown, string, string][] = [
  ['/sluice/v1/groups/x/trigger', { windowStart: 1.5 }, 'windowStart', INT64],
  ['/sluice/v1/groups/x/trigger', { window_start: '1e19' }, 'window_start', INT64],
  ['/sluice/v1/groups/x/trigger', { window_start: 1.5 }, 'window_start', INT64],
  ['/sluice/v1/groups/x/trigger', { windowStart: true }, 'windowStart', NUMBER],
  ['/sluice/v1/groups/x/trigger', { windowStart: '' }, 'windowStart', NUMBER],
  ['/sluice/v1/groups/x/trigger', { windowStart: [1] }, 'windowStart', NUMBER],
  ['/sluice/v1/groups/x/windows?count=3000000000', undefined, 'count', INT32],
  ['/sluice/v1/groups/x/windows?fromTime=0.5', undefined, 'fromTime', INT64],
  ['/sluice/v1/groups/x/instances?pageSize=1.5', undefined, 'pageSize', INT32],
  ['/sluice/v1/groups/x/instances?windowFrom=99999999999999999999', undefined, 'windowFrom', INT64],
  ['/sluice/v1/jobs?windowTo=-1e300', undefined, 'windowTo', INT64],
  ['/sluice/v1/groups?pageSize=-2147483649', undefined, 'pageSize', INT32],
  ['/sluice/v1/groups/x/backfill', { maxParallel: 2.5 }, 'maxParallel', INT32],
  ['/sluice/v1/groups/x/backfill', { max_parallel: 2 ** 31 }, 'max_parallel', INT32],
  ['/sluice/v1/groups/x/backfill', { fromTime: '0', to_time: 'soon' }, 'to_time', NUMBER],
];

for (const [path, body, field, expected] of CASES) {
  test(`${body === undefined ? 'GET' : 'POST'} ${path} ${JSON.stringify(body ?? '')} is 400 naming ${field}`, async (t) => {
    const res = await request(path, body);
    t.is(res.status, 400, JSON.stringify(res.json));
    t.is(res.json.code, 'INVALID_ARGUMENT');
    t.deepEqual(
      (res.json.fieldErrors as { path: string; expected: string }[]).map((e) => [e.path, e.expected]),
      [[field, expected]],
    );
    t.true(String(res.json.errMsg).startsWith(`${field}: expected ${expected}, got `));
  });
}

test('integers in range, as numbers or strings, under either key spelling, reach the service', async (t) => {
  // The group does not exist: NOT_FOUND from the service means the request passed the API's checks.
  t.is((await request('/sluice/v1/groups/x/trigger', { windowStart: 3_600_000 })).status, 404);
  t.is((await request('/sluice/v1/groups/x/trigger', { window_start: '3600000' })).status, 404);
  t.is((await request('/sluice/v1/groups/x/trigger', { windowStart: '1e3' })).status, 404);
  t.is((await request('/sluice/v1/groups/x/windows?count=3&fromTime=0')).status, 404);
  t.is((await request('/sluice/v1/groups/x/instances?pageSize=2')).status, 200);
  t.is((await request('/sluice/v1/groups?pageSize=5')).status, 200);
});
