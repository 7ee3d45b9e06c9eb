import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConnectorPlugin, ScheduleInfo } from 'sluice/sdk';
import { Catalog } from '../../services/catalog/domain/catalog.js';
import { silentLogger } from '../../services/core/logger.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import {
  FINAL_JOB_STATES,
  type GroupRecord,
  type JobRecord,
  type OperatorStore,
  type StreamSpec,
} from '../../services/operator/domain/model.js';
import type { JobSpec } from '../../services/operator/domain/runner.js';
import {
  type ClaimedWindow,
  type GroupInput,
  OperatorService,
  type SchedulePort,
} from '../../services/operator/domain/service.js';
import { encodeBoundaries } from '../../services/core/grpc-adapter.js';
import { Instance, InstanceState, InstanceTrigger } from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { EmbeddedRunner } from '../../services/operator/runners/embedded.js';
import { SqliteStore } from '../../services/store/sqlite.js';

export const RUNNER_FIXTURES = fileURLToPath(new URL('../fixtures/plugins/runner/', import.meta.url));

/** Records what the operator asks of the schedule service. */
export class FakeSchedules implements SchedulePort {
  readonly calls: string[] = [];
  fail?: Error;
  async register(info: ScheduleInfo) {
    if (this.fail) throw this.fail;
    this.calls.push(`register ${info.groupId}`);
  }
  async update(info: ScheduleInfo) {
    this.calls.push(`update ${info.groupId}`);
  }
  async unregister(groupId: string) {
    this.calls.push(`unregister ${groupId}`);
  }
  async fireDue(groupId: string, asOf: number) {
    this.calls.push(`fireDue ${groupId} ${asOf}`);
    return { instances: [] };
  }
  /** The operator the ledger dispatches to (set by the rig): windows are due at once here. */
  operator?: OperatorService;
  readonly #claims = new Map<string, Instance>();
  async claimWindow(input: Parameters<SchedulePort['claimWindow']>[0]): Promise<ClaimedWindow> {
    const b = input.boundaries;
    this.calls.push(
      `claimWindow ${input.groupId} ${b.boundaryType} ${b.lowerBound} ${b.upperBound} ${input.triggeredBy}`,
    );
    const key = JSON.stringify([input.groupId, b.boundaryType, b.lowerBound, b.upperBound]);
    const found = this.#claims.get(key);
    if (found && !input.rerun) return { instance: found, created: false };
    if (!this.operator) throw new Error('FakeSchedules.operator is not set');
    const attempt = (found?.attempt ?? 0) + 1;
    const instanceId = found?.instanceId ?? randomUUID();
    const { jobs } = await this.operator.submitOfflineJob(
      { groupId: input.groupId, ...b, instanceId: attempt > 1 ? `${instanceId}#${attempt}` : instanceId },
      input.rerun,
    );
    const instance = Instance.fromPartial({
      instanceId,
      groupId: input.groupId,
      state: InstanceState.INSTANCE_STATE_DISPATCHED,
      trigger: InstanceTrigger.INSTANCE_TRIGGER_EXTERNAL,
      jobIds: jobs.map((j) => j.jobId),
      attempt,
      boundaries: encodeBoundaries(b),
      triggeredBy: input.triggeredBy,
    });
    this.#claims.set(key, instance);
    return { instance, created: true };
  }
}

export interface OperatorRig {
  service: OperatorService;
  readonly store: OperatorStore;
  readonly schedules: FakeSchedules;
  readonly dir: string;
  /** A new service on the same store (a restart), after stopping the current one. */
  restart(): Promise<void>;
  /** Another replica on the same store, started; stopped by close(). */
  peer(owner: string): Promise<OperatorService>;
  close(): Promise<void>;
}

export async function operatorRig(maxRunningJobs = 4, leaseMs?: number): Promise<OperatorRig> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-operator-'));
  const store = await SqliteStore.open(join(dir, 'sluice.db'));
  await store.migrate();
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR, extraDirs: [RUNNER_FIXTURES] });
  const hooks = new HookRunner({ timeoutMs: 10_000 });
  const catalog = new Catalog(plugins, hooks);
  const schedules = new FakeSchedules();
  const peers: OperatorService[] = [];
  const make = (owner = 'op-1') => {
    const made = new OperatorService({
      store: store as unknown as OperatorStore,
      catalog,
      connectors: plugins.connectors,
      schedules,
      runners: new Map([['embedded', new EmbeddedRunner({ hooks, progressIntervalMs: 0 })]]),
      defaultRunner: 'embedded',
      maxRunningJobs,
      owner,
      logger: silentLogger,
      ...(leaseMs === undefined ? {} : { leaseMs }),
    });
    // The first service (and each restart's) is the one the fake ledger dispatches to.
    if (owner === 'op-1') schedules.operator = made;
    return made;
  };
  const rig: OperatorRig = {
    service: make(),
    store: store as unknown as OperatorStore,
    schedules,
    dir,
    async restart() {
      await rig.service.stop();
      rig.service = make();
      await rig.service.start();
    },
    async peer(owner) {
      const peer = make(owner);
      peers.push(peer);
      await peer.start();
      return peer;
    },
    async close() {
      for (const peer of peers) await peer.stop();
      await rig.service.stop();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await rig.service.start();
  return rig;
}

export function schedule(groupId: string): ScheduleInfo {
  return {
    groupId,
    scheduleType: 0,
    scheduleUnit: 'H',
    scheduleInterval: 1,
    startTime: Date.UTC(2026, 0, 1),
    endTime: Date.UTC(2027, 0, 1),
    delayTime: 0,
    selfDepend: 0,
    taskParallelism: 1,
    crontabExpression: '',
    scheduleEngine: '',
    version: 0,
    timeZone: 'UTC',
    catchUp: { mode: 'ALL', windowMs: 0 },
    alignment: 'END',
  };
}

/** A group reading generated rows (datagen) into JSON-lines files under `dir`. */
export function datagenToFile(groupId: string, dir: string, patch: Partial<GroupInput> = {}): GroupInput {
  return {
    groupId,
    description: 'generated rows to files',
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'datagen', options: { intervalMs: 1000 } },
        sink: { connectorId: 'file', options: { path: dir, format: 'jsonl' } },
        fields: [],
      },
    ],
    schedule: schedule(groupId),
    runner: '',
    version: 0,
    ...patch,
  };
}

