/**
 * Sluice's Airflow DAG factory (plugins/engines/airflow/dags/sluice_dags.py) run by /usr/bin/python3
 * against stub `airflow` modules (test/fixtures/airflow-stubs) that record what it builds; its task is
 * called as Airflow would call it, against an HTTP server here that plays Sluice's FireDue endpoint.
 * The crons are evaluated with python3-croniter the way Airflow 3's cron timetables do. Not run against
 * a real Airflow here.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ScheduleInfo } from 'sluice/sdk';
import { dagSpec } from '../../plugins/engines/airflow/dag-spec.js';
import { coveringCron } from '../../services/schedule/domain/covering-cron.js';
import { firingRules, normalizeInfo } from '../../services/schedule/domain/info.js';
import { dueTime } from '../../services/schedule/domain/plan.js';
import { windowsAfter } from '../../services/schedule/domain/windows.js';
import { gate, type Probe } from '../helpers/integration.js';
import { ROOT } from '../helpers/process.js';
import { info } from '../helpers/schedule.js';

const PYTHON = '/usr/bin/python3';
const STUBS = join(ROOT, 'test/fixtures/airflow-stubs');
const FACTORY = join(ROOT, 'plugins/engines/airflow/dags/sluice_dags.py');

function pythonProbe(): Probe {
  const r = spawnSync(PYTHON, ['-c', 'import croniter, zoneinfo'], { encoding: 'utf8' });
  if (r.error) return { ok: false, reason: `${PYTHON}: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, reason: `${PYTHON} has no croniter (apt-get install python3-croniter)` };
  return { ok: true };
}
const test = gate(anyTest as TestFn<unknown>, pythonProbe());

interface Built {
  dags: {
    dagId: string;
    atModuleLevel: boolean;
    timetable: string;
    cron: string;
    timeZone: string;
    startDate: number;
    endDate: number | null;
    catchup: boolean;
    maxActiveRuns: number;
    retries: number;
    retryExponentialBackoff: boolean;
    tasks: string[];
  }[];
  runs: { ok: boolean; result?: string[]; error?: string; message?: string }[];
  checks: Record<string, { misses: { due: number; tick: number }[]; ticks: number; dues: number }>;
  logs: { level: string; message: string }[];
  variableReads: string[];
}

/** Runs the factory under the stubs with the given job (see drive.py). */
function drive(job: Record<string, unknown>, env: Record<string, string> = {}): Promise<Built> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-B', join(STUBS, 'drive.py')], {
      env: { PATH: process.env.PATH ?? '', PYTHONPATH: STUBS, PYTHONDONTWRITEBYTECODE: '1', ...env },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`drive.py exited ${code}: ${err}`));
      try {
        resolve(JSON.parse(out) as Built);
      } catch {
        reject(new Error(`drive.py printed no JSON: ${out.slice(0, 300)} ${err}`));
      }
    });
    child.stdin.end(JSON.stringify({ factory: FACTORY, ...job }));
  });
}

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const FIRST = Date.UTC(2026, 2, 27, 0, 5);

const index = (dags: Record<string, unknown>) => ({ sluice_dags: JSON.stringify({ format: 1, dags }) });
const entry = (group: string, extra: Record<string, unknown> = {}) => ({
  dagId: `sluice__${group}`,
  groupId: group,
  cron: '5 * * * *',
  timeZone: 'Europe/Berlin',
  exact: true,
  firstDue: FIRST,
  lastDue: FIRST + 10 * DAY,
  version: 3,
  ...extra,
});

