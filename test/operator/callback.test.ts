import anyTest, { type TestFn } from 'ava';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Running, startTestSluice } from '../helpers/sluice.js';
import { datagenToFile, schedule } from '../helpers/operator.js';

const test = anyTest as TestFn<{ s: Running; url: string }>;
const TOKEN = 'c4llback-t0ken-for-tests';
const PATH = '/inlong/manager/api/group/submitOfflineJob';
// Windows of the schedule start next year: nothing fires on its own while the callback is tested.
const NEXT_YEAR = Date.UTC(new Date().getUTCFullYear() + 1, 0, 1);

test.before(async (t) => {
  const s = await startTestSluice({ SLUICE_CALLBACK_TOKEN: TOKEN, SLUICE_HTTP_ADDR: '127.0.0.1:0' });
  const dir = await mkdtemp(join(tmpdir(), 'sluice-callback-'));
  await s.sluice.operator!.createGroup(
    datagenToFile('g-http', dir, {
      schedule: { ...schedule('g-http'), startTime: NEXT_YEAR, endTime: NEXT_YEAR + 86_400_000 },
    }),
  );
  await s.sluice.operator!.approveGroup('g-http', 0);
  await s.sluice.operator!.createGroup(datagenToFile('g-new', dir));
  t.context = { s, url: `http://127.0.0.1:${s.sluice.callbackPort}${PATH}` };
});
test.after.always(async (t) => t.context.s?.close());

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
  method = 'POST',
) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(method === 'POST' ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  return {
    status: res.status,
    body: (await res.json()) as {
      success: boolean;
      code?: string;
      created?: boolean;
      data?: { jobId: string; generation: number; state: string }[];
      fieldErrors?: { path: string }[];
      message?: string;
    },
  };
}

const window = (k: number) => ({
  groupId: 'g-http',
  boundaryType: 'TIME',
  lowerBoundary: 1_700_000_000_000 + k * 60_000,
  upperBoundary: 1_700_000_060_000 + k * 60_000,
});

test.serial('a window submitted twice runs once; rerun runs it again', async (t) => {
  const first = await post(t.context.url, window(0));
  t.is(first.status, 201);
  t.true(first.body.success && first.body.created === true);
  const again = await post(t.context.url, { ...window(0), lowerBoundary: String(window(0).lowerBoundary) });
  t.is(again.status, 200);
  t.is(again.body.created, false);
  t.deepEqual(
    again.body.data!.map((j) => j.jobId),
    first.body.data!.map((j) => j.jobId),
  );
  await t.context.s.sluice.operator!.idle();
  const rerun = await post(t.context.url, { ...window(0), rerun: true });
  t.is(rerun.status, 201);
  t.deepEqual(
    rerun.body.data!.map((j) => j.generation),
    [2],
  );
});

test.serial('a bearer token is required', async (t) => {
  t.is((await post(t.context.url, window(1), {})).status, 401);
  const wrong = await post(t.context.url, window(1), { authorization: 'Bearer nope' });
  t.is(wrong.status, 401);
  t.is(wrong.body.code, 'UNAUTHENTICATED');
});

test.serial('bad requests get the domain code and the field, in JSON', async (t) => {
  const cases: [unknown, number, string, string | undefined][] = [
    ['{not json', 400, 'INVALID_ARGUMENT', 'body'],
    [{ ...window(1), groupId: '' }, 400, 'INVALID_ARGUMENT', 'groupId'],
    [{ ...window(1), boundaryType: 'DAY' }, 400, 'INVALID_ARGUMENT', 'boundaryType'],
    [{ ...window(1), lowerBoundary: 'yesterday' }, 400, 'INVALID_ARGUMENT', 'lowerBoundary'],
    [{ ...window(1), lowerBoundary: 5, upperBoundary: 4 }, 400, 'INVALID_ARGUMENT', 'upperBoundary'],
    [{ ...window(1), groupId: 'nobody' }, 404, 'NOT_FOUND', undefined],
    [{ ...window(1), groupId: 'g-new' }, 412, 'FAILED_PRECONDITION', undefined],
  ];
  for (const [body, status, code, field] of cases) {
    const res = await post(t.context.url, body);
    t.is(res.status, status, JSON.stringify(body));
    t.false(res.body.success);
    t.is(res.body.code, code);
    t.is(res.body.fieldErrors?.[0]?.path, field, JSON.stringify(body));
  }
  t.is((await post(t.context.url, null, undefined, 'GET')).status, 405);
  t.is((await post(t.context.url.replace('submitOfflineJob', 'other'), window(1))).status, 404);
});
