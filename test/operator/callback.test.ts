import anyTest, { type TestFn } from 'ava';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Running, startTestSluice } from '../helpers/sluice.js';
import { datagenToFile, jobWhen, schedule } from '../helpers/operator.js';

const test = anyTest as TestFn<{ s: Running; url: string; dir: string }>;
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
  t.context = { s, url: `http://127.0.0.1:${s.sluice.callbackPort}${PATH}`, dir };
});
test.after.always(async (t) => {
  await t.context.s?.close();
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});

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

/** The job once it has ended, read from the operator. */
const ended = (t: { context: { s: Running } }, jobId: string) => jobWhen(t.context.s.sluice.operator!, jobId);

/** The ids in the window's output file (datagen's row ids, one per second of the window). */
async function outputIds(dir: string): Promise<number[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.jsonl'));
  if (files.length !== 1) throw new Error(`expected one output file, found ${files.join(', ') || 'none'}`);
  return (await readFile(join(dir, files[0]!), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { id: number }).id)
    .sort((a, b) => a - b);
}

test.serial('a window submitted twice runs once, and succeeds with its rows; rerun runs it again', async (t) => {
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
  // The window's 60 seconds hold datagen rows 1_700_000_000 to 1_700_000_059, one each.
  const expected = Array.from({ length: 60 }, (_, k) => 1_700_000_000 + k);
  const job = await ended(t, first.body.data![0]!.jobId);
  t.is(job.state, 'SUCCEEDED');
  t.is(job.progress.records, 60);
  t.deepEqual(await outputIds(t.context.dir), expected);
  const rerun = await post(t.context.url, { ...window(0), rerun: true });
  t.is(rerun.status, 201);
  t.deepEqual(
    rerun.body.data!.map((j) => j.generation),
    [2],
  );
  t.not(rerun.body.data![0]!.jobId, job.jobId);
  const rerunJob = await ended(t, rerun.body.data![0]!.jobId);
  t.is(rerunJob.state, 'SUCCEEDED');
  t.deepEqual(await outputIds(t.context.dir), expected, 'the re-run replaced the output, once each');
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

test('without SLUICE_CALLBACK_TOKEN the callback is off: nothing listens on SLUICE_HTTP_ADDR', async (t) => {
  // A port that was free a moment ago: bind port 0, read it, close.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const s = await startTestSluice({ SLUICE_HTTP_ADDR: `127.0.0.1:${port}`, SLUICE_CALLBACK_TOKEN: '' });
  try {
    t.truthy(s.sluice.operator, 'the operator runs');
    t.is(s.sluice.callbackPort, undefined);
    const err = await t.throwsAsync(fetch(`http://127.0.0.1:${port}${PATH}`, { method: 'POST', body: '{}' }));
    t.is((err as { cause?: { code?: string } }).cause?.code, 'ECONNREFUSED');
  } finally {
    await s.close();
  }
});
