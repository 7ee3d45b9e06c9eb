/**
 * The engine conformance kit: runs on every engine plugin found (bundled, the examples, and every
 * folder in SLUICE_PLUGIN_PATH), as the connector suite does for connectors. Each engine is driven on
 * the service's ManualClock against a SQLite ledger and an in-process operator stand-in; an external
 * engine runs it against its stand-in server (its plugin folder's settings point there). Each engine is
 * asked to accept its own id as schedule_engine. The bundled Airflow engine runs against the stand-in
 * Airflow of test/helpers/fake-airflow.ts (held to Airflow's OpenAPI spec), which plays Airflow's
 * scheduler on the kit's clock: each DAG ticks on its cron and calls FireDue as the factory's task does.
 * SLUICE_PLUGIN_AIRFLOW_URL set points the kit at another Airflow instead (its ticks are then real).
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EnginePlugin, ScheduleInfo } from 'sluice/sdk';
import { silentLogger } from '../../../services/core/logger.js';
import { BUNDLED_PLUGINS_DIR } from '../../../services/core/paths.js';
import { HookRunner } from '../../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../../services/host/loader.js';
import { ManualClock } from '../../../services/schedule/domain/clock.js';
import { ScheduleService } from '../../../services/schedule/domain/service.js';
import { SqliteScheduleStore } from '../../../services/store/index.js';
import { FakeAirflow, airflowSpecPresent } from '../../helpers/fake-airflow.js';
import { FakeDispatcher, info } from '../../helpers/schedule.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/engines/', import.meta.url));
const test = anyTest as TestFn<unknown>;

const airflow =
  airflowSpecPresent && process.env.SLUICE_PLUGIN_AIRFLOW_URL === undefined
    ? await new FakeAirflow().listen()
    : undefined;
// The example clock ticks every minute by default; five keep four days of ticks quick here.
const env = {
  SLUICE_PLUGIN_INTERVAL_CLOCK_TICK_MS: '300000',
  ...(airflow
    ? {
        SLUICE_PLUGIN_AIRFLOW_URL: airflow.url,
        SLUICE_PLUGIN_AIRFLOW_USERNAME: airflow.username,
        SLUICE_PLUGIN_AIRFLOW_PASSWORD: airflow.password,
        SLUICE_PLUGIN_AIRFLOW_CALLBACK_TOKEN: 'kit-callback-token-0123456789',
      }
    : {}),
  ...process.env,
};
const plugins = await loadPlugins({
  bundledDir: BUNDLED_PLUGINS_DIR,
  extraDirs: [EXAMPLES, ...(process.env.SLUICE_PLUGIN_PATH ?? '').split(delimiter).filter(Boolean)],
  settings: { env },
});
const hooks = new HookRunner({ timeoutMs: 10_000 });

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** Friday 2026-03-27, before Europe/Berlin springs forward (Sunday 2026-03-29 02:00 → 03:00). */
const START = Date.UTC(2026, 2, 27);
const BERLIN_MIDNIGHT_27 = Date.UTC(2026, 2, 26, 23);

