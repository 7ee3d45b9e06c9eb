import anyTest, { type TestFn } from 'ava';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Running, startTestSluice } from '../helpers/sluice.js';
import { datagenToFile, jobWhen, schedule } from '../helpers/operator.js';

const test = anyTest as TestFn<{ s: Running; url: string; dir: string; runDir: string }>;
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
  // A manual group (engine None, output in a folder of its own): its windows run when submitted.
  const runDir = join(dir, 'run');
  await s.sluice.operator!.createGroup(
    datagenToFile('g-run', runDir, { schedule: { ...schedule('g-run'), scheduleEngine: 'None' } }),
  );
  await s.sluice.operator!.approveGroup('g-run', 0);
  t.context = { s, url: `http://127.0.0.1:${s.sluice.callbackPort}${PATH}`, dir, runDir };
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
      data?: unknown;
      jobs?: { jobId: string; generation: number; state: string }[];
      instance?: { instanceId: string; state: string; dueTime: number; triggeredBy: string };
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

test.serial("a window submitted twice is one ledger row, answered in InLong's envelope", async (t) => {
  const first = await post(t.context.url, window(0));
  t.is(first.status, 200);
  t.true(first.body.success && first.body.created === true);
  t.is(first.body.data, true, "InLong's envelope: data is true");
  t.is(first.body.errMsg, null);
  // Submitted before it is due: recorded, no job yet; it runs at its due time (the window's end).
  t.deepEqual(first.body.jobs, []);
  t.like(first.body.instance, { state: 'SCHEDULED', dueTime: window(0).upperBoundary, triggeredBy: 'token' });
  const again = await post(t.context.url, { ...window(0), lowerBoundary: String(window(0).lowerBoundary) });
  t.is(again.status, 200);
  t.is(again.body.created, false);
  t.is(again.body.instance!.instanceId, first.body.instance!.instanceId);
  const rows = await t.context.s.sluice.schedule!.listInstances({ groupId: 'g-http', limit: 10 });
  t.deepEqual(
    rows.map((r) => [r.windowStart, r.state, r.trigger, r.triggeredBy]),
    [[window(0).lowerBoundary, 'SCHEDULED', 'EXTERNAL', 'token']],
  );
});

test.serial('a past window of a manual group runs with its rows; rerun runs it again', async (t) => {
  const past = {
    groupId: 'g-run',
    boundaryType: 'TIME',
    lowerBoundary: 1_700_000_000_000,
    upperBoundary: 1_700_000_060_000,
  };
  const first = await post(t.context.url, past);
  t.is(first.status, 200);
  t.true(first.body.success);
  // The window's 60 seconds hold datagen rows 1_700_000_000 to 1_700_000_059, one each.
  const expected = Array.from({ length: 60 }, (_, k) => 1_700_000_000 + k);
  const job = await ended(t, first.body.jobs![0]!.jobId);
  t.is(job.state, 'SUCCEEDED');
  t.is(job.progress.records, 60);
  t.deepEqual(await outputIds(t.context.runDir), expected);
  const rerun = await post(t.context.url, { ...past, rerun: true });
  t.is(rerun.status, 200);
  t.deepEqual(
    rerun.body.jobs!.map((j) => j.generation),
    [2],
  );
  t.not(rerun.body.jobs![0]!.jobId, job.jobId);
  const rerunJob = await ended(t, rerun.body.jobs![0]!.jobId);
  t.is(rerunJob.state, 'SUCCEEDED');
  t.deepEqual(await outputIds(t.context.runDir), expected, 'the re-run replaced the output, once each');
});

test.serial(
  'overlapping windows of a manual group never both run: the second is ALREADY_EXISTS, naming the first',
  async (t) => {
    const first = {
      groupId: 'g-run',
      boundaryType: 'TIME',
      lowerBoundary: 1_600_000_000_000,
      upperBoundary: 1_600_000_060_000,
    };
    t.true((await post(t.context.url, first)).body.success);
    const overlapping = await post(t.context.url, {
      ...first,
      lowerBoundary: 1_600_000_030_000,
      upperBoundary: 1_600_000_090_000,
    });
    t.is(overlapping.status, 200);
    t.false(overlapping.body.success);
    t.is(overlapping.body.code, 'ALREADY_EXISTS');
    t.regex(overlapping.body.errMsg!, /overlaps its recorded window \[1600000000000, 1600000060000\)/);
    // Same start, other end: an overlap too, never the first window found under another name.
    const longer = await post(t.context.url, { ...first, upperBoundary: 1_600_000_120_000 });
    t.is(longer.body.code, 'ALREADY_EXISTS');
    const rows = await t.context.s.sluice.schedule!.listInstances({
      groupId: 'g-run',
      windowFrom: 1_600_000_000_000,
      windowTo: 1_600_000_100_000,
      limit: 10,
    });
    t.deepEqual(
      rows.map((r) => [r.windowStart, r.windowEnd, r.trigger, r.triggeredBy]),
      [[1_600_000_000_000, 1_600_000_060_000, 'EXTERNAL', 'token']],
    );
  },
);

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
  // A malformed body is described, never echoed: it may hold a password.
  const leaky = await post(t.context.url, '{"groupId": "g", "url": "postgres://u:hunter2-secret@db/x",');
  t.is(leaky.body.code, 'INVALID_ARGUMENT');
  t.false(JSON.stringify(leaky.body).includes('hunter2'), JSON.stringify(leaky.body));
  t.regex(leaky.body.errMsg!, /bytes that are not JSON/);
  // JSON that is not an object is named by its kind, not shown.
  const listed = await post(t.context.url, [{ groupId: 'g', url: 'postgres://u:hunter2-secret@db/x' }]);
  t.like(listed.body, { code: 'INVALID_ARGUMENT', fieldErrors: [{ path: 'body' }] });
  t.false(JSON.stringify(listed.body).includes('hunter2'), JSON.stringify(listed.body));
  t.regex(listed.body.errMsg!, /got "?an array/);
  const notAWindow = await post(t.context.url, { ...window(1), upperBoundary: window(1).upperBoundary + HOUR });
  t.regex(notAWindow.body.errMsg!, /nearest windows are \[\d+, \d+\)/);
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
    // DolphinScheduler 3.3's HTTP task sends every body value as a string: digits are epoch ms too.
    const asString = await post(fireDue, { asOf: String(Date.now()) });
    t.is(asString.status, 200);
    t.deepEqual(asString.body.data, now.body.data);
    t.is((await post(fireDue, { asOf: '1.5e12' })).status, 400);
    t.is((await post(fireDue, { asOf: String(Date.now() + 3_600_000) })).status, 400, 'ahead as a string too');
    const ahead = await post(fireDue, { asOf: Date.now() + 3_600_000 });
    t.is(ahead.status, 400);
    t.is(ahead.body.fieldErrors?.[0]?.path, 'asOf');
    const unknown = await post(fireDue.replace('g-http', 'nobody'), {});
    t.is(unknown.status, 404);
    t.is((await post(fireDue, {}, {})).status, 401);
  },
);
