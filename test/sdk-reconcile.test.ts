import anyTest, { type TestFn } from 'ava';
import { type EngineContext, keepReconciling } from 'sluice/sdk';

interface Ctx {
  /** The fake engine context: a clock moved by `advance`, and the warnings logged. */
  engine: EngineContext;
  advance(ms: number): Promise<void>;
  warnings: { message: string; fields: Record<string, unknown> }[];
}

const test = anyTest as TestFn<Ctx>;

test.beforeEach((t) => {
  let now = 1_000_000;
  const timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  const warnings: Ctx['warnings'] = [];
  const engine = {
    now: () => now,
    scheduleAt(at: number, fn: () => void) {
      const timer = { at, fn, cancelled: false };
      timers.push(timer);
      return { cancel: () => void (timer.cancelled = true) };
    },
    logger: {
      debug() {},
      info() {},
      warn: (message: string, fields: Record<string, unknown> = {}) => void warnings.push({ message, fields }),
      error() {},
    },
  } as unknown as EngineContext;
  t.context = {
    engine,
    warnings,
    async advance(ms) {
      now += ms;
      for (const timer of timers.splice(0).sort((a, b) => a.at - b.at)) {
        if (timer.at > now) timers.push(timer);
        else if (!timer.cancelled) timer.fn();
      }
      // Let the attempt the timer started settle.
      for (let i = 0; i < 5; i++) await Promise.resolve();
    },
  };
});

test('a failing reconcile is retried on the engine clock until it succeeds, then stops', async (t) => {
  let calls = 0;
  const reconciling = await keepReconciling(
    t.context.engine,
    async () => {
      calls += 1;
      if (calls < 3) throw new Error(`scheduler down (${calls})`);
    },
    { name: 'stand-in', retryMs: 1000 },
  );
  t.is(calls, 1);
  t.deepEqual(
    t.context.warnings.map((w) => w.message),
    ['stand-in: reconcile at start failed; trying again'],
  );
  await t.context.advance(999);
  t.is(calls, 1, 'not before retryMs');
  await t.context.advance(1);
  t.is(calls, 2);
  await t.context.advance(1000);
  t.is(calls, 3);
  await t.context.advance(10_000);
  t.is(calls, 3, 'no attempt after one succeeded');
  t.deepEqual(
    t.context.warnings.map((w) => w.message),
    ['stand-in: reconcile at start failed; trying again', 'stand-in: reconcile again failed; trying again'],
  );
  reconciling.cancel();
});

test('cancel stops the retries of a reconcile that keeps failing', async (t) => {
  let calls = 0;
  const reconciling = await keepReconciling(
    t.context.engine,
    async () => {
      calls += 1;
      throw new Error('scheduler down');
    },
    { name: 'stand-in' },
  );
  await t.context.advance(60_000);
  t.is(calls, 2, 'the default retry is 60 s');
  reconciling.cancel();
  await t.context.advance(600_000);
  t.is(calls, 2);
});

test('a reconcile that succeeds at start schedules nothing', async (t) => {
  let calls = 0;
  await keepReconciling(t.context.engine, async () => void (calls += 1), { name: 'stand-in' });
  await t.context.advance(600_000);
  t.is(calls, 1);
  t.deepEqual(t.context.warnings, []);
});