/** One engine under a schedule service on a manual clock; `restart` keeps the ledger. */
async function rig(t: ExecutionContext, engine: LoadedPlugin<EnginePlugin>) {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-engine-kit-'));
  const store = await SqliteScheduleStore.open(join(dir, 'sluice.db'));
  await store.migrate();
  const clock = new ManualClock(START);
  const dispatcher = new FakeDispatcher(clock);
  const make = () =>
    new ScheduleService({
      store,
      engines: new Map([[engine.id, engine]]),
      hooks,
      clock,
      dispatcher,
      logger: silentLogger,
      owner: 'kit',
    });
  const r = {
    clock,
    dispatcher,
    store,
    /** While the service is restarted: calls from outside (the stand-in's ticks) find nobody. */
    down: false,
    service: make(),
    resolution: hooks.has(engine, 'resolutionMs') ? await hooks.call(engine, 'resolutionMs', undefined) : 0,
    async advanceTo(at: number) {
      await clock.advanceTo(at, async () => {
        for (let i = 0; i < 3; i++) {
          await new Promise((res) => setImmediate(res));
          await r.service.idle();
        }
      });
    },
    async restart(downUntil: number, whileDown?: () => Promise<void>) {
      r.down = true;
      await r.service.stop();
      await clock.advanceTo(downUntil, async () => {});
      await whileDown?.();
      r.service = make();
      r.down = false;
      await r.service.start();
    },
    fired(groupId: string) {
      return dispatcher.submitted
        .filter((s) => s.groupId === groupId)
        .map((s) => ({ start: Number(s.lowerBound), end: Number(s.upperBound), at: s.at }));
    },
  };
  if (airflow && engine.id === 'airflow') {
    // A fresh Airflow for each rig, its scheduler on this rig's clock.
    airflow.reset();
    airflow.now = () => clock.now();
    airflow.startTicking({
      now: () => clock.now(),
      scheduleAt: (at, fn) => clock.scheduleAt(at, fn),
      fireDue: (groupId, asOf) =>
        r.down ? Promise.reject(new Error('Sluice is down')) : r.service.fireDue(groupId, asOf),
    });
  }
  t.teardown(async () => {
    if (engine.id === 'airflow') airflow?.stopTicking();
    await r.service.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  await r.service.start();
  return r;
}

type Rig = Awaited<ReturnType<typeof rig>>;

/** Asserts that the group fired exactly PreviewWindows' windows due by `until`, each once, each within the resolution. */
async function firedExactlyPreview(t: ExecutionContext, r: Rig, groupId: string, until: number): Promise<void> {
  const { windows } = await r.service.preview({ groupId }, Number.NEGATIVE_INFINITY, 1000);
  const due = windows.filter((w) => w.dueTime <= until - r.resolution);
  const fired = r.fired(groupId);
  const expected = due.map((w) => [w.start, w.end]);
  t.deepEqual(
    fired.map((f) => [f.start, f.end]).slice(0, expected.length),
    expected,
    `${groupId}: the windows PreviewWindows shows, in order`,
  );
  t.is(new Set(fired.map((f) => f.start)).size, fired.length, `${groupId}: each window once`);
  t.true(
    fired.every((f) => f.start !== undefined) && fired.length <= windows.filter((w) => w.dueTime <= until).length,
    `${groupId}: nothing fired before it was due`,
  );
  for (const f of fired) {
    const w = windows.find((x) => x.start === f.start)!;
    t.true(
      f.at >= w.dueTime && f.at <= w.dueTime + r.resolution,
      `${groupId}: window ${new Date(f.start).toISOString()} fired at ${new Date(f.at).toISOString()}, due ${new Date(w.dueTime).toISOString()}, resolution ${r.resolution} ms`,
    );
  }
}

const schedules = (type: string): ScheduleInfo[] => [
  // Hourly with a delay; the end cuts the last window short.
  info('kit-hourly', {
    scheduleEngine: type,
    startTime: START,
    endTime: START + 30 * HOUR + 30 * MIN,
    delayTime: 5,
  }),
  // Cron every 6 hours in Berlin across the spring-forward night.
  info('kit-cron', {
    scheduleEngine: type,
    scheduleType: 1,
    crontabExpression: '0 0 */6 * * ?',
    timeZone: 'Europe/Berlin',
    startTime: BERLIN_MIDNIGHT_27,
    endTime: BERLIN_MIDNIGHT_27 + 4 * DAY,
  }),
  // Calendar days in Berlin: the 29th has 23 hours.
  info('kit-daily', {
    scheduleEngine: type,
    scheduleUnit: 'D',
    timeZone: 'Europe/Berlin',
    startTime: BERLIN_MIDNIGHT_27,
    endTime: BERLIN_MIDNIGHT_27 + 4 * DAY - HOUR,
  }),
  // One round.
  info('kit-once', {
    scheduleEngine: type,
    scheduleUnit: 'O',
    scheduleInterval: 0,
    startTime: START,
    endTime: START + 2 * HOUR,
  }),
];

const engines = [...plugins.engines.values()];
test('the kit found the built-in engine and the example', (t) => {
  t.true(engines.some((e) => e.id === 'builtin'));
  t.true(engines.some((e) => e.id === 'interval-clock'));
});

for (const engine of engines) {
  const declare = engine.settings?.availability.available === false ? test.skip : test.serial;
  const why =
    engine.settings?.availability.available === false ? ` (unavailable: ${engine.settings.availability.reason})` : '';

  declare(`${engine.id}: accept is case-insensitive and cheap${why}`, async (t) => {
    for (const spelling of [engine.id, engine.id.toUpperCase(), engine.id[0]!.toUpperCase() + engine.id.slice(1)])
      t.true(await hooks.call(engine, 'accept', spelling), spelling);
    t.false(await hooks.call(engine, 'accept', 'no-such-engine'));
    const started = performance.now();
    for (let i = 0; i < 2000; i++) await hooks.call(engine, 'accept', i % 2 ? engine.id : 'other');
    const perCall = (performance.now() - started) / 2000;
    t.true(perCall < 1, `accept takes ${perCall.toFixed(3)} ms per call through the hook runner (limit 1 ms)`);
  });

  declare(
    `${engine.id}: the windows it fires are PreviewWindows' windows, each once, within its resolution${why}`,
    async (t) => {
      const r = await rig(t, engine);
      for (const s of schedules(engine.id)) await r.service.register(s);
      const until = BERLIN_MIDNIGHT_27 + 4 * DAY + HOUR;
      await r.advanceTo(until);
      for (const s of schedules(engine.id)) await firedExactlyPreview(t, r, s.groupId, until);
      t.is(r.fired('kit-once').length, 1);
      t.is(r.fired('kit-daily').length, 4);
    },
  );

  declare(
    `${engine.id}: an update in place fires no window twice; unregister stops every fire and is idempotent${why}`,
    async (t) => {
      const r = await rig(t, engine);
      const first = await r.service.register(info('kit-update', { scheduleEngine: engine.id, startTime: START }));
      await r.advanceTo(START + 5 * HOUR + r.resolution);
      await r.service.update({ ...first.info, delayTime: 10, version: first.version });
      await r.advanceTo(START + 10 * HOUR + r.resolution);
      const fired = r.fired('kit-update').map((f) => f.start);
      t.is(new Set(fired).size, fired.length, 'no window twice');
      t.deepEqual(
        fired,
        Array.from({ length: fired.length }, (_, k) => START + k * HOUR),
        'no gap either',
      );
      t.true(fired.length >= 9);
      await r.service.unregister('kit-update');
      const count = r.dispatcher.submitted.length;
      await r.advanceTo(START + 2 * DAY);
      t.is(r.dispatcher.submitted.length, count, 'nothing fires after unregister');
      await t.notThrowsAsync(hooks.call(engine, 'unregister', 'kit-update'), 'unregister again is fine');
      await t.notThrowsAsync(hooks.call(engine, 'unregister', 'never-registered'));
    },
  );

  declare(
    `${engine.id}: stop/start reconciles with the store: missed windows once, a schedule deleted meanwhile never${why}`,
    async (t) => {
      const r = await rig(t, engine);
      await r.service.register(info('kit-keep', { scheduleEngine: engine.id, startTime: START }));
      const gone = await r.service.register(info('kit-gone', { scheduleEngine: engine.id, startTime: START }));
      await r.advanceTo(START + 3 * HOUR + r.resolution);
      const goneBefore = r.fired('kit-gone').length;
      // Deleted by another replica while this one is down: the engine's memory is stale, the store is right.
      await r.restart(START + 8 * HOUR, async () => {
        const current = (await r.store.getSchedule('kit-gone'))!;
        await r.store.updateSchedule({ ...current, status: 'DELETED', version: current.version + 1 }, gone.version);
      });
      await r.advanceTo(START + 10 * HOUR + r.resolution);
      const kept = r.fired('kit-keep').map((f) => (f.start - START) / HOUR);
      t.deepEqual(
        kept,
        Array.from({ length: kept.length }, (_, k) => k),
        'every window once, the missed ones included',
      );
      t.true(kept.length >= 10);
      t.is(r.fired('kit-gone').length, goneBefore, 'a schedule deleted while down never fires again');
    },
  );
}

if (airflow) {
  test.after.always(() => airflow.close());
  test.serial('airflow: every request the kit caused at the stand-in Airflow fits its OpenAPI spec', (t) => {
    t.true(airflow.ticks.length > 0, 'the stand-in ticked');
    t.deepEqual(airflow.violations, []);
  });
}

test("the example's README shows exactly the example's files", async (t) => {
  const { readFile } = await import('node:fs/promises');
  const dir = join(EXAMPLES, 'interval-clock');
  const readme = await readFile(join(dir, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```(json|js)\n([\s\S]*?)\n\s*```/g)].map((m) => [m[1], m[2]]);
  t.deepEqual(blocks, [
    ['json', (await readFile(join(dir, 'plugin.json'), 'utf8')).trimEnd()],
    ['js', (await readFile(join(dir, 'index.js'), 'utf8')).trimEnd()],
  ]);
  t.regex(readme, /^## Write an engine$/m);
});
