/**
 * One fire-lag run of the schedule benchmark, in a fresh process so that its memory figures are clean.
 * bench/schedule.ts starts it as
 *
 *   node --expose-gc --conditions=development --import tsx bench/schedule-child.ts '<ChildArgs as JSON>'
 *
 * Harnesses (ChildArgs.mode):
 * - `sluice`: a real ScheduleService on the real clock (systemClock: chained setTimeout timers), the bundled
 *   built-in engine and a SQLite store in a temp folder, with an in-process dispatcher that records
 *   Date.now() - due at submit (END alignment, delay 0: due = the window's end = upperBound).
 * - `sluice-settimeout` (diagnostic): the same, but on a Clock whose scheduleAt is a plain setTimeout.
 * - `timers`: the reference, one plain setTimeout per schedule, re-armed every window, same due times.
 *
 * Schedule i (i < n) has windows of `windowMs` (unit S) starting at tFirst - windowMs + offset(i), with
 * offset(i) = floor(i * windowMs / n) (0 for a burst), so its due times are tFirst + offset(i) +
 * k * windowMs: n / windowMs fires per ms, spread evenly. tFirst = (start of the setup) + leadMs, so that
 * (when leadMs covers the setup) nothing is due while setting up; when the setup overran it, the backlog
 * is worked off first. Lags are kept for due times in [measureFrom, measureFrom + measureMs), measureFrom
 * being tFirst or one second after the setup (and any backlog), whichever is later (a burst: tFirst).
 * Prints one JSON line (a ChildResult) on stdout.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import type { ScheduleInfo } from 'sluice/sdk';
import type { Clock } from '../services/schedule/domain/clock.js';
import type { Dispatcher } from '../services/schedule/domain/service.js';

export interface ChildArgs {
  readonly mode: 'sluice' | 'sluice-settimeout' | 'timers';
  /**
   * How the sluice harnesses create the schedules: `register` = ScheduleService.register one by one
   * (the RegisterSchedule use case, service already started); `start` = rows inserted into the store
   * as REGISTERED, then ScheduleService.start(), which arms every firing schedule (a restart).
   */
  readonly setup: 'register' | 'start';
  readonly n: number;
  /** Window length, whole seconds. */
  readonly windowMs: number;
  readonly measureMs: number;
  readonly leadMs: number;
  /** Time ScheduleService.stop() (it disarms every schedule) at the end. */
  readonly timeStop: boolean;
  /** Every schedule due at the same instants (offset 0), as hourly schedules are on the hour. */
  readonly burst?: boolean;
  /** The store the sluice harnesses use: SQLite in a temp folder (default), or a PostgreSQL schema of its own at this URL. */
  readonly postgresUrl?: string;
}

