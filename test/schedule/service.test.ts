import anyTest, { type TestFn } from 'ava';
import { fileURLToPath } from 'node:url';
import { DAY, HOUR, T0, info, scheduleRig, type Rig } from '../helpers/schedule.js';

const test = anyTest as TestFn<{ rig: Rig }>;
// The built-in engine keeps its timers in its module: one service at a time in this process.
test.beforeEach(async (t) => {
  t.context.rig = await scheduleRig();
});
/** Jobs tests hold: a failed test's are ended before the service stops, which waits for them. */
const heldJobs: Map<string, (ok: boolean) => void>[] = [];
test.afterEach.always(async (t) => {
  for (const release of heldJobs.splice(0)) for (const end of release.values()) end(false);
  await t.context.rig?.close();
});

const codeOf = (err: unknown) => (err as { code?: string }).code;
const fieldOf = (err: unknown) => (err as { details?: { field?: string } }).details?.field;

test.serial('a year of daily windows fires every window once, in order, when it has closed', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('daily', { scheduleUnit: 'D', endTime: T0 + 365 * DAY, delayTime: 5 }));
  await rig.advanceTo(T0 + 366 * DAY);
  const rows = await rig.store.listInstances({ groupId: 'daily', limit: 1000 });
  t.is(rows.length, 365);
  t.true(
    rows.every(
      (r, k) =>
        r.windowStart === T0 + k * DAY &&
        r.windowEnd === T0 + (k + 1) * DAY &&
        r.state === 'SUCCEEDED' &&
        r.trigger === 'SCHEDULE',
    ),
  );
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => Number(s.lowerBound)),
    rows.map((r) => r.windowStart),
  );
  // Due at window end + delay (5 minutes), never before.
  t.true(rig.dispatcher.submitted.every((s) => s.at === Number(s.upperBound) + 5 * 60_000));
});

test.serial('InLong alignment fires a window at its start', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('start', { alignment: 'START', endTime: T0 + 3 * HOUR }));
  // Registering fires the window due now; its dispatch runs on after the call returns.
  await rig.service.idle();
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => [Number(s.lowerBound), s.at]),
    [[T0, T0]],
  );
  await rig.advanceTo(T0 + 2 * HOUR);
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => s.at),
    [T0, T0 + HOUR, T0 + 2 * HOUR],
  );
});

for (const [mode, fired, skipped] of [
  ['ALL', 10, 0],
  ['LATEST', 1, 9],
  ['NONE', 0, 10],
] as const) {
  test.serial(
    `catch-up ${mode}: after ten missed hourly windows, ${fired} fire and ${skipped} are skipped`,
    async (t) => {
      const { rig } = t.context;
      await rig.advanceTo(T0 + 10 * HOUR + 30 * 60_000);
      await rig.service.register(info('late', { catchUp: { mode, windowMs: 0 } }));
      await rig.service.idle();
      const rows = await rig.store.listInstances({ groupId: 'late', limit: 100 });
      t.is(rows.filter((r) => r.state === 'SUCCEEDED').length, fired);
      t.is(rows.filter((r) => r.state === 'SKIPPED').length, skipped);
      t.true(rows.filter((r) => r.state === 'SUCCEEDED').every((r) => r.trigger === 'CATCH_UP'));
      if (mode === 'LATEST') t.is(rig.dispatcher.submitted[0]!.lowerBound, String(T0 + 9 * HOUR));
      // Then it goes on on time, whatever the policy.
      await rig.advanceTo(T0 + 11 * HOUR);
      const next = await rig.store.getInstance('late', T0 + 10 * HOUR);
      t.is(next?.state, 'SUCCEEDED');
      t.is(next?.trigger, 'SCHEDULE');
    },
  );
}

