import anyTest, { type TestFn } from 'ava';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Running, startTestSluice } from '../helpers/sluice.js';
import { datagenToFile, schedule } from '../helpers/operator.js';

const test = anyTest as TestFn<{ s: Running; url: string }>;
const TOKEN = 'c4llback-t0ken';
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
      data?: unknown;
      jobs?: { jobId: string; generation: number; state: string }[];
      fieldErrors?: { path: string }[];
      errMsg?: string | null;
    },
  };
}

const HOUR = 3_600_000;
// Windows of g-http's hourly schedule, in epoch ms.
const window = (k: number) => ({
  groupId: 'g-http',
  boundaryType: 'TIME',
  lowerBoundary: NEXT_YEAR + k * HOUR,
  upperBoundary: NEXT_YEAR + (k + 1) * HOUR,
});

test.serial('a window submitted twice runs once; rerun runs it again', async (t) => {
  const first = await post(t.context.url, window(0));
  t.is(first.status, 200);
  t.true(first.body.success && first.body.created === true);
  t.is(first.body.data, true, "InLong's envelope: data is true");
  t.is(first.body.errMsg, null);
  const again = await post(t.context.url, { ...window(0), lowerBoundary: String(window(0).lowerBoundary) });
  t.is(again.status, 200);
  t.is(again.body.created, false);
  t.deepEqual(
    again.body.jobs!.map((j) => j.jobId),
    first.body.jobs!.map((j) => j.jobId),
  );
  await t.context.s.sluice.operator!.idle();
  const rerun = await post(t.context.url, { ...window(0), rerun: true });
  t.is(rerun.status, 200);
  t.deepEqual(
    rerun.body.jobs!.map((j) => j.generation),
    [2],
  );
});

test.serial('a bearer token is required', async (t) => {
  t.is((await post(t.context.url, window(1), {})).status, 401);
  const wrong = await post(t.context.url, window(1), { authorization: 'Bearer nope' });
  t.is(wrong.status, 401);
  t.is(wrong.body.code, 'UNAUTHENTICATED');
});

test.serial("refusals answer InLong's envelope with HTTP 200, the domain code and the field", async (t) => {
  const g2026 = Date.UTC(2026, 0, 1);
  const cases: [unknown, string, string | undefined][] = [
    ['{not json', 'INVALID_ARGUMENT', 'body'],
    [{ ...window(1), groupId: '' }, 'INVALID_ARGUMENT', 'groupId'],
    [{ ...window(1), boundaryType: 'DAY' }, 'INVALID_ARGUMENT', 'boundaryType'],
    [{ ...window(1), lowerBoundary: 'yesterday' }, 'INVALID_ARGUMENT', 'lowerBoundary'],
    [{ ...window(1), lowerBoundary: 5, upperBoundary: 4 }, 'INVALID_ARGUMENT', 'upperBoundary'],
    [{ ...window(1), lowerBoundary: window(1).lowerBoundary + 1 }, 'INVALID_ARGUMENT', 'lowerBoundary'],
    [{ ...window(1), groupId: 'nobody' }, 'NOT_FOUND', undefined],
    [
      { groupId: 'g-new', boundaryType: 'TIME', lowerBoundary: g2026, upperBoundary: g2026 + HOUR },
      'FAILED_PRECONDITION',
      undefined,
    ],
  ];
  for (const [body, code, field] of cases) {
    const res = await post(t.context.url, body);
    t.is(res.status, 200, JSON.stringify(body));
    t.false(res.body.success);
    t.is(typeof res.body.errMsg, 'string');
    t.is(res.body.code, code);
    t.is(res.body.fieldErrors?.[0]?.path, field, JSON.stringify(body));
  }
  const notAWindow = await post(t.context.url, { ...window(1), upperBoundary: window(1).upperBoundary + HOUR });
  t.regex(notAWindow.body.errMsg!, /nearest windows are \[\d+, \d+\)/);
  t.is((await post(t.context.url, null, undefined, 'GET')).status, 405);
  t.is((await post(t.context.url.replace('submitOfflineJob', 'other'), window(1))).status, 404);
});

test.serial(
  'FireDue over HTTP: a bearer token, an optional asOf; a bad asOf or an unknown group is refused',
  async (t) => {
    const fireDue = t.context.url.replace(
      '/inlong/manager/api/group/submitOfflineJob',
      '/sluice/v1/groups/g-http/fire-due',
    );
    const now = await post(fireDue, {});
    t.is(now.status, 200);
    t.true(now.body.success);
    t.deepEqual(now.body.data, { instances: [], nextDueTime: NEXT_YEAR + HOUR }, 'nothing is due before next year');
    const bad = await post(fireDue, { asOf: 'noon' });
    t.is(bad.status, 400);
    t.is(bad.body.fieldErrors?.[0]?.path, 'asOf');
    const ahead = await post(fireDue, { asOf: Date.now() + 3_600_000 });
    t.is(ahead.status, 400);
    t.is(ahead.body.fieldErrors?.[0]?.path, 'asOf');
    const unknown = await post(fireDue.replace('g-http', 'nobody'), {});
    t.is(unknown.status, 404);
    t.is((await post(fireDue, {}, {})).status, 401);
  },
);
