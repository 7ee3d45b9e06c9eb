import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { credentials } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { BoundaryType } from '../../proto/gen/sluice/common/v1/common.js';
import { OperatorServiceClient } from '../../proto/gen/sluice/operator/v1/operator.js';
import {
  InstanceState,
  InstanceTrigger,
  ListInstancesRequest,
  ScheduleServiceClient,
} from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { ManualClock } from '../../services/schedule/domain/clock.js';
import { PG_URL, probePostgres, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';
import { RUNNER_FIXTURES, datagenToFile, jobWhen, schedule } from '../helpers/operator.js';
import { HOUR, T0 } from '../helpers/schedule.js';
import { bearer, call, callError, startTestSluice } from '../helpers/sluice.js';

// SubmitOfflineJob over gRPC, end to end: every submitted window is a ledger row the schedule service
// owns (ListInstances shows it, with who sent it), a window sent early runs when due, and one OFFSET
// window is one row and one job however it is written.

const test = anyTest as TestFn<{ pgUrl?: string; pgDatabase?: string }>;
// An engine that sends windows through its context's submitOfflineJob when this file says so.
const SUBMITTER_FIXTURES = fileURLToPath(new URL('../fixtures/plugins/engine-submit/', import.meta.url));
const { submit: engineSubmit } = (await import(
  pathToFileURL(join(SUBMITTER_FIXTURES, 'submitter', 'index.js')).href
)) as { submit: (request: object) => Promise<{ jobIds: readonly string[] }> };
const pgTest = gate(test, await probePostgres());
const TOKEN = 'ledger-operator-token-0001';
const FINGERPRINT = `token:${createHash('sha256').update(TOKEN).digest('hex').slice(0, 12)}`;

pgTest.before(async (t) => {
  const name = uniqueName('sluice_ledger');
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  t.context = { pgUrl: url.toString(), pgDatabase: name };
});
pgTest.after.always(async (t) => {
  if (!t.context.pgDatabase) return;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${t.context.pgDatabase}" WITH (FORCE)`);
  await admin.end();
});

async function scenario(t: ExecutionContext<{ pgUrl?: string }>, databaseUrl: string | undefined) {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-ledger-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // The schedule's clock: half an hour into the first window of the groups' hourly schedules.
  const clock = new ManualClock(T0 + 30 * 60_000);
  const s = await startTestSluice(
    {
      SLUICE_AUTH_TOKENS: `${TOKEN}:operator`,
      SLUICE_PLUGIN_PATH: `${RUNNER_FIXTURES}:${SUBMITTER_FIXTURES}`,
      // Replicas sharing PostgreSQL share the key secret options are sealed under.
      ...(databaseUrl ? { SLUICE_DATABASE_URL: databaseUrl, SLUICE_SECRET_KEY: '7'.repeat(64) } : {}),
    },
    { clock },
  );
  const operator = new OperatorServiceClient(s.address, credentials.createInsecure());
  const schedules = new ScheduleServiceClient(s.address, credentials.createInsecure());
  t.teardown(async () => {
    operator.close();
    schedules.close();
    await s.close();
  });
  const md = bearer(TOKEN);
  const op = s.sluice.operator!;
  const sched = s.sluice.schedule!;

  // ---- TIME: a window of the schedule, sent before it is due ----------------------------------------------
  await op.createGroup(
    datagenToFile('g-time', join(dir, 'time'), {
      schedule: { ...schedule('g-time'), scheduleEngine: 'builtin' },
      streams: [
        {
          streamId: 's1',
          source: { connectorId: 'datagen', options: { intervalMs: 60_000 } },
          sink: { connectorId: 'file', options: { path: join(dir, 'time'), format: 'jsonl' } },
          fields: [],
        },
      ],
    }),
  );
  await op.approveGroup('g-time', 0);
  const timeWindow = {
    groupId: 'g-time',
    boundaryType: BoundaryType.BOUNDARY_TYPE_TIME,
    lowerBoundary: String(T0),
    upperBoundary: String(T0 + HOUR),
    instanceId: '',
  };
  const early = await call(operator.submitOfflineJob.bind(operator), { request: timeWindow, rerun: false }, md);
  t.true(early.created);
  t.deepEqual(early.jobs, [], 'not due yet: no job');
  t.like(early.instance, {
    state: InstanceState.INSTANCE_STATE_SCHEDULED,
    trigger: InstanceTrigger.INSTANCE_TRIGGER_EXTERNAL,
    triggeredBy: FINGERPRINT,
    window: { start: T0, end: T0 + HOUR, dueTime: T0 + HOUR },
  });
  const repeat = await call(operator.submitOfflineJob.bind(operator), { request: timeWindow, rerun: false }, md);
  t.false(repeat.created);
  t.is(repeat.instance!.instanceId, early.instance!.instanceId);

  // Not a window of the schedule: refused, naming the field and the nearest windows; nothing recorded.
  const off = await callError(
    operator.submitOfflineJob.bind(operator),
    { request: { ...timeWindow, lowerBoundary: String(T0 + 60_000), upperBoundary: String(T0 + HOUR) }, rerun: false },
    md,
  );
  t.is(off.sluiceCode, 'INVALID_ARGUMENT');
  t.is(off.fieldErrors?.[0]?.path, 'lower_bound');
  t.regex(off.details, new RegExp(`nearest windows are \\[${T0}, ${T0 + HOUR}\\)`));

  // Due: the built-in engine fires the same window (it finds the row) and the row's own timer dispatches it, once.
  await clock.advanceTo(T0 + HOUR, async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setImmediate(r));
      await sched.idle();
    }
  });
  const jobs = await op.listJobs({ groupId: 'g-time', limit: 10 });
  t.deepEqual(
    jobs.map((j) => [j.boundaries.lowerBound, j.boundaries.upperBound, j.instanceId]),
    [[String(T0), String(T0 + HOUR), early.instance!.instanceId]],
    'one job, of the early instance',
  );
  t.is((await jobWhen(op, jobs[0]!.jobId)).state, 'SUCCEEDED');

  // ---- OFFSET: one window, written two ways ---------------------------------------------------------------
  await op.createGroup(
    datagenToFile('g-offset', join(dir, 'offset'), {
      // Its source reads OFFSET windows only: no schedule of its own fires TIME windows at it.
      schedule: { ...schedule('g-offset'), scheduleEngine: 'None' },
      streams: [
        {
          streamId: 's1',
          source: { connectorId: 'slow-source', options: { delayMs: 0 } },
          sink: { connectorId: 'file', options: { path: join(dir, 'offset'), format: 'jsonl' } },
          fields: [],
        },
      ],
    }),
  );
  await op.approveGroup('g-offset', 0);
  const offset = (lower: string, upper: string) => ({
    request: {
      groupId: 'g-offset',
      boundaryType: BoundaryType.BOUNDARY_TYPE_OFFSET,
      lowerBoundary: lower,
      upperBoundary: upper,
      instanceId: '',
    },
    rerun: false,
  });
  const first = await call(operator.submitOfflineJob.bind(operator), offset(' 0', '025'), md);
  const second = await call(operator.submitOfflineJob.bind(operator), offset('0', '25'), md);
  t.true(first.created);
  t.false(second.created);
  t.is(second.instance!.instanceId, first.instance!.instanceId);
  t.deepEqual(
    second.jobs.map((j) => j.jobId),
    first.jobs.map((j) => j.jobId),
  );
  t.is(first.jobs.length, 1);
  await jobWhen(op, first.jobs[0]!.jobId);
  await sched.idle();

  // ---- An engine's submitOfflineJob: through the operator (canonical form), recorded as the engine's --------
  await op.createGroup(
    datagenToFile('g-engine', join(dir, 'engine'), {
      schedule: { ...schedule('g-engine'), scheduleEngine: 'Submitter' },
      streams: [
        {
          streamId: 's1',
          source: { connectorId: 'slow-source', options: { delayMs: 0 } },
          sink: { connectorId: 'file', options: { path: join(dir, 'engine'), format: 'jsonl' } },
          fields: [],
        },
      ],
    }),
  );
  await op.approveGroup('g-engine', 0);
  const sent = { groupId: 'g-engine', boundaryType: 'OFFSET', lowerBound: ' 0', upperBound: '025' };
  const byEngine = await engineSubmit(sent);
  const byEngineAgain = await engineSubmit({ ...sent, lowerBound: '0', upperBound: '25' });
  t.is(byEngine.jobIds.length, 1);
  t.deepEqual(byEngineAgain.jobIds, byEngine.jobIds, 'one job however the engine writes the window');
  await jobWhen(op, byEngine.jobIds[0]!);
  await sched.idle();
  const engineRows = await sched.listInstances({ groupId: 'g-engine', limit: 10 });
  t.deepEqual(
    engineRows.map((r) => [r.trigger, r.triggeredBy, r.boundaries?.lowerBound, r.boundaries?.upperBound, r.state]),
    [['EXTERNAL', 'engine:submitter', '0', '25', 'SUCCEEDED']],
  );

  // ---- ListInstances shows both, as submitted from outside, with who sent them -------------------------------
  const offsets = await call(
    schedules.listInstances.bind(schedules),
    ListInstancesRequest.fromPartial({ groupId: 'g-offset', pageSize: 10 }),
    md,
  );
  t.is(offsets.instances.length, 1, 'one ledger row however the window is written');
  t.like(offsets.instances[0], {
    trigger: InstanceTrigger.INSTANCE_TRIGGER_EXTERNAL,
    triggeredBy: FINGERPRINT,
    boundaries: { boundaryType: BoundaryType.BOUNDARY_TYPE_OFFSET, lowerBound: '0', upperBound: '25' },
    window: undefined,
    state: InstanceState.INSTANCE_STATE_SUCCEEDED,
  });
  const times = await call(
    schedules.listInstances.bind(schedules),
    ListInstancesRequest.fromPartial({ groupId: 'g-time', pageSize: 10 }),
    md,
  );
  t.deepEqual(
    times.instances.map((i) => [i.window?.start, i.trigger, i.triggeredBy, i.boundaries?.lowerBound]),
    [[T0, InstanceTrigger.INSTANCE_TRIGGER_EXTERNAL, FINGERPRINT, String(T0)]],
  );
}

test.serial('sqlite: submitted windows are ledger rows: early ones run when due, OFFSET ones once', (t) =>
  scenario(t, undefined),
);
pgTest.serial('postgres: submitted windows are ledger rows: early ones run when due, OFFSET ones once', (t) =>
  scenario(t, t.context.pgUrl),
);
