import anyTest, { type TestFn } from 'ava';
import type { HookContext } from 'sluice/sdk';
import { HookRunner } from '../services/host/hook-runner.js';
import type { LoadedPlugin } from '../services/host/loader.js';

interface Probe {
  seen?: HookContext;
  wait(input: { ms: number }, ctx: HookContext): Promise<string>;
  start(ctx: HookContext & { submit?: () => string }): string;
  mutate(input: { list: number[] }): void;
  late(ctx: HookContext): Promise<string>;
}

const test = anyTest as TestFn<{ runner: HookRunner; loaded: LoadedPlugin<Probe> }>;

test.beforeEach((t) => {
  const plugin: Probe = {
    wait: ({ ms }, ctx) =>
      new Promise((resolve, reject) => {
        plugin.seen = ctx;
        const timer = setTimeout(() => resolve('done'), ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(new Error('aborted'));
        });
      }),
    start(ctx) {
      plugin.seen = ctx;
      return ctx.submit?.() ?? 'no submit';
    },
    mutate(input) {
      input.list.push(4);
    },
    // Keeps the context and reads its signal only later (after a timeout, the signal is made then).
    late(ctx) {
      plugin.seen = ctx;
      return new Promise(() => {});
    },
  };
  t.context = {
    runner: new HookRunner({ timeoutMs: 200, hookTimeoutsMs: { start: 50 } }),
    loaded: {
      id: 'probe',
      kind: 'engine',
      manifest: { id: 'probe', kind: 'engine', apiVersion: 1, version: '1.0.0', description: 'probe' },
      dir: '/x',
      entry: '/x/index.js',
      plugin,
    },
  };
});

test('a hook that outlives its timeout is PLUGIN_TIMEOUT and sees its signal aborted', async (t) => {
  const err = await t.throwsAsync(t.context.runner.call(t.context.loaded, 'wait', { ms: 5000 }));
  t.is((err as unknown as { code: string }).code, 'PLUGIN_TIMEOUT');
  t.is(err?.message, "plugin 'probe' hook 'wait' did not finish within 200 ms");
  t.true(t.context.loaded.plugin.seen?.signal.aborted);
});

test('a hook that reads its signal only after its timeout sees it aborted with the timeout', async (t) => {
  const err = await t.throwsAsync(t.context.runner.call(t.context.loaded, 'late', undefined, { timeoutMs: 50 }));
  t.is((err as unknown as { code: string }).code, 'PLUGIN_TIMEOUT');
  const signal = t.context.loaded.plugin.seen!.signal;
  t.true(signal.aborted);
  t.is((signal.reason as Error).message, 'hook timeout');
  t.is(t.context.loaded.plugin.seen!.signal, signal, 'one signal per call, however often it is read');
  t.true('signal' in { ...t.context.loaded.plugin.seen! }, 'a copy of the context keeps it');
});

test('per-call timeout overrides the default', async (t) => {
  t.is(await t.context.runner.call(t.context.loaded, 'wait', { ms: 300 }, { timeoutMs: 1000 }), 'done');
});

test("the caller's signal cancels the hook", async (t) => {
  const controller = new AbortController();
  const pending = t.context.runner.call(
    t.context.loaded,
    'wait',
    { ms: 10_000 },
    { signal: controller.signal, timeoutMs: 20_000 },
  );
  controller.abort(new Error('job cancelled'));
  const started = Date.now();
  const err = await t.throwsAsync(pending);
  t.is(err?.message, 'job cancelled');
  // At once, not when the 10-s hook ends (the margin is for a loaded machine).
  t.true(Date.now() - started < 5_000);
});

test('hooks without input get the context, with extra fields, as their only argument', async (t) => {
  const result = await t.context.runner.call(t.context.loaded, 'start', undefined, {
    context: { submit: () => 'submitted' },
  });
  t.is(result, 'submitted');
  t.is(t.context.loaded.plugin.seen?.pluginId, 'probe');
  t.false(t.context.loaded.plugin.seen?.signal.aborted);
});

test("inputs are frozen copies: a plugin cannot change the caller's data", async (t) => {
  const input = { list: [1, 2, 3] };
  const err = await t.throwsAsync(t.context.runner.call(t.context.loaded, 'mutate', input));
  t.is((err as unknown as { code: string; details: { hook: string } }).details.hook, 'mutate');
  t.deepEqual(input.list, [1, 2, 3]);
  t.false(Object.isFrozen(input));
});

test('calling a hook the plugin lacks is FAILED_PRECONDITION', async (t) => {
  const err = await t.throwsAsync(
    t.context.runner.call(t.context.loaded as LoadedPlugin<Probe & { stop?: () => void }>, 'stop', undefined),
  );
  t.is((err as unknown as { code: string }).code, 'FAILED_PRECONDITION');
});
