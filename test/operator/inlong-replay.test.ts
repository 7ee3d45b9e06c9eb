import anyTest, { type TestFn } from 'ava';
import { request } from 'node:http';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScheduleInfo } from 'sluice/sdk';
import { type Running, startTestSluice } from '../helpers/sluice.js';
import { datagenToFile, schedule } from '../helpers/operator.js';

/** One of InLong's requests, as test/fixtures/inlong/README.md describes. */
interface Replay {
  readonly source: string;
  readonly request: {
    readonly method: string;
    readonly path: string;
    readonly headers: Record<string, string>;
    readonly body: string;
  };
  readonly group: { readonly groupId: string; readonly schedule: Partial<ScheduleInfo> };
  readonly expect: { readonly window?: [string, string]; readonly refused?: string };
}

interface Envelope {
  success: boolean;
  errMsg: string | null;
  data: unknown;
  code?: string;
  created?: boolean;
  jobs?: { jobId: string; lowerBoundary: string; upperBoundary: string; boundaryType: string }[];
  instance?: { instanceId: string; state: string; triggeredBy: string };
  fieldErrors?: { path: string }[];
}

const FIXTURES = fileURLToPath(new URL('../fixtures/inlong/', import.meta.url));
const replays = new Map<string, Replay>();
for (const name of (await readdir(FIXTURES)).filter((f) => f.endsWith('.json')).sort())
  replays.set(name, JSON.parse(await readFile(join(FIXTURES, name), 'utf8')) as Replay);

const test = anyTest as TestFn<{ s: Running; port: number; dir: string }>;

test.before(async (t) => {
  // InLong's callers carry InLong users, never a bearer token.
  const s = await startTestSluice({
    SLUICE_HTTP_ADDR: '127.0.0.1:0',
    SLUICE_CALLBACK_INLONG_USERS: 'admin:inlong,ops:s3cr:et',
  });
  const dir = await mkdtemp(join(tmpdir(), 'sluice-inlong-'));
  t.context = { s, port: s.sluice.callbackPort!, dir };
  for (const replay of replays.values()) {
    const { groupId } = replay.group;
    await s.sluice.operator!.createGroup(
      datagenToFile(groupId, join(dir, groupId), {
        schedule: { ...schedule(groupId), ...replay.group.schedule },
      }),
    );
    await s.sluice.operator!.approveGroup(groupId, 0);
  }
});
test.after.always(async (t) => {
  await t.context.s?.close();
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});

/** Sends the request byte for byte as recorded (node:http keeps headers such as Connection as given). */
function send(port: number, r: Replay['request']): Promise<{ status: number; body: Envelope }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: r.method, path: r.path, headers: r.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Envelope,
          });
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

for (const [name, replay] of replays) {
  test.serial(`InLong's own request replayed: ${name}`, async (t) => {
    const { s, port } = t.context;
    const first = await send(port, replay.request);
    t.is(first.status, 200, "InLong's callers expect HTTP 200");
    if (replay.expect.window) {
      t.true(first.body.success, JSON.stringify(first.body));
      t.is(first.body.errMsg, null);
      t.is(first.body.data, true, "InLong's envelope: data true");
      t.true(first.body.created);
      // Recorded in the ledger as InLong's user submitted it; a window not yet due has no job until it runs.
      const [lower, upper] = replay.expect.window.map(Number) as [number, number];
      const early = first.body.instance!.state === 'SCHEDULED';
      t.is(early, upper > Date.now(), 'a window ahead waits for its due time; a past one runs at once');
      const rows = (await s.sluice.schedule!.listInstances({ groupId: replay.group.groupId, limit: 1000 })).filter(
        (r) => r.trigger === 'EXTERNAL',
      );
      t.deepEqual(
        rows.map((r) => [r.windowStart, r.windowEnd, r.triggeredBy]),
        [[lower, upper, first.body.instance!.triggeredBy]],
        'the window in epoch ms, as the group schedule cuts it, in the ledger',
      );
      t.regex(first.body.instance!.triggeredBy, /^inlong:/);
      t.is(first.body.jobs!.length, early ? 0 : 1);
      // A repeat (an engine retry) records and runs nothing new.
      const again = await send(port, replay.request);
      t.true(again.body.success);
      t.false(again.body.created);
      t.is(again.body.instance!.instanceId, first.body.instance!.instanceId);
      t.deepEqual(
        again.body.jobs!.map((j) => j.jobId),
        first.body.jobs!.map((j) => j.jobId),
      );
      if (early) {
        // TriggerWindow runs the recorded window now.
        const now = await s.sluice.schedule!.trigger(replay.group.groupId, lower, false);
        t.is(now.instanceId, first.body.instance!.instanceId);
        t.is(now.state, 'DISPATCHED');
      }
      await s.sluice.schedule!.idle();
      await s.sluice.operator!.idle();
      const jobs = await s.sluice.operator!.listJobs({ groupId: replay.group.groupId, limit: 10 });
      t.deepEqual(
        jobs.map((j) => [j.boundaries.lowerBound, j.boundaries.upperBound, j.state]),
        [[...replay.expect.window, 'SUCCEEDED']],
      );
    } else {
      t.false(first.body.success);
      t.is(first.body.data, null);
      t.is(first.body.code, 'INVALID_ARGUMENT');
      t.is(first.body.fieldErrors?.[0]?.path, replay.expect.refused);
      t.regex(first.body.errMsg!, /nearest windows are/);
      const jobs = await s.sluice.operator!.listJobs({ groupId: replay.group.groupId, limit: 10 });
      t.is(jobs.length, 0, 'nothing runs');
    }
  });
}

test.serial(
  'InLong credentials: HTTP Basic works too; a wrong password, an unknown user or none get 401 in the envelope',
  async (t) => {
    const base = replays.get('quartz-offline-sync-job.json')!.request;
    const path = base.path.split('?')[0]!;
    const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
    const ok = await send(t.context.port, {
      ...base,
      path,
      headers: { ...base.headers, Authorization: basic('ops', 's3cr:et') },
    });
    t.is(ok.status, 200);
    t.true(ok.body.success);
    for (const bad of [
      { ...base, path: `${path}?username=admin&password=wrong` },
      { ...base, path: `${path}?username=nobody&password=inlong` },
      { ...base, path },
      { ...base, path, headers: { ...base.headers, Authorization: basic('admin', 'nope') } },
    ]) {
      const res = await send(t.context.port, bad);
      t.is(res.status, 401, bad.path);
      t.false(res.body.success);
      t.is(res.body.code, 'UNAUTHENTICATED');
      t.is(typeof res.body.errMsg, 'string');
      t.false(JSON.stringify(res.body).includes('wrong'), 'the credential is not echoed');
    }
  },
);

test.serial("InLong's path tolerates a trailing slash; InLong users are refused on Sluice's own paths", async (t) => {
  const base = replays.get('quartz-offline-sync-job.json')!.request;
  const [path, query] = base.path.split('?') as [string, string];
  const trailing = await send(t.context.port, { ...base, path: `${path}/?${query}` });
  t.is(trailing.status, 200);
  t.true(trailing.body.success);
  const fire = await send(t.context.port, {
    ...base,
    path: `/sluice/v1/groups/test_offline_4/fire-due?${query}`,
    body: '{}',
  });
  t.is(fire.status, 401);
});