test.serial(
  'catch-up NONE over 1499 missed windows records only the newest 1000 as SKIPPED (the documented cap)',
  async (t) => {
    const { rig } = t.context;
    const MINUTE = 60_000;
    await rig.advanceTo(T0 + 1500 * MINUTE + 30_000);
    await rig.service.register(
      info('many', { scheduleUnit: 'I', endTime: T0 + 2000 * MINUTE, catchUp: { mode: 'NONE', windowMs: 0 } }),
    );
    await rig.service.idle();
    const rows: { windowStart: number; state: string }[] = [];
    for (let after: { groupId: string; windowStart: number } | undefined; ;) {
      const page = await rig.store.listInstances({ groupId: 'many', limit: 1000, ...(after ? { after } : {}) });
      rows.push(...page);
      if (page.length < 1000) break;
      after = { groupId: 'many', windowStart: page[page.length - 1]!.windowStart };
    }
    // 1500 windows closed; the last one closed 30 s ago, within the 60 s grace, so it is on time and runs.
    const skipped = rows.filter((r) => r.state === 'SKIPPED');
    t.is(skipped.length, 1000);
    t.deepEqual(
      [skipped[0]!.windowStart, skipped[skipped.length - 1]!.windowStart].map((w) => (w - T0) / MINUTE),
      [499, 1498],
      'the newest 1000 of the 1499 missed: windows 499 to 1498; older ones have no row',
    );
    t.deepEqual(
      rows.filter((r) => r.state !== 'SKIPPED').map((r) => [(r.windowStart - T0) / MINUTE, r.state]),
      [[1499, 'SUCCEEDED']],
    );
    t.is(rows.length, 1001);
    t.deepEqual(
      rig.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / MINUTE),
      [1499],
    );
    // The cap is on the rows, not on the schedule: it goes on at the next edge.
    await rig.advanceTo(T0 + 1501 * MINUTE);
    t.deepEqual(
      rig.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / MINUTE),
      [1499, 1500],
    );
  },
);

test.serial('catch-up ALL is bounded by its window: older missed windows are skipped', async (t) => {
  const { rig } = t.context;
  await rig.advanceTo(T0 + 10 * HOUR);
  await rig.service.register(info('bounded', { catchUp: { mode: 'ALL', windowMs: 3 * HOUR } }));
  await rig.service.idle();
  const rows = await rig.store.listInstances({ groupId: 'bounded', limit: 100 });
  t.deepEqual(
    rows.filter((r) => r.state === 'SUCCEEDED').map((r) => (r.windowStart - T0) / HOUR),
    [6, 7, 8, 9],
  );
  t.is(rows.filter((r) => r.state === 'SKIPPED').length, 6);
});

/** Polls (on the service's own turns, not a fixed sleep) until `check` holds. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Jobs the fake operator holds until the test ends them. */
function holdJobs(rig: Rig): Map<string, (ok: boolean) => void> {
  const release = new Map<string, (ok: boolean) => void>();
  heldJobs.push(release);
  rig.dispatcher.outcome = (jobId) =>
    new Promise((resolve) => release.set(jobId, (ok) => resolve({ succeeded: ok, ...(ok ? {} : { error: 'boom' }) })));
  return release;
}

const lowerHours = (rig: Rig) => rig.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / HOUR);

/** selfDepend 1 over three due windows: the first succeeds, the second fails. Returns the held jobs. */
async function failedChain(rig: Rig, groupId: string): Promise<Map<string, (ok: boolean) => void>> {
  const release = holdJobs(rig);
  await rig.advanceTo(T0 + 3 * HOUR);
  await rig.service.register(info(groupId, { selfDepend: 1 }));
  await until('job-1 runs', () => release.has('job-1'));
  release.get('job-1')!(true);
  await until('job-2 runs', () => release.has('job-2'));
  release.get('job-2')!(false);
  // Nothing is held now (window 2 is blocked), so idle() returns once the failure is recorded.
  await rig.service.idle();
  return release;
}

test.serial('selfDepend 1: a window waits for the previous one to succeed; a failure stops the chain', async (t) => {
  const { rig } = t.context;
  const release = holdJobs(rig);
  await rig.advanceTo(T0 + 3 * HOUR);
  await rig.service.register(info('chain', { selfDepend: 1 }));
  await until('job-1 runs', () => release.has('job-1'));
  t.deepEqual(lowerHours(rig), [0], 'only the first of three due windows runs');
  t.deepEqual(
    (await rig.store.listInstances({ groupId: 'chain', limit: 10 })).map((r) => (r.windowStart - T0) / HOUR),
    [0],
    'the others are not even claimed while it runs',
  );
  release.get('job-1')!(true);
  await until('job-2 runs', () => release.has('job-2'));
  t.deepEqual(lowerHours(rig), [0, 1]);
  release.get('job-2')!(false);
  await rig.service.idle();
  t.is(rig.dispatcher.submitted.length, 2, 'the failed window blocks the next');
  t.is((await rig.store.getInstance('chain', T0 + HOUR))?.state, 'FAILED');
  await rig.advanceTo(T0 + 4 * HOUR);
  t.deepEqual(lowerHours(rig), [0, 1], 'and keeps blocking as more windows fall due');
});

