/**
 * The Airflow engine under a real schedule service (in process, SQLite, manual clock) against the stand-in
 * Airflow held to Airflow's OpenAPI spec: what Airflow holds after register, update, pause/resume,
 * delete and restarts, and what happens when Airflow is down or refuses. Not run against a real Airflow.
 */
import anyTest, { type TestFn } from 'ava';
import { isSluiceError } from 'sluice/sdk';
import { Catalog } from '../../services/catalog/domain/catalog.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { loadPlugins } from '../../services/host/loader.js';
import { FakeAirflow, airflowSpecPresent, AIRFLOW_SPEC_PATH } from '../helpers/fake-airflow.js';
import { type Rig, HOUR, T0, info, scheduleRig } from '../helpers/schedule.js';

const test = anyTest as TestFn<{ airflow: FakeAirflow; rig: Rig }>;
const declare = airflowSpecPresent ? test.serial : test.skip;
const title = (s: string) => (airflowSpecPresent ? s : `${s} (skipped: no Airflow spec at ${AIRFLOW_SPEC_PATH})`);

test.beforeEach(async (t) => {
  if (!airflowSpecPresent) return;
  const a = await new FakeAirflow().listen();
  // Each AVA file runs in its own process: these reach only this file's plugin loads.
  process.env.SLUICE_PLUGIN_AIRFLOW_URL = a.url;
  process.env.SLUICE_PLUGIN_AIRFLOW_USERNAME = a.username;
  process.env.SLUICE_PLUGIN_AIRFLOW_PASSWORD = a.password;
  process.env.SLUICE_PLUGIN_AIRFLOW_CALLBACK_TOKEN = 'service-callback-token-0123';
  process.env.SLUICE_PUBLIC_HTTP_URL = 'http://sluice.example:8080';
  t.context.airflow = a;
  t.context.rig = await scheduleRig(T0);
  a.now = () => t.context.rig.clock.now();
});
test.afterEach.always(async (t) => {
  await t.context.rig?.close();
  await t.context.airflow?.close();
});

/** What Airflow holds of Sluice's, after its DAG processor ran the factory. */
function holds(a: FakeAirflow) {
  a.parseDags();
  return {
    variables: [...a.variables.keys()].filter((k) => k.startsWith('sluice__')).sort(),
    index: Object.keys(a.dagSpecs()).sort(),
    dags: [...a.dags].map(([id, d]) => `${id}${d.paused ? ' (paused)' : ''}`).sort(),
  };
}
const only = (...groups: string[]) => ({
  variables: groups.map((g) => `sluice__${g}`),
  index: groups,
  dags: groups.map((g) => `sluice__${g}`),
});
const airflowInfo = (g: string, extra = {}) =>
  info(g, { scheduleEngine: 'Airflow', timeZone: 'Europe/Berlin', ...extra });

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
}

declare(
  title(
    'register, update, pause/resume, delete and restarts leave one DAG and Variable per live group, none for deleted ones',
  ),
  async (t) => {
    const { airflow: a, rig } = t.context;
    t.like(a.connections.get('sluice'), {
      host: 'http://sluice.example:8080',
      password: 'service-callback-token-0123',
    });
    const g1 = await rig.service.register(airflowInfo('g1'));
    await rig.service.register(airflowInfo('g2', { scheduleUnit: 'D' }));
    t.deepEqual(holds(a), only('g1', 'g2'));

    await rig.service.update({ ...g1.info, delayTime: 7, version: g1.version });
    t.deepEqual(holds(a), only('g1', 'g2'), 'an update makes no second DAG');
    t.regex(a.dagSpecs().g1!.cron, /^7 /, 'the update reached the index');

    await rig.service.pause('g2');
    const paused = { ...only('g1', 'g2'), dags: ['sluice__g1', 'sluice__g2 (paused)'] };
    t.deepEqual(holds(a), paused, 'a pause pauses the DAG and keeps it');
    await rig.restart();
    t.deepEqual(holds(a), paused, 'a restart while paused keeps the DAG, paused');
    await rig.service.resume('g2');
    t.deepEqual(holds(a), only('g1', 'g2'), 'resuming unpauses it');

    await rig.service.unregister('g1');
    t.deepEqual(holds(a), only('g2'), 'delete leaves nothing of the group');
    await rig.restart();
    await rig.restart();
    t.deepEqual(holds(a), only('g2'));
    t.deepEqual(a.violations, []);
  },
);