export interface ChildResult {
  readonly args: ChildArgs;
  /** Creating and arming all n schedules (see ChildArgs.setup), or arming all n timers. */
  readonly setupMs: number;
  /** The longest the event loop was blocked during the setup (ms): no timer fires, no gRPC call is served meanwhile. */
  readonly setupLoopMaxMs: number;
  /** setup `start` only: the part spent inserting the rows (the rest is ScheduleService.start()). */
  readonly insertMs: number;
  /** Windows that came due before setup ended (leadMs too short); they fire after it and are not among the lags. */
  readonly overdueAtSetupEnd: number;
  /** The wait for that backlog to be worked off before measuring (0 when there was none). */
  readonly drainMs: number;
  /** RSS and V8 heap used before creating the schedules and after (each after a full GC). */
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly heapBefore: number;
  readonly heapAfter: number;
  /** Due times in the measured span, and how many of them fired before the run ended. */
  readonly expected: number;
  readonly fired: number;
  /** Lags (ms) of the windows due in the measured span, sorted. */
  readonly lags: number[];
  /** The worst lags with their due time relative to measureFrom (ms), to tell a stall from a backlog. */
  readonly worst: { readonly at: number; readonly lag: number }[];
  /** Event-loop delay from the start of the measured span until its last window fired (ms). */
  readonly loopP50: number;
  readonly loopP99: number;
  readonly loopMax: number;
  /** Garbage collections during the measured span: count, total and longest pause (ms). */
  readonly gcCount: number;
  readonly gcTotalMs: number;
  readonly gcMaxMs: number;
  /** CPU time of the process (user + system) from the start of the measured span until its last window fired, ms. */
  readonly cpuMs: number;
  readonly wallMs: number;
  /** ScheduleService.stop() / clearing every timer, when timed; -1 otherwise. */
  readonly stopMs: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
const { mode, setup, n, windowMs, measureMs, leadMs } = args;
if (
  !(n > 0 && windowMs >= 1000 && windowMs % 1000 === 0 && measureMs > 0 && leadMs >= 0) ||
  typeof globalThis.gc !== 'function'
) {
  throw new Error(
    `usage: node --expose-gc --conditions=development --import tsx bench/schedule-child.ts '<ChildArgs JSON>' (got ${process.argv[2]})`,
  );
}
const gc = globalThis.gc;

async function settleMemory(): Promise<{ rss: number; heap: number }> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
const offset = (i: number) => (args.burst ? 0 : Math.floor((i * windowMs) / n));

/** Every (due time, lag) observed, in two flat arrays; filtered to the measured span at the end. */
const dues: number[] = [];
const lagsSeen: number[] = [];
const record = (due: number) => {
  dues.push(due);
  lagsSeen.push(Date.now() - due);
};

/** The longest gap between ticks of a 10 ms interval: how long the event loop could not turn. */
const stall = {
  last: performance.now(),
  max: 0,
  tick() {
    const t = performance.now();
    this.max = Math.max(this.max, t - this.last - 10);
    this.last = t;
  },
  /** Starts over (after letting the interval tick once). */
  async reset() {
    await new Promise((r) => setTimeout(r, 15));
    this.max = 0;
  },
};

interface Harness {
  /** Creates and arms the n schedules; schedule i is first due at tFirst + offset(i). */
  setup(tFirst: number): Promise<{ insertMs: number }>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

/** setTimeout as a Clock (re-checked on firing, and chained past setTimeout's 24.8-day limit). */
const timeoutClock: Clock = {
  now: () => Date.now(),
  scheduleAt(at, fn) {
    if (at <= Date.now()) {
      const i = setImmediate(fn);
      return { cancel: () => clearImmediate(i) };
    }
    let t: NodeJS.Timeout;
    const tick = () => {
      const left = at - Date.now();
      if (left > 0) t = setTimeout(tick, Math.min(left, 2 ** 31 - 1));
      else fn();
    };
    t = setTimeout(tick, Math.min(at - Date.now(), 2 ** 31 - 1));
    return { cancel: () => clearTimeout(t) };
  },
};

async function sluiceHarness(clockKind: 'system' | 'settimeout'): Promise<Harness> {
  const [
    { silentLogger },
    { BUNDLED_PLUGINS_DIR },
    { HookRunner },
    { loadPlugins },
    { ScheduleService },
    { SqliteStore },
    { PostgresStore },
    { systemClock },
  ] = await Promise.all([
    import('../services/core/logger.js'),
    import('../services/core/paths.js'),
    import('../services/host/hook-runner.js'),
    import('../services/host/loader.js'),
    import('../services/schedule/domain/service.js'),
    import('../services/store/sqlite.js'),
    import('../services/store/postgres.js'),
    import('../services/schedule/system-clock.js'),
  ]);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-schedule-'));
  const pgSchema = `sluice_bench_sched_${process.pid}_${Date.now().toString(36)}`;
  const store = args.postgresUrl
    ? await PostgresStore.open(args.postgresUrl, { schema: pgSchema })
    : await SqliteStore.open(join(dir, 'sluice.db'));
  await store.migrate();
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  if (!plugins.engines.has('builtin'))
    throw new Error(`the built-in engine did not load: ${JSON.stringify(plugins.problems)}`);
  let jobs = 0;
  const dispatcher: Dispatcher = {
    async submit(request) {
      record(Number(request.upperBound));
      return [`job-${++jobs}`];
    },
    async follow(_jobIds, onRunning) {
      onRunning();
      return { succeeded: true };
    },
  };
  const clock = clockKind === 'system' ? systemClock : timeoutClock;
  const service = new ScheduleService({
    store,
    engines: plugins.engines,
    hooks: new HookRunner({ timeoutMs: 10_000 }),
    clock,
    dispatcher,
    logger: silentLogger,
    owner: 'bench',
  });
  // `register` needs a started service; `start` starts it once the rows are in.
  if (setup === 'register') await service.start();
  const info = (i: number, tFirst: number): ScheduleInfo => {
    const startTime = tFirst + offset(i) - windowMs;
    return {
      groupId: `bench-${String(i).padStart(7, '0')}`,
      scheduleType: 0,
      scheduleUnit: 'S',
      scheduleInterval: windowMs / 1000,
      startTime,
      endTime: startTime + 86_400_000,
      delayTime: 0,
      selfDepend: 0,
      taskParallelism: 1,
      crontabExpression: '',
      scheduleEngine: 'builtin',
      version: 0,
      timeZone: 'UTC',
      catchUp: { mode: 'ALL', windowMs: 0 },
      alignment: 'END',
    };
  };
  return {
    async setup(tFirst) {
      if (setup === 'register') {
        for (let i = 0; i < n; i++) await service.register(info(i, tFirst));
        return { insertMs: 0 };
      }
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const now = Date.now();
        const s = info(i, tFirst);
        await store.insertSchedule({
          groupId: s.groupId,
          info: s,
          status: 'REGISTERED',
          engineId: 'builtin',
          version: 2,
          createdAt: now,
          updatedAt: now,
        });
      }
      const insertMs = performance.now() - t0;
      // The inserts above are the harness's own loop: time the stall of start() alone.
      await stall.reset();
      await service.start();
      return { insertMs };
    },
    stop: () => service.stop(),
    async close() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
      if (args.postgresUrl) {
        const { default: pg } = await import('pg');
        const admin = new pg.Client({ connectionString: args.postgresUrl });
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`).finally(() => admin.end());
      }
    },
  };
}

function timersHarness(): Harness {
  const timers: NodeJS.Timeout[] = [];
  const arm = (i: number, due: number): void => {
    timers[i] = setTimeout(() => {
      record(due);
      arm(i, due + windowMs);
    }, due - Date.now());
  };
  return {
    async setup(tFirst) {
      for (let i = 0; i < n; i++) arm(i, tFirst + offset(i));
      return { insertMs: 0 };
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
    },
    async close() {},
  };
}

async function main(): Promise<ChildResult> {
  const harness =
    mode === 'timers' ? timersHarness() : await sluiceHarness(mode === 'sluice' ? 'system' : 'settimeout');
  const before = await settleMemory();

  const t0 = Date.now();
  const tFirst = t0 + leadMs;
  /** How many due times fall before t: tFirst + offset(i) + k * windowMs < t. */
  const dueBefore = (t: number) => {
    let count = 0;
    for (let i = 0; i < n; i++) {
      const first = tFirst + offset(i);
      if (first < t) count += Math.floor((t - 1 - first) / windowMs) + 1;
    }
    return count;
  };
  const ticker = setInterval(() => stall.tick(), 10);
  const { insertMs } = await harness.setup(tFirst);
  const setupEnd = Date.now();
  await new Promise((r) => setTimeout(r, 15));
  clearInterval(ticker);
  const setupLoopMaxMs = stall.max;
  const setupMs = setupEnd - t0;
  // Setting up keeps the event loop busy (timers cannot run), so what came due meanwhile fires after it.
  const overdueAtSetupEnd = dueBefore(setupEnd);
  const after = await settleMemory();
  // When the setup overran the lead, wait for that backlog to be worked off before measuring.
  const drain0 = Date.now();
  while (dues.length < dueBefore(Date.now() - 100) && Date.now() - drain0 < 60_000)
    await new Promise((r) => setTimeout(r, 100));
  const drainMs = overdueAtSetupEnd > 0 ? Date.now() - drain0 : 0;

  // A burst's span is its one instant (late if the setup overran it: see overdueAtSetupEnd).
  const measureFrom = args.burst ? tFirst : Math.max(tFirst, Date.now() + 1000);
  const measureTo = measureFrom + measureMs;
  const expected = dueBefore(measureTo) - dueBefore(measureFrom);

  // A burst's timers may all run in the very timer pass that ends this sleep: start watching before it.
  await sleepUntil(args.burst ? measureFrom - 500 : measureFrom);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const gcs: number[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push(e.duration);
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  await sleepUntil(measureTo);
  // Then until the windows due in the span have all fired (a late one still counts, with its lag), at
  // most 2 s more (a burst: 120 s), so that the CPU figure covers their work.
  const inSpan = () => {
    let c = 0;
    for (const due of dues) if (due >= measureFrom && due < measureTo) c++;
    return c;
  };
  const tailEnd = Date.now() + (args.burst ? 120_000 : 2000);
  while (inSpan() < expected && Date.now() < tailEnd) await new Promise((r) => setTimeout(r, 20));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;
  loop.disable();
  gcObserver.disconnect();

  const kept: { at: number; lag: number }[] = [];
  for (let k = 0; k < dues.length; k++) {
    const due = dues[k]!;
    if (due >= measureFrom && due < measureTo) kept.push({ at: due - measureFrom, lag: lagsSeen[k]! });
  }
  const lags = kept.map((x) => x.lag).sort((a, b) => a - b);
  const worst = kept.sort((a, b) => b.lag - a.lag).slice(0, 5);
  let stopMs = -1;
  if (args.timeStop) {
    const s0 = performance.now();
    await harness.stop();
    stopMs = performance.now() - s0;
  }
  // Without stop(), a fire may still hit the closed store before exit; it only logs (silently).
  await harness.close();
  return {
    args,
    setupMs,
    setupLoopMaxMs,
    insertMs,
    overdueAtSetupEnd,
    drainMs,
    rssBefore: before.rss,
    rssAfter: after.rss,
    heapBefore: before.heap,
    heapAfter: after.heap,
    expected,
    fired: lags.length,
    lags,
    worst,
    loopP50: loop.percentile(50) / 1e6,
    loopP99: loop.percentile(99) / 1e6,
    loopMax: loop.max / 1e6,
    gcCount: gcs.length,
    gcTotalMs: gcs.reduce((a, b) => a + b, 0),
    gcMaxMs: gcs.length ? Math.max(...gcs) : 0,
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs,
    stopMs,
  };
}

main().then(
  (result) => {
    // Exit at once: whatever is still armed (unless timeStop disarmed it) does not matter any more.
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  },
  (err: unknown) => {
    console.error('schedule bench child failed:', err);
    process.exit(1);
  },
);