test.serial('selfDepend 1: a rerun of the failed window that succeeds unblocks the chain', async (t) => {
  const { rig } = t.context;
  const release = await failedChain(rig, 'rerun-chain');
  const rerun = await rig.service.trigger('rerun-chain', T0 + HOUR, true);
  t.is(rerun.attempt, 2);
  await until('the rerun runs', () => release.has('job-3'));
  release.get('job-3')!(true);
  await until('window 2 runs', () => release.has('job-4'));
  t.deepEqual(lowerHours(rig), [0, 1, 1, 2]);
  release.get('job-4')!(true);
  await rig.service.idle();
  t.deepEqual(
    (await rig.store.listInstances({ groupId: 'rerun-chain', limit: 10 })).map((r) => r.state),
    ['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED'],
  );
});

test.serial('selfDepend 1: a backfill (mode FAILED) that re-runs the failure unblocks the chain', async (t) => {
  const { rig } = t.context;
  const release = await failedChain(rig, 'backfill-chain');
  const run = await rig.service.backfill({
    groupId: 'backfill-chain',
    fromTime: T0,
    toTime: T0 + 2 * HOUR, // up to the failed window: the one after it is the chain's to fire
    mode: 'FAILED',
    maxParallel: 1,
    reverse: false,
    dryRun: false,
  });
  t.deepEqual(
    run.windows.map((w) => (w.start - T0) / HOUR),
    [1],
  );
  await until('the backfill runs', () => release.has('job-3'));
  release.get('job-3')!(true);
  await until('window 2 runs', () => release.has('job-4'));
  t.deepEqual(lowerHours(rig), [0, 1, 1, 2]);
  release.get('job-4')!(true);
  await rig.service.idle();
  t.deepEqual(
    (await rig.store.listInstances({ groupId: 'backfill-chain', limit: 10 })).map((r) => [r.state, r.trigger]),
    [
      ['SUCCEEDED', 'CATCH_UP'],
      ['SUCCEEDED', 'BACKFILL'],
      ['SUCCEEDED', 'SCHEDULE'],
    ],
  );
});

test.serial('selfDepend 2: at most taskParallelism windows run at once', async (t) => {
  const { rig } = t.context;
  const release = holdJobs(rig);
  let active = 0;
  let most = 0;
  const held = rig.dispatcher.outcome;
  rig.dispatcher.outcome = (jobId) => {
    active++;
    most = Math.max(most, active);
    return held(jobId).finally(() => active--);
  };
  await rig.advanceTo(T0 + 5 * HOUR);
  await rig.service.register(info('par', { selfDepend: 2, taskParallelism: 2 }));
  await until('two jobs run', () => release.has('job-2'));
  t.deepEqual(lowerHours(rig), [0, 1]);
  release.get('job-1')!(true);
  await until('a third starts when one ends', () => release.has('job-3'));
  t.deepEqual(lowerHours(rig), [0, 1, 2]);
  for (let n = 2; n <= 5; n++) {
    await until(`job-${n} runs`, () => release.has(`job-${n}`));
    release.get(`job-${n}`)!(true);
  }
  await rig.service.idle();
  t.deepEqual(lowerHours(rig), [0, 1, 2, 3, 4]);
  t.is(most, 2, 'never more than two at once');
});

test.serial('after a restart, missed windows are fired once each (catch-up ALL)', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('restart'));
  await rig.advanceTo(T0 + 3 * HOUR);
  await rig.service.stop();
  await rig.clock.advanceTo(T0 + 8 * HOUR); // down: nothing runs
  await rig.restart();
  await rig.advanceTo(T0 + 9 * HOUR);
  const rows = await rig.store.listInstances({ groupId: 'restart', limit: 100 });
  t.deepEqual(
    rows.map((r) => (r.windowStart - T0) / HOUR),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / HOUR),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
});

