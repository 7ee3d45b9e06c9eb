/**
 * The built-in engine's timers, on a fake engine context: schedules due at one instant share one timer and
 * one fireDueMany call; each is armed again from its own answer; without fireDueMany (an older host) it
 * falls back to one fireDue per group.
 */
import test from 'ava';
import type { EngineContext, EnginePlugin, FireDueManyOutcome, FireDueOutcome, HookContext } from 'sluice/sdk';
import { silentLogger } from '../../services/core/logger.js';
import builtin from '../../plugins/engines/builtin/index.js';
import { info } from '../helpers/schedule.js';

interface Rig {
  readonly ctx: EngineContext;
  /** fireDue and fireDueMany calls, in order, by the groups each asked for. */
  readonly calls: { readonly many: boolean; readonly groups: readonly string[] }[];
  /** Timers asked for, by instant (cancelled ones too). */
  readonly armed: number[];
  /** What a fire of the group answers next (default: nothing more due). */
  readonly answers: Map<string, FireDueOutcome | Error>;
  /** prepareDue calls (when the context has it), in order. */
  readonly prepared: { readonly groups: readonly string[]; readonly at: number; readonly now: number }[];
  /** Moves the clock to `t`, running the timers due by then, and lets the fires settle. */
  advanceTo(t: number): Promise<void>;
}

/** Called as the host calls it, through the plugin interface. */
const plugin: EnginePlugin = builtin;

const hookCtx: HookContext = {
  signal: new AbortController().signal,
  logger: silentLogger,
  pluginId: 'builtin',
  settings: {},
};

function rig(withMany: boolean, withPrepare = false): Rig {
  let now = 0;
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  const calls: Rig['calls'] = [];
  const armed: number[] = [];
  const prepared: Rig['prepared'] = [];
  const answers = new Map<string, FireDueOutcome | Error>();
  const answer = (g: string) => answers.get(g) ?? { instances: [] };
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const ctx: EngineContext = {
    ...hookCtx,
    now: () => now,
    scheduleAt(at, fn) {
      armed.push(at);
      const timer = { at, fn, live: true };
      timers.push(timer);
      return { cancel: () => void (timer.live = false) };
    },
    fireDue(groupId) {
      calls.push({ many: false, groups: [groupId] });
      const a = answer(groupId);
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    },
    ...(withMany
      ? {
          fireDueMany(groupIds: readonly string[]) {
            calls.push({ many: true, groups: [...groupIds] });
            return Promise.resolve(
              groupIds.map((groupId): FireDueManyOutcome => {
                const a = answer(groupId);
                return a instanceof Error ? { groupId, ok: false, error: a } : { groupId, ok: true, outcome: a };
              }),
            );
          },
        }
      : {}),
    ...(withPrepare
      ? {
          prepareDue(groupIds: readonly string[], at: number) {
            prepared.push({ groups: [...groupIds], at, now });
          },
        }
      : {}),
    listSchedules: () => Promise.resolve([]),
    listPaused: () => Promise.resolve([]),
    onWake() {},
    coveringCron: () => {
      throw new Error('not used');
    },
    submitOfflineJob: () => Promise.resolve({ jobIds: [] }),
  };
  return {
    ctx,
    calls,
    armed,
    prepared,
    answers,
    async advanceTo(t) {
      now = t;
      for (const timer of timers.filter((x) => x.live && x.at <= t).sort((a, b) => a.at - b.at)) {
        timer.live = false;
        timer.fn();
      }
      await settle();
    },
  };
}

test.serial('schedules due at one instant share one timer and one fireDueMany call', async (t) => {
  const r = rig(true);
  await plugin.start!(r.ctx);
  t.teardown(() => plugin.stop!(hookCtx));
  const groups = ['a', 'b', 'c', 'd'];
  for (const g of groups) r.answers.set(g, { instances: [], nextDueTime: 1000 });
  for (const g of groups) plugin.register(info(g), hookCtx);
  await r.advanceTo(0);
  t.deepEqual(
    r.calls,
    groups.map((g) => ({ many: false, groups: [g] })),
    'a registered schedule is asked about at once, on its own',
  );
  t.deepEqual(r.armed, [1000], 'one timer for the four schedules due at 1000');

  // At 1000: one call for all four; each is armed again from its own answer.
  r.calls.length = 0;
  r.answers.set('a', { instances: [], nextDueTime: 2000 });
  r.answers.set('b', new Error('claim refused'));
  r.answers.set('c', { instances: [] });
  r.answers.set('d', { instances: [], nextDueTime: 2000 });
  plugin.unregister('d', hookCtx);
  await r.advanceTo(1000);
  t.deepEqual(r.calls, [{ many: true, groups: ['a', 'b', 'c'] }], 'an unregistered schedule is not fired');
  t.deepEqual(r.armed.slice(1), [2000, 6000], 'a at its next due time, b retried 5 s later, c (ended) not at all');

  r.calls.length = 0;
  r.answers.set('a', { instances: [] });
  r.answers.set('b', { instances: [] });
  await r.advanceTo(2000);
  t.deepEqual(r.calls, [{ many: false, groups: ['a'] }], 'alone at its instant: one fireDue');
  await r.advanceTo(6000);
  t.deepEqual(r.calls.slice(1), [{ many: false, groups: ['b'] }], 'the failed one is fired again');
});