for (const layout of ['3.0', '3.1'] as const) {
  test(`Airflow ${layout} layout: one DAG per index entry, in one Variable read; entries that do not fit are skipped and logged`, async (t) => {
    const built = await drive(
      {
        variables: {
          ...index({
            'g-1.x': entry('g-1.x'),
            open: entry('open', { timeZone: 'UTC', cron: '0 */6 * * *', lastDue: undefined }),
            short: entry('short', { cron: '5 * * *' }),
            wrongid: entry('wrongid', { dagId: 'sluice__other' }),
            notobject: 'x',
          }),
          sluice__open: '{"the schedule": "for people"}',
        },
      },
      { STUB_SDK_TIMETABLES: layout === '3.1' ? '1' : '0' },
    );
    t.deepEqual(built.variableReads, ['sluice_dags'], 'one Variable read per parse');
    t.deepEqual(
      built.dags.map((d) => d.dagId),
      ['sluice__g-1.x', 'sluice__open'],
    );
    const [g, open] = built.dags;
    t.like(g, {
      atModuleLevel: true,
      timetable: 'airflow.timetables.trigger.CronTriggerTimetable',
      cron: '5 * * * *',
      timeZone: 'Europe/Berlin',
      startDate: FIRST,
      endDate: FIRST + 10 * DAY,
      catchup: false,
      maxActiveRuns: 1,
      retryExponentialBackoff: true,
      tasks: ['fire_due'],
    });
    t.true(g!.retries >= 3);
    t.like(open, { atModuleLevel: true, cron: '0 */6 * * *', timeZone: 'UTC', endDate: null });
    const errors = built.logs.filter((l) => l.level === 'ERROR').map((l) => l.message);
    t.is(errors.length, 3, errors.join('\n'));
    t.regex(errors.join('\n'), /group short skipped.*cron: expected 5 fields/);
    t.regex(errors.join('\n'), /group wrongid skipped.*dagId: expected 'sluice__wrongid'/);
    t.regex(errors.join('\n'), /group notobject skipped/);
  });
}