test.serial('trigger fires one window now, once; rerun runs it again; a non-edge is refused', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('manual', { startTime: T0 + DAY }));
  const first = await rig.service.trigger('manual', T0 + DAY + 5 * HOUR, false);
  await rig.service.idle();
  t.is(first.trigger, 'MANUAL');
  const again = await rig.service.trigger('manual', T0 + DAY + 5 * HOUR, false);
  t.is(again.instanceId, first.instanceId);
  t.is(rig.dispatcher.submitted.length, 1);
  const rerun = await rig.service.trigger('manual', T0 + DAY + 5 * HOUR, true);
  await rig.service.idle();
  t.is(rerun.attempt, 2);
  t.deepEqual(
    rig.dispatcher.submitted.map((s) => s.rerun),
    [false, true],
  );
  const err = await t.throwsAsync(rig.service.trigger('manual', T0 + DAY + 5 * HOUR + 1, false));
  t.is(codeOf(err), 'INVALID_ARGUMENT');
  t.is(fieldOf(err), 'window_start');
});

test.serial(
  'backfill: a dry run lists the FAILED or ALL windows (reversed too) and runs nothing; FAILED re-runs the failure',
  async (t) => {
    const { rig } = t.context;
    rig.dispatcher.outcome = async (jobId) => ({ succeeded: jobId !== 'job-3' });
    await rig.service.register(info('bf'));
    await rig.advanceTo(T0 + 5 * HOUR);
    t.is((await rig.store.getInstance('bf', T0 + 2 * HOUR))?.state, 'FAILED');
    const dry = await rig.service.backfill({
      groupId: 'bf',
      fromTime: T0,
      toTime: T0 + 5 * HOUR,
      mode: 'FAILED',
      maxParallel: 2,
      reverse: false,
      dryRun: true,
    });
    t.deepEqual(
      dry.windows.map((w) => (w.start - T0) / HOUR),
      [2],
    );
    t.deepEqual(dry.instances, []);
    t.is(rig.dispatcher.submitted.length, 5, 'the dry run submitted nothing');
    const all = await rig.service.backfill({
      groupId: 'bf',
      fromTime: T0,
      toTime: T0 + 5 * HOUR,
      mode: 'ALL',
      maxParallel: 2,
      reverse: true,
      dryRun: true,
    });
    t.deepEqual(
      all.windows.map((w) => (w.start - T0) / HOUR),
      [4, 3, 2, 1, 0],
    );
    const run = await rig.service.backfill({
      groupId: 'bf',
      fromTime: T0,
      toTime: T0 + 5 * HOUR,
      mode: 'FAILED',
      maxParallel: 2,
      reverse: false,
      dryRun: false,
    });
    await rig.service.idle();
    t.is(run.instances[0]!.attempt, 2);
    t.is((await rig.store.getInstance('bf', T0 + 2 * HOUR))?.state, 'SUCCEEDED');
    const missing = await rig.service.backfill({
      groupId: 'bf',
      fromTime: T0,
      toTime: T0 + 5 * HOUR,
      mode: 'MISSING',
      maxParallel: 1,
      reverse: false,
      dryRun: true,
    });
    t.deepEqual(missing.windows, [], 'no window is missing');
  },
);