test.serial('without fireDueMany on the context, each schedule due is one fireDue call', async (t) => {
  const r = rig(false);
  await plugin.start!(r.ctx);
  t.teardown(() => plugin.stop!(hookCtx));
  for (const g of ['x', 'y']) {
    r.answers.set(g, { instances: [], nextDueTime: 500 });
    plugin.register(info(g), hookCtx);
  }
  await r.advanceTo(0);
  r.calls.length = 0;
  r.answers.clear();
  await r.advanceTo(500);
  t.deepEqual(r.calls, [
    { many: false, groups: ['x'] },
    { many: false, groups: ['y'] },
  ]);
});

test.serial('a timer whose schedules were all unregistered is cancelled', async (t) => {
  const r = rig(true);
  await plugin.start!(r.ctx);
  t.teardown(() => plugin.stop!(hookCtx));
  r.answers.set('p', { instances: [], nextDueTime: 700 });
  r.answers.set('q', { instances: [], nextDueTime: 700 });
  plugin.register(info('p'), hookCtx);
  plugin.register(info('q'), hookCtx);
  await r.advanceTo(0);
  r.calls.length = 0;
  plugin.unregister('p', hookCtx);
  plugin.unregister('q', hookCtx);
  await r.advanceTo(700);
  t.deepEqual(r.calls, [], 'nothing fires');
});

test.serial('an instant shared by 32 schedules or more has its fire planned a second ahead (prepareDue)', async (t) => {
  const r = rig(true, true);
  await plugin.start!(r.ctx);
  t.teardown(() => plugin.stop!(hookCtx));
  const many = Array.from({ length: 32 }, (_, i) => `m-${String(i).padStart(2, '0')}`);
  const few = Array.from({ length: 31 }, (_, i) => `f-${String(i).padStart(2, '0')}`);
  for (const g of many) r.answers.set(g, { instances: [], nextDueTime: 10_000 });
  for (const g of few) r.answers.set(g, { instances: [], nextDueTime: 20_000 });
  for (const g of [...many, ...few]) plugin.register(info(g), hookCtx);
  await r.advanceTo(0);
  t.deepEqual(r.prepared, [], 'nothing yet');
  await r.advanceTo(8_999);
  t.deepEqual(r.prepared, []);
  await r.advanceTo(9_000);
  t.deepEqual(r.prepared, [{ groups: many, at: 10_000, now: 9_000 }], 'the 32 due at 10 s, planned at 9 s');
  r.calls.length = 0;
  for (const g of many) r.answers.set(g, { instances: [] });
  await r.advanceTo(10_000);
  t.deepEqual(r.calls, [{ many: true, groups: many }], 'then fired as before, in one call');
  await r.advanceTo(20_000);
  t.is(r.prepared.length, 1, '31 schedules sharing an instant are read when due');

  // One leaving before the planning time: not asked for. All leaving: the planning timer goes too.
  const later = Array.from({ length: 33 }, (_, i) => `l-${String(i).padStart(2, '0')}`);
  for (const g of later) {
    r.answers.set(g, { instances: [], nextDueTime: 40_000 });
    plugin.register(info(g), hookCtx);
  }
  await r.advanceTo(20_001);
  plugin.unregister('l-00', hookCtx);
  await r.advanceTo(39_000);
  t.deepEqual(r.prepared[1], { groups: later.slice(1), at: 40_000, now: 39_000 });
  for (const g of later) {
    r.answers.set(g, { instances: [], nextDueTime: 60_000 });
    plugin.update(info(g), hookCtx);
  }
  await r.advanceTo(39_001);
  for (const g of later) plugin.unregister(g, hookCtx);
  await r.advanceTo(60_000);
  t.is(r.prepared.length, 2, 'no planning for an instant nobody waits for any more');
});

test.serial('on a host without prepareDue, or with less than a second left, nothing is planned ahead', async (t) => {
  const r = rig(true, false);
  await plugin.start!(r.ctx);
  t.teardown(() => plugin.stop!(hookCtx));
  const groups = Array.from({ length: 40 }, (_, i) => `g-${i}`);
  for (const g of groups) r.answers.set(g, { instances: [], nextDueTime: 5_000 });
  for (const g of groups) plugin.register(info(g), hookCtx);
  await r.advanceTo(0);
  t.deepEqual(r.armed, [5_000], 'only the fire timer');

  const p = rig(true, true);
  await plugin.stop!(hookCtx);
  await plugin.start!(p.ctx);
  for (const g of groups) p.answers.set(g, { instances: [], nextDueTime: 500 });
  for (const g of groups) plugin.register(info(g), hookCtx);
  await p.advanceTo(0);
  t.deepEqual(p.armed, [500], 'due in 500 ms: no time to plan ahead');
  await p.advanceTo(500);
  t.deepEqual(p.prepared, []);
});
