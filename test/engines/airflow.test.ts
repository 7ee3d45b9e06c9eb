/**
 * The Airflow engine against a stand-in Airflow 3 held to the stored OpenAPI spec (see
 * test/helpers/fake-airflow.ts). Not run against a real Airflow here.
 */
import anyTest, { type TestFn } from 'ava';
import type { EngineContext, HookContext, ScheduleInfo } from 'sluice/sdk';
import { isSluiceError } from 'sluice/sdk';
import plugin from '../../plugins/engines/airflow/index.js';
import { AirflowClient } from '../../plugins/engines/airflow/client.js';
import { silentLogger } from '../../services/core/logger.js';
import { coveringCron } from '../../services/schedule/domain/covering-cron.js';
import { FakeAirflow, airflowSpecPresent, AIRFLOW_SPEC_PATH } from '../helpers/fake-airflow.js';
import { info } from '../helpers/schedule.js';

const test = anyTest as TestFn<{ airflow: FakeAirflow }>;
const declare = airflowSpecPresent ? test.serial : test.skip;
const title = (s: string) => (airflowSpecPresent ? s : `${s} (skipped: no Airflow spec at ${AIRFLOW_SPEC_PATH})`);

test.beforeEach(async (t) => {
  if (airflowSpecPresent) t.context.airflow = await new FakeAirflow().listen();
});
test.afterEach.always(async (t) => {
  await plugin.stop?.();
  await t.context.airflow?.close();
});

function settings(a: FakeAirflow) {
  return { url: a.url, username: a.username, password: a.password, callbackToken: 'sluice-callback-token' };
}
function hookCtx(a: FakeAirflow | undefined): HookContext {
  return {
    signal: new AbortController().signal,
    logger: silentLogger,
    pluginId: 'airflow',
    settings: a ? settings(a) : {},
  };
}
function engineCtx(a: FakeAirflow, live: ScheduleInfo[]): EngineContext {
  return {
    ...hookCtx(a),
    now: () => Date.now(),
    scheduleAt: () => ({ cancel() {} }),
    fireDue: () => Promise.resolve({ instances: [] }),
    listSchedules: () => Promise.resolve(live),
    listPaused: () => Promise.resolve([]),
    coveringCron,
    onWake() {},
    submitOfflineJob: () => Promise.resolve({ jobIds: [] }),
  };
}
const stored = (a: FakeAirflow, group: string) =>
  JSON.parse(a.variables.get(`sluice__${group}`)!.value) as {
    dagId: string;
    dag: Record<string, unknown>;
    schedule: ScheduleInfo;
  };
const index = (a: FakeAirflow) =>
  JSON.parse(a.variables.get('sluice_dags')?.value ?? '{"dags":{}}') as { dags: Record<string, { cron: string }> };

test('accepts Airflow in any case, and nothing else', (t) => {
  for (const s of ['airflow', 'Airflow', 'AIRFLOW']) t.true(plugin.accept(s), s);
  for (const s of ['builtin', 'DolphinScheduler', '']) t.false(plugin.accept(s), s);
});

declare(
  title('register, update and unregister leave exactly one DAG per live group, in spec-valid calls'),
  async (t) => {
    const a = t.context.airflow;
    const ctx = hookCtx(a);
    await plugin.start!(engineCtx(a, []));
    t.deepEqual(
      a.connections.get('sluice')?.password,
      'sluice-callback-token',
      'the callback token is in a Connection',
    );

    const s = info('g1', { scheduleEngine: 'Airflow', timeZone: 'Europe/Berlin' });
    await plugin.register(s, ctx);
    const covering = coveringCron(s, 'unix');
    const dag = {
      dagId: 'sluice__g1',
      groupId: 'g1',
      cron: covering.expression,
      // Hourly schedules tick in UTC, where no DST shifts or repeats an hour.
      timeZone: covering.timeZone,
      exact: covering.exact,
      firstDue: covering.firstDue,
      lastDue: covering.lastDue,
      version: 0,
    };
    t.deepEqual(stored(a, 'g1'), { format: 2, dagId: 'sluice__g1', dag, schedule: JSON.parse(JSON.stringify(s)) });
    t.deepEqual(index(a).dags, { g1: dag }, 'the index the factory reads holds the same DAG settings');
    a.parseDags();
    t.deepEqual([...a.dags.keys()], ['sluice__g1']);

    // Paused by hand in Airflow: register/update unpause it.
    a.dags.get('sluice__g1')!.paused = true;
    await plugin.update({ ...s, scheduleUnit: 'D', version: 2 }, ctx);
    a.parseDags();
    t.is(stored(a, 'g1').schedule.scheduleUnit, 'D');
    t.deepEqual([...a.dags.keys()], ['sluice__g1'], 'update never makes a second DAG');
    t.false(a.dags.get('sluice__g1')!.paused);

    // One round: InLong threw; here it is a schedule like any other.
    await plugin.register(info('once', { scheduleEngine: 'airflow', scheduleUnit: 'O' }), ctx);
    a.parseDags();

    await plugin.unregister('g1', ctx);
    await plugin.unregister('g1', ctx); // idempotent
    t.false(a.variables.has('sluice__g1'));
    t.deepEqual(Object.keys(index(a).dags), ['once']);
    a.parseDags();
    t.deepEqual([...a.dags.keys()], ['sluice__once'], 'no DAG left for the unregistered group');
    t.true(
      a.calls.every((c) => c.path === '/auth/token' || c.status !== 401),
      'every call carried a valid token',
    );
    t.deepEqual(a.violations, []);
  },
);