test.serial('backfill MISSING runs exactly the skipped windows, at most maxParallel at once', async (t) => {
  const { rig } = t.context;
  await rig.advanceTo(T0 + 6 * HOUR);
  // Catch-up LATEST: window 5 fires, windows 0-4 are recorded SKIPPED (the gaps MISSING fills).
  await rig.service.register(info('gap', { catchUp: { mode: 'LATEST', windowMs: 0 } }));
  await rig.service.idle();
  const states = async () =>
    (await rig.store.listInstances({ groupId: 'gap', limit: 100 })).map((r) => [(r.windowStart - T0) / HOUR, r.state]);
  t.deepEqual(await states(), [
    [0, 'SKIPPED'],
    [1, 'SKIPPED'],
    [2, 'SKIPPED'],
    [3, 'SKIPPED'],
    [4, 'SKIPPED'],
    [5, 'SUCCEEDED'],
  ]);
  const before = rig.dispatcher.submitted.length;
  // Each job is held until a second one runs beside it (or it is the last): with maxParallel 2 the
  // most running at once is then exactly 2, whatever the machine's speed. Were the backfill serial,
  // the fallback releases it after 5 s and the count shows 1.
  let active = 0;
  let most = 0;
  const held: (() => void)[] = [];
  const releaseAll = () => {
    for (const release of held.splice(0)) release();
  };
  rig.dispatcher.outcome = () =>
    new Promise((resolve) => {
      active++;
      most = Math.max(most, active);
      held.push(() => {
        active--;
        resolve({ succeeded: true });
      });
      if (held.length === 2 || rig.dispatcher.submitted.length - before === 5) releaseAll();
      else setTimeout(releaseAll, 5000).unref();
    });
  const run = await rig.service.backfill({
    groupId: 'gap',
    fromTime: T0,
    toTime: T0 + 6 * HOUR,
    mode: 'MISSING',
    maxParallel: 2,
    reverse: false,
    dryRun: false,
  });
  t.is(run.windows.length, 5);
  await rig.service.idle();
  t.is(most, 2, 'two windows ran at once, never more');
  t.deepEqual(
    rig.dispatcher.submitted
      .slice(before)
      .map((s) => (Number(s.lowerBound) - T0) / HOUR)
      .sort(),
    [0, 1, 2, 3, 4],
    'each skipped window once; the window that had run is left alone',
  );
  t.deepEqual(await states(), [
    [0, 'SUCCEEDED'],
    [1, 'SUCCEEDED'],
    [2, 'SUCCEEDED'],
    [3, 'SUCCEEDED'],
    [4, 'SUCCEEDED'],
    [5, 'SUCCEEDED'],
  ]);
  const triggers = (await rig.store.listInstances({ groupId: 'gap', limit: 100 })).map((r) => r.trigger);
  t.deepEqual(triggers, ['BACKFILL', 'BACKFILL', 'BACKFILL', 'BACKFILL', 'BACKFILL', 'SCHEDULE']);
  const again = await rig.service.backfill({
    groupId: 'gap',
    fromTime: T0,
    toTime: T0 + 6 * HOUR,
    mode: 'MISSING',
    maxParallel: 2,
    reverse: false,
    dryRun: true,
  });
  t.deepEqual(again.windows, [], 'nothing is missing any more');
});

test.serial('pause stops firing; resume fires what fell due meanwhile by the catch-up policy', async (t) => {
  const { rig } = t.context;
  const s = await rig.service.register(info('paused', { catchUp: { mode: 'LATEST', windowMs: 0 } }));
  t.is(s.status, 'REGISTERED');
  await rig.advanceTo(T0 + 2 * HOUR);
  await rig.service.pause('paused');
  await rig.advanceTo(T0 + 6 * HOUR);
  t.is(rig.dispatcher.submitted.length, 2);
  const resumed = await rig.service.resume('paused');
  t.is(resumed.status, 'REGISTERED');
  await rig.advanceTo(T0 + 6 * HOUR + 1);
  t.deepEqual(
    rig.dispatcher.submitted.map((x) => (Number(x.lowerBound) - T0) / HOUR),
    [0, 1, 5],
  );
  const err = await t.throwsAsync(rig.service.resume('paused'));
  t.is(codeOf(err), 'FAILED_PRECONDITION');
});

test.serial('update changes the schedule in place; unregister stops it for good', async (t) => {
  const { rig } = t.context;
  const s = await rig.service.register(info('upd'));
  await rig.advanceTo(T0 + 2 * HOUR);
  const stale = await t.throwsAsync(rig.service.update({ ...s.info, version: s.version - 1, scheduleInterval: 2 }));
  t.is(codeOf(stale), 'VERSION_CONFLICT');
  const updated = await rig.service.update({ ...s.info, version: s.version, scheduleUnit: 'D', scheduleInterval: 1 });
  t.is(updated.status, 'UPDATED');
  t.is(updated.version, s.version + 1);
  await rig.advanceTo(T0 + 2 * DAY);
  const starts = rig.dispatcher.submitted.map((x) => (Number(x.lowerBound) - T0) / HOUR);
  t.deepEqual(starts, [0, 1, 24], 'the hourly windows already fired stay; daily windows from the next edge after them');
  await rig.service.unregister('upd');
  await rig.advanceTo(T0 + 5 * DAY);
  t.is(rig.dispatcher.submitted.length, 3);
  t.is(codeOf(await t.throwsAsync(rig.service.get('upd'))), 'NOT_FOUND');
});

