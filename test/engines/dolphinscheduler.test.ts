/**
 * The DolphinScheduler engine against the stand-in of test/helpers/fake-dolphinscheduler.ts, for 3.2
 * and 3.3. Not run against a real DolphinScheduler here (see docs/engines/dolphinscheduler.md).
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import type { EngineContext, HookContext, ScheduleInfo } from 'sluice/sdk';
import { isSluiceError } from 'sluice/sdk';
import plugin from '../../plugins/engines/dolphinscheduler/index.js';
import { silentLogger } from '../../services/core/logger.js';
import { ManualClock } from '../../services/schedule/domain/clock.js';
import { coveringCron } from '../../services/schedule/domain/covering-cron.js';
import { nextFireTime, parseCron } from '../../services/schedule/domain/cron.js';
import { firingRules, normalizeInfo } from '../../services/schedule/domain/info.js';
import { dueTime } from '../../services/schedule/domain/plan.js';
import { windowsAfter } from '../../services/schedule/domain/windows.js';
import { type DsVersion, FakeDolphinScheduler } from '../helpers/fake-dolphinscheduler.js';
import { info } from '../helpers/schedule.js';

const test = anyTest as TestFn<{ ds: FakeDolphinScheduler }>;
const CALLBACK = 'sluice-callback-token-0123';
const PUBLIC = 'http://sluice.example:8080';
process.env.SLUICE_PUBLIC_HTTP_URL = PUBLIC;

test.afterEach.always(async (t) => {
  await plugin.stop?.();
  await t.context.ds?.close();
});

function hookCtx(ds: FakeDolphinScheduler, extra: Record<string, unknown> = {}): HookContext {
  return {
    signal: new AbortController().signal,
    logger: silentLogger,
    pluginId: 'dolphinscheduler',
    settings: { url: ds.url, token: ds.token, project: 'sluice', version: 'auto', callbackToken: CALLBACK, ...extra },
  };
}
/** The wake listener the engine subscribed last. */
let wake: ((groupId: string) => void) | undefined;
function engineCtx(
  ds: FakeDolphinScheduler,
  live: ScheduleInfo[],
  clock?: ManualClock,
  paused: ScheduleInfo[] = [],
): EngineContext {
  return {
    ...hookCtx(ds),
    now: () => clock?.now() ?? Date.now(),
    scheduleAt: (at, fn) => clock?.scheduleAt(at, fn) ?? { cancel() {} },
    fireDue: () => Promise.resolve({ instances: [] }),
    listSchedules: () => Promise.resolve(live),
    listPaused: () => Promise.resolve(paused),
    coveringCron,
    onWake(listener) {
      wake = listener;
    },
    submitOfflineJob: () => Promise.resolve({ jobIds: [] }),
  };
}

async function started(
  t: ExecutionContext<{ ds: FakeDolphinScheduler }>,
  version: DsVersion,
  live: ScheduleInfo[] = [],
) {
  const ds = await new FakeDolphinScheduler(version).listen();
  t.context.ds = ds;
  await plugin.start!(engineCtx(ds, live));
  return { ds, ctx: hookCtx(ds) };
}

const sluiceWorkflows = (ds: FakeDolphinScheduler) =>
  [...ds.workflows.values()].filter((w) => w.name.startsWith('sluice__'));

test('accepts DolphinScheduler in any case, and nothing else', (t) => {
  for (const s of ['dolphinscheduler', 'DolphinScheduler', 'DOLPHINSCHEDULER']) t.true(plugin.accept(s), s);
  for (const s of ['builtin', 'Airflow', 'dolphin', '']) t.false(plugin.accept(s), s);
  t.is(plugin.resolutionMs!(), 1000);
});