declare(
  title('start reconciles: missing schedules put, Variables of gone groups removed, user objects kept'),
  async (t) => {
    const a = t.context.airflow;
    a.variables.set('sluice__gone', { value: '{}', description: null });
    a.variables.set('user_var', { value: 'x', description: null });
    a.parseDags();
    a.dags.set('users_dag', { paused: false });
    await plugin.start!(engineCtx(a, [info('live', { scheduleEngine: 'airflow' })]));
    a.parseDags();
    t.deepEqual([...a.variables.keys()].sort(), ['sluice__live', 'sluice_dags', 'user_var']);
    t.deepEqual(Object.keys(index(a).dags), ['live']);
    t.deepEqual([...a.dags.keys()].sort(), ['sluice__live', 'users_dag']);
    t.deepEqual(a.violations, []);
  },
);

declare(title('Airflow failing: register fails naming its answer, and nothing is half-registered'), async (t) => {
  const a = t.context.airflow;
  const ctx = hookCtx(a);
  await plugin.start!(engineCtx(a, []));
  a.failing = { status: 503, detail: 'metadata database unreachable' };
  const err = await t.throwsAsync(() =>
    Promise.resolve(plugin.register(info('g2', { scheduleEngine: 'airflow' }), ctx)),
  );
  t.true(isSluiceError(err) && err.code === 'UNAVAILABLE', String(err));
  t.regex(err!.message, /HTTP 503: metadata database unreachable/);
  t.false(err!.message.includes(a.password), 'no secret in the message');
  t.false(a.variables.has('sluice__g2'));

  a.failing = undefined;
  await a.close();
  const down = await t.throwsAsync(() =>
    Promise.resolve(plugin.register(info('g3', { scheduleEngine: 'airflow' }), ctx)),
  );
  t.true(isSluiceError(down) && down.code === 'UNAVAILABLE', String(down));
});

declare(title('wrong credentials: FAILED_PRECONDITION naming Airflow, without the password'), async (t) => {
  const a = t.context.airflow;
  const client = new AirflowClient({ url: a.url, username: 'admin', password: 'wrong-secret' });
  const err = await t.throwsAsync(() => client.version());
  t.true(isSluiceError(err) && err.code === 'FAILED_PRECONDITION', String(err));
  t.regex(err!.message, /POST \/auth\/token with HTTP 401: Invalid credentials/);
  t.false(err!.message.includes('wrong-secret'));
});

declare(title('the JWT is fetched again before it expires'), async (t) => {
  const a = t.context.airflow;
  let now = Date.UTC(2026, 0, 1);
  a.now = () => now;
  a.tokenTtlMs = 5 * 60_000;
  const client = new AirflowClient({ url: a.url, username: a.username, password: a.password, now: () => now });
  t.is(await client.version(), '3.0.2');
  await client.version();
  now += 3 * 60_000; // still more than the margin left
  await client.version();
  now += 90_000; // within a minute of expiry
  await client.version();
  t.is(a.calls.filter((c) => c.path === '/auth/token').length, 2);
  t.true(a.calls.every((c) => c.status !== 401));
  t.deepEqual(a.violations, []);
});

declare(title('the stand-in refuses what the spec refuses'), async (t) => {
  const a = t.context.airflow;
  a.variables.set('sluice__x', { value: '{}', description: null });
  a.parseDags();
  const client = new AirflowClient({ url: a.url, username: a.username, password: a.password });
  const res = await client.call('PATCH', '/api/v2/dags/sluice__x', { paused: true });
  t.is(res.status, 422, a.violations.join('\n'));
  t.regex(a.violations.join('\n'), /PATCH \/api\/v2\/dags\/sluice__x body/);
  const bare = await fetch(`${a.url}/api/v2/version`);
  t.is(bare.status, 200, 'GET /api/v2/version needs no token (the spec lists no security for it)');
  t.is((await fetch(`${a.url}/api/v2/variables`)).status, 401, 'no token, no variables');
});

declare(title("about: the Airflow version for ListEngines, or unavailable with Airflow's answer"), async (t) => {
  const a = t.context.airflow;
  t.deepEqual(await plugin.about!(hookCtx(a)), { remote: 'Airflow 3.0.2' });
  a.failing = { status: 503, detail: 'api server starting' };
  const about = await plugin.about!(hookCtx(a));
  t.is(about.availability?.available, false);
  t.regex(about.availability?.reason ?? '', /GET \/api\/v2\/version with HTTP 503: api server starting/);
  a.failing = undefined;
  const ctx = hookCtx(a);
  await a.close();
  t.regex((await plugin.about!(ctx)).availability?.reason ?? '', /cannot be reached/);
});

declare(title('an invalid schedule is refused before anything is written to Airflow'), async (t) => {
  const a = t.context.airflow;
  await plugin.start!(engineCtx(a, []));
  const calls = a.calls.length;
  const err = await t.throwsAsync(() =>
    Promise.resolve(plugin.register(info('bad', { scheduleEngine: 'airflow', timeZone: 'Mars/Olympus' }), hookCtx(a))),
  );
  t.true(isSluiceError(err) && err.code === 'INVALID_ARGUMENT', String(err));
  t.is(a.calls.length, calls);
});