test.serial('changing schedule_engine unregisters from the old engine and registers with the new one', async (t) => {
  await t.context.rig.close();
  const rig = (t.context.rig = await scheduleRig(T0, [
    fileURLToPath(new URL('../fixtures/plugins/good/', import.meta.url)),
  ]));
  const s = await rig.service.register(info('moving'));
  t.is(s.engineId, 'builtin');
  await rig.advanceTo(T0 + 2 * HOUR);
  t.deepEqual(lowerHours(rig), [0, 1], 'the built-in engine fires it');
  // The fixture engine 'plain-engine' accepts schedule_engine 'plain' and fires nothing on its own.
  const moved = await rig.service.update({ ...s.info, version: s.version, scheduleEngine: 'plain' });
  t.is(moved.engineId, 'plain-engine');
  await rig.advanceTo(T0 + 6 * HOUR);
  t.deepEqual(lowerHours(rig), [0, 1], 'the built-in engine no longer fires it');
  const back = await rig.service.update({ ...moved.info, version: moved.version, scheduleEngine: '' });
  t.is(back.engineId, 'builtin');
  await rig.advanceTo(T0 + 7 * HOUR);
  t.deepEqual(lowerHours(rig), [0, 1, 2, 3, 4, 5, 6], 'registered again, it catches up what fell due meanwhile');
});

test.serial(
  "each schedule_engine value is offered to the engines' accept once; availability is checked every time",
  async (t) => {
    const { rig } = t.context;
    const accepts: string[] = [];
    const call = rig.hooks.call.bind(rig.hooks);
    (rig.hooks as { call: typeof call }).call = ((loaded, hook, input, options) => {
      if (hook === 'accept') accepts.push(`${loaded.id}:${String(input)}`);
      return call(loaded, hook, input, options);
    }) as typeof call;
    // '' is the built-in engine's default name, `builtin`.
    await rig.service.register(info('e1'));
    t.true(accepts.includes('builtin:builtin'), 'the first registration asks the engines');
    const asked = accepts.length;
    await rig.service.register(info('e2'));
    await rig.service.register(info('e3', { scheduleEngine: 'builtin' }));
    t.is(accepts.length, asked, 'the same value is not asked again');
    for (const groupId of ['e4', 'e5']) {
      const s = await rig.service.register(info(groupId, { scheduleEngine: 'Quartz' }));
      t.is(s.engineId, 'builtin');
    }
    t.is(accepts.filter((a) => a === 'builtin:Quartz').length, 1, 'another spelling is asked once');
    // No Airflow URL in the rig: the Airflow engine accepts the type but is unavailable, at every registration.
    for (const groupId of ['a1', 'a2']) {
      const err = await t.throwsAsync(rig.service.register(info(groupId, { scheduleEngine: 'airflow' })));
      t.is(codeOf(err), 'FAILED_PRECONDITION');
      t.regex(err!.message, /engine plugin 'airflow' accepts schedule_engine 'airflow' but is unavailable/);
    }
    t.is(accepts.filter((a) => a.endsWith(':airflow')).length, 1, 'asked once, though refused twice');
    // A value no engine accepts is asked again (nothing is kept for it), and refused every time.
    for (let i = 0; i < 2; i++)
      t.is(
        codeOf(await t.throwsAsync(rig.service.register(info('x', { scheduleEngine: 'oozie' })))),
        'FAILED_PRECONDITION',
      );
    t.true(accepts.filter((a) => a.endsWith(':oozie')).length >= 2);
  },
);

