import { randomUUID } from 'node:crypto';
import { context, isSpanContextValid, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import { EventEmitter } from 'node:events';
import {
  ERROR_CODES,
  SluiceError,
  failedPrecondition,
  fieldError,
  invalidArgument,
  invalidFields,
  isSluiceError,
  notFound,
  type Boundaries,
  type ConnectorPlugin,
  type FieldError,
  type Logger,
  type ScheduleInfo,
} from 'sluice/sdk';
import type { Catalog } from '../../catalog/domain/catalog.js';
import { checkBoundaries } from '../../core/boundaries.js';
import { OptionSecrets, processSecretBox, resolveSecretRefs, scrubSecrets } from '../../core/option-secrets.js';
import type { LoadedPlugin } from '../../host/loader.js';
import { firingRules, normalizeInfo } from '../../schedule/domain/info.js';
import { checkMapping } from './mapping.js';
import {
  FINAL_JOB_STATES,
  type GroupRecord,
  type GroupStatus,
  type JobProgress,
  type JobRecord,
  type JobRun,
  type JobState,
  type OperatorStore,
  type RetryPolicy,
  type StreamSpec,
} from './model.js';
import type { Runner } from './runner.js';
import type { Instance } from '../../../proto/gen/sluice/schedule/v1/schedule.js';

/** How the operator reaches the schedule service. */
export interface SchedulePort {
  /** Registers the group's schedule (RegisterSchedule). */
  register(info: ScheduleInfo): Promise<void>;
  /** Replaces it in place (GetSchedule for the version, then UpdateSchedule). */
  update(info: ScheduleInfo): Promise<void>;
  /** UnregisterSchedule; a schedule that is already gone is fine. */
  unregister(groupId: string): Promise<void>;
  /** FireDue: fires the group's windows due at `asOf` (0: now) through the schedule service's ledger. */
  fireDue(groupId: string, asOf: number): Promise<FireDueAnswer>;
  /**
   * ClaimWindow: records a submitted window in the schedule service's ledger (or finds it) and has it
   * dispatched when due; the dispatch comes back here as a submission carrying the instance id.
   */
  claimWindow(input: {
    readonly groupId: string;
    readonly boundaries: Boundaries;
    readonly triggeredBy: string;
    readonly rerun: boolean;
  }): Promise<ClaimedWindow>;
}

/** A window's ledger row as ClaimWindow answered it. */
export interface ClaimedWindow {
  /** The Instance message of the schedule service, as it came. */
  readonly instance: Instance;
  /** False when the window was found rather than recorded (or re-armed) by the call. */
  readonly created: boolean;
}

/** What FireDue answered, as the operator's HTTP server shows it. */
export interface FireDueAnswer {
  readonly instances: readonly {
    readonly instanceId: string;
    readonly windowStart: number;
    readonly windowEnd: number;
    readonly state: string;
  }[];
  readonly nextDueTime?: number;
}

export interface OperatorServiceOptions {
  readonly store: OperatorStore;
  readonly catalog: Catalog;
  readonly connectors: ReadonlyMap<string, LoadedPlugin<ConnectorPlugin>>;
  readonly schedules: SchedulePort;
  readonly runners: ReadonlyMap<string, Runner>;
  /** Runner of groups that name none. */
  readonly defaultRunner: string;
  /** Jobs running at once in this process. */
  readonly maxRunningJobs: number;
  readonly owner: string;
  readonly logger: Logger;
  readonly now?: () => number;
  /**
   * How long a job's lease lasts (default 30 s; the service runs with SLUICE_FAILOVER_MS). The owner renews its
   * leases every third of it; any replica looks for expired ones this often and takes them over.
   */
  readonly leaseMs?: number;
  /**
   * Seals secret options before they are stored and opens them to run a job (SLUICE_SECRET_KEY, or the data
   * folder's key). Default: a key of this process only (tests).
   */
  readonly secrets?: OptionSecrets;
}

/** One watchJob subscription: the newest state it has seen, and its listener. */
interface RemoteWatch {
  last: JobRecord;
  readonly on: (job: JobRecord) => void;
}

/**
 * Why a run is stopped when its job was cancelled (elsewhere, or here as it started: CANCELLED is written already)
 * or taken over elsewhere: nothing more is written for it here.
 */
class LeaseLost extends Error {}

/** Why a run is stopped by CancelJob here: it ends CANCELLED, also while the operator is stopping. */
class CancelledByCaller extends SluiceError {
  constructor() {
    super(ERROR_CODES.FAILED_PRECONDITION, 'cancelled');
  }
}

export interface GroupInput {
  readonly groupId: string;
  readonly description: string;
  readonly streams: readonly StreamSpec[];
  readonly schedule?: ScheduleInfo;
  readonly runner: string;
  readonly retry?: Partial<RetryPolicy>;
  readonly version: number;
}

export interface OfflineJobRequest extends Boundaries {
  readonly groupId: string;
  readonly instanceId: string;
}

const GROUP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 3, initialBackoffMs: 1000 };
/**
 * The longest wait before a retry, and so the largest retry.initial_backoff_ms: 24 h. Every computed backoff
 * (initial × 2^(attempt-1), up to 2^99 times it at 100 attempts) is capped to it, which also keeps it below
 * setTimeout's 2^31-1 ms: a longer delay (or a negative one) fires after 1 ms, retrying at once.
 */
const MAX_BACKOFF_MS = 24 * 60 * 60 * 1000;
/** How far two replicas' clocks may disagree when their timestamps are compared (ms). */
const CLOCK_SKEW_MS = 60_000;

/** The error with the secrets cut out of its message and echoed values (a Sluice error keeps its code). */
function scrubError(err: unknown, secrets: readonly string[]): unknown {
  if (secrets.length === 0) return err;
  if (!isSluiceError(err)) return err instanceof Error ? new Error(scrubSecrets(err.message, secrets)) : err;
  const d = err.details;
  const cut = (s: string | undefined) => (s === undefined ? undefined : scrubSecrets(s, secrets));
  return new SluiceError(err.code, scrubSecrets(err.message, secrets), {
    ...d,
    ...(d.received !== undefined ? { received: cut(d.received) } : {}),
    ...(d.fieldErrors
      ? {
          fieldErrors: d.fieldErrors.map((e) => ({
            ...e,
            received: scrubSecrets(e.received, secrets),
            message: scrubSecrets(e.message, secrets),
          })),
        }
      : {}),
  });
}