declare(
  title(
    'Airflow down or refusing at register: UNAVAILABLE / FAILED_PRECONDITION naming its answer, nothing half-registered',
  ),
  async (t) => {
    const { airflow: a, rig } = t.context;
    a.failing = { status: 503, detail: 'metadata database unreachable' };
    const down = await t.throwsAsync(() => rig.service.register(airflowInfo('g3')));
    t.true(isSluiceError(down) && down.code === 'UNAVAILABLE', String(down));
    t.regex(down!.message, /Airflow answered .* with HTTP 503: metadata database unreachable/);
    await t.throwsAsync(() => rig.service.get('g3'), { message: /not found/i }, 'no schedule is left in Sluice');

    a.failing = { status: 403, detail: 'Forbidden: user admin lacks the Variables permission' };
    const refused = await t.throwsAsync(() => rig.service.register(airflowInfo('g3')));
    t.true(isSluiceError(refused) && refused.code === 'FAILED_PRECONDITION', String(refused));
    t.regex(refused!.message, /HTTP 403: Forbidden: user admin lacks the Variables permission/);

    // Airflow takes the Variable, then fails the unpause: what was written is taken back.
    a.failing = undefined;
    a.failWhen = (method, path) =>
      method === 'PATCH' && path.startsWith('/api/v2/dags/') ? { status: 500, detail: 'deadlock detected' } : undefined;
    a.variables.set('sluice_dags', { value: '{"format":1,"dags":{}}', description: null });
    a.dags.set('sluice__g3', { paused: true });
    const half = await t.throwsAsync(() => rig.service.register(airflowInfo('g3')));
    t.regex(half!.message, /HTTP 500: deadlock detected/);
    a.failWhen = undefined;
    a.dags.clear();
    t.deepEqual(holds(a), only(), 'no Variable and no index entry left behind');
    await t.throwsAsync(() => rig.service.get('g3'));

    // Registered again once Airflow answers: the client's retry simply works.
    await rig.service.register(airflowInfo('g3'));
    t.deepEqual(holds(a), only('g3'));
    t.deepEqual(a.violations, []);
  },
);

declare(
  title('Airflow failing a pause or resume: the call fails naming its answer and the status is put back'),
  async (t) => {
    const { airflow: a, rig } = t.context;
    await rig.service.register(airflowInfo('g4'));
    a.parseDags();
    a.failWhen = (method, path) =>
      method === 'PATCH' && path === '/api/v2/dags/sluice__g4'
        ? { status: 500, detail: 'deadlock detected' }
        : undefined;
    const pause = await t.throwsAsync(() => rig.service.pause('g4'));
    t.true(isSluiceError(pause) && pause.code === 'UNAVAILABLE', String(pause));
    t.regex(pause!.message, /HTTP 500: deadlock detected/);
    t.is((await rig.service.get('g4')).status, 'REGISTERED', 'not paused in Sluice while Airflow runs it');
    t.false(a.dags.get('sluice__g4')!.paused);

    a.failWhen = undefined;
    await rig.service.pause('g4');
    t.true(a.dags.get('sluice__g4')!.paused);
    a.failing = { status: 403, detail: 'Forbidden: user admin lacks the DAGs permission' };
    const resume = await t.throwsAsync(() => rig.service.resume('g4'));
    t.true(isSluiceError(resume) && resume.code === 'FAILED_PRECONDITION', String(resume));
    t.regex(resume!.message, /HTTP 403: Forbidden: user admin lacks the DAGs permission/);
    t.is((await rig.service.get('g4')).status, 'PAUSED', 'still paused in Sluice, as in Airflow');
    a.failing = undefined;
    t.deepEqual(holds(a), { ...only('g4'), dags: ['sluice__g4 (paused)'] }, 'the paused DAG is kept');
    await rig.service.resume('g4');
    t.deepEqual(holds(a), only('g4'));
    t.deepEqual(a.violations, []);
  },
);

declare(title('a start while Airflow is down serves on, and reconciles once Airflow answers'), async (t) => {
  const { airflow: a, rig } = t.context;
  await rig.service.register(airflowInfo('keep'));
  await rig.service.register(airflowInfo('gone'));
  t.deepEqual(holds(a), only('gone', 'keep'));
  // Down, and meanwhile the store moves on without this Airflow: one group deleted, one added.
  a.failing = { status: 503, detail: 'api server restarting' };
  await rig.service.stop();
  const gone = (await rig.store.getSchedule('gone'))!;
  await rig.store.updateSchedule({ ...gone, status: 'DELETED', version: gone.version + 1 }, gone.version);
  const keep = (await rig.store.getSchedule('keep'))!;
  await rig.store.insertSchedule({
    ...keep,
    groupId: 'added',
    info: { ...keep.info, groupId: 'added' },
    version: 2,
  });
  await rig.restart();
  t.deepEqual(holds(a), only('gone', 'keep'), 'nothing changed while Airflow refuses');
  a.failing = undefined;
  await rig.advanceTo(rig.clock.now() + HOUR);
  // The retry runs on the service's clock; its requests to Airflow finish on real time.
  await until(() => a.variables.has('sluice__added') && !a.dags.has('sluice__gone'));
  t.deepEqual(holds(a), only('added', 'keep'), 'the retried reconcile repaired the drift');
  t.deepEqual(a.violations, []);
});

declare(title("ListEngines shows the Airflow version the engine talks to, or Airflow's answer"), async (t) => {
  const a = t.context.airflow;
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR, extraDirs: [] });
  const catalog = new Catalog(plugins, new HookRunner({ timeoutMs: 10_000 }));
  const airflow = async () =>
    (await catalog.listEngines({ pageSize: 0, pageToken: '' })).items.find((e) => e.id === 'airflow')!;
  t.like(await airflow(), { remote: 'Airflow 3.0.2', availability: { available: true } });
  a.failing = { status: 503, detail: 'api server starting' };
  const down = await airflow();
  t.false(down.availability.available);
  t.regex(down.availability.reason ?? '', /HTTP 503: api server starting/);
});
