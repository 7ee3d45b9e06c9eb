import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScheduleInfo } from 'sluice/sdk';
import { silentLogger } from '../../services/core/logger.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { loadPlugins } from '../../services/host/loader.js';
import { ManualClock } from '../../services/schedule/domain/clock.js';
import type { ScheduleStore } from '../../services/schedule/domain/model.js';
import { type Dispatcher, ScheduleService } from '../../services/schedule/domain/service.js';
import { SqliteStore } from '../../services/store/sqlite.js';

export interface Submitted {
  readonly groupId: string;
  readonly lowerBound: string;
  readonly upperBound: string;
  readonly instanceId: string;
  readonly rerun: boolean;
  readonly at: number;
}

/** An in-process operator: records every submission; jobs end as `outcome` says (default: succeed at once). */
export class FakeDispatcher implements Dispatcher {
  readonly submitted: Submitted[] = [];
  outcome: (jobId: string) => Promise<{ succeeded: boolean; error?: string }> = async () => ({ succeeded: true });
  failSubmit?: (n: number) => Error | undefined;
  #n = 0;

  constructor(private readonly clock: ManualClock) {}

  async submit(request: Parameters<Dispatcher['submit']>[0]): Promise<readonly string[]> {
    const n = ++this.#n;
    const err = this.failSubmit?.(n);
    if (err) throw err;
    this.submitted.push({
      groupId: request.groupId,
      lowerBound: request.lowerBound,
      upperBound: request.upperBound,
      instanceId: request.instanceId,
      rerun: request.rerun,
      at: this.clock.now(),
    });
    return [`job-${n}`];
  }

  async follow(jobIds: readonly string[], onRunning: () => void): Promise<{ succeeded: boolean; error?: string }> {
    onRunning();
    return this.outcome(jobIds[0]!);
  }
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const T0 = Date.UTC(2026, 0, 1);

export function info(groupId: string, overrides: Partial<ScheduleInfo> = {}): ScheduleInfo {
  return {
    groupId,
    scheduleType: 0,
    scheduleUnit: 'H',
    scheduleInterval: 1,
    startTime: T0,
    endTime: T0 + 365 * DAY,
    delayTime: 0,
    selfDepend: 0,
    taskParallelism: 1,
    crontabExpression: '',
    scheduleEngine: '',
    version: 0,
    timeZone: 'UTC',
    catchUp: { mode: 'ALL', windowMs: 0 },
    alignment: 'END',
    ...overrides,
  };
}

export interface Rig {
  readonly clock: ManualClock;
  readonly dispatcher: FakeDispatcher;
  readonly store: ScheduleStore;
  /** The hook runner the service calls its engines through. */
  readonly hooks: HookRunner;
  service: ScheduleService;
  /** Stops the service and starts a new one on the same store (a restart). */
  restart(): Promise<void>;
  /** Moves the clock, letting every fire, dispatch and follow-up finish on the way. */
  advanceTo(t: number): Promise<void>;
  close(): Promise<void>;
}

/** A schedule service on a ManualClock, a SQLite store in a temp folder, the bundled engines and a fake operator. */
export async function scheduleRig(now = T0, extraPluginDirs: readonly string[] = []): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-schedule-'));
  const store = await SqliteStore.open(join(dir, 'sluice.db'));
  await store.migrate();
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR, extraDirs: [...extraPluginDirs] });
  const hooks = new HookRunner({ timeoutMs: 10_000 });
  const clock = new ManualClock(now);
  const dispatcher = new FakeDispatcher(clock);
  const make = () =>
    new ScheduleService({
      store,
      engines: plugins.engines,
      hooks,
      clock,
      dispatcher,
      logger: silentLogger,
      owner: 'test',
    });
  const rig: Rig = {
    clock,
    dispatcher,
    store,
    hooks,
    service: make(),
    async restart() {
      await rig.service.stop();
      rig.service = make();
      await rig.service.start();
      await rig.service.idle();
    },
    async advanceTo(t) {
      await clock.advanceTo(t, async () => {
        for (let i = 0; i < 5; i++) {
          await new Promise((r) => setImmediate(r));
          await rig.service.idle();
        }
      });
    },
    async close() {
      await rig.service.stop();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await rig.service.start();
  return rig;
}