test.serial('registration errors: ALREADY_EXISTS, an engine nobody accepts, and bad fields', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('dup'));
  t.is(codeOf(await t.throwsAsync(rig.service.register(info('dup')))), 'ALREADY_EXISTS');
  const noEngine = await t.throwsAsync(rig.service.register(info('eng', { scheduleEngine: 'oozie' })));
  t.is(codeOf(noEngine), 'FAILED_PRECONDITION');
  t.regex(noEngine!.message, /no engine plugin accepts schedule_engine 'oozie' \(engines loaded: .*builtin.*\)/);
  for (const [change, field] of [
    [{ groupId: '' }, 'group_id'],
    [{ scheduleUnit: 'X' }, 'schedule_unit'],
    [{ scheduleInterval: 0 }, 'schedule_interval'],
    [{ scheduleType: 1, crontabExpression: 'every day' }, 'crontab_expression'],
    [{ endTime: T0 }, 'end_time'],
    [{ timeZone: 'Europe/Atlantis' }, 'time_zone'],
    [{ delayTime: -1 }, 'delay_time'],
    [{ selfDepend: 3 }, 'self_depend'],
    [{ selfDepend: 2, taskParallelism: 0 }, 'task_parallelism'],
    [{ catchUp: { mode: 'ALL' as const, windowMs: -5 } }, 'catch_up.window_ms'],
  ] as const) {
    const err = await t.throwsAsync(rig.service.register(info('bad', change)));
    t.is(codeOf(err), 'INVALID_ARGUMENT', JSON.stringify(change));
    t.is(fieldOf(err), field);
  }
});

const YEAR = 365 * DAY;
const SECOND = 1000;

test.serial('backfill up to a far to_time ends: windows that have not closed end the scan', async (t) => {
  const { rig } = t.context;
  // One-second windows for a century: the range to to_time holds about 3e9 windows, only an hour of them closed.
  await rig.service.register(info('far', { scheduleUnit: 'S', endTime: T0 + 100 * YEAR }));
  await rig.service.pause('far'); // nothing fires: the clock only moves "now"
  await rig.advanceTo(T0 + HOUR);
  const dry = await rig.service.backfill({
    groupId: 'far',
    fromTime: T0,
    toTime: T0 + 100 * YEAR,
    mode: 'ALL',
    maxParallel: 1,
    reverse: false,
    dryRun: true,
  });
  t.is(dry.windows.length, HOUR / SECOND);
  t.is(dry.windows.at(-1)!.end, T0 + HOUR);
});

test.serial('backfill over more closed windows than its limit is refused, naming to_time', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('wide', { scheduleUnit: 'S', endTime: T0 + 100 * YEAR }));
  await rig.service.pause('wide'); // nothing fires: the clock only moves "now"
  await rig.advanceTo(T0 + 2 * DAY); // 172,800 closed one-second windows
  const err = await t.throwsAsync(
    rig.service.backfill({
      groupId: 'wide',
      fromTime: T0,
      toTime: T0 + 2 * DAY,
      mode: 'ALL',
      maxParallel: 1,
      reverse: false,
      dryRun: true,
    }),
  );
  t.is(codeOf(err), 'INVALID_ARGUMENT');
  t.is(fieldOf(err), 'to_time');
});

test.serial('backfill stops scanning when its caller gives up', async (t) => {
  const { rig } = t.context;
  await rig.service.register(info('gone', { scheduleUnit: 'S', endTime: T0 + 100 * YEAR }));
  await rig.service.pause('gone'); // nothing fires: the clock only moves "now"
  await rig.advanceTo(T0 + DAY);
  const controller = new AbortController();
  controller.abort(new Error('caller left'));
  const err = await t.throwsAsync(
    rig.service.backfill({
      groupId: 'gone',
      fromTime: T0,
      toTime: T0 + DAY,
      mode: 'ALL',
      maxParallel: 1,
      reverse: false,
      dryRun: true,
      signal: controller.signal,
    }),
  );
  t.is(err?.message, 'caller left');
});

for (const [zone, expr, from, ends] of [
  // Lord Howe skips 02:00-02:30 on 2026-10-04: 02:20 fires moved to 02:50, and 02:40, which exists, fires too.
  [
    'Australia/Lord_Howe',
    '20,40 2 * * *',
    '2026-10-03T12:00:00+10:30',
    [
      '2026-10-04T02:40:00+11:00',
      '2026-10-04T02:50:00+11:00',
      '2026-10-05T02:20:00+11:00',
      '2026-10-05T02:40:00+11:00',
    ],
  ],
  // Chatham skips 02:45-03:45 on 2026-09-27: 03:00 fires at 04:00, after 03:50.
  [
    'Pacific/Chatham',
    '0,50 3 * * *',
    '2026-09-26T12:00:00+12:45',
    [
      '2026-09-27T03:50:00+13:45',
      '2026-09-27T04:00:00+13:45',
      '2026-09-28T03:00:00+13:45',
      '2026-09-28T03:50:00+13:45',
    ],
  ],
] as const) {
  test.serial(`a gap that does not start on the hour loses no fire: ${expr} in ${zone}`, async (t) => {
    const rig = await scheduleRig(Date.parse(from));
    try {
      const startTime = Date.parse(from);
      const endTime = Date.parse(ends[3]) + HOUR;
      await rig.service.register(
        info('gap', { scheduleType: 1, crontabExpression: expr, timeZone: zone, startTime, endTime }),
      );
      await rig.advanceTo(endTime + HOUR);
      const rows = await rig.store.listInstances({ groupId: 'gap', limit: 100 });
      t.deepEqual(
        rows.slice(0, 4).map((r) => r.windowEnd),
        ends.map((e) => Date.parse(e)),
      );
      t.true(rows.every((r) => r.state === 'SUCCEEDED'));
    } finally {
      await rig.close();
    }
  });
}