test('a malformed or absent index builds no DAG and says why', async (t) => {
  const broken = await drive({ variables: { sluice_dags: '{"format": 1, "dags": [' } });
  t.deepEqual(broken.dags, []);
  t.regex(broken.logs.map((l) => l.message).join('\n'), /Variable sluice_dags is not Sluice's DAG index/);
  const absent = await drive({ variables: {} });
  t.deepEqual(absent.dags, []);
  t.deepEqual(absent.logs, []);
});

test("the task posts FireDue with the run's time, the Connection's token, and fails for good only on permanent answers", async (t) => {
  const seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const answers = [
    {
      status: 200,
      body: { success: true, errMsg: null, data: { instances: [{ instanceId: 'i-1' }], nextDueTime: 1 } },
    },
    { status: 200, body: { success: true, errMsg: null, data: { instances: [] } } },
    { status: 503, body: { success: false, errMsg: 'no schedule service is reachable from here' } },
    { status: 404, body: { success: false, errMsg: "group 'g-1.x' not found" } },
  ];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const a = answers[seen.length - 1]!;
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const tick = Date.UTC(2026, 2, 29, 1, 5);
  const built = await drive({
    variables: index({ 'g-1.x': entry('g-1.x') }),
    connections: { sluice: { host: url, password: 'callback-token-0123456789' } },
    runs: [
      { dagId: 'sluice__g-1.x', logicalDate: tick, runAfter: tick + 7 },
      { dagId: 'sluice__g-1.x', logicalDate: null, runAfter: tick + 250 },
      { dagId: 'sluice__g-1.x', logicalDate: tick, runAfter: tick },
      { dagId: 'sluice__g-1.x', logicalDate: tick, runAfter: tick },
    ],
  });
  t.deepEqual(
    seen.map((s) => [s.method, s.url, s.headers.authorization, s.headers['content-type'], JSON.parse(s.body)]),
    [
      [
        'POST',
        '/sluice/v1/groups/g-1.x/fire-due',
        'Bearer callback-token-0123456789',
        'application/json',
        { asOf: tick },
      ],
      [
        'POST',
        '/sluice/v1/groups/g-1.x/fire-due',
        'Bearer callback-token-0123456789',
        'application/json',
        { asOf: tick + 250 },
      ],
      [
        'POST',
        '/sluice/v1/groups/g-1.x/fire-due',
        'Bearer callback-token-0123456789',
        'application/json',
        { asOf: tick },
      ],
      [
        'POST',
        '/sluice/v1/groups/g-1.x/fire-due',
        'Bearer callback-token-0123456789',
        'application/json',
        { asOf: tick },
      ],
    ],
  );
  t.deepEqual(built.runs[0], { ok: true, result: ['i-1'] });
  t.deepEqual(built.runs[1], { ok: true, result: [] });
  t.like(built.runs[2], { ok: false, error: 'RuntimeError' }, 'a 503 fails the try; Airflow retries it');
  t.regex(built.runs[2]!.message!, /HTTP 503: .*no schedule service is reachable/);
  t.like(built.runs[3], { ok: false, error: 'AirflowFailException' }, 'a 404 fails for good');
  t.false(JSON.stringify(built).includes('callback-token-0123456789'), 'the token is in no message or log');
});

/** Schedules whose PreviewWindows due times the DAG's ticks must cover: units, crons, DST both ways. */
const BERLIN_SPRING = Date.UTC(2026, 2, 26, 23); // 2026-03-27 00:00 Berlin; clocks go forward on the 29th
const BERLIN_AUTUMN = Date.UTC(2026, 9, 22, 22); // 2026-10-23 00:00 Berlin; clocks go back on the 25th
const CASES: ScheduleInfo[] = [
  info('hourly-delay', { startTime: FIRST, endTime: FIRST + 20 * DAY, delayTime: 5 }),
  info('every-15-min', { scheduleUnit: 'I', scheduleInterval: 15, startTime: FIRST, endTime: FIRST + 3 * DAY }),
  info('daily-berlin-spring', {
    scheduleUnit: 'D',
    timeZone: 'Europe/Berlin',
    startTime: BERLIN_SPRING,
    endTime: BERLIN_SPRING + 30 * DAY,
  }),
  info('hourly-berlin-autumn', {
    timeZone: 'Europe/Berlin',
    startTime: BERLIN_AUTUMN,
    endTime: BERLIN_AUTUMN + 5 * DAY,
  }),
  info('every-7-days-odd-anchor', {
    scheduleUnit: 'D',
    scheduleInterval: 7,
    timeZone: 'America/New_York',
    startTime: Date.UTC(2026, 0, 7, 15, 17),
    endTime: Date.UTC(2027, 0, 7),
  }),
  info('month-end', {
    scheduleUnit: 'M',
    timeZone: 'Asia/Kolkata',
    startTime: Date.UTC(2026, 0, 30, 18, 30),
    endTime: Date.UTC(2028, 0, 1),
  }),
  info('cron-6h-berlin', {
    scheduleType: 1,
    crontabExpression: '0 0 */6 * * ?',
    timeZone: 'Europe/Berlin',
    startTime: BERLIN_SPRING,
    endTime: BERLIN_SPRING + 30 * DAY,
  }),
  info('cron-30min-berlin-autumn', {
    scheduleType: 1,
    crontabExpression: '0 0/30 * * * ?',
    timeZone: 'Europe/Berlin',
    startTime: BERLIN_AUTUMN,
    endTime: BERLIN_AUTUMN + 4 * DAY,
  }),
  info('cron-seconds', {
    scheduleType: 1,
    crontabExpression: '30 10 2 * * ?',
    timeZone: 'Australia/Lord_Howe',
    startTime: Date.UTC(2026, 0, 1),
    endTime: Date.UTC(2026, 8, 30),
  }),
  info('once', { scheduleUnit: 'O', scheduleInterval: 0, startTime: FIRST, endTime: FIRST + 2 * HOUR }),
];

/** PreviewWindows' due times: the same domain functions the service's preview calls, first `max` windows. */
function dueTimes(s: ScheduleInfo, max = 400): number[] {
  const rules = firingRules(normalizeInfo(s));
  const out: number[] = [];
  for (const w of windowsAfter(rules.spec)) {
    if (out.length >= max) break;
    out.push(dueTime(rules, w));
  }
  return out;
}

function coveringReady(): boolean {
  try {
    coveringCron(info('probe'), 'unix');
    return true;
  } catch {
    return false;
  }
}
const withCovering = coveringReady() ? test : test.skip;

async function ticksCoverDues(t: ExecutionContext, cases: readonly ScheduleInfo[]): Promise<void> {
  t.timeout(120_000);
  const dags: Record<string, unknown> = {};
  const dues: Record<string, number[]> = {};
  const covering: Record<string, ReturnType<typeof coveringCron>> = {};
  for (const s of cases) {
    covering[s.groupId] = coveringCron(s, 'unix');
    dags[s.groupId] = dagSpec(s, covering[s.groupId]!);
    dues[`sluice__${s.groupId}`] = dueTimes(s);
  }
  const built = await drive({ variables: index(dags), dues });
  t.is(built.dags.length, cases.length, built.logs.map((l) => l.message).join('\n'));
  for (const s of cases) {
    const id = `sluice__${s.groupId}`;
    const c = built.checks[id]!;
    const d = built.dags.find((x) => x.dagId === id)!;
    t.deepEqual(c.misses, [], `${s.groupId}: cron ${d.cron} in ${d.timeZone} misses due times`);
    t.is(d.startDate, covering[s.groupId]!.firstDue, `${s.groupId}: start_date is the first due time`);
    t.true(d.startDate <= dues[id]![0]! + MIN - 1 && d.startDate >= dues[id]![0]!, `${s.groupId}: start`);
    // Exact: one tick per due time, except that Airflow ticks both passes of a repeated autumn hour for
    // crons that tick every hour, where Sluice fires the first: FireDue makes the second a no-op.
    if (covering[s.groupId]!.exact)
      t.true(c.ticks >= c.dues && c.ticks <= c.dues + 2, `${s.groupId}: ${c.ticks} ticks for ${c.dues} due times`);
    t.log(`${s.groupId}: ${d.cron} (${d.timeZone}) ${c.ticks} ticks for ${c.dues} due times`);
  }
}

const skipReason = coveringReady() ? '' : ' (skipped: covering-cron.ts not written yet)';
withCovering(
  `the DAGs' ticks put one tick in [due, due + 60 s) of every PreviewWindows due time, unit, cron and DST${skipReason}`,
  (t) => ticksCoverDues(t, CASES),
);

// A due time a spring-forward gap moved (Lord Howe's 02:10:30 on 2026-10-04 happens at 02:40:30): the
// covering cron holds 02:41 as well as 02:11, since croniter started between the two walks past the
// nonexistent 02:11 (drive.py looks for each due time's tick from one second before it).
withCovering(`a due time moved by a DST gap is covered under Airflow's cron evaluation${skipReason}`, (t) =>
  ticksCoverDues(t, [
    info('lord-howe-gap', {
      scheduleType: 1,
      crontabExpression: '30 10 2 * * ?',
      timeZone: 'Australia/Lord_Howe',
      startTime: Date.UTC(2026, 8, 1),
      endTime: Date.UTC(2026, 9, 31),
    }),
  ]),
);

// A due time in the first pass of a repeated hour. Airflow 3's CronMixin._get_next
// (airflow-core/src/airflow/timetables/_cron.py) localises a cron's naive wall time with make_aware,
// fold=1: the second pass. Only for a cron whose hour field is every hour (_covers_every_hour, its
// "fold hour" workaround) does it add croniter's naive step to the current instant instead, and so
// reaches the first pass. Sluice gives a repeated wall time its first pass: daily at 02:30 in Berlin
// with this delay is due at 02:30 CEST on 2026-10-25, so the covering cron ticks every hour (its cost:
// 24 ticks a day, the extra ones FireDue no-ops).
withCovering(`a first-pass due time in a repeated hour is ticked in its minute under Airflow${skipReason}`, (t) =>
  ticksCoverDues(t, [
    info('daily-berlin-autumn', {
      scheduleUnit: 'D',
      timeZone: 'Europe/Berlin',
      delayTime: 150,
      startTime: BERLIN_AUTUMN,
      endTime: BERLIN_AUTUMN + 30 * DAY,
    }),
  ]),
);

// What the every-hour cron is for: the same schedule on its regular wall time alone ticks the fall-back
// day's due time an hour late, at 02:30 CET.
withCovering(
  `the regular wall time alone is ticked an hour late in a repeated hour under Airflow${skipReason}`,
  async (t) => {
    const s = info('daily-berlin-autumn', {
      scheduleUnit: 'D',
      timeZone: 'Europe/Berlin',
      delayTime: 150,
      startTime: BERLIN_AUTUMN,
      endTime: BERLIN_AUTUMN + 30 * DAY,
    });
    const covering = coveringCron(s, 'unix');
    t.is(covering.expression, '30 * * * *');
    t.false(covering.exact);
    const dues = dueTimes(s);
    const built = await drive({
      variables: index({ [s.groupId]: dagSpec(s, { ...covering, expression: '30 2 * * *' }) }),
      dues: { [`sluice__${s.groupId}`]: dues },
    });
    const fallBack = Date.UTC(2026, 9, 25, 0, 30); // 02:30 CEST
    // (The last window, cut short by the end at 23:00, is due at 01:30, off the 02:30 grid.)
    const misses = built.checks[`sluice__${s.groupId}`]!.misses.filter((m) => m.due !== dues[dues.length - 1]);
    t.deepEqual(misses, [{ due: fallBack, tick: fallBack + HOUR }]);
  },
);