/**
 * What a call that would create or queue jobs answers once stop() has begun: UNAVAILABLE, so the caller (the
 * schedule service's dispatcher, an engine, a client) asks another replica or this one once it is back, rather
 * than getting jobs this replica will not run until their lease runs out.
 */
const stopping = () =>
  new SluiceError(ERROR_CODES.UNAVAILABLE, 'the operator is stopping; ask another replica, or again later');

/** Ids that sort by creation time, so listing by id is listing by age. */
function newJobId(now: number): string {
  return `${now.toString(36).padStart(9, '0')}-${randomUUID().slice(0, 13)}`;
}

/**
 * The operator's use cases: sync tasks (groups) and the jobs that windows become. Jobs are persisted
 * before they run; a queue runs at most maxRunningJobs at once; a failed attempt is retried per the
 * group's policy, and the sink aborts so no window is half written.
 */
export class OperatorService {
  readonly #o: OperatorServiceOptions;
  readonly #now: () => number;
  readonly #events = new EventEmitter();
  readonly #queue: string[] = [];
  /** The ids in #queue, to keep a job from being queued twice. */
  readonly #queued = new Set<string>();
  /** The trace context each queued job was submitted in, so its run joins the window's trace. */
  readonly #contexts = new Map<string, Context>();
  readonly #running = new Map<string, AbortController>();
  readonly #inflight = new Set<Promise<unknown>>();
  /** Lease renewals, take-overs and watch polls under way: stop() waits for them as for the runs. */
  readonly #background = new Set<Promise<unknown>>();
  /** Each running job's run, settled when it has ended (whatever it wrote). */
  readonly #runs = new Map<string, Promise<void>>();
  /** Jobs this replica holds a lease on: queued, running or waiting for a retry. */
  readonly #owned = new Set<string>();
  readonly #leaseMs: number;
  readonly #secrets: OptionSecrets;
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  /** Watches by job id, for the poller that reads the jobs other replicas hold. */
  readonly #watched = new Map<string, Set<RemoteWatch>>();
  #polling = false;

  constructor(options: OperatorServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#secrets = options.secrets ?? new OptionSecrets(processSecretBox());
    this.#events.setMaxListeners(0);
  }