test.serial('RegisterSchedule is one store write: the row goes in REGISTERED', async (t) => {
  const { rig } = t.context;
  const writes: string[] = [];
  const store = rig.store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of ['insertSchedule', 'updateSchedule'] as const) {
    const original = store[name]!.bind(rig.store);
    store[name] = (...args: unknown[]) => {
      writes.push(name);
      return original(...args);
    };
  }
  const registered = await rig.service.register(info('one-write'));
  t.deepEqual(writes, ['insertSchedule']);
  t.is(registered.status, 'REGISTERED');
  const row = await rig.store.getSchedule('one-write');
  t.is(row?.status, 'REGISTERED');
  t.is(row?.version, 2);
});

test.serial(
  "a new group's first FireDue with nothing due claims nothing; one with a due window claims it",
  async (t) => {
    const { rig } = t.context;
    const claims: string[] = [];
    const store = rig.store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const original = store.claimInstances!.bind(rig.store);
    store.claimInstances = (rows: unknown) => {
      claims.push(...(rows as { groupId: string }[]).map((r) => r.groupId));
      return original(rows);
    };
    await rig.service.register(info('later', { startTime: T0 + HOUR }));
    await rig.service.idle();
    t.deepEqual(claims, [], 'nothing due: no claim');
    t.deepEqual(rig.dispatcher.submitted, []);
    await rig.advanceTo(T0 + 2 * HOUR + 60_000);
    t.deepEqual(
      rig.dispatcher.submitted.map((s) => Number(s.lowerBound)),
      [T0 + HOUR],
      'armed at the next due time it answered',
    );
    claims.length = 0;
    await rig.service.register(info('due', { startTime: T0 }));
    await rig.service.idle();
    t.deepEqual(claims, ['due', 'due'], 'the windows due at registration are claimed at once');
  },
);

test.serial(
  "RegisterSchedule reads nothing back for a new group; a group registered again reads its ledger's latest window",
  async (t) => {
    const { rig } = t.context;
    const reads: string[] = [];
    const store = rig.store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    for (const name of [
      'getSchedule',
      'getSchedules',
      'schedulesWithLast',
      'lastInstances',
      'listInstances',
    ] as const) {
      const original = store[name]!.bind(rig.store);
      store[name] = (...args: unknown[]) => {
        reads.push(name);
        return original(...args);
      };
    }
    const windows = async () =>
      (await rig.store.listInstances({ groupId: 'again', limit: 10 })).map((r) => r.windowStart);
    // Nothing due yet: the engine's first FireDue plans from the row just written and arms the timer.
    await rig.service.register(info('again', { selfDepend: 1 }));
    await rig.service.idle();
    t.deepEqual(reads, [], 'a new group: the row just written, and no window in the ledger');
    await rig.advanceTo(T0 + 2 * HOUR + 60_000);
    t.deepEqual(await windows(), [T0, T0 + HOUR], 'the timer armed from that plan fires');

    await rig.service.unregister('again');
    await rig.advanceTo(T0 + 3 * HOUR + 60_000);
    reads.length = 0;
    await rig.service.register(info('again', { selfDepend: 1 }));
    await rig.service.idle();
    t.true(reads.includes('schedulesWithLast'), 'the DELETED row was replaced: its windows are still in the ledger');
    t.deepEqual(
      await windows(),
      [T0, T0 + HOUR, T0 + 2 * HOUR],
      'the watermark is the ledger: the next window fires, none fires again',
    );
  },
);