for (const version of ['3.2', '3.3'] as const) {
  test.serial(
    `${version}: register makes one workflow with one HTTP task calling FireDue, on the covering Quartz cron`,
    async (t) => {
      const { ds, ctx } = await started(t, version);
      t.deepEqual(
        [...ds.projects.values()].map((p) => p.name),
        ['sluice'],
        'the project is created when missing',
      );
      const s = info('g1', {
        scheduleEngine: 'DolphinScheduler',
        scheduleUnit: 'D',
        timeZone: 'Europe/Berlin',
        startTime: Date.UTC(2026, 0, 1, 1, 30),
        // The last window ends on the grid (02:30 in Berlin): no off-grid due time.
        endTime: Date.UTC(2026, 11, 31, 1, 30),
      });
      await plugin.register(s, ctx);
      const wf = ds.workflowNamed('sluice__g1')!;
      t.is(wf.releaseState, 'ONLINE');
      t.is(wf.tasks.length, 1);
      const task = wf.tasks[0] as {
        taskType: string;
        failRetryTimes: number;
        failRetryInterval: number;
        taskParams: Record<string, unknown>;
      };
      t.is(task.taskType, 'HTTP');
      t.true(task.failRetryTimes > 0 && task.failRetryInterval > 0, 'the task retries');
      t.like(task.taskParams, {
        url: `${PUBLIC}/sluice/v1/groups/g1/fire-due`,
        httpMethod: 'POST',
        httpBody: '{"asOf": $[timestamp(yyyyMMddHHmmss)]000}',
      });
      t.deepEqual(task.taskParams.httpParams, [
        { prop: 'Authorization', httpParametersType: 'HEADERS', value: `Bearer ${CALLBACK}` },
      ]);
      const sched = ds.scheduleOf(wf.code)!;
      t.like(sched, {
        releaseState: 'ONLINE',
        // 02:30 does not exist on 2026-03-29 (the window is due at 03:30) and Quartz fires no trigger at a
        // nonexistent wall time: the cron holds 03:30 as well.
        crontab: '0 30 2,3 * * ? 2026',
        timezoneId: 'Europe/Berlin',
        startTime: '2026-01-01 01:30:00',
        endTime: '2027-01-01 01:30:00',
      });
      t.deepEqual(ds.violations, []);
      t.true(
        ds.calls.every((c) => c.code === 0 || c.path.startsWith('/projects/0/')),
        'every call but the version probe succeeds',
      );
      const defs = version === '3.3' ? 'workflow-definition' : 'process-definition';
      t.true(
        ds.calls.some((c) => c.path.includes(`/${defs}`)),
        `speaks ${version}'s ${defs}`,
      );
      t.deepEqual(await plugin.about!(ctx), { remote: `DolphinScheduler ${version}` });
    },
  );

  test.serial(
    `${version}: update keeps the workflow, task and schedule; unregister deletes only that workflow; stop deletes nothing`,
    async (t) => {
      const { ds, ctx } = await started(t, version);
      const s = info('g1', {
        scheduleEngine: 'DolphinScheduler',
        startTime: Date.UTC(2026, 0, 1),
        endTime: Date.UTC(2027, 0, 1),
      });
      await plugin.register(s, ctx);
      await plugin.register(info('g2', { scheduleEngine: 'DolphinScheduler' }), ctx);
      const before = ds.workflowNamed('sluice__g1')!;
      const taskCode = before.tasks[0]!.code;
      const scheduleId = ds.scheduleOf(before.code)!.id;
      await plugin.update({ ...s, scheduleUnit: 'I', scheduleInterval: 15, version: 2 }, ctx);
      const after = ds.workflowNamed('sluice__g1')!;
      t.is(after.code, before.code, 'same workflow code');
      t.is(after.tasks[0]!.code, taskCode, 'same task code');
      t.is(after.version, 2);
      t.like(ds.scheduleOf(after.code), {
        id: scheduleId,
        crontab: '0 0/15 * * * ? *',
        timezoneId: 'UTC',
        releaseState: 'ONLINE',
      });
      t.is(after.releaseState, 'ONLINE');
      t.is(ds.schedules.size, 2);

      await plugin.unregister('g1', ctx);
      t.deepEqual(
        sluiceWorkflows(ds).map((w) => w.name),
        ['sluice__g2'],
      );
      t.is(ds.schedules.size, 1);
      await t.notThrowsAsync(Promise.resolve(plugin.unregister('g1', ctx)), 'unregister again is fine');

      await plugin.stop!();
      t.deepEqual(
        sluiceWorkflows(ds).map((w) => w.name),
        ['sluice__g2'],
        'stop deletes nothing',
      );
      t.is(ds.projects.size, 1);
      t.deepEqual(ds.violations, []);
    },
  );

  test.serial(
    `${version}: start reconciles: the missing created, unknown sluice__ workflows removed, others left alone`,
    async (t) => {
      const { ds, ctx } = await started(t, version);
      await plugin.register(info('stale', { scheduleEngine: 'DolphinScheduler' }), ctx);
      await plugin.register(info('kept', { scheduleEngine: 'DolphinScheduler' }), ctx);
      // Someone else's workflow in the same project.
      const pc = [...ds.projects.keys()][0]!;
      ds.workflows.set(1, {
        code: 1,
        name: 'nightly-report',
        projectCode: pc,
        releaseState: 'ONLINE',
        tasks: [],
        relations: [],
        version: 1,
      });
      await plugin.stop!();
      await plugin.start!(
        engineCtx(ds, [
          info('kept', { scheduleEngine: 'DolphinScheduler' }),
          info('new', { scheduleEngine: 'DolphinScheduler' }),
        ]),
      );
      t.deepEqual(
        sluiceWorkflows(ds)
          .map((w) => w.name)
          .sort(),
        ['sluice__kept', 'sluice__new'],
      );
      t.truthy(ds.workflows.get(1), 'a workflow not named sluice__ is left alone');
      t.is(ds.schedules.size, 2);
      t.true([...ds.schedules.values()].every((s) => s.releaseState === 'ONLINE'));
    },
  );

  test.serial(
    `${version}: pause takes the schedule and workflow offline, resume brings them online, codes kept`,
    async (t) => {
      const { ds, ctx } = await started(t, version);
      const g = info('g1', { scheduleEngine: 'DolphinScheduler' });
      await plugin.register(g, ctx);
      const wf = ds.workflowNamed('sluice__g1')!;
      const scheduleId = ds.scheduleOf(wf.code)!.id;
      await plugin.pause!('g1', ctx);
      t.is(ds.workflowNamed('sluice__g1')?.releaseState, 'OFFLINE');
      t.is(ds.scheduleOf(wf.code)?.releaseState, 'OFFLINE');
      const calls = ds.calls.length;
      await plugin.pause!('g1', ctx);
      t.false(
        ds.calls.slice(calls).some((c) => c.method !== 'GET'),
        'pausing a paused group changes nothing',
      );
      await plugin.pause!('unknown', ctx);
      await plugin.resume!(g, ctx);
      const back = ds.workflowNamed('sluice__g1')!;
      t.is(back.code, wf.code, 'the same workflow');
      t.is(back.releaseState, 'ONLINE');
      t.is(ds.scheduleOf(wf.code)?.id, scheduleId, 'the same schedule');
      t.is(ds.scheduleOf(wf.code)?.releaseState, 'ONLINE');
      t.is(sluiceWorkflows(ds).length, 1);
      t.deepEqual(ds.violations, []);
    },
  );

  test.serial(`${version}: a restart while paused keeps the workflow, offline; resume brings it online`, async (t) => {
    const { ds, ctx } = await started(t, version);
    const g = info('paused', { scheduleEngine: 'DolphinScheduler' });
    const lost = info('lost', { scheduleEngine: 'DolphinScheduler' });
    await plugin.register(g, ctx);
    await plugin.pause!('paused', ctx);
    const code = ds.workflowNamed('sluice__paused')!.code;
    await plugin.stop!();
    // Restarted while paused (and with a paused group whose workflow DolphinScheduler lost).
    await plugin.start!(engineCtx(ds, [], undefined, [g, lost]));
    t.deepEqual(
      sluiceWorkflows(ds)
        .map((w) => [w.name, w.releaseState])
        .sort(),
      [
        ['sluice__lost', 'OFFLINE'],
        ['sluice__paused', 'OFFLINE'],
      ],
    );
    t.is(ds.workflowNamed('sluice__paused')?.code, code, 'kept, not re-created');
    t.true([...ds.schedules.values()].every((s) => s.releaseState === 'OFFLINE'));
    await plugin.resume!(g, ctx);
    t.is(ds.scheduleOf(code)?.releaseState, 'ONLINE');
    t.deepEqual(ds.violations, []);
  });

  test.serial(`${version}: a refusal or an outage during pause is a clear error`, async (t) => {
    const { ds, ctx } = await started(t, version);
    await plugin.register(info('g1', { scheduleEngine: 'DolphinScheduler' }), ctx);
    ds.refuse = {
      match: /^POST \/projects\/\d+\/schedules\/\d+\/offline$/,
      code: 10022,
      msg: 'set schedule offline error',
    };
    const refused = await t.throwsAsync(Promise.resolve(plugin.pause!('g1', ctx)));
    t.true(isSluiceError(refused) && refused.code === 'FAILED_PRECONDITION', String(refused));
    t.regex(refused!.message, /set schedule offline error \(code 10022\)/);
    ds.refuse = undefined;
    ds.down = true;
    const down = await t.throwsAsync(Promise.resolve(plugin.pause!('g1', ctx)));
    t.true(isSluiceError(down) && down.code === 'UNAVAILABLE', String(down));
    ds.down = false;
    t.is(ds.workflowNamed('sluice__g1')?.releaseState, 'ONLINE', 'still online: nothing half-paused');
  });

  test.serial(`${version}: a wake for a live group whose workflow was lost puts it back online`, async (t) => {
    const live = [info('woken', { scheduleEngine: 'DolphinScheduler' })];
    const ds = await new FakeDolphinScheduler(version).listen();
    t.context.ds = ds;
    await plugin.start!(engineCtx(ds, live));
    const ctx = hookCtx(ds);
    await plugin.unregister('woken', ctx);
    t.deepEqual(sluiceWorkflows(ds), [], 'lost');
    wake!('woken');
    for (
      let i = 0;
      i < 50 && ds.scheduleOf(ds.workflowNamed('sluice__woken')?.code ?? -1)?.releaseState !== 'ONLINE';
      i++
    )
      await new Promise((r) => setTimeout(r, 20));
    t.is(ds.workflowNamed('sluice__woken')?.releaseState, 'ONLINE');
    const calls = ds.calls.length;
    wake!('woken');
    await new Promise((r) => setTimeout(r, 200));
    t.false(
      ds.calls.slice(calls).some((c) => c.method !== 'GET'),
      'a wake for a group already online changes nothing',
    );
  });

  test.serial(
    `${version}: refusing is FAILED_PRECONDITION with its msg, down is UNAVAILABLE, nothing half-registered`,
    async (t) => {
      const { ds, ctx } = await started(t, version);
      ds.refuse = { match: /^POST \/projects\/\d+\/schedules$/, code: 10017, msg: 'tenant default not exists' };
      const refused = await t.throwsAsync(
        Promise.resolve(plugin.register(info('g1', { scheduleEngine: 'DolphinScheduler' }), ctx)),
      );
      t.true(isSluiceError(refused) && refused.code === 'FAILED_PRECONDITION', String(refused));
      t.regex(refused!.message, /tenant default not exists \(code 10017\)/);
      t.deepEqual(sluiceWorkflows(ds), [], 'the workflow created before the refusal is gone');
      ds.refuse = undefined;
      ds.down = true;
      const down = await t.throwsAsync(
        Promise.resolve(plugin.register(info('g1', { scheduleEngine: 'DolphinScheduler' }), ctx)),
      );
      t.true(isSluiceError(down) && down.code === 'UNAVAILABLE', String(down));
      await t.throwsAsync(Promise.resolve(plugin.about!(ctx)), { message: /cannot be reached/ });
      ds.down = false;
      const badToken = await t.throwsAsync(
        Promise.resolve(
          plugin.register(
            info('g1', { scheduleEngine: 'DolphinScheduler' }),
            hookCtx(ds, { token: 'wrong-token-0123456789' }),
          ),
        ),
      );
      t.true(isSluiceError(badToken) && badToken.code === 'FAILED_PRECONDITION');
      t.notRegex(badToken!.message, /wrong-token/, 'no secret in the message');
    },
  );

  test.serial(
    `${version}: ticks of the schedule run the HTTP task within [due, due + 1 s) of every PreviewWindows due time, with that as_of`,
    async (t) => {
      const { ds, ctx } = await started(t, version);
      const schedules = [
        info('hourly', {
          scheduleEngine: 'DolphinScheduler',
          startTime: Date.UTC(2026, 2, 27, 0, 0, 0, 250),
          endTime: Date.UTC(2026, 3, 2),
          delayTime: 5,
        }),
        info('berlin', {
          scheduleEngine: 'DolphinScheduler',
          scheduleUnit: 'D',
          timeZone: 'Europe/Berlin',
          startTime: Date.UTC(2026, 2, 26, 1, 30),
          endTime: Date.UTC(2026, 3, 2),
        }),
        info('cron', {
          scheduleEngine: 'DolphinScheduler',
          scheduleType: 1,
          crontabExpression: '0 0 */6 * * ?',
          timeZone: 'America/New_York',
          startTime: Date.UTC(2026, 2, 6),
          endTime: Date.UTC(2026, 2, 12),
        }),
        info('once', {
          scheduleEngine: 'DolphinScheduler',
          scheduleUnit: 'O',
          scheduleInterval: 0,
          startTime: Date.UTC(2026, 2, 27),
          endTime: Date.UTC(2026, 2, 28, 6, 30, 15),
        }),
      ];
      for (const s of schedules) await plugin.register(s, ctx);
      const clock = new ManualClock(Date.UTC(2026, 2, 1));
      const asOfs = new Map<string, number[]>();
      ds.attach(clock, async (r) => {
        const group = /\/groups\/([^/]+)\/fire-due$/.exec(r.url)![1]!;
        t.is(r.method, 'POST');
        t.is(r.headers.authorization, `Bearer ${CALLBACK}`);
        const asOf = (JSON.parse(r.body) as { asOf: number | string }).asOf;
        t.is(typeof asOf, version === '3.3' ? 'string' : 'number', 'as DolphinScheduler sends it');
        t.is(Number(asOf), r.at, 'as_of is the tick');
        asOfs.set(group, [...(asOfs.get(group) ?? []), Number(asOf)]);
      });
      await clock.advanceTo(Date.UTC(2026, 3, 3));
      for (const s of schedules) {
        const rules = firingRules(normalizeInfo(s));
        const ticks = asOfs.get(s.groupId) ?? [];
        for (const w of windowsAfter(rules.spec)) {
          const due = dueTime(rules, w);
          t.true(
            ticks.some((x) => x >= due && x < due + 1000),
            `${s.groupId}: due ${new Date(due).toISOString()} has a tick`,
          );
        }
      }
      t.is(asOfs.get('once')?.length, 1, 'one round: one tick');
      t.deepEqual(ds.violations, []);
    },
  );
}