  /** Renews the leases of the jobs held here; a job missing from the answer was cancelled or taken over elsewhere. */
  async #renew(): Promise<void> {
    const ids = [...this.#owned];
    if (ids.length === 0) return;
    const held = new Set(await this.#o.store.renewJobLeases(this.#o.owner, ids, this.#now() + this.#leaseMs));
    for (const jobId of ids) {
      if (held.has(jobId) || !this.#owned.has(jobId)) continue;
      this.#owned.delete(jobId);
      const queued = this.#queue.indexOf(jobId);
      if (queued >= 0) this.#queue.splice(queued, 1);
      this.#queued.delete(jobId);
      this.#running.get(jobId)?.abort(new LeaseLost(`job '${jobId}' is no longer held by '${this.#o.owner}'`));
      const job = await this.#o.store.getJob(jobId);
      if (job) this.#emit(job);
    }
  }

  /** Takes over the unfinished jobs whose owner stopped renewing their lease (a replica that died or lost the store). */
  async #takeOverExpired(): Promise<void> {
    const now = this.#now();
    for (const job of await this.#o.store.expiredJobs(now, 100)) {
      if (this.#stopped) return;
      if (this.#owned.has(job.jobId)) continue;
      const taken = await this.#o.store.takeOverJob(job.jobId, job.leaseUntil, this.#o.owner, now + this.#leaseMs, now);
      if (!taken) continue;
      if (this.#stopped) {
        await this.#handBack(taken, job);
        return;
      }
      const previous = job.owner === this.#o.owner ? 'this replica' : `operator replica '${job.owner}'`;
      if (taken.state === 'RUNNING') {
        const group = await this.#o.store.getGroup(taken.groupId);
        const maxAttempts = group?.retry.maxAttempts ?? 1;
        if (taken.attempt >= maxAttempts) {
          await this.#update(
            taken.jobId,
            {
              state: 'FAILED',
              error: `${previous} stopped renewing the lease of this job during attempt ${taken.attempt} of ${maxAttempts}; no attempts left`,
              finishedAt: this.#now(),
            },
            ['RUNNING'],
          );
          continue;
        }
        const requeued = await this.#update(
          taken.jobId,
          { state: 'PENDING', error: `attempt ${taken.attempt} lost: ${previous} stopped renewing its lease` },
          ['RUNNING'],
        );
        if (!requeued) continue;
      }
      if (this.#stopped) {
        await this.#handBack(taken, job);
        return;
      }
      this.#o.logger.warn('job taken over', { jobId: taken.jobId, from: job.owner, attempt: taken.attempt });
      this.#enqueue(taken.jobId);
    }
  }

  /**
   * Gives back a job taken over while stop() began: its previous owner and expired lease again, so the other
   * replicas take it at their next sweep. Left as taken, it would sit with this stopped replica's fresh lease, run
   * by nobody for a whole lease.
   */
  async #handBack(taken: JobRecord, seen: JobRecord): Promise<void> {
    const now = this.#now();
    const back = await this.#o.store.takeOverJob(
      taken.jobId,
      taken.leaseUntil,
      seen.owner,
      seen.leaseUntil ?? now,
      now,
    );
    if (back) this.#emit(back);
  }

  #every(ms: number, fn: () => Promise<void>, what: string): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.#stopped) return;
      busy = true;
      const work = fn()
        .catch((err: unknown) => this.#o.logger.warn(`${what} failed`, { err }))
        .finally(() => {
          busy = false;
          this.#background.delete(work);
        });
      this.#background.add(work);
    }, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  // ---- life cycle ------------------------------------------------------------------------------

  /**
   * Re-queues this replica's unfinished jobs: a job that was running when the operator stopped runs again.
   *
   * Leases are renewed and expired ones taken over from the start, not once the re-queuing is done: a replica
   * restarting under load with thousands of jobs takes a while over them, and leases it took at the beginning
   * would run out meanwhile and be taken from it while it is alive. Jobs it already holds (submitted here during
   * the re-queuing) are left as they are: queued twice, a job's second run found it not PENDING and let go of
   * its lease while the first run went on.
   */
  async start(): Promise<void> {
    this.#every(Math.max(1, Math.floor(this.#leaseMs / 3)), () => this.#renew(), 'renewing job leases');
    this.#every(this.#leaseMs, () => this.#takeOverExpired(), 'taking over expired jobs');
    for (let after: string | undefined; ;) {
      const jobs = await this.#o.store.listJobs({
        states: ['PENDING', 'RUNNING'],
        limit: 500,
        ...(after ? { afterJobId: after } : {}),
      });
      for (const job of jobs) {
        if (this.#stopped) return;
        if (job.owner !== this.#o.owner || this.#owned.has(job.jobId)) continue;
        // Compare-and-swap on the lease, as a take-over: a replica that took the job meanwhile keeps it.
        const now = this.#now();
        const mine = await this.#o.store.takeOverJob(
          job.jobId,
          job.leaseUntil,
          this.#o.owner,
          now + this.#leaseMs,
          now,
        );
        if (!mine) continue;
        const requeued =
          mine.state === 'RUNNING'
            ? await this.#o.store.updateJob(job.jobId, { state: 'PENDING' }, this.#now(), ['RUNNING'])
            : mine;
        if (requeued) this.#enqueue(requeued.jobId);
      }
      if (jobs.length < 500) break;
      after = jobs[jobs.length - 1]!.jobId;
    }
  }

  /**
   * Stops taking jobs and aborts the running ones; they stay PENDING/RUNNING and run again at the next start.
   * Waits for the runs and for a lease renewal or take-over already under way (a take-over ending after this
   * began hands its job back).
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    for (const c of this.#running.values())
      c.abort(new SluiceError(ERROR_CODES.UNAVAILABLE, 'the operator is stopping'));
    await Promise.allSettled([...this.#inflight, ...this.#background]);
  }

  /** Resolves once nothing is queued or running (tests). */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0 || this.#queue.length > 0)
      await Promise.allSettled([...this.#inflight, new Promise((r) => setTimeout(r, 5))]);
  }

  // ---- groups ----------------------------------------------------------------------------------

  /**
   * The options of one end as they are stored: `***` sent back replaced by the stored secret (same stream,
   * same connector), then secrets sealed.
   */
  #sealEndpoint(stream: StreamSpec, end: 'source' | 'sink', current: GroupRecord | undefined): StreamSpec['source'] {
    const endpoint = stream[end];
    const before = current?.streams.find((s) => s.streamId === stream.streamId)?.[end];
    const restored =
      before && before.connectorId === endpoint.connectorId
        ? this.#secrets.restore(endpoint.options, before.options)
        : endpoint.options;
    const plugin = this.#o.connectors.get(endpoint.connectorId)?.plugin;
    const schema = end === 'source' ? plugin?.sourceOptions : plugin?.sinkOptions;
    return { connectorId: endpoint.connectorId, options: this.#secrets.seal(restored, schema) };
  }

  async #validate(
    given: GroupInput,
    current?: GroupRecord,
  ): Promise<Omit<GroupRecord, 'status' | 'version' | 'createdAt' | 'updatedAt'>> {
    const input: GroupInput = {
      ...given,
      streams: given.streams.map((s) => ({
        ...s,
        source: this.#sealEndpoint(s, 'source', current),
        sink: this.#sealEndpoint(s, 'sink', current),
      })),
    };
    if (!GROUP_ID.test(input.groupId))
      throw invalidArgument(
        'group.group_id',
        'letters, digits, ".", "_" or "-" (1-128, starting with a letter or digit)',
        input.groupId,
      );
    if (input.streams.length === 0) throw invalidArgument('group.streams', 'at least one stream', []);
    const runner = input.runner || '';
    if (runner !== '' && !this.#o.runners.has(runner))
      throw invalidArgument(
        'group.runner',
        `one of ${[...this.#o.runners.keys()].join(', ')} (or empty for ${this.#o.defaultRunner})`,
        runner,
      );
    if (!input.schedule) throw invalidArgument('group.schedule', 'the schedule of the group', undefined);
    const schedule = normalizeInfo({ ...input.schedule, groupId: input.groupId });
    try {
      firingRules(schedule);
    } catch (err) {
      if (isSluiceError(err) && err.details.field)
        throw invalidArgument(`group.schedule.${err.details.field}`, err.details.expected ?? '', err.details.received);
      throw err;
    }
    const retry: RetryPolicy = {
      maxAttempts: input.retry?.maxAttempts || DEFAULT_RETRY.maxAttempts,
      initialBackoffMs: input.retry?.initialBackoffMs || DEFAULT_RETRY.initialBackoffMs,
    };
    if (retry.maxAttempts < 1 || retry.maxAttempts > 100)
      throw invalidArgument('group.retry.max_attempts', 'an integer from 1 to 100 (0: 3)', retry.maxAttempts);
    if (
      !Number.isInteger(retry.initialBackoffMs) ||
      retry.initialBackoffMs < 1 ||
      retry.initialBackoffMs > MAX_BACKOFF_MS
    )
      throw invalidArgument(
        'group.retry.initial_backoff_ms',
        `an integer from 1 to ${MAX_BACKOFF_MS} ms (24 h; 0: ${DEFAULT_RETRY.initialBackoffMs})`,
        retry.initialBackoffMs,
      );
    const errors: FieldError[] = [];
    const ids = new Set<string>();
    for (const [i, stream] of input.streams.entries()) {
      const at = `group.streams[${i}]`;
      if (stream.streamId === '') errors.push(fieldError(`${at}.stream_id`, 'a stream id', stream.streamId));
      else if (ids.has(stream.streamId))
        errors.push(fieldError(`${at}.stream_id`, 'a stream id not used by another stream', stream.streamId));
      ids.add(stream.streamId);
      for (const [end, role] of [
        ['source', 'source'],
        ['sink', 'sink'],
      ] as const) {
        const endpoint = stream[end];
        const plugin = this.#o.connectors.get(endpoint.connectorId);
        if (!plugin) {
          errors.push(
            fieldError(
              `${at}.${end}.connector_id`,
              `a loaded connector (${[...this.#o.connectors.keys()].join(', ')})`,
              endpoint.connectorId,
            ),
          );
          continue;
        }
        if (!plugin.plugin.roles.includes(role)) {
          errors.push(
            fieldError(`${at}.${end}.connector_id`, `a connector with the ${role} role`, endpoint.connectorId),
          );
          continue;
        }
        // Validated opened; what an error echoes has its secrets cut out.
        const secrets = this.#secrets.plainSecrets(endpoint.options);
        const opened = this.#secrets.open(endpoint.options);
        for (const e of await this.#o.catalog.validateOptions(endpoint.connectorId, role, opened)) {
          errors.push({
            ...e,
            path: `${at}.${end}.${e.path}`,
            received: scrubSecrets(e.received, secrets),
            message: `${at}.${end}.${scrubSecrets(e.message, secrets)}`,
          });
        }
      }
      checkMapping(stream.fields, `${at}.fields`);
    }
    if (errors.length > 0) throw invalidFields(errors, `group '${input.groupId}' is invalid`);
    return { groupId: input.groupId, description: input.description, streams: input.streams, schedule, runner, retry };
  }

  async #load(groupId: string): Promise<GroupRecord> {
    if (groupId === '') throw invalidArgument('group_id', 'a group id', groupId);
    const g = await this.#o.store.getGroup(groupId);
    if (!g || g.status === 'DELETED') throw notFound('group', groupId);
    return g;
  }

  #checkVersion(g: GroupRecord, version: number): void {
    if (version !== 0 && version !== g.version) {
      throw new SluiceError(
        ERROR_CODES.VERSION_CONFLICT,
        `group '${g.groupId}' is at version ${g.version}; version ${version} is stale`,
        { field: 'version', expected: String(g.version), received: String(version) },
      );
    }
  }

  async #save(g: GroupRecord, changes: Partial<GroupRecord>): Promise<GroupRecord> {
    const next: GroupRecord = { ...g, ...changes, version: g.version + 1, updatedAt: this.#now() };
    await this.#o.store.updateGroup(next, g.version);
    return next;
  }

  async createGroup(input: GroupInput): Promise<GroupRecord> {
    const valid = await this.#validate(input);
    const now = this.#now();
    const group: GroupRecord = { ...valid, status: 'NEW', version: 1, createdAt: now, updatedAt: now };
    const version = await this.#o.store.insertGroup(group);
    return version === group.version ? group : { ...group, version };
  }

  async updateGroup(input: GroupInput): Promise<GroupRecord> {
    const current = await this.#load(input.groupId);
    if (input.version !== current.version) this.#checkVersion(current, input.version || -1);
    const valid = await this.#validate(input, current);
    const saved = await this.#save(current, valid);
    if (current.status === 'REGISTERED') await this.#o.schedules.update(saved.schedule);
    return saved;
  }

  /** NEW → APPROVED → REGISTERED: the schedule is registered with the schedule service. */
  async approveGroup(groupId: string, version: number): Promise<GroupRecord> {
    let g = await this.#load(groupId);
    this.#checkVersion(g, version);
    if (g.status === 'REGISTERED') return g;
    if (g.status === 'NEW') g = await this.#save(g, { status: 'APPROVED' });
    await this.#o.schedules.register(g.schedule);
    return this.#save(g, { status: 'REGISTERED' }).catch((err: unknown) => this.#afterLostRace(groupId, err));
  }

  /** Unregisters the schedule (so no window fires for it again), then deletes the group. */
  async deleteGroup(groupId: string, version: number): Promise<GroupRecord> {
    const g = await this.#load(groupId);
    this.#checkVersion(g, version);
    if (g.status === 'REGISTERED' || g.status === 'APPROVED') await this.#o.schedules.unregister(groupId);
    return this.#save(g, { status: 'DELETED' }).catch((err: unknown) => this.#afterLostRace(groupId, err));
  }

  /**
   * A group's save that lost to another call after this one told the schedule service (a delete racing an
   * update, an approve racing a delete): the schedule service now holds what this call asked, the group what
   * the other call wrote. Brings the schedule in line with the group as stored, then rethrows.
   */
  async #afterLostRace(groupId: string, err: unknown): Promise<never> {
    if (isSluiceError(err) && err.code === ERROR_CODES.VERSION_CONFLICT) {
      try {
        const current = await this.#o.store.getGroup(groupId);
        if (current?.status === 'REGISTERED') {
          // Registered again where it was removed, or brought to the stored info where it is live.
          await this.#o.schedules.register(current.schedule).catch(async (e: unknown) => {
            if (!isSluiceError(e) || e.code !== ERROR_CODES.ALREADY_EXISTS) throw e;
            await this.#o.schedules.update(current.schedule);
          });
        } else {
          await this.#o.schedules.unregister(groupId);
        }
      } catch (alignErr) {
        this.#o.logger.error('group and schedule disagree after a lost race; update the group again to repair', {
          groupId,
          err: alignErr,
        });
      }
    }
    throw err;
  }

  getGroup(groupId: string): Promise<GroupRecord> {
    return this.#load(groupId);
  }

  listGroups(query: {
    statuses?: readonly GroupStatus[];
    afterGroupId?: string;
    limit: number;
  }): Promise<GroupRecord[]> {
    return this.#o.store.listGroups(query);
  }

  // ---- jobs ------------------------------------------------------------------------------------

  /**
   * The window's bounds in the canonical form the sources give (canonicalBoundaries), so one window is
   * one job however it is written; as given when no source has the hook or the sources disagree.
   */
  async #canonical(group: GroupRecord, given: Boundaries): Promise<Boundaries> {
    const forms = new Set<string>();
    let canonical: Boundaries | undefined;
    for (const stream of group.streams) {
      const source = this.#o.connectors.get(stream.source.connectorId);
      if (!source || !(source.plugin.boundaryTypes ?? []).includes(given.boundaryType)) return given;
      canonical = await this.#o.catalog.canonicalBoundaries(source.id, given);
      if (!canonical) return given;
      forms.add(JSON.stringify([canonical.boundaryType, canonical.lowerBound, canonical.upperBound]));
    }
    return forms.size === 1 && canonical && canonical.boundaryType === given.boundaryType ? canonical : given;
  }

  /**
   * Turns one window into one job per stream. The same window returns its existing jobs unless
   * `rerun`, which runs it again (the sinks replace its output). A window submitted from outside (no
   * instance id) is first claimed in the schedule service's ledger, as `triggeredBy`: the schedule
   * service dispatches it back here (with its instance id) when it is due, so a window not yet due
   * answers no jobs and its SCHEDULED instance.
   */
  async submitOfflineJob(
    request: OfflineJobRequest,
    rerun: boolean,
    triggeredBy = 'unknown',
  ): Promise<{ jobs: JobRecord[]; created: boolean; instance?: Instance }> {
    if (this.#stopped) throw stopping();
    const group = await this.#load(request.groupId);
    if (group.status !== 'APPROVED' && group.status !== 'REGISTERED') {
      throw failedPrecondition(`group '${group.groupId}' is ${group.status}; approve it before submitting jobs`);
    }
    const boundaries = await this.#canonical(group, {
      boundaryType: request.boundaryType,
      lowerBound: request.lowerBound,
      upperBound: request.upperBound,
    });
    for (const stream of group.streams) {
      const source = this.#o.connectors.get(stream.source.connectorId);
      if (!source)
        throw failedPrecondition(
          `connector '${stream.source.connectorId}' of stream '${stream.streamId}' is not loaded`,
        );
      const declared = source.plugin.boundaryTypes ?? [];
      if (!declared.includes(boundaries.boundaryType)) {
        throw failedPrecondition(
          `source connector '${source.id}' of stream '${stream.streamId}' cannot honour ${boundaries.boundaryType} windows (it declares ${declared.join(', ')})`,
          { field: 'boundary_type' },
        );
      }
      checkBoundaries(boundaries, declared, source.id, 'request');
    }
    if (request.instanceId === '') {
      const claim = await this.#o.schedules.claimWindow({ groupId: group.groupId, boundaries, triggeredBy, rerun });
      const jobs = await Promise.all(claim.instance.jobIds.map((id) => this.#o.store.getJob(id)));
      return {
        jobs: jobs.filter((j): j is JobRecord => j !== undefined),
        created: claim.created,
        instance: claim.instance,
      };
    }
    const latest = await this.#o.store.latestWindowJobs(group.groupId, boundaries);
    if (latest.length > 0 && !rerun) return { jobs: latest, created: false };
    // A re-run submitted again with the same instance id (a retried call) is the same request.
    if (latest.length > 0 && request.instanceId !== '' && latest[0]!.instanceId === request.instanceId)
      return { jobs: latest, created: false };
    if (latest.some((j) => !FINAL_JOB_STATES.includes(j.state))) {
      throw failedPrecondition(
        `window ${boundaries.boundaryType} [${boundaries.lowerBound}, ${boundaries.upperBound}) of group '${group.groupId}' is still running; cancel it or wait before running it again`,
      );
    }
    const generation = (latest[0]?.generation ?? 0) + 1;
    const now = this.#now();
    const runner = group.runner || this.#o.defaultRunner;
    const jobs: JobRecord[] = [];
    for (const stream of group.streams) {
      // Bounded from the opened options, and sealed again before the job is stored.
      const opened = this.#secrets.open(stream.source.options);
      const resolved = await this.#o.catalog
        .resolveBoundaries(stream.source.connectorId, opened, boundaries)
        .catch((err: unknown) => {
          throw scrubError(err, this.#secrets.plainSecrets(stream.source.options));
        });
      const schema = this.#o.connectors.get(stream.source.connectorId)?.plugin.sourceOptions;
      const sealed = this.#secrets.reseal(resolved.boundedOptions, stream.source.options, opened, schema);
      jobs.push({
        jobId: newJobId(now),
        groupId: group.groupId,
        streamId: stream.streamId,
        instanceId: request.instanceId,
        boundaries,
        generation,
        state: 'PENDING',
        runner,
        attempt: 0,
        resolvedSourceOptions: sealed,
        resolvedPositions: {},
        progress: { records: 0, bytes: 0, positions: {} },
        error: '',
        owner: this.#o.owner,
        leaseUntil: now + this.#leaseMs,
        createdAt: now,
        updatedAt: now,
      });
    }
    // The lease runs from the insert, not from the request: resolving a source's boundaries may take a while, and
    // a lease already run out would hand the new jobs to another replica at once.
    const insertedAt = this.#now();
    for (const [i, job] of jobs.entries()) jobs[i] = { ...job, leaseUntil: insertedAt + this.#leaseMs };
    // Resolving the boundaries took a while: look again before writing jobs nobody here would run. (Stopping
    // after the insert, the jobs stay PENDING with this replica's lease: a take-over or the next start runs them.)
    if (this.#stopped) throw stopping();
    if (!(await this.#o.store.insertWindowJobs(jobs))) {
      // Another caller inserted this generation first: its jobs are the answer.
      return { jobs: await this.#o.store.latestWindowJobs(group.groupId, boundaries), created: false };
    }
    for (const job of jobs) this.#enqueue(job.jobId);
    return { jobs, created: true };
  }

  async getJob(jobId: string): Promise<JobRecord> {
    if (jobId === '') throw invalidArgument('job_id', 'a job id', jobId);
    const job = await this.#o.store.getJob(jobId);
    if (!job) throw notFound('job', jobId);
    return job;
  }

  listJobs(query: Parameters<OperatorStore['listJobs']>[0]): Promise<JobRecord[]> {
    return this.#o.store.listJobs(query);
  }

  /**
   * Cancels a pending or running job, on whichever replica runs it; its sink aborts (on another replica at its
   * next lease renewal, or as it comes to commit if that is sooner). A finished job is FAILED_PRECONDITION.
   * Bounded: no retry loop however the job moves.
   */
  async cancelJob(jobId: string): Promise<JobRecord> {
    // A pending job may start between the read and the write: look again, a bounded number of times.
    for (let tries = 0; tries < 3; tries++) {
      const job = await this.getJob(jobId);
      if (FINAL_JOB_STATES.includes(job.state))
        throw failedPrecondition(`job '${jobId}' has already ended (${job.state})`);
      const running = this.#running.get(jobId);
      if (running) {
        running.abort(new CancelledByCaller());
        // The run ends CANCELLED, or with what it had done already; or it lost the job meanwhile (taken over
        // elsewhere, or the write failed): then look again.
        await this.#runs.get(jobId);
        const after = await this.getJob(jobId);
        if (FINAL_JOB_STATES.includes(after.state)) return after;
        continue;
      }
      // Not running here: pending here, or held by another replica, which finds it CANCELLED when it renews or
      // before it commits.
      const cancelled = await this.#o.store.updateJob(
        jobId,
        { state: 'CANCELLED', finishedAt: this.#now() },
        this.#now(),
        ['PENDING', 'RUNNING'],
      );
      if (cancelled) {
        // It may have started here after the read (#pump took it from the queue and wrote RUNNING before this
        // write): stop that run now, so its sink aborts rather than commits a window reported CANCELLED. Every
        // write of the run asks for RUNNING and this attempt, so nothing it writes replaces the cancellation.
        const started = this.#running.get(jobId);
        if (started) {
          started.abort(new LeaseLost(`job '${jobId}' was cancelled as it started`));
          await this.#runs.get(jobId);
        }
        this.#emit(cancelled);
        return cancelled;
      }
    }
    throw new SluiceError(ERROR_CODES.VERSION_CONFLICT, `job '${jobId}' kept changing state; try again`);
  }

  /**
   * Calls `listener` with the job now and on every change until it ends; returns an unsubscribe function. Changes
   * made here arrive at once; while another replica holds the job (it was submitted here and taken over, or runs
   * there), the store is read every third of the lease (at most every second), so a watch on any replica sees the
   * job end. One read serves every such watch: thousands of watches must not become thousands of reads a tick.
   */
  async watchJob(jobId: string, listener: (job: JobRecord) => void): Promise<() => void> {
    const job = await this.getJob(jobId);
    const watch: RemoteWatch = {
      last: job,
      on: (j) => {
        if (j.updatedAt >= watch.last.updatedAt) watch.last = j;
        listener(j);
      },
    };
    this.#events.on(`job:${jobId}`, watch.on);
    try {
      listener(job);
      // It may have ended between the read and the subscription: read once more.
      const again = await this.#o.store.getJob(jobId);
      if (again && again.updatedAt !== job.updatedAt) watch.on(again);
    } catch (err) {
      // The caller gets no unsubscribe function: a listener left here would be called for ever.
      this.#events.off(`job:${jobId}`, watch.on);
      throw err;
    }
    let watches = this.#watched.get(jobId);
    if (!watches) this.#watched.set(jobId, (watches = new Set()));
    watches.add(watch);
    this.#startPolling();
    return () => {
      this.#events.off(`job:${jobId}`, watch.on);
      const set = this.#watched.get(jobId);
      set?.delete(watch);
      if (set?.size === 0) this.#watched.delete(jobId);
    };
  }

  /** The watch poller: one timer for all watches, started with the first. */
  #startPolling(): void {
    if (this.#polling || this.#stopped) return;
    this.#polling = true;
    this.#every(
      Math.max(50, Math.min(1000, Math.floor(this.#leaseMs / 3))),
      () => this.#pollWatched(),
      'polling watched jobs',
    );
  }

  /** Reads, in one batch, the watched jobs held by another replica and not yet seen ending, and tells their watches. */
  async #pollWatched(): Promise<void> {
    const ids: string[] = [];
    for (const [jobId, watches] of this.#watched) {
      if (this.#owned.has(jobId)) continue;
      for (const w of watches)
        if (!FINAL_JOB_STATES.includes(w.last.state)) {
          ids.push(jobId);
          break;
        }
    }
    if (ids.length === 0) return;
    // The store is away: read again next tick (each watch's stream is still open; nothing to report).
    const jobs = await this.#o.store.getJobs(ids).catch(() => []);
    for (const j of jobs)
      for (const w of this.#watched.get(j.jobId) ?? []) if (j.updatedAt !== w.last.updatedAt) w.on(j);
  }

  #emit(job: JobRecord): void {
    this.#events.emit(`job:${job.jobId}`, job);
    if (FINAL_JOB_STATES.includes(job.state)) this.#events.emit(`ended:${job.jobId}`, job);
  }

  /**
   * Queues a job this replica holds. A job taken back while its old run here is still winding down (its lease was
   * lost, then re-acquired, or the job handed back to this replica) is queued too: #pump starts it once that run
   * has ended, never beside it. Dropped, it would wait a whole lease for the next take-over.
   */
  #enqueue(jobId: string): void {
    if (this.#stopped) return;
    // Queued, or running and still its run's (a take-over racing a re-queue, a stale retry timer): once is enough.
    if (this.#queued.has(jobId) || this.#running.get(jobId)?.signal.aborted === false) return;
    this.#queued.add(jobId);
    this.#owned.add(jobId);
    this.#contexts.set(jobId, context.active());
    this.#queue.push(jobId);
    this.#pump();
  }

  #pump(): void {
    while (!this.#stopped && this.#running.size < this.#o.maxRunningJobs && this.#queue.length > 0) {
      // The first job not running here: one taken back while its old run winds down keeps its place until then.
      const next = this.#queue.findIndex((id) => !this.#running.has(id));
      if (next < 0) return;
      const jobId = this.#queue.splice(next, 1)[0]!;
      this.#queued.delete(jobId);
      const controller = new AbortController();
      this.#running.set(jobId, controller);
      const parent = this.#contexts.get(jobId) ?? context.active();
      this.#contexts.delete(jobId);
      const run = context
        .with(parent, () =>
          trace
            .getTracer('sluice.operator')
            .startActiveSpan('job run', { attributes: { 'sluice.job.id': jobId } }, (span) =>
              this.#runJob(jobId, controller.signal)
                .then((state) => {
                  // Held on while it waits for a retry, or is queued again (taken back while this run wound
                  // down); let go otherwise (a failed final write included: the lease then runs out and a replica,
                  // maybe this one, takes the job over).
                  if (state !== 'PENDING' && !this.#queued.has(jobId)) this.#owned.delete(jobId);
                  span.setAttribute('sluice.job.state', state ?? 'NOT_RUN');
                })
                .catch((err: unknown) => {
                  span.setStatus({ code: SpanStatusCode.ERROR });
                  throw err;
                })
                .finally(() => span.end()),
            ),
        )
        .catch((err: unknown) => {
          if (!this.#queued.has(jobId)) this.#owned.delete(jobId);
          this.#o.logger.error('job run failed', { jobId, err });
        })
        .finally(() => {
          this.#running.delete(jobId);
          this.#pump();
        });
      this.#inflight.add(run);
      this.#runs.set(jobId, run);
      void run.finally(() => {
        this.#inflight.delete(run);
        if (this.#runs.get(jobId) === run) this.#runs.delete(jobId);
      });
    }
  }

  async #update(
    jobId: string,
    patch: Parameters<OperatorStore['updateJob']>[1],
    from?: readonly JobState[],
    run?: JobRun,
  ): Promise<JobRecord | undefined> {
    const job = await this.#o.store.updateJob(jobId, patch, this.#now(), from, run);
    if (job) this.#emit(job);
    return job;
  }

  async #runJob(jobId: string, signal: AbortSignal): Promise<JobState | undefined> {
    const pending = await this.#o.store.getJob(jobId);
    if (!pending || pending.state !== 'PENDING') return undefined;
    const group = await this.#o.store.getGroup(pending.groupId);
    const stream = group?.streams.find((s) => s.streamId === pending.streamId);
    const source = stream && this.#o.connectors.get(stream.source.connectorId);
    const sink = stream && this.#o.connectors.get(stream.sink.connectorId);
    const runner = this.#o.runners.get(pending.runner);
    // A deleted group, or one deleted and created again since the job was made, is no longer the job's: its
    // window is not to be written (to the new group's sink least of all). The two times come from the clocks of
    // the replicas that wrote them: a group counts as newer only by more than CLOCK_SKEW_MS.
    const deleted =
      group !== undefined && (group.status === 'DELETED' || group.createdAt > pending.createdAt + CLOCK_SKEW_MS);
    if (!group || deleted || !stream || !source || !sink || !runner) {
      const failed = await this.#update(
        jobId,
        {
          state: 'FAILED',
          error: deleted
            ? `cannot run: group '${pending.groupId}' was deleted after the job was made`
            : `cannot run: ${!group ? 'group' : !stream ? 'stream' : !runner ? `runner '${pending.runner}'` : 'connector'} is gone`,
          finishedAt: this.#now(),
        },
        ['PENDING'],
        // Only while it is still this replica's: another that took it over may have what this one lacks.
        { owner: this.#o.owner, attempt: pending.attempt },
      );
      return failed ? 'FAILED' : undefined;
    }
    if (pending.attempt >= group.retry.maxAttempts) {
      // Its last attempt started and never ended: the process died during it. Running it again would
      // let a job that kills its host restart forever.
      const failed = await this.#update(
        jobId,
        {
          state: 'FAILED',
          error: `attempt ${pending.attempt} of ${group.retry.maxAttempts} ended with the operator process; no attempt left`,
          finishedAt: this.#now(),
        },
        ['PENDING'],
        { owner: this.#o.owner, attempt: pending.attempt },
      );
      return failed ? 'FAILED' : undefined;
    }
    // Started only while the job is still this replica's: a retry or queued run of a job taken over meanwhile by
    // another replica (this one's lease ran out) leaves it to that one.
    const running = await this.#update(
      jobId,
      { state: 'RUNNING', attempt: pending.attempt + 1, startedAt: this.#now(), error: '', ...runTrace() },
      ['PENDING'],
      { owner: this.#o.owner, attempt: pending.attempt },
    );
    if (!running) return undefined;
    // Every later write of this run is this run's only while the job still is: once another replica has taken it
    // over (this one's lease ran out while it was alive), what this run ends with must not overwrite that one's.
    const run: JobRun = { owner: this.#o.owner, attempt: running.attempt };
    let progress: JobProgress = running.progress;
    let lastWrite = Promise.resolve<unknown>(undefined);
    // Every secret this run holds in clear, cut out of what its error says and logs.
    const secrets = [
      ...this.#secrets.plainSecrets(running.resolvedSourceOptions),
      ...this.#secrets.plainSecrets(stream.source.options),
      ...this.#secrets.plainSecrets(stream.sink.options),
    ];
    try {
      // Opened and their references read only now, for this run; never stored in clear.
      const open = async (options: JobRecord['resolvedSourceOptions']) => {
        const r = await resolveSecretRefs(this.#secrets.open(options));
        secrets.push(...r.values);
        return r.options;
      };
      const plainStream: StreamSpec = {
        ...stream,
        source: { ...stream.source, options: await open(stream.source.options) },
        sink: { ...stream.sink, options: await open(stream.sink.options) },
      };
      const boundedSourceOptions = await open(running.resolvedSourceOptions);
      await runner.run(
        { job: running, group, stream: plainStream, boundedSourceOptions, source, sink },
        {
          signal,
          onProgress: (p) => {
            progress = p;
            lastWrite = lastWrite.then(() => this.#update(jobId, { progress: p }, ['RUNNING'], run)).catch(() => {});
          },
          onResolved: (positions) => {
            lastWrite = lastWrite
              .then(() => this.#update(jobId, { resolvedPositions: positions }, ['RUNNING'], run))
              .catch(() => {});
          },
          beforeCommit: () => this.#beforeCommit(jobId, run, signal),
        },
      );
      await lastWrite;
    } catch (err) {
      await lastWrite;
      const message = scrubSecrets(err instanceof Error ? err.message : String(err), secrets);
      if (signal.aborted && this.#stopped && !(signal.reason instanceof CancelledByCaller)) {
        // A clean stop does not use up an attempt: the job runs again at the next start. A job left
        // RUNNING (the process died) keeps its attempt counted.
        const handedBack = await this.#update(
          jobId,
          { state: 'PENDING', attempt: running.attempt - 1, progress },
          ['RUNNING'],
          run,
        ).catch((e: unknown) => this.#o.logger.warn('job could not be handed back on stop', { jobId, err: e }));
        return handedBack ? 'PENDING' : undefined;
      }
      if (signal.aborted && signal.reason instanceof LeaseLost) return undefined; // cancelled or taken over elsewhere
      if (signal.aborted) {
        const cancelled = await this.#update(
          jobId,
          { state: 'CANCELLED', error: message, progress, finishedAt: this.#now() },
          ['RUNNING'],
          run,
        );
        return cancelled ? 'CANCELLED' : this.#lost(jobId, run);
      }
      const retryable =
        !isSluiceError(err) ||
        ![ERROR_CODES.INVALID_ARGUMENT, ERROR_CODES.FAILED_PRECONDITION].includes(err.code as never);
      if (retryable && running.attempt < group.retry.maxAttempts) {
        // Capped (MAX_BACKOFF_MS): doubled from a large initial backoff, or read from a group stored before
        // initial_backoff_ms was checked, it would overflow setTimeout and retry after 1 ms.
        const computed = group.retry.initialBackoffMs * 2 ** (running.attempt - 1);
        const backoff = computed > 0 ? Math.min(MAX_BACKOFF_MS, computed) : 0;
        this.#o.logger.warn('job attempt failed; retrying', {
          jobId,
          attempt: running.attempt,
          backoffMs: backoff,
          error: message,
        });
        if (!(await this.#update(jobId, { state: 'PENDING', error: message, progress }, ['RUNNING'], run)))
          return this.#lost(jobId, run);
        const retryContext = context.active();
        const timer = setTimeout(() => {
          if (this.#owned.has(jobId)) context.with(retryContext, () => this.#enqueue(jobId));
        }, backoff);
        timer.unref();
        return 'PENDING';
      }
      const failed = await this.#update(
        jobId,
        { state: 'FAILED', error: message, progress, finishedAt: this.#now() },
        ['RUNNING'],
        run,
      );
      return failed ? 'FAILED' : this.#lost(jobId, run);
    }
    // The sink has committed: from here a failed write is retried as a write, never as another run of the job.
    return this.#recordSucceeded(jobId, progress, run);
  }

  /**
   * The commit gate (RunContext.beforeCommit): one read of the job, which must still be RUNNING with this run's
   * owner and attempt, as every write of the run asks. A job cancelled or taken over elsewhere since the last lease
   * renewal stops the run as that renewal would have (LeaseLost: the writer aborts, nothing is written for the run
   * here). A read that fails is tried again (GATE_READ_ATTEMPTS, under a second in all): a blip of the store must
   * not fail a window written in full, on its last attempt for good. A store out of reach for all of them fails
   * the run with UNAVAILABLE, uncommitted: committing blind could land a window over a cancel. The attempt then
   * fails as any other does (retried while attempts are left), or, the store still away for that write too, the
   * job stays RUNNING and is taken over once its lease runs out, as when renewals fail.
   */
  async #beforeCommit(jobId: string, run: JobRun, signal: AbortSignal): Promise<void> {
    let job: JobRecord | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        job = await this.#o.store.getJob(jobId);
        break;
      } catch (err) {
        if (attempt >= GATE_READ_ATTEMPTS || signal.aborted || this.#stopped)
          throw new SluiceError(
            ERROR_CODES.UNAVAILABLE,
            `the job could not be read before its commit, so its window was not committed: ${err instanceof Error ? err.message : String(err)}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** (attempt - 1)).unref());
      }
    }
    if (job?.state === 'RUNNING' && job.owner === run.owner && job.attempt === run.attempt) return;
    const lost = new LeaseLost(
      job
        ? `job '${jobId}' is ${job.state} (held by '${job.owner}', attempt ${job.attempt}): no longer this run's to commit`
        : `job '${jobId}' is gone: not committed`,
    );
    // This run's own controller only (not one of a later run of the job); a run ended here meanwhile (a local
    // cancel wrote its state and told the watchers already) is not told again.
    if (!signal.aborted) {
      const controller = this.#running.get(jobId);
      if (controller?.signal === signal) controller.abort(lost);
      if (job) this.#emit(job);
    }
    throw lost;
  }

  /** A run whose end was not written: the job had ended, been cancelled or been taken over meanwhile. */
  #lost(jobId: string, run: JobRun): undefined {
    this.#o.logger.warn('job run ended after the job had left it (taken over, cancelled or ended); not recorded', {
      jobId,
      attempt: run.attempt,
    });
    return undefined;
  }

  /**
   * Writes SUCCEEDED for a job whose sink committed, trying again on a store error (SUCCEEDED_WRITE_ATTEMPTS
   * times, backing off). Still failing, the job is left RUNNING: its lease runs out and a take-over decides.
   */
  async #recordSucceeded(jobId: string, progress: JobProgress, run: JobRun): Promise<'SUCCEEDED' | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        const done = await this.#update(
          jobId,
          { state: 'SUCCEEDED', progress, finishedAt: this.#now() },
          ['RUNNING'],
          run,
        );
        return done ? 'SUCCEEDED' : this.#lost(jobId, run);
      } catch (err) {
        if (attempt >= SUCCEEDED_WRITE_ATTEMPTS || this.#stopped) {
          this.#o.logger.error('job succeeded but its state could not be written; left RUNNING', { jobId, err });
          return undefined;
        }
        this.#o.logger.warn('job succeeded; writing its state failed, trying again', { jobId, attempt, err });
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** (attempt - 1)).unref());
      }
    }
  }
}

/** Reads of the job at its commit gate before the attempt fails uncommitted (0.7 s of backoff in all). */
const GATE_READ_ATTEMPTS = 4;

/** Writes of a committed job's SUCCEEDED state before it is left to a take-over (about 3 s of backoff). */
const SUCCEEDED_WRITE_ATTEMPTS = 6;

/** The trace id of the run in progress (its 'job run' span), when tracing records it; links the dashboard to it. */
function runTrace(): { traceId?: string } {
  const span = trace.getActiveSpan()?.spanContext();
  return span && isSpanContextValid(span) ? { traceId: span.traceId } : {};
}