/** Watches a job until `done` holds for it (by default: a final state), on its own events rather than a sleep. */
export async function jobWhen(
  service: OperatorService,
  jobId: string,
  done: (job: JobRecord) => boolean = (job) => FINAL_JOB_STATES.includes(job.state),
  timeoutMs = 30_000,
): Promise<JobRecord> {
  let stop: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<JobRecord>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`job ${jobId}: not in the awaited state within ${timeoutMs} ms`)),
        timeoutMs,
      );
      service
        .watchJob(jobId, (job) => {
          if (done(job)) resolve(job);
        })
        .then((unsubscribe) => (stop = unsubscribe), reject);
    });
  } finally {
    clearTimeout(timer);
    stop?.();
  }
}

/** Reads the job until `check` holds of it (polling the store, which also sees other replicas' writes); 20 s at most. */
export async function until(
  service: OperatorService,
  jobId: string,
  what: string,
  check: (job: JobRecord) => boolean,
): Promise<JobRecord> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const job = await service.getJob(jobId);
    if (check(job)) return job;
    if (Date.now() > deadline) throw new Error(`${what}: not within 20 s (job ${JSON.stringify(job)})`);
    await sleep(10);
  }
}

/** A plugin object as the host would have loaded it, for runner tests that build their plugins in code. */
export function inlinePlugin(id: string, plugin: ConnectorPlugin): LoadedPlugin<ConnectorPlugin> {
  return { id, kind: 'connector', manifest: {} as never, dir: '', entry: '', plugin };
}

/**
 * A connector plugin folder `<pluginsDir>/<id>` (index.js holding `source`, and its manifest), for tests whose
 * plugin must load by path, as the pool's worker threads load plugins.
 */
export async function writeConnectorPlugin(
  pluginsDir: string,
  id: string,
  source: string,
  description: string,
): Promise<void> {
  await mkdir(join(pluginsDir, id), { recursive: true });
  await writeFile(join(pluginsDir, id, 'index.js'), source);
  await writeFile(
    join(pluginsDir, id, 'plugin.json'),
    JSON.stringify({ id, kind: 'connector', apiVersion: 1, version: '1.0.0', description }),
  );
}

/** One job (`j1` of group `g`, stream `s1`, OFFSET 0..`upper`) from `source` to `sink`, plugins built in code. */
export function inlineJobSpec(
  source: { readonly id: string; readonly plugin: ConnectorPlugin },
  sink: { readonly id: string; readonly plugin: ConnectorPlugin },
  upper = '1',
): JobSpec {
  const boundaries = { boundaryType: 'OFFSET' as const, lowerBound: '0', upperBound: upper };
  const stream: StreamSpec = {
    streamId: 's1',
    source: { connectorId: source.id, options: {} },
    sink: { connectorId: sink.id, options: {} },
    fields: [],
  };
  return {
    job: { jobId: 'j1', groupId: 'g', streamId: 's1', boundaries } as JobRecord,
    group: { groupId: 'g', streams: [stream] } as unknown as GroupRecord,
    stream,
    boundedSourceOptions: {},
    source: inlinePlugin(source.id, source.plugin),
    sink: inlinePlugin(sink.id, sink.plugin),
  };
}

/**
 * The lines a test sink's writer logged to `<logs>/<jobId>.log`, one a step (none yet: []). The sinks such tests write
 * log there so that a test reads what a job did, and in which order, from any thread.
 */
export async function jobLog(logs: string, jobId: string): Promise<string[]> {
  const file = join(logs, `${jobId}.log`);
  return existsSync(file) ? (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '') : [];
}

/** Waits (20 s at most) until the job's log satisfies `done`; `what` names it in the error. */
export async function jobLogUntil(
  logs: string,
  jobId: string,
  done: (lines: readonly string[]) => boolean,
  what: string,
): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const lines = await jobLog(logs, jobId);
    if (done(lines)) return lines;
    if (Date.now() > deadline) throw new Error(`job ${jobId}: ${what} within 20 s (${lines.join(', ')})`);
    await sleep(10);
  }
}