test.serial('every generated cron has a fixed seconds field and ticks within [due, due + 1 s)', (t) => {
  const cases: Partial<ScheduleInfo>[] = [
    { scheduleUnit: 'I', scheduleInterval: 15 },
    { scheduleUnit: 'H', scheduleInterval: 3, startTime: Date.UTC(2026, 0, 1, 0, 0, 7, 1) },
    { scheduleUnit: 'D', scheduleInterval: 2, timeZone: 'Australia/Lord_Howe' },
    { scheduleUnit: 'W', scheduleInterval: 1, timeZone: 'America/New_York', delayTime: 30 },
    { scheduleUnit: 'M', scheduleInterval: 1, startTime: Date.UTC(2026, 0, 31, 22) },
    { scheduleUnit: 'Y', scheduleInterval: 1, alignment: 'START' },
    { scheduleType: 1, crontabExpression: '*/5 9-17 * * 1-5', timeZone: 'Europe/Berlin' },
  ];
  for (const c of cases) {
    const s = info('g', { startTime: Date.UTC(2026, 0, 1), endTime: Date.UTC(2030, 0, 1), ...c });
    const cc = coveringCron(s, 'quartz');
    t.regex(cc.expression.split(' ')[0]!, /^\d+(,\d+)*$/, `${cc.expression}: fixed seconds`);
    t.is(cc.expression.split(' ').length, 7);
    t.is(cc.resolutionMs, 1000);
    // Quartz's ticks, by Sluice's evaluator in the cron's zone: one in [due, due + 1 s) of each due time.
    const cron = parseCron(cc.expression);
    const rules = firingRules(normalizeInfo(s));
    let n = 0;
    for (const w of windowsAfter(rules.spec)) {
      if (n++ > 3000) break;
      const due = dueTime(rules, w);
      const tick = nextFireTime(cron, due - 1, cc.timeZone, due + 1000);
      t.true(tick !== undefined && tick < due + 1000, `${cc.expression}: due ${new Date(due).toISOString()}`);
    }
  }
});

test.serial('without a URL the engine is unavailable, not a problem', async (t) => {
  const { loadPlugins } = await import('../../services/host/loader.js');
  const { BUNDLED_PLUGINS_DIR } = await import('../../services/core/paths.js');
  const set = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR, extraDirs: [], settings: { env: {} } });
  const ds = set.engines.get('dolphinscheduler')!;
  t.truthy(ds);
  t.false(ds.settings?.availability.available);
  t.regex(ds.settings?.availability.reason ?? '', /SLUICE_PLUGIN_DOLPHINSCHEDULER_URL/);
  t.false(set.problems.some((p) => p.path.includes('dolphinscheduler')));
});
