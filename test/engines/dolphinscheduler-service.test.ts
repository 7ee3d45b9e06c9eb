/**
 * The DolphinScheduler engine under a real schedule service (in process, SQLite, manual clock) against the
 * stand-in of test/helpers/fake-dolphinscheduler.ts: what DolphinScheduler holds through pause, resume and
 * a restart while paused, and what PauseSchedule / ResumeSchedule answer when it refuses or is down. Not
 * run against a real DolphinScheduler.
 */
import anyTest, { type TestFn } from 'ava';
import { isSluiceError } from 'sluice/sdk';
import { silentLogger } from '../../services/core/logger.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { loadPlugins } from '../../services/host/loader.js';
import { ScheduleService } from '../../services/schedule/domain/service.js';
import { FakeDolphinScheduler } from '../helpers/fake-dolphinscheduler.js';
import { FakeDispatcher, type Rig, T0, info, scheduleRig } from '../helpers/schedule.js';

const test = anyTest as TestFn<{ ds: FakeDolphinScheduler; rig: Rig }>;

test.beforeEach(async (t) => {
  const ds = await new FakeDolphinScheduler('3.3').listen();
  // Each AVA file runs in its own process: these reach only this file's plugin loads.
  process.env.SLUICE_PLUGIN_DOLPHINSCHEDULER_URL = ds.url;
  process.env.SLUICE_PLUGIN_DOLPHINSCHEDULER_TOKEN = ds.token;
  process.env.SLUICE_PLUGIN_DOLPHINSCHEDULER_CALLBACK_TOKEN = 'service-callback-token-0123';
  process.env.SLUICE_PUBLIC_HTTP_URL = 'http://sluice.example:8080';
  t.context.ds = ds;
  t.context.rig = await scheduleRig(T0);
});
test.afterEach.always(async (t) => {
  await t.context.rig?.close();
  await t.context.ds?.close();
});

/** Each `sluice__` workflow with its release state and its schedule's. */
function holds(ds: FakeDolphinScheduler): string[] {
  return [...ds.workflows.values()]
    .filter((w) => w.name.startsWith('sluice__'))
    .map((w) => `${w.name} ${w.releaseState}/${ds.scheduleOf(w.code)?.releaseState ?? 'none'}`)
    .sort();
}
const dsInfo = (g: string) => info(g, { scheduleEngine: 'DolphinScheduler' });

test.serial('pause, a restart while paused, resume and delete leave exactly one workflow per live group', async (t) => {
  const { ds, rig } = t.context;
  await rig.service.register(dsInfo('g1'));
  await rig.service.register(dsInfo('g2'));
  t.deepEqual(holds(ds), ['sluice__g1 ONLINE/ONLINE', 'sluice__g2 ONLINE/ONLINE']);
  const code = ds.workflowNamed('sluice__g2')!.code;

  await rig.service.pause('g2');
  t.deepEqual(holds(ds), ['sluice__g1 ONLINE/ONLINE', 'sluice__g2 OFFLINE/OFFLINE'], 'paused: offline, kept');
  await rig.restart();
  t.deepEqual(holds(ds), ['sluice__g1 ONLINE/ONLINE', 'sluice__g2 OFFLINE/OFFLINE'], 'a restart keeps it offline');
  t.is(ds.workflowNamed('sluice__g2')?.code, code);

  await rig.service.resume('g2');
  t.deepEqual(holds(ds), ['sluice__g1 ONLINE/ONLINE', 'sluice__g2 ONLINE/ONLINE']);
  t.is(ds.workflowNamed('sluice__g2')?.code, code, 'the same workflow');

  await rig.service.pause('g1');
  await rig.service.unregister('g1');
  await rig.restart();
  t.deepEqual(holds(ds), ['sluice__g2 ONLINE/ONLINE'], 'none for a deleted group, paused or not');
  t.deepEqual(ds.violations, []);
});

test.serial(
  'DolphinScheduler refusing or down during pause or resume: a clear error, the status put back',
  async (t) => {
    const { ds, rig } = t.context;
    await rig.service.register(dsInfo('g3'));
    ds.refuse = {
      match: /^POST \/projects\/\d+\/schedules\/\d+\/offline$/,
      code: 10022,
      msg: 'set schedule offline error',
    };
    const refused = await t.throwsAsync(() => rig.service.pause('g3'));
    t.true(isSluiceError(refused) && refused.code === 'FAILED_PRECONDITION', String(refused));
    t.regex(refused!.message, /set schedule offline error \(code 10022\)/);
    t.is((await rig.service.get('g3')).status, 'REGISTERED', 'not paused in Sluice while DolphinScheduler runs it');
    t.deepEqual(holds(ds), ['sluice__g3 ONLINE/ONLINE']);

    ds.refuse = undefined;
    await rig.service.pause('g3');
    ds.down = true;
    const down = await t.throwsAsync(() => rig.service.resume('g3'));
    t.true(isSluiceError(down) && down.code === 'UNAVAILABLE', String(down));
    t.is((await rig.service.get('g3')).status, 'PAUSED', 'still paused in Sluice, as in DolphinScheduler');
    ds.down = false;
    t.deepEqual(holds(ds), ['sluice__g3 OFFLINE/OFFLINE']);
    await rig.service.resume('g3');
    t.deepEqual(holds(ds), ['sluice__g3 ONLINE/ONLINE']);
  },
);

test.serial('another replica that sees a group paused holds it at DolphinScheduler too', async (t) => {
  const { ds, rig } = t.context;
  await rig.service.register(dsInfo('g5'));
  // A second replica on the same store, re-reading it every 50 ms.
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR, extraDirs: [] });
  const other = new ScheduleService({
    store: rig.store,
    engines: plugins.engines,
    hooks: new HookRunner({ timeoutMs: 10_000 }),
    clock: rig.clock,
    dispatcher: new FakeDispatcher(rig.clock),
    logger: silentLogger,
    owner: 'other',
    rescanMs: 50,
  });
  t.teardown(() => other.stop());
  await other.start();
  await other.idle();
  // Paused in the store while DolphinScheduler still runs it (a replica put the status back after a failed
  // resume whose store write another replica had already acted on).
  const s = (await rig.store.getSchedule('g5'))!;
  await rig.store.updateSchedule({ ...s, status: 'PAUSED', version: s.version + 1 }, s.version);
  t.deepEqual(holds(ds), ['sluice__g5 ONLINE/ONLINE']);
  for (let i = 0; i < 100 && holds(ds)[0] !== 'sluice__g5 OFFLINE/OFFLINE'; i++)
    await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(holds(ds), ['sluice__g5 OFFLINE/OFFLINE']);
});
