import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';
import { type Running, startTestSluice } from '../helpers/sluice.js';

let sluice: Running;
let dir: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-cli-'));
  sluice = await startTestSluice();
});
test.after.always(async () => {
  await sluice?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bin/sluice.js` as a process against the test Sluice. */
function sluiceCli(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin/sluice.js'), ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, SLUICE_ADDR: sluice.address } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const json = (r: Result): Record<string, unknown> => JSON.parse(r.stdout) as Record<string, unknown>;

/** A whole hour three hours ago: the group's first window. */
const START = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3 * 3_600_000;

function groupDoc(id: string): Record<string, unknown> {
  return {
    group_id: id,
    description: 'generated rows to files',
    streams: [
      {
        stream_id: 's1',
        source: { connector_id: 'datagen', options: { intervalMs: 100 } },
        sink: { connector_id: 'file', options: { path: join(dir, 'out'), format: 'jsonl' } },
      },
    ],
    schedule: {
      schedule_unit: 'H',
      schedule_interval: 1,
      start_time: String(START),
      end_time: String(START + 86_400_000),
    },
  };
}

test.serial('connectors list and show print the catalog as JSON', async (t) => {
  const list = await sluiceCli('connectors', 'list', '--json');
  t.is(list.code, 0, list.stderr);
  const ids = (json(list).connectors as { id: string }[]).map((c) => c.id);
  t.true(ids.includes('datagen'));
  const table = await sluiceCli('connectors', 'list');
  t.regex(table.stdout, /^ID\s+ROLES/);
  t.regex(table.stdout, /datagen/);
  const show = await sluiceCli('connectors', 'show', 'datagen', '--json');
  t.is((json(show).connector as { id: string }).id, 'datagen');
  const missing = await sluiceCli('connectors', 'show', 'nope');
  t.is(missing.code, 5); // NOT_FOUND
  t.regex(missing.stderr, /^error: NOT_FOUND: /);
  t.notRegex(missing.stderr, /\n\s+at /); // no stack
});

test.serial('plugins problems answers a list', async (t) => {
  const r = await sluiceCli('plugins', 'problems', '--json');
  t.is(r.code, 0, r.stderr);
  t.true(Array.isArray(json(r).problems ?? []));
});

test.serial('groups create from YAML, list, show, approve; schedules preview; fire; instances; jobs', async (t) => {
  const { stringify } = await import('yaml');
  const file = join(dir, 'group.yaml');
  await writeFile(file, stringify(groupDoc('cli_demo')));
  const created = await sluiceCli('groups', 'create', '-f', file, '--json');
  t.is(created.code, 0, created.stderr);
  t.like(json(created), { group: { groupId: 'cli_demo', status: 'GROUP_STATUS_NEW' } });

  const list = await sluiceCli('groups', 'list', '--json');
  t.true((json(list).groups as { groupId: string }[]).some((g) => g.groupId === 'cli_demo'));
  const show = await sluiceCli('groups', 'show', 'cli_demo', '--json');
  t.like(json(show), { group: { groupId: 'cli_demo' } });

  const approved = await sluiceCli('groups', 'approve', 'cli_demo', '--json');
  t.is(approved.code, 0, approved.stderr);
  t.like(json(approved), { group: { status: 'GROUP_STATUS_REGISTERED' } });

  const preview = await sluiceCli('schedules', 'preview', 'cli_demo', '--count', '3', '--json');
  t.is(preview.code, 0, preview.stderr);
  const windows = json(preview).windows as { start: string; end: string }[];
  t.is(windows.length, 3);
  t.is((Number(windows[0]!.start) - START) % 3_600_000, 0);
  t.is(Number(windows[0]!.end) - Number(windows[0]!.start), 3_600_000);
  const table = await sluiceCli(
    'schedules',
    'preview',
    'cli_demo',
    '--count',
    '2',
    '--from',
    new Date(START + 5 * 3_600_000).toISOString(),
  );
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /START \(UTC\).*START \(local\)/);
  t.true(table.stdout.includes(new Date(START + 5 * 3_600_000).toISOString()));

  const fired = await sluiceCli('fire', 'cli_demo', '--at', '-1h', '--json');
  t.is(fired.code, 0, fired.stderr);
  const asOf = Date.now() - 3_600_000;
  for (const i of (json(fired).instances ?? []) as { window: { end: string } }[]) {
    t.true(Number(i.window.end) <= asOf + 60_000);
  }

  const ledger = await sluiceCli('instances', 'cli_demo', '--json');
  t.is(ledger.code, 0, ledger.stderr);
  const starts = (json(ledger).instances as { window: { start: string } }[]).map((i) => Number(i.window.start));
  t.true(starts.includes(START), JSON.stringify(starts));
  const strip = await sluiceCli('instances', 'cli_demo');
  t.true(strip.stdout.includes(new Date(START).toISOString()));

  const jobs = await sluiceCli('jobs', 'list', '--group', 'cli_demo', '--json');
  t.is(jobs.code, 0, jobs.stderr);
  const jobList = (json(jobs).jobs ?? []) as { jobId: string; groupId: string }[];
  t.true(jobList.length >= 1);
  const job = await sluiceCli('jobs', 'show', jobList[0]!.jobId, '--json');
  t.like(json(job), { job: { jobId: jobList[0]!.jobId, groupId: 'cli_demo' } });
});

test.serial('a bad group exits INVALID_ARGUMENT with field paths, not a stack', async (t) => {
  const doc = groupDoc('cli_bad');
  (doc.streams as { sink: { options: Record<string, unknown> } }[])[0]!.sink.options.formatt = 'x';
  const file = join(dir, 'bad.json');
  await writeFile(file, JSON.stringify(doc));
  const r = await sluiceCli('groups', 'create', '-f', file);
  t.is(r.code, 3);
  t.regex(r.stderr, /^error: INVALID_ARGUMENT: /);
  t.regex(r.stderr, /group\.streams\[0\]\.sink\.options/);
  t.notRegex(r.stderr, /\n\s+at /);
  const jsonErr = await sluiceCli('groups', 'create', '-f', file, '--json');
  t.is((JSON.parse(jsonErr.stderr) as { error: { status: string } }).error.status, 'INVALID_ARGUMENT');
});

test.serial('bad times and missing files are usage errors naming the option', async (t) => {
  const r = await sluiceCli('schedules', 'preview', 'cli_demo', '--from', 'yesterday');
  t.is(r.code, 3);
  t.regex(r.stderr, /--from: expected an ISO 8601 time/);
  const f = await sluiceCli('groups', 'create', '-f', join(dir, 'absent.json'));
  t.is(f.code, 3);
  t.regex(f.stderr, /--file/);
});

test.serial('groups delete removes the group', async (t) => {
  const r = await sluiceCli('groups', 'delete', 'cli_demo', '--json');
  t.is(r.code, 0, r.stderr);
  const after = await sluiceCli('groups', 'show', 'cli_demo', '--json');
  t.not(after.code, 0);
});

test.serial(
  '--token / SLUICE_TOKEN is sent as a bearer token; without it the call exits UNAUTHENTICATED',
  async (t) => {
    const token = 'cli-test-viewer-token-0123456789';
    const secured = await startTestSluice({ SLUICE_AUTH_TOKENS: `${token}:viewer` });
    try {
      const run = (...args: string[]) =>
        new Promise<Result>((resolve) => {
          execFile(
            process.execPath,
            [join(ROOT, 'bin/sluice.js'), '--addr', secured.address, ...args],
            { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME } },
            (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
          );
        });
      const denied = await run('connectors', 'list', '--json');
      t.is(denied.code, 16); // UNAUTHENTICATED
      t.false(denied.stderr.includes(token));
      const allowed = await run('--token', token, 'connectors', 'list', '--json');
      t.is(allowed.code, 0, allowed.stderr);
    } finally {
      await secured.close();
    }
  },
);
