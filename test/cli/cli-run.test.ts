import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';
import { type Running, startTestSluice } from '../helpers/sluice.js';

let sluice: Running;
let dir: string;

const HOUR = 3_600_000;
/** The group's first window: six whole hours ago. */
const START = Math.floor(Date.now() / HOUR) * HOUR - 6 * HOUR;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-cli-run-'));
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

const env = () => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  SLUICE_ADDR: sluice.address,
  SLUICE_CLI_POLL_MS: '100',
});

/** Runs `bin/sluice.js` with pipes (no terminal). */
function cli(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin/sluice.js'), ...args],
      { cwd: ROOT, env: env() },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** Runs it on a pseudo-terminal through util-linux `script`; stdout and stderr arrive together. */
function cliOnTty(...args: string[]): Promise<Result> {
  const command = [process.execPath, join(ROOT, 'bin/sluice.js'), ...args].map(quote).join(' ');
  return new Promise((resolve) => {
    execFile('script', ['-qfec', command, '/dev/null'], { cwd: ROOT, env: env() }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const json = (r: Result) => JSON.parse(r.stdout) as Record<string, unknown>;

async function groupFile(id: string, extra: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, `${id}.json`);
  await writeFile(
    file,
    JSON.stringify({
      groupId: id,
      description: 'generated rows to files',
      streams: [
        {
          streamId: 's1',
          source: { connectorId: 'datagen', options: { intervalMs: 20 } },
          sink: { connectorId: 'file', options: { path: join(dir, id), format: 'jsonl' } },
        },
      ],
      schedule: {
        scheduleUnit: 'H',
        scheduleInterval: 1,
        startTime: String(START),
        endTime: String(START + 30 * 86_400_000),
        scheduleEngine: 'None',
        timeZone: 'UTC',
      },
      retry: { maxAttempts: 1, initialBackoffMs: 10 },
      ...extra,
    }),
  );
  return file;
}

test.serial('connectors validate: valid options exit 0, invalid ones exit 3 with each field path', async (t) => {
  const ok = await cli('connectors', 'validate', 'datagen', '--options', '{"intervalMs": 10}');
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /^valid: datagen source options/);
  const bad = await cli('connectors', 'validate', 'file', '--role', 'sink', '--options', '{"path": "relative"}');
  t.is(bad.code, 3);
  t.regex(bad.stderr, /^error: INVALID_ARGUMENT: file sink options are not valid\n/);
  t.regex(bad.stderr, /\n {2}options\.path: /);
  const badJson = await cli('connectors', 'validate', 'file', '--role', 'sink', '--options', '{"path": "x"}', '--json');
  t.is(badJson.code, 3);
  // proto3 JSON leaves out false: an invalid answer is one without `valid`, with its errors.
  t.is(json(badJson).valid, undefined);
  t.true((json(badJson).errors as { path: string }[]).some((e) => e.path === 'options.path'));
  t.is((JSON.parse(badJson.stderr) as { error: { status: string } }).error.status, 'INVALID_ARGUMENT');
  const usage = await cli('connectors', 'validate', 'datagen', '--options', '[1]');
  t.is(usage.code, 3);
  t.regex(usage.stderr, /--options: expected a JSON object/);
});

test.serial('groups create, update (version checked), approve; pause and resume', async (t) => {
  const created = await cli('groups', 'create', '-f', await groupFile('run_demo'), '--json');
  t.is(created.code, 0, created.stderr);
  const version = (json(created).group as { version: number }).version;
  const updated = await cli(
    'groups',
    'update',
    '-f',
    await groupFile('run_demo', { description: 'changed', version }),
    '--json',
  );
  t.is(updated.code, 0, updated.stderr);
  t.like(json(updated), { group: { description: 'changed', version: version + 1 } });
  const stale = await cli('groups', 'update', '-f', await groupFile('run_demo', { version }));
  t.is(stale.code, 10); // ABORTED: VERSION_CONFLICT
  t.regex(stale.stderr, /^error: ABORTED: /);
  t.is((await cli('groups', 'approve', 'run_demo', '--version', String(version + 1))).code, 0);

  const paused = await cli('pause', 'run_demo', '--json');
  t.is(paused.code, 0, paused.stderr);
  t.like(json(paused), { schedule: { status: 'SCHEDULE_STATUS_PAUSED' } });
  const resumed = await cli('resume', 'run_demo');
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stdout, /^run_demo: (REGISTERED|UPDATED|APPROVED)/);
});

test.serial('backfill: a dry run is a table and runs nothing; a real run follows the windows', async (t) => {
  const iso = (ms: number) => new Date(ms).toISOString();
  const dry = await cli('backfill', 'run_demo', '--from', iso(START), '--to', iso(START + 2 * HOUR), '--dry-run');
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /^WINDOW START \(UTC\)\s+WINDOW END \(UTC\)/);
  t.true(dry.stdout.includes(new Date(START).toISOString()));
  t.true(dry.stdout.includes(new Date(START + HOUR).toISOString()));
  t.regex(dry.stdout, /2 windows would run \(dry run\)/);
  const ledger = await cli('instances', 'run_demo', '--json');
  t.deepEqual(json(ledger).instances ?? [], []);

  const real = await cli('backfill', 'run_demo', '--from', iso(START), '--to', iso(START + 2 * HOUR), '--json');
  t.is(real.code, 0, real.stderr);
  const final = json(real).final as { windowStart: string; state: string }[];
  t.deepEqual(
    final.map((f) => [Number(f.windowStart), f.state]),
    [
      [START, 'INSTANCE_STATE_SUCCEEDED'],
      [START + HOUR, 'INSTANCE_STATE_SUCCEEDED'],
    ],
  );
  t.notRegex(real.stderr, /\[#/); // no terminal: no progress bar
});

test.serial('backfill on a terminal draws a progress bar over the windows', async (t) => {
  const iso = (ms: number) => new Date(ms).toISOString();
  const r = await cliOnTty('backfill', 'run_demo', '--from', iso(START + 2 * HOUR), '--to', iso(START + 4 * HOUR));
  t.is(r.code, 0, r.stdout);
  t.regex(r.stdout, /\r\x1b\[2K\[[#.]{30}\] \d\/2 windows/);
  t.regex(r.stdout, /\[#{30}\] 2\/2 windows, 0 running, 0 failed/);
  t.regex(r.stdout, /2 of 2 windows succeeded/);
});

test.serial('instances: a coverage strip of the windows, the ledger with --table', async (t) => {
  const strip = await cli('instances', 'run_demo');
  t.is(strip.code, 0, strip.stderr);
  // START .. START+3h ran, START+4h and START+5h have closed without running, the current hour is not due.
  t.true(strip.stdout.startsWith(`${new Date(START).toISOString()}  |####..`), strip.stdout);
  t.regex(strip.stdout, /# succeeded \(4\)\s+X failed\s+> running\s+\. missing \(2\)/);
  const tableOut = await cli('instances', 'run_demo', '--table');
  t.regex(tableOut.stdout, /^WINDOW START \(UTC\)\s+WINDOW END \(UTC\)\s+STATE/);
  t.regex(tableOut.stdout, /SUCCEEDED/);
});

test.serial(
  'jobs watch: a live line with records/s on a terminal, then the final state; cancel of an ended job is refused',
  async (t) => {
    const jobs = json(await cli('jobs', 'list', '--group', 'run_demo', '--json')).jobs as { jobId: string }[];
    const jobId = jobs[0]!.jobId;
    const tty = await cliOnTty('jobs', 'watch', jobId);
    t.is(tty.code, 0, tty.stdout);
    t.regex(tty.stdout, /\r\x1b\[2KSUCCEEDED {2}\d+ records {2}\d+ records\/s/);
    t.regex(tty.stdout, new RegExp(`${jobId}: SUCCEEDED, \\d+ records in \\d+\\.\\ds`));
    const piped = await cli('jobs', 'watch', jobId, '--json');
    t.is(piped.code, 0, piped.stderr);
    t.is(piped.stderr, '');
    t.like(json(piped), { job: { jobId, state: 'JOB_STATE_SUCCEEDED' } });
    const cancel = await cli('jobs', 'cancel', jobId);
    t.is(cancel.code, 9); // FAILED_PRECONDITION: it has ended
    t.regex(cancel.stderr, /^error: FAILED_PRECONDITION: /);
  },
);

test.serial('schedules preview marks the windows around a change of the clocks', async (t) => {
  const created = await cli(
    'groups',
    'create',
    '-f',
    await groupFile('run_berlin', {
      schedule: {
        scheduleUnit: 'H',
        scheduleInterval: 1,
        startTime: String(Date.UTC(2026, 9, 1)),
        endTime: String(Date.UTC(2027, 0, 1)),
        scheduleEngine: 'None',
        timeZone: 'Europe/Berlin',
      },
    }),
  );
  t.is(created.code, 0, created.stderr);
  t.is((await cli('groups', 'approve', 'run_berlin', '--version', '1')).code, 0);
  // Summer time ended in Berlin at 2026-10-25T01:00:00Z (03:00 CEST became 02:00 CET).
  const r = await cli('schedules', 'preview', 'run_berlin', '--from', '2026-10-24T23:00:00Z', '--count', '4');
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /START \(UTC\).*START \(group zone\).*DST/);
  t.notRegex(lines[1]!, /clocks/); // 23:00Z = 01:00+02:00
  // 00:00Z = 02:00+02:00 until 01:00Z = 02:00+01:00: the hour at whose end the clocks go back.
  t.regex(lines[2]!, /2026-10-25T02:00:00\.000\+02:00.*clocks change by its end \(\+02:00 -> \+01:00\)$/);
  t.regex(lines[3]!, /2026-10-25T02:00:00\.000\+01:00/);
  t.notRegex(lines[3]!, /clocks/);
  t.notRegex(lines[4]!, /clocks/);
});

test.serial(
  '--catalog-addr/--schedule-addr/--operator-addr win over --addr; an unreachable service exits UNAVAILABLE',
  async (t) => {
    const apart = await cli(
      '--addr',
      '127.0.0.1:1',
      '--catalog-addr',
      sluice.address,
      '--schedule-addr',
      sluice.address,
      '--operator-addr',
      sluice.address,
      'groups',
      'list',
      '--json',
    );
    t.is(apart.code, 0, apart.stderr);
    const down = await cli('--addr', '127.0.0.1:1', 'connectors', 'list');
    t.is(down.code, 14);
    t.regex(down.stderr, /^error: UNAVAILABLE: /);
    const halfTls = await cli('--tls-cert', join(dir, 'cert.pem'), 'connectors', 'list');
    t.is(halfTls.code, 3);
    t.regex(halfTls.stderr, /--tls-key: expected both --tls-cert and --tls-key/);
  },
);
