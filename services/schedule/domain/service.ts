import { createHash, randomUUID } from 'node:crypto';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import {
  ERROR_CODES,
  SluiceError,
  type Boundaries,
  failedPrecondition,
  invalidArgument,
  isSluiceError,
  notFound,
  type EngineContext,
  type FireDueOutcome,
  type EnginePlugin,
  type Logger,
  type OfflineJobRequest,
  type ScheduleInfo,
} from 'sluice/sdk';
import { instruments } from '../../core/metrics.js';
import type { HookRunner } from '../../host/hook-runner.js';
import type { LoadedPlugin } from '../../host/loader.js';
import type { Clock } from './clock.js';
import { NO_ENGINE, firingRules, isNoEngine, normalizeInfo } from './info.js';
import { Limiter } from './limiter.js';
import {
  FINAL_STATES,
  SCHEDULE_TRIGGERS,
  type InstancePatch,
  type InstanceRecord,
  type InstanceState,
  type InstanceUpdate,
  type InstanceTrigger,
  type ScheduleRecord,
  type ScheduleStatus,
  type ScheduleStore,
} from './model.js';
import { type FiringRules, MAX_SKIP_ROWS, type Plan, type PlannedWindow, dueTime, planDue } from './plan.js';
import { coveringCron } from './covering-cron.js';
import { checkTimeWindow } from './window-check.js';
import { type Window, windowAt, windowsAfter } from './windows.js';
import { Batcher } from './batcher.js';

/** How the schedule service reaches the operator. */
export interface Dispatcher {
  /**
   * SubmitOfflineJob for one window; retries what may succeed later. Resolves with the job ids. Without an
   * instance id the operator claims the window in the ledger first, as `triggeredBy` (an engine's window).
   * Rejects with a SluiceError UNAVAILABLE when the operator could not be reached or did not answer in time
   * (the window may get through later); any other rejection is a refusal.
   */
  submit(
    request: OfflineJobRequest & {
      readonly instanceId: string;
      readonly rerun: boolean;
      readonly triggeredBy?: string;
    },
    signal?: AbortSignal,
  ): Promise<readonly string[]>;
  /** Follows the jobs to their end; `onRunning` when the first starts. Rejects when `signal` aborts. */
  follow(
    jobIds: readonly string[],
    onRunning: () => void,
    signal?: AbortSignal,
  ): Promise<{ readonly succeeded: boolean; readonly error?: string }>;
}

/** Why work on an instance stops here: another replica took its row over. */
class InstanceLost extends Error {}

const sameIds = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Whether a failed dispatch may get through later (the operator out of reach or too slow), rather than refused.
 * The Dispatcher contract says so with UNAVAILABLE; how the transport spells it is the adapter's business.
 */
const mayPass = (err: unknown) => isSluiceError(err) && err.code === ERROR_CODES.UNAVAILABLE;

/** How far ahead of the service's clock a FireDue `as_of` may be: engines' clocks drift, windows never fire early. */
export const MAX_AS_OF_AHEAD_MS = 5000;
/** Windows one FireDue claims and dispatches at most; more due ones are left to the next call (nextDueTime = now). */
export const FIRE_BATCH = 100;
/**
 * Windows one ledger write claims at most: the claims asked for in one turn (many schedules due at one instant)
 * are written together, up to this many (the store takes up to 500 a statement).
 */
export const CLAIM_BATCH = 250;
/** Groups one fireDueMany task reads and plans together (one statement for their schedules and latest instances). */
export const FIRE_GROUPS = 250;
/** How far ahead of its due time a fire may be planned (EngineContext.prepareDue): further is ignored. */
export const MAX_PREPARE_AHEAD_MS = 60_000;
/**
 * How long after its due time a fire planned ahead is still used: later (the service was stalled, or the engine
 * is late), the fire reads and plans again at the time it runs.
 */
const PREPARED_FOR_MS = 1000;
/** How long the later states of fired windows wait at most for a burst's FireDue calls to end. */
const UPDATE_HOLD_MS = 1000;

/** schedule_engine values whose accepting engine is kept (a client could send any number of them). */
const ACCEPTED_TYPES = 256;

/** How a FireDue reads schedules and latest instances and claims windows: batched per turn, or as given. */
interface FireIo {
  /** Each group's schedule and latest instance due by `dueBy`, in one read (ScheduleStore.schedulesWithLast). */
  reads(
    queries: readonly { groupId: string; dueBy: number }[],
  ): Promise<{ schedule?: ScheduleRecord; last?: InstanceRecord }[]>;
  claim(rows: readonly InstanceRecord[]): Promise<(InstanceRecord | undefined)[]>;
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/**
 * What a call that would fire or claim windows answers once stop() has begun: UNAVAILABLE, so a client or engine
 * asks another replica (or this one once it is back), and stop() is not kept waiting by new work.
 */
const stopping = () =>
  new SluiceError(ERROR_CODES.UNAVAILABLE, 'the schedule service is stopping; ask another replica, or again later');

/**
 * The service's tracer, asked for once: a burst starts a span per window. Until the SDK registers its provider
 * (telemetry bootstrap) the API answers a proxy that forwards to it from then on.
 */
const tracer = trace.getTracer('sluice.schedule');

/**
 * A group's fire read and planned ahead of its due time `at` (EngineContext.prepareDue): used at `at` while the
 * schedule's version and status and the group's latest window are still the ones it was planned from.
 */
interface PreparedFire {
  readonly at: number;
  readonly version: number;
  readonly status: string;
  /** The schedule row's last write: a schedule deleted and registered again is at version 2 again. */
  readonly updatedAt: number;
  readonly last?: InstanceRecord;
  readonly plan: Plan;
}

/** One group's plan on its way to the claim: its place in the call, and the instant it was planned for. */
interface PlannedFire {
  readonly index: number;
  readonly plan: Plan;
  readonly asOf: number;
}

/** A FireDue result as engines get it (EngineContext.fireDue): the instances' firing fields only. */
const fireDueOutcome = (r: FireDueResult): FireDueOutcome => ({
  instances: r.instances.map((i) => ({
    instanceId: i.instanceId,
    windowStart: i.windowStart,
    windowEnd: i.windowEnd,
    dueTime: i.dueTime,
    state: i.state,
  })),
  ...(r.nextDueTime !== undefined ? { nextDueTime: r.nextDueTime } : {}),
});

/** What one FireDue call did. */
export interface FireDueResult {
  readonly instances: readonly InstanceRecord[];
  /** The next window's due time after `as_of`; absent when the schedule has ended or waits for running windows. */
  readonly nextDueTime?: number;
}

export interface ScheduleServiceOptions {
  readonly store: ScheduleStore;
  readonly engines: ReadonlyMap<string, LoadedPlugin<EnginePlugin>>;
  readonly hooks: HookRunner;
  readonly clock: Clock;
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  /** This replica's name in the ledger's owner column. */
  readonly owner: string;
  /** A window this late still counts as on time (default 60 s). */
  readonly graceMs?: number;
  /**
   * An unfinished row whose owner has not renewed it for this long is taken over by one other replica, which
   * dispatches it again or follows its jobs (default 30 s; the service runs with SLUICE_FAILOVER_MS). Rows are
   * looked at this often, and owners renew theirs every third of it.
   */
  readonly leaseMs?: number;
  /** Every schedule is read again this often, in case a change announcement was missed (default 30 s). */
  readonly rescanMs?: number;
}

/**
 * The id a dispatch carries: the instance, plus the attempt from the second on, so that a retried
 * submission of one re-run is recognised as the same request while a later re-run is a new one.
 */
export function runId(instance: Pick<InstanceRecord, 'instanceId' | 'attempt'>): string {
  return instance.attempt > 1 ? `${instance.instanceId}#${instance.attempt}` : instance.instanceId;
}

const ACTIVE_STATES: readonly InstanceState[] = ['SCHEDULED', 'DISPATCHED', 'RUNNING'];
const FIRING: readonly ScheduleStatus[] = ['REGISTERED', 'UPDATED'];
/** Legal status changes; DELETED is reachable from anywhere. */
const TRANSITIONS: Readonly<Record<ScheduleStatus, readonly ScheduleStatus[]>> = {
  NEW: ['APPROVED'],
  APPROVED: ['REGISTERED'],
  REGISTERED: ['UPDATED', 'PAUSED'],
  UPDATED: ['UPDATED', 'PAUSED'],
  PAUSED: ['REGISTERED', 'UPDATED'],
  DELETED: [],
};

export interface BackfillInput {
  readonly groupId: string;
  readonly fromTime: number;
  readonly toTime: number;
  readonly mode: 'MISSING' | 'FAILED' | 'ALL';
  readonly maxParallel: number;
  readonly reverse: boolean;
  readonly dryRun: boolean;
  /** Aborted when the caller gives up (deadline, cancel): the scan stops there. */
  readonly signal?: AbortSignal;
}

/** A window submitted from outside the schedule (ClaimWindow). */
export interface ClaimWindowInput {
  readonly groupId: string;
  /** TIME bounds (epoch ms strings) or OFFSET bounds in their canonical form. */
  readonly boundaries: Boundaries;
  /** Who submitted it: engine:<id>, token:<fingerprint>, inlong:<user>. */
  readonly triggeredBy: string;
  /** Run it again when its instance has ended. */
  readonly rerun: boolean;
}

/**
 * The ledger key of an OFFSET window: negative (a TIME window starts at an epoch ms >= 0), 48 bits of the
 * SHA-256 of its canonical bounds, so one OFFSET window is one row of the group however often it is sent.
 */
export function offsetKey(lowerBound: string, upperBound: string): number {
  const digest = createHash('sha256')
    .update(JSON.stringify([lowerBound, upperBound]))
    .digest();
  return -(digest.readUIntBE(0, 6) + 1);
}

/** Windows a Backfill looks at, chosen or not; a wider range is refused before any work. */
export const BACKFILL_MAX_WINDOWS = 100_000;

/**
 * The schedule service's use cases. Every window is fired through the ledger: its instance row is
 * written (claimed) before dispatch, and only the caller whose write created the row dispatches it.
 */
export class ScheduleService {
  readonly #o: ScheduleServiceOptions;
  readonly #graceMs: number;
  readonly #leaseMs: number;
  readonly #wakeListeners: ((groupId: string) => void)[] = [];
  /** Groups whose due windows wait for running ones to end: only their endings need a new plan. */
  readonly #waiting = new Set<string>();
  readonly #inflight = new Set<Promise<unknown>>();
  #sweep?: { cancel(): void };
  #heartbeat?: { cancel(): void };
  #rescan?: { cancel(): void };
  #watch?: { close(): Promise<void> };
  /** What this replica last acted on of each schedule: a newer version re-arms or disarms it here. */
  readonly #known = new Map<string, Pick<ScheduleRecord, 'version' | 'status' | 'engineId'>>();
  /**
   * Schedules whose registration is telling the engine now: the row as written, and whether it replaced a
   * DELETED one (whose windows stay in the ledger).
   */
  readonly #justRegistered = new Map<
    string,
    { readonly record: ScheduleRecord; readonly replaced: boolean; readonly rules: FiringRules }
  >();
  /**
   * The engine that accepted each schedule_engine value (as written): `accept` answers for the type alone
   * (EnginePlugin.accept), so it is asked once per type, not at every registration (it was two of a
   * registration's three hook calls with the bundled engines). At most ACCEPTED_TYPES values, then it starts over.
   */
  readonly #accepted = new Map<string, LoadedPlugin<EnginePlugin>>();
  /** One sync at a time per group, in arrival order. */
  readonly #syncing = new Map<string, Promise<void>>();
  #rescanning: Promise<void> | undefined;
  /**
   * Instances this replica works on now (dispatching or following their jobs), each with what stops that work
   * when another replica took the row over. Their rows are renewed every third of the lease.
   */
  readonly #held = new Map<string, AbortController>();
  /** Windows submitted before they were due, armed here to be dispatched at their due time. */
  readonly #early = new Map<string, { cancel(): void }>();
  /** Fires planned ahead of their due time (prepareDue), by group: each used once, or replaced. */
  readonly #prepared = new Map<string, PreparedFire>();
  #stopped = false;
  /** Aborted on stop: dispatch retries and job watches end, leaving their rows for the next start. */
  readonly #stopping = new AbortController();

  constructor(options: ScheduleServiceOptions) {
    this.#o = options;
    this.#graceMs = options.graceMs ?? 60_000;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#rescanMs = options.rescanMs ?? 30_000;
  }

  readonly #rescanMs: number;

  // ---- life cycle ------------------------------------------------------------------------------

  /** Starts the engines, re-arms every firing schedule (catch-up runs then) and resumes unfinished instances. */
  async start(): Promise<void> {
    for (const engine of this.#o.engines.values()) {
      if (engine.settings?.availability.available === false) {
        // Expected where that scheduler is not used (a bundled engine without its URL): ListEngines shows why, and
        // registering a schedule with it fails naming the missing setting. Not a problem to warn about at every start.
        this.#o.logger.info('engine plugin unavailable', {
          pluginId: engine.id,
          reason: engine.settings.availability.reason,
        });
        continue;
      }
      if (this.#o.hooks.has(engine, 'start'))
        await this.#o.hooks.call(engine, 'start', undefined, { context: this.#engineContext(engine.id) });
    }
    await this.#recover(true);
    // Listen before reading, so no change falls between the read and the first announcement.
    this.#watch = await this.#o.store.watchSchedules?.({
      onChange: (groupId) => void this.#track(this.#syncGroup(groupId)).catch(() => {}),
      onGap: () => void this.#track(this.#rescanAll()).catch(() => {}),
    });
    await this.#rescanAll();
    this.#armSweep();
    this.#armHeartbeat();
    this.#armRescan();
  }

  /**
   * Reads every schedule and arms, re-arms or disarms here what changed since this replica last looked: every
   * replica arms every firing schedule, and the ledger's claims decide which one fires a window.
   */
  #rescanAll(): Promise<void> {
    this.#rescanning ??= (async () => {
      const started = performance.now();
      let schedules = 0;
      for (let after: string | undefined; ;) {
        const page = await this.#o.store.listSchedules({ limit: 500, ...(after ? { afterGroupId: after } : {}) });
        for (const s of page) await this.#sync(s);
        schedules += page.length;
        // Let calls in (health checks included) between pages: re-arming 100,000 schedules takes seconds.
        await new Promise((resolve) => setImmediate(resolve));
        if (page.length < 500) break;
        after = page[page.length - 1]!.groupId;
      }
      // What a re-scan costs at this size (docs/operations.md quotes it at 100,000 schedules).
      this.#o.logger.debug('schedules re-read', { schedules, ms: Math.round(performance.now() - started) });
    })().finally(() => (this.#rescanning = undefined));
    return this.#rescanning;
  }

  async #syncGroup(groupId: string): Promise<void> {
    const s = await this.#o.store.getSchedule(groupId);
    if (s) await this.#sync(s);
  }

  /** Brings the engine in line with `s` when it is newer than what this replica last acted on. */
  #sync(s: ScheduleRecord): Promise<void> {
    const previous = this.#syncing.get(s.groupId) ?? Promise.resolve();
    const next = previous
      .then(() => this.#apply(s))
      .catch((err: unknown) => this.#o.logger.error('arming a schedule failed', { groupId: s.groupId, err }));
    this.#syncing.set(s.groupId, next);
    void next.finally(() => {
      if (this.#syncing.get(s.groupId) === next) this.#syncing.delete(s.groupId);
    });
    return next;
  }

  async #apply(s: ScheduleRecord): Promise<void> {
    if (this.#stopped) return;
    const seen = this.#known.get(s.groupId);
    if (seen !== undefined && seen.version >= s.version) return;
    this.#known.set(s.groupId, { version: s.version, status: s.status, engineId: s.engineId });
    const wasFiring = seen !== undefined && FIRING.includes(seen.status);
    const firing = FIRING.includes(s.status);
    if (wasFiring && (seen.engineId !== s.engineId || s.status === 'DELETED'))
      await this.#engineCall(seen.engineId, 'unregister', s.groupId);
    // A paused schedule stays with its engine: its fires find it PAUSED and do nothing until it is resumed.
    // An engine with a pause hook is told here too (idempotent), so a status another replica put back
    // after a failed resume holds the counterpart again.
    if (wasFiring && s.status === 'PAUSED' && seen.engineId === s.engineId)
      await this.#engineHold(s.engineId, s.groupId);
    if (firing)
      await this.#engineCall(s.engineId, wasFiring && seen.engineId === s.engineId ? 'update' : 'register', s.info);
  }

  /** Records a change this replica made and told its engine about itself. */
  #note(s: ScheduleRecord): void {
    const seen = this.#known.get(s.groupId);
    if (seen === undefined || seen.version < s.version)
      this.#known.set(s.groupId, { version: s.version, status: s.status, engineId: s.engineId });
  }

  #armRescan(): void {
    if (this.#stopped) return;
    const timer = setInterval(() => void this.#track(this.#rescanAll()).catch(() => {}), this.#rescanMs);
    timer.unref();
    this.#rescan = { cancel: () => clearInterval(timer) };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopping.abort(new Error('the schedule service is stopping'));
    for (const held of this.#held.values()) held.abort(this.#stopping.signal.reason);
    this.#sweep?.cancel();
    this.#heartbeat?.cancel();
    this.#rescan?.cancel();
    for (const timer of this.#early.values()) timer.cancel();
    this.#early.clear();
    this.#prepared.clear();
    await this.#watch?.close();
    for (const engine of this.#o.engines.values()) {
      if (this.#o.hooks.has(engine, 'stop')) await this.#o.hooks.call(engine, 'stop', undefined).catch(() => {});
    }
    // Until nothing is in flight, runs started meanwhile (a claim answered during the stop) included.
    await this.idle();
  }

  /** Resolves when every dispatch and follow-up started so far has settled (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  /**
   * Looks for orphaned rows every lease, on real time rather than the schedule clock: it is how a
   * replica notices another one died, not part of any schedule.
   */
  #armSweep(): void {
    if (this.#stopped) return;
    const timer = setInterval(() => void this.#track(this.#recover(false)).catch(() => {}), this.#leaseMs);
    timer.unref();
    this.#sweep = { cancel: () => clearInterval(timer) };
  }

  /**
   * Renews the rows this replica works on, so that no other replica takes them over while it lives; work on a
   * row no longer held (taken over while this replica was cut off from the store, or ended) stops here.
   */
  #armHeartbeat(): void {
    if (this.#stopped) return;
    let busy = false;
    const timer = setInterval(
      () => {
        const ids = [...this.#held.keys()];
        if (busy || ids.length === 0) return;
        busy = true;
        // Tracked: stop() waits for a renewal under way before the store is closed.
        void this.#track(this.#o.store.renewInstances(this.#o.owner, ids, this.#o.clock.now()))
          .then((held) => {
            const kept = new Set(held);
            for (const id of ids) {
              if (kept.has(id)) continue;
              this.#held.get(id)?.abort(new InstanceLost(`instance '${id}' is no longer held by '${this.#o.owner}'`));
              this.#held.delete(id);
            }
          })
          .catch((err: unknown) => this.#o.logger.warn('renewing instances failed', { err }))
          .finally(() => (busy = false));
      },
      Math.max(1, Math.floor(this.#leaseMs / 3)),
    );
    timer.unref();
    this.#heartbeat = { cancel: () => clearInterval(timer) };
  }

  /**
   * Takes over unfinished rows left behind: this replica's own after a restart, anyone's once their owner has not
   * renewed them for a lease. The take-over is a compare-and-swap on the row, so exactly one replica gets each:
   * a SCHEDULED row is dispatched again, a DISPATCHED or RUNNING one re-submitted (the operator answers the
   * window's existing jobs) and followed to its end.
   */
  async #recover(atStart: boolean): Promise<void> {
    const now = this.#o.clock.now();
    let after: { groupId: string; windowStart: number } | undefined;
    for (;;) {
      const rows = await this.#o.store.listInstances({
        states: ACTIVE_STATES,
        limit: 500,
        ...(after ? { after } : {}),
      });
      for (const row of rows) {
        if (this.#held.has(row.instanceId)) continue;
        if (row.state === 'SCHEDULED' && row.dueTime > now) {
          // Submitted before it was due: every replica arms it, and the first to take it over at its due time runs it.
          this.#armEarly(row);
          continue;
        }
        const stale = Math.max(row.updatedAt, row.dueTime) < now - this.#leaseMs;
        if (!stale && !(atStart && row.owner === this.#o.owner)) continue;
        const dispatched = row.state !== 'SCHEDULED';
        const taken = await this.#o.store.takeOverInstance(
          row.instanceId,
          row.updatedAt,
          this.#o.owner,
          now,
          dispatched ? ['DISPATCHED', 'RUNNING'] : ['SCHEDULED'],
        );
        if (!taken) continue;
        if (row.owner !== this.#o.owner)
          this.#o.logger.warn('instance taken over', { instanceId: row.instanceId, from: row.owner, state: row.state });
        this.#runInstance(taken);
      }
      if (rows.length < 500) break;
      const last = rows[rows.length - 1]!;
      after = { groupId: last.groupId, windowStart: last.windowStart };
    }
  }

  #engineContext(engineId: string): Record<string, unknown> {
    const ctx: Omit<EngineContext, 'signal' | 'logger' | 'pluginId' | 'settings'> = {
      now: () => this.#o.clock.now(),
      scheduleAt: (at, fn) => this.#o.clock.scheduleAt(at, fn),
      fireDue: async (groupId, asOf) => fireDueOutcome(await this.fireDue(groupId, asOf ?? 0)),
      fireDueMany: async (groupIds, asOf) =>
        (await this.fireDueMany(groupIds, asOf ?? 0)).map((r, i) =>
          r instanceof Error
            ? { groupId: groupIds[i]!, ok: false as const, error: r }
            : { groupId: groupIds[i]!, ok: true as const, outcome: fireDueOutcome(r) },
        ),
      prepareDue: (groupIds, at) => this.prepareDue(groupIds, at),
      listSchedules: () => this.listOwned(engineId),
      listPaused: () => this.listOwned(engineId, 'PAUSED'),
      coveringCron: (info, dialect) => coveringCron(info, dialect),
      onWake: (listener) => void this.#wakeListeners.push(listener),
      submitOfflineJob: async (request) => {
        // A dispatch of an instance the engine got from fireDue: the ledger row exists already.
        if (request.instanceId)
          return {
            jobIds: await this.#o.dispatcher.submit({ ...request, instanceId: request.instanceId, rerun: false }),
          };
        // Through the operator, which puts OFFSET bounds in their canonical form and checks them against the
        // sources before it claims the window here (ClaimWindow) as this engine's.
        return {
          jobIds: await this.#o.dispatcher.submit({
            ...request,
            instanceId: '',
            rerun: false,
            triggeredBy: `engine:${engineId}`,
          }),
        };
      },
    };
    return ctx;
  }

  /** Tells the engines a group may have windows due now: after a window of a waiting group ends, or on resume. */
  #wake(groupId: string, always = false): void {
    if (!always && !this.#waiting.has(groupId)) return;
    for (const l of this.#wakeListeners) {
      try {
        l(groupId);
      } catch (err) {
        this.#o.logger.error('engine wake-up listener failed', { groupId, err });
      }
    }
  }

  // ---- schedules -------------------------------------------------------------------------------

  /** The engine plugin that accepts the type; undefined for `None` (no engine). */
  async #chooseEngine(engineType: string): Promise<LoadedPlugin<EnginePlugin> | undefined> {
    if (isNoEngine(engineType)) return undefined;
    const kept = this.#accepted.get(engineType);
    if (kept) return this.#available(kept, engineType);
    for (const engine of this.#o.engines.values()) {
      if (await this.#o.hooks.call(engine, 'accept', engineType)) {
        if (this.#accepted.size >= ACCEPTED_TYPES) this.#accepted.clear();
        this.#accepted.set(engineType, engine);
        return this.#available(engine, engineType);
      }
    }
    const known = [...this.#o.engines.keys()];
    throw failedPrecondition(
      `no engine plugin accepts schedule_engine '${engineType}' (engines loaded: ${known.length ? known.join(', ') : 'none'})`,
      { field: 'schedule_engine' },
    );
  }

  /** The engine, unless it is unavailable now (checked at every call: availability is not kept with the answer). */
  #available(engine: LoadedPlugin<EnginePlugin>, engineType: string): LoadedPlugin<EnginePlugin> {
    const availability = engine.settings?.availability;
    if (availability && !availability.available)
      throw failedPrecondition(
        `engine plugin '${engine.id}' accepts schedule_engine '${engineType}' but is unavailable: ${availability.reason}`,
        { field: 'schedule_engine' },
      );
    return engine;
  }

  async #engineCall(
    engineId: string,
    hook: 'register' | 'update' | 'unregister',
    arg: ScheduleInfo | string,
  ): Promise<void> {
    if (engineId === NO_ENGINE) return;
    const engine = this.#o.engines.get(engineId);
    if (!engine) throw failedPrecondition(`engine plugin '${engineId}' is not loaded`);
    if (engine.settings?.availability.available === false)
      throw failedPrecondition(`engine plugin '${engineId}' is unavailable: ${engine.settings.availability.reason}`);
    await this.#o.hooks.call(engine, hook, arg as never);
  }

  /** The engine's pause hook, when it has one (a change another replica made and told the engine of). */
  async #engineHold(engineId: string, groupId: string): Promise<void> {
    const engine = this.#o.engines.get(engineId);
    if (!engine || !this.#o.hooks.has(engine, 'pause') || engine.settings?.availability.available === false) return;
    await this.#o.hooks.call(engine, 'pause', groupId);
  }

  async #load(groupId: string): Promise<ScheduleRecord> {
    if (groupId === '') throw invalidArgument('group_id', 'a group id', groupId);
    const s = await this.#o.store.getSchedule(groupId);
    if (!s || s.status === 'DELETED') throw notFound('schedule of group', groupId);
    return s;
  }

  #transition(s: ScheduleRecord, to: ScheduleStatus): void {
    if (!TRANSITIONS[s.status].includes(to)) {
      throw failedPrecondition(`schedule of group '${s.groupId}' is ${s.status}; it cannot become ${to}`);
    }
  }

  async #save(s: ScheduleRecord, changes: Partial<ScheduleRecord>): Promise<ScheduleRecord> {
    const next: ScheduleRecord = { ...s, ...changes, version: s.version + 1, updatedAt: this.#o.clock.now() };
    await this.#o.store.updateSchedule(next, s.version);
    // The caller tells this replica's engine itself; the announcement of the write needs no action here.
    this.#note(next);
    return next;
  }

  async register(input: ScheduleInfo): Promise<ScheduleRecord> {
    const info = normalizeInfo(input);
    const rules = firingRules(info);
    // An engine kept for the type needs no await (its accept was asked before).
    const kept = this.#accepted.get(info.scheduleEngine);
    const engine = kept ? this.#available(kept, info.scheduleEngine) : await this.#chooseEngine(info.scheduleEngine);
    const now = this.#o.clock.now();
    // REGISTERED before the engine hears of it: an engine fires at once, and only firing schedules fire.
    // One write: the row is inserted as it would be after approval (version 1) and registration (2).
    const written: ScheduleRecord = {
      groupId: info.groupId,
      info,
      status: 'REGISTERED',
      engineId: engine?.id ?? NO_ENGINE,
      version: 2,
      createdAt: now,
      updatedAt: now,
    };
    const { replaced, version } = await this.#o.store.insertSchedule(written);
    // A deleted schedule's versions go on (the store adds them): a re-registration is newer everywhere.
    const registered = version === written.version ? written : { ...written, version };
    this.#note(registered);
    this.#justRegistered.set(registered.groupId, { record: registered, replaced, rules });
    try {
      if (engine) await this.#o.hooks.call(engine, 'register', registered.info);
    } catch (err) {
      // Leave no half-registered schedule behind: the client may simply retry.
      await this.#save(registered, { status: 'DELETED' }).catch(() => {});
      throw err;
    } finally {
      this.#justRegistered.delete(registered.groupId);
    }
    return registered;
  }

  async update(input: ScheduleInfo): Promise<ScheduleRecord> {
    const current = await this.#load(input.groupId);
    if (input.version !== current.version) {
      throw new SluiceError(
        ERROR_CODES.VERSION_CONFLICT,
        `schedule of group '${input.groupId}' is at version ${current.version}; version ${input.version} is stale`,
        { field: 'version', expected: String(current.version), received: String(input.version) },
      );
    }
    const info = normalizeInfo(input);
    firingRules(info);
    const status: ScheduleStatus = current.status === 'PAUSED' ? 'PAUSED' : 'UPDATED';
    if (status !== 'PAUSED') this.#transition(current, 'UPDATED');
    const engine = await this.#chooseEngine(info.scheduleEngine);
    const saved = await this.#save(current, {
      info: { ...info, version: current.version + 1 },
      engineId: engine?.id ?? NO_ENGINE,
      status,
    });
    if ((engine?.id ?? NO_ENGINE) !== current.engineId) {
      await this.#engineCall(current.engineId, 'unregister', current.groupId);
      if (status !== 'PAUSED' && engine) await this.#o.hooks.call(engine, 'register', saved.info);
    } else if (status !== 'PAUSED' && engine) {
      await this.#o.hooks.call(engine, 'update', saved.info);
    }
    return saved;
  }

  async unregister(groupId: string): Promise<ScheduleRecord> {
    const current = await this.#load(groupId);
    await this.#engineCall(current.engineId, 'unregister', groupId);
    const saved = await this.#save(current, { status: 'DELETED' });
    await this.#skipWaiting(groupId);
    return saved;
  }

  /**
   * Windows of a deleted schedule submitted early and still waiting for their due time become SKIPPED: left
   * SCHEDULED, each would be sent at its due time, to a deleted group, or into the sink of a group created
   * again under the same id. Another replica's timer for one finds it no longer SCHEDULED.
   */
  async #skipWaiting(groupId: string): Promise<void> {
    const now = this.#o.clock.now();
    let after: { groupId: string; windowStart: number } | undefined;
    for (;;) {
      const page = await this.#o.store.listInstances({
        groupId,
        states: ['SCHEDULED'],
        limit: 500,
        ...(after ? { after } : {}),
      });
      const waiting = page.filter((i) => i.dueTime > now);
      for (const i of waiting) {
        this.#early.get(i.instanceId)?.cancel();
        this.#early.delete(i.instanceId);
      }
      if (waiting.length > 0)
        await this.#o.store.updateInstances(
          waiting.map((i) => ({
            instanceId: i.instanceId,
            patch: { state: 'SKIPPED', finishedAt: now, error: 'the group was deleted before the window was due' },
            now,
            fromStates: ['SCHEDULED'],
          })),
        );
      if (page.length < 500) return;
      after = { groupId, windowStart: page[page.length - 1]!.windowStart };
    }
  }

  get(groupId: string): Promise<ScheduleRecord> {
    return this.#load(groupId);
  }

  list(query: {
    statuses?: readonly ScheduleStatus[];
    afterGroupId?: string;
    limit: number;
  }): Promise<ScheduleRecord[]> {
    return this.#o.store.listSchedules(query);
  }

  async pause(groupId: string): Promise<ScheduleRecord> {
    const current = await this.#load(groupId);
    this.#transition(current, 'PAUSED');
    const saved = await this.#save(current, { status: 'PAUSED' });
    await this.#holdCall(saved, current.status, 'pause', groupId);
    return saved;
  }

  async resume(groupId: string): Promise<ScheduleRecord> {
    const current = await this.#load(groupId);
    if (current.status !== 'PAUSED')
      throw failedPrecondition(`schedule of group '${groupId}' is ${current.status}, not PAUSED`);
    const saved = await this.#save(current, { status: 'REGISTERED' });
    await this.#holdCall(saved, 'PAUSED', 'resume', saved.info);
    // Windows due while paused follow the catch-up policy at the next fire.
    this.#wake(groupId, true);
    return saved;
  }

  /**
   * Tells the schedule's engine of a pause or resume already stored, when it has the hook. The store and
   * the engine must not disagree silently: when the hook fails, the status goes back to `previous` and the
   * call fails with the engine's error, as a failed register leaves no schedule behind. Should putting the
   * status back fail too, the engine's reconcile on its next start brings it in line with the store.
   */
  async #holdCall(
    saved: ScheduleRecord,
    previous: ScheduleStatus,
    hook: 'pause' | 'resume',
    arg: string | ScheduleInfo,
  ): Promise<void> {
    if (saved.engineId === NO_ENGINE) return;
    const engine = this.#o.engines.get(saved.engineId);
    if (!engine || !this.#o.hooks.has(engine, hook)) return;
    try {
      if (engine.settings?.availability.available === false)
        throw failedPrecondition(`engine plugin '${engine.id}' is unavailable: ${engine.settings.availability.reason}`);
      await this.#o.hooks.call(engine, hook, arg as never);
    } catch (err) {
      await this.#save(saved, { status: previous }).catch((rollback: unknown) =>
        this.#o.logger.error(`putting the status back after a failed ${hook} failed; the engine reconciles on start`, {
          groupId: saved.groupId,
          err: rollback,
        }),
      );
      throw err;
    }
  }

  // ---- windows ---------------------------------------------------------------------------------

  /** The next `count` windows ending after `from`, with their due times. */
  async preview(
    source: { groupId: string } | { info: ScheduleInfo },
    from: number,
    count: number,
  ): Promise<{ rules: FiringRules; windows: PlannedWindow[] }> {
    if (!Number.isInteger(count) || count < 0 || count > 1000)
      throw invalidArgument('count', 'an integer from 0 to 1000 (0: 10)', count);
    const info = 'groupId' in source ? (await this.#load(source.groupId)).info : normalizeInfo(source.info);
    const rules = firingRules(info);
    const windows: PlannedWindow[] = [];
    for (const w of windowsAfter(rules.spec, from)) {
      if (windows.length >= (count || 10)) break;
      windows.push({ ...w, dueTime: dueTime(rules, w), trigger: 'SCHEDULE' });
    }
    return { rules, windows };
  }

  /**
   * Fires what is due for the group at `asOf` (0: now); the engines call this, directly or through
   * the FireDue RPC. Missed windows follow the catch-up policy, and selfDepend / taskParallelism limit
   * what runs at once, all evaluated at `asOf`. Answers the instances it claimed, those of due windows
   * another caller had claimed first, and, when nothing new was due, the latest instance due at `asOf`.
   */
  fireDue(groupId: string, asOf = 0): Promise<FireDueResult> {
    if (this.#stopped) return Promise.reject(stopping());
    this.#prepared.delete(groupId); // planned for a fireDueMany; this call reads for itself
    const quiet = this.#firstFireQuiet(groupId, asOf);
    if (quiet) return Promise.resolve(quiet);
    return this.#track(this.#firing.run(() => this.#fireDue(groupId, asOf)));
  }

  /** The engine's first FireDue of a group just registered and new to the store (no ledger rows), if any. */
  #firstOfNew(groupId: string): { readonly record: ScheduleRecord; readonly rules: FiringRules } | undefined {
    const fresh = this.#justRegistered.get(groupId);
    // Unless this replica has seen a newer row since: then the store is read as for any other FireDue.
    return fresh && !fresh.replaced && this.#known.get(groupId)?.version === fresh.record.version ? fresh : undefined;
  }

  /**
   * The answer of the engine's first FireDue for a group just registered, when nothing is due (a schedule that
   * starts later, the common case): worked out here at once, with no read, claim, limiter turn or tracked
   * promise. The plan is the one {@link #fireDue} would make (no ledger rows, no running windows); when a
   * window is due or the catch-up policy skips some, or `asOf` is refused, undefined: the full path runs.
   */
  #firstFireQuiet(groupId: string, asOfInput: number): FireDueResult | undefined {
    const fresh = this.#firstOfNew(groupId);
    if (!fresh || !FIRING.includes(fresh.record.status)) return undefined;
    let asOf: number;
    try {
      asOf = this.#asOf(asOfInput);
    } catch {
      return undefined; // the full path refuses it with the same error
    }
    const plan = planDue({ rules: fresh.rules, now: asOf, active: 0, graceMs: this.#graceMs, maxFire: FIRE_BATCH });
    if (plan.fire.length > 0 || plan.skippedCount > 0) return undefined;
    if (plan.waiting) this.#waiting.add(groupId);
    else this.#waiting.delete(groupId);
    return plan.nextDueTime !== undefined ? { instances: [], nextDueTime: plan.nextDueTime } : { instances: [] };
  }

  /**
   * FireDue calls at once. Their reads and claims are batched per turn (one statement each for all of them), so
   * this many due groups share a few pool connections; more wait here in arrival order, rather than on the
   * pool (10 connections by default), whose wait would run out when 100,000 schedules are armed at start.
   */
  readonly #firing = new Limiter(64);
  /** Schedules and each group's latest instance, read for the FireDue calls of one turn together in one query. */
  readonly #reads = new Batcher(
    (queries: readonly { groupId: string; dueBy: number }[]) => this.#o.store.schedulesWithLast(queries),
    CLAIM_BATCH,
  );
  /** Claims of windows fired now, gathered per turn into one ledger write. */
  readonly #claims = new Batcher((rows: readonly InstanceRecord[]) => this.#o.store.claimInstances(rows), CLAIM_BATCH);
  /** Windows' later states (RUNNING, the end), gathered per turn into one ledger transaction. */
  readonly #updates = new Batcher(
    (updates: readonly InstanceUpdate[]) => this.#afterFiring().then(() => this.#o.store.updateInstances(updates)),
    CLAIM_BATCH,
  );

  /** updateInstance, written with the others asked for in this turn. */
  async #update(
    instanceId: string,
    patch: InstancePatch,
    fromStates: readonly InstanceState[],
  ): Promise<InstanceRecord | undefined> {
    const [row] = await this.#updates.run([{ instanceId, patch, now: this.#o.clock.now(), fromStates }]);
    return row;
  }

  /**
   * Waits (at most UPDATE_HOLD_MS) while FireDue calls run or wait: in a burst, claiming and dispatching the
   * windows still due comes before following those already sent and writing their later states, which gather
   * meanwhile. One wait shared by every caller (a burst has thousands), resolved at once when nothing fires.
   */
  #afterFiring(): Promise<void> {
    if (!this.#firing.busy) return Promise.resolve();
    this.#firingSettled ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#firingSettled = undefined;
        resolve();
      };
      const timer = setTimeout(done, UPDATE_HOLD_MS).unref();
      void this.#firing.idle().then(done);
    });
    return this.#firingSettled;
  }
  #firingSettled: Promise<void> | undefined;

  /** FireDue for callers outside the service: an unknown or deleted group is NOT_FOUND rather than nothing. */
  async fireDueChecked(groupId: string, asOf: number): Promise<FireDueResult> {
    await this.#load(groupId);
    return this.fireDue(groupId, asOf);
  }

  #asOf(asOf: number): number {
    const now = this.#o.clock.now();
    if (asOf === 0) return now;
    if (!Number.isSafeInteger(asOf) || asOf < 0) throw invalidArgument('as_of', 'epoch milliseconds (0: now)', asOf);
    if (asOf > now + MAX_AS_OF_AHEAD_MS)
      throw invalidArgument(
        'as_of',
        `an instant at most ${MAX_AS_OF_AHEAD_MS} ms after the service's now (${now}); windows are never fired early`,
        asOf,
      );
    return asOf;
  }

  /**
   * FireDue for many groups at one `asOf` (0: now), as an engine's timers due at one instant ask for it: the
   * same outcome per group as {@link fireDue}, or the error that failed the group's fire, in the order given.
   * Groups go FIRE_GROUPS a task through the same limiter as FireDue calls, each task reading its schedules
   * and latest instances in one statement and claiming its windows CLAIM_BATCH a statement, so a burst
   * of thousands costs a few dozen statements instead of several per group.
   */
  async fireDueMany(groupIds: readonly string[], asOf = 0): Promise<(FireDueResult | Error)[]> {
    if (this.#stopped) throw stopping();
    const at = this.#asOf(asOf); // refuse a bad asOf before any work
    // Groups planned ahead for this instant only check their plan (prepareDue); the others are read and planned.
    const prepared: { readonly groupId: string; readonly fire: PreparedFire }[] = [];
    const rest: string[] = [];
    for (const groupId of new Set(groupIds)) {
      const fire = this.#prepared.get(groupId);
      this.#prepared.delete(groupId);
      if (fire && fire.at <= at && at < fire.at + PREPARED_FOR_MS && (asOf === 0 || asOf === fire.at))
        prepared.push({ groupId, fire });
      else rest.push(groupId);
    }
    const chunks: { groups: readonly string[]; results: Promise<(FireDueResult | Error)[]> }[] = [];
    for (let i = 0; i < prepared.length; i += FIRE_GROUPS) {
      const chunk = prepared.slice(i, i + FIRE_GROUPS);
      const groups = chunk.map((p) => p.groupId);
      chunks.push({
        groups,
        results: this.#track(this.#firing.run(() => this.#firePrepared(chunk, at))).catch((err: unknown) =>
          groups.map(() => asError(err)),
        ),
      });
    }
    for (let i = 0; i < rest.length; i += FIRE_GROUPS) {
      const groups = rest.slice(i, i + FIRE_GROUPS);
      // A chunk whose reads failed fails its groups only, as a failed claim does.
      chunks.push({
        groups,
        results: this.#track(this.#firing.run(() => this.#fireGroups(groups, asOf, this.#storeIo))).catch(
          (err: unknown) => groups.map(() => asError(err)),
        ),
      });
    }
    const byGroup = new Map<string, FireDueResult | Error>();
    for (const { groups, results } of chunks) {
      const answers = await results;
      for (const [k, g] of groups.entries()) byGroup.set(g, answers[k]!);
    }
    return groupIds.map((g) => byGroup.get(g)!);
  }

  /**
   * Reads and plans ahead the fire of groups due at `at` (EngineContext.prepareDue), so that at `at` their
   * fireDueMany checks, claims and dispatches, the reads and plans of a burst done before it. Only plain plans
   * are kept: a group under selfDepend, with windows run ahead of its schedule, skipping windows or with
   * nothing due at `at` is read at its due time as any other. A hint: failures are logged, never answered.
   */
  prepareDue(groupIds: readonly string[], at: number): void {
    if (this.#stopped) return;
    const now = this.#o.clock.now();
    if (!Number.isSafeInteger(at) || at <= now || at > now + MAX_PREPARE_AHEAD_MS) return;
    const unique = [...new Set(groupIds)];
    for (let i = 0; i < unique.length; i += FIRE_GROUPS) {
      const chunk = unique.slice(i, i + FIRE_GROUPS);
      void this.#track(this.#firing.run(() => this.#prepare(chunk, at))).catch((err: unknown) =>
        this.#o.logger.warn('planning due windows ahead failed; they are read when due', {
          groups: chunk.length,
          err,
        }),
      );
    }
  }

  async #prepare(groupIds: readonly string[], at: number): Promise<void> {
    // Too late to be ahead (the limiter held it): the fire reads for itself.
    if (this.#stopped || this.#o.clock.now() >= at) return;
    const reads = await this.#o.store.schedulesWithLast(groupIds.map((groupId) => ({ groupId, dueBy: at })));
    for (const [k, groupId] of groupIds.entries()) {
      const { schedule: s, last } = reads[k]!;
      if (!s || !FIRING.includes(s.status) || (last && !SCHEDULE_TRIGGERS.includes(last.trigger))) continue;
      const rules = firingRules(s.info);
      if (rules.selfDepend !== 0) continue;
      const plan = planDue({
        rules,
        now: at,
        active: 0,
        graceMs: this.#graceMs,
        maxFire: FIRE_BATCH,
        ...(last ? { last } : {}),
      });
      if (plan.fire.length === 0 || plan.skippedCount > 0 || plan.waiting) continue;
      this.#prepared.set(groupId, {
        at,
        version: s.version,
        status: s.status,
        updatedAt: s.updatedAt,
        plan,
        ...(last ? { last } : {}),
      });
    }
  }

  /**
   * Fires groups planned ahead for `fire.at` (at or just after it, `asOf`): each whose schedule version and status
   * and latest window are still those of its plan is claimed and dispatched as planned; any other is read and
   * planned again now, as fireDueMany does without a plan.
   */
  async #firePrepared(
    chunk: readonly { readonly groupId: string; readonly fire: PreparedFire }[],
    asOf: number,
  ): Promise<(FireDueResult | Error)[]> {
    const heads = await this.#o.store.firingHeads(
      chunk.map(({ groupId }) => groupId),
      asOf,
    );
    const groupIds: string[] = [];
    const lasts: (InstanceRecord | undefined)[] = [];
    const planned: PlannedFire[] = [];
    const changed: string[] = [];
    for (const [k, { groupId, fire }] of chunk.entries()) {
      const head = heads[k];
      if (
        !head ||
        head.version !== fire.version ||
        head.status !== fire.status ||
        head.updatedAt !== fire.updatedAt ||
        head.lastId !== fire.last?.instanceId
      ) {
        changed.push(groupId);
        continue;
      }
      this.#waiting.delete(groupId);
      planned.push({ index: groupIds.length, plan: fire.plan, asOf: fire.at });
      groupIds.push(groupId);
      lasts.push(fire.last);
    }
    // Each half answers its own groups, a failure included (the re-read of changed groups may fail as a whole):
    // one group's failure is never another's answer, and the call settles only once both halves have.
    const [fired, again] = await Promise.all([
      this.#claimAndDispatch(groupIds, planned, lasts, this.#storeIo, new Array(groupIds.length), false).catch(
        (err: unknown) => groupIds.map(() => asError(err)),
      ),
      changed.length > 0
        ? this.#fireGroups(changed, asOf, this.#storeIo).catch((err: unknown) => changed.map(() => asError(err)))
        : [],
    ]);
    const byGroup = new Map<string, FireDueResult | Error>();
    for (const [k, g] of groupIds.entries()) byGroup.set(g, fired[k]!);
    for (const [k, g] of changed.entries()) byGroup.set(g, again[k]!);
    return chunk.map(({ groupId }) => byGroup.get(groupId)!);
  }

  /** A single FireDue's reads and claim, shared with the other FireDue calls of the turn. */
  readonly #batchedIo: FireIo = {
    reads: (queries) => this.#reads.run(queries),
    claim: (rows) => this.#claims.run(rows),
  };
  /** fireDueMany's reads and claims: its groups are a batch already. */
  readonly #storeIo: FireIo = {
    reads: (queries) => this.#o.store.schedulesWithLast(queries),
    claim: (rows) => this.#o.store.claimInstances(rows),
  };

  async #fireDue(groupId: string, asOfInput: number): Promise<FireDueResult> {
    // The engine's first FireDue, asked while its register hook runs, needs no reads: the row is the one just
    // written (unless this replica has seen a newer one since), and a group new to the store has no windows.
    const fresh = this.#firstOfNew(groupId);
    const firstOfNew = fresh !== undefined;
    const io: FireIo = fresh
      ? {
          reads: async () => [{ schedule: fresh.record }],
          claim: (rows) => this.#claims.run(rows),
        }
      : this.#batchedIo;
    const [result] = await this.#fireGroups([groupId], asOfInput, io, firstOfNew === true);
    if (result instanceof Error) throw result;
    return result!;
  }

  /**
   * Fires what is due for each group (distinct ids); a group's failure is its answer, not the others'.
   * `firstOfNew`: groups just registered, new to the store (no instances to count for selfDepend).
   */
  async #fireGroups(
    groupIds: readonly string[],
    asOfInput: number,
    io: FireIo,
    firstOfNew = false,
  ): Promise<(FireDueResult | Error)[]> {
    const asOf = this.#asOf(asOfInput);
    // Windows submitted before they are due wait for their time: they are neither the watermark nor running.
    const reads = await io.reads(groupIds.map((groupId) => ({ groupId, dueBy: asOf })));
    const lasts = reads.map((r) => r.last);
    const results: (FireDueResult | Error | Promise<FireDueResult>)[] = new Array<FireDueResult>(groupIds.length);
    const planned: PlannedFire[] = [];
    for (const [index, groupId] of groupIds.entries()) {
      const s = reads[index]!.schedule;
      if (!s || !FIRING.includes(s.status)) {
        results[index] = { instances: [] };
        continue;
      }
      try {
        const plan = await this.#plan(groupId, s, asOf, await this.#progress(groupId, asOf, lasts[index]), firstOfNew);
        planned.push({ index, plan, asOf });
      } catch (err) {
        if (groupIds.length === 1) throw err;
        results[index] = asError(err);
      }
    }
    return this.#claimAndDispatch(groupIds, planned, lasts, io, results, groupIds.length === 1);
  }

  /**
   * Claims the planned windows of the groups and dispatches those claimed here; answers each group (`results`
   * holds the answers of those not planned), as FireDue would. `rethrow`: a failure rejects the call (one
   * FireDue) instead of answering the group's error.
   */
  async #claimAndDispatch(
    groupIds: readonly string[],
    planned: readonly PlannedFire[],
    lasts: readonly (InstanceRecord | undefined)[],
    io: FireIo,
    results: (FireDueResult | Error | Promise<FireDueResult>)[],
    rethrow: boolean,
  ): Promise<(FireDueResult | Error)[]> {
    // Claims in statements of at most CLAIM_BATCH windows, a group's windows (at most FIRE_BATCH) in one; each
    // statement's windows are dispatched before the next is written, so the first of a burst go out early.
    for (let i = 0; i < planned.length;) {
      let end = i + 1;
      let rows = planned[i]!.plan.fire.length;
      while (end < planned.length && rows + planned[end]!.plan.fire.length <= CLAIM_BATCH)
        rows += planned[end++]!.plan.fire.length;
      const part = planned.slice(i, end);
      i = end;
      // Claimed as of now, not as of the reads above: a row written already stale would be taken over at once.
      // Each is claimed straight into DISPATCHED, one write (shared with the other groups due now) before the
      // dispatch; the job ids follow with the RUNNING or final state.
      const claimedAt = this.#o.clock.now();
      const instances = part.flatMap(({ index, plan }) =>
        plan.fire.map((w) => this.#newInstance(groupIds[index]!, w, w.trigger, 'DISPATCHED', claimedAt)),
      );
      let claims: (InstanceRecord | undefined)[] | undefined;
      try {
        claims = instances.length === 0 ? [] : await io.claim(instances);
      } catch (err) {
        claims = await this.#claimedAnyway(instances);
        if (!claims && rethrow) throw err;
      }
      let at = 0;
      for (const { index, plan, asOf } of part) {
        const own = instances.slice(at, at + plan.fire.length);
        let mine = claims?.slice(at, at + plan.fire.length);
        at += plan.fire.length;
        // One group's rows must not fail the others' (as in the Batcher): each is claimed again on its own.
        if (!mine)
          try {
            mine = await io.claim(own);
          } catch (err) {
            results[index] = asError(err);
            continue;
          }
        results[index] = this.#dispatchClaimed(groupIds[index]!, asOf, plan, mine, lasts[index], own);
      }
    }
    return Promise.all(results.map((r) => (r instanceof Promise ? r.catch((err: unknown) => asError(err)) : r))).then(
      (settled) => {
        if (rethrow && settled[0] instanceof Error) throw settled[0];
        return settled;
      },
    );
  }

  /**
   * After a claim that failed: the rows it wrote anyway (the commit went through and its answer was lost), by
   * their instance ids, which only this call used; undefined when it wrote none or they cannot be read. A claim is
   * all or nothing, so either every window it got has its row or none has. Sent now, such windows would
   * otherwise wait a lease for the sweep, the schedule having moved past them.
   */
  async #claimedAnyway(instances: readonly InstanceRecord[]): Promise<(InstanceRecord | undefined)[] | undefined> {
    try {
      const rows: (InstanceRecord | undefined)[] = [];
      for (const i of instances) {
        const row = await this.#o.store.getInstanceById(i.instanceId);
        rows.push(row && row.owner === this.#o.owner ? row : undefined);
      }
      return rows.some((r) => r !== undefined) ? rows : undefined;
    } catch {
      return undefined; // the store is away: the sweep takes them over once their lease has run out
    }
  }

  /**
   * The schedule's own watermark, and the windows after it that have a row already. Read apart only when the
   * group's latest row is not the schedule's own (a window run ahead of it, or one it fired re-run by hand):
   * otherwise that row is the watermark and nothing comes after it.
   */
  async #progress(
    groupId: string,
    asOf: number,
    latest: InstanceRecord | undefined,
  ): Promise<{ last?: InstanceRecord; claimed?: ReadonlyMap<number, InstanceState> }> {
    if (!latest) return {};
    if (SCHEDULE_TRIGGERS.includes(latest.trigger)) return { last: latest };
    const { last, claimedAfter } = await this.#o.store.scheduleProgress(groupId, asOf);
    return { ...(last ? { last } : {}), claimed: new Map(claimedAfter.map((c) => [c.windowStart, c.state])) };
  }

  /** The group's due windows at `asOf` under its rules; records what the catch-up policy skips. */
  async #plan(
    groupId: string,
    s: ScheduleRecord,
    asOf: number,
    { last, claimed }: { last?: InstanceRecord; claimed?: ReadonlyMap<number, InstanceState> },
    firstOfNew: boolean,
  ): Promise<Plan> {
    const rules = firingRules(s.info);
    const now = this.#o.clock.now();
    const active =
      rules.selfDepend === 0 || firstOfNew
        ? 0
        : (await this.#o.store.listInstances({ groupId, states: ACTIVE_STATES, limit: 1000 })).filter(
            (i) => i.state !== 'SCHEDULED' || i.dueTime <= asOf,
          ).length;
    // A long catch-up (a schedule starting far back) is fired in batches: each FireDue claims at most
    // FIRE_BATCH windows and answers nextDueTime = now, so the engine fires the next batch right after, and
    // the caller that registered the schedule (ApproveGroup) is not kept waiting behind thousands of claims.
    const plan = planDue({
      rules,
      now: asOf,
      active,
      graceMs: this.#graceMs,
      maxFire: FIRE_BATCH,
      ...(last ? { last } : {}),
      ...(claimed ? { claimed } : {}),
    });
    if (plan.waiting) this.#waiting.add(groupId);
    else this.#waiting.delete(groupId);
    if (plan.skippedCount > 0) {
      this.#o.logger.warn('missed windows skipped by the catch-up policy', {
        groupId,
        skipped: plan.skippedCount,
        recorded: Math.min(plan.skippedCount, MAX_SKIP_ROWS),
        policy: rules.catchUp.mode,
      });
      instruments().firesSkipped.add(plan.skippedCount, {
        'sluice.skip.reason': 'catch_up_policy',
        'sluice.catch_up.mode': rules.catchUp.mode,
      });
      const skipped = plan.skip.map((w) => this.#newInstance(groupId, w, w.trigger, 'SKIPPED', now));
      for (let i = 0; i < skipped.length; i += CLAIM_BATCH)
        await this.#o.store.claimInstances(skipped.slice(i, i + CLAIM_BATCH));
    }
    return plan;
  }

  /**
   * Dispatches the windows this call claimed and answers the group's FireDue: synchronously unless a window
   * was claimed first by another caller (its row is read) or more are due (the dispatches are awaited).
   */
  #dispatchClaimed(
    groupId: string,
    asOf: number,
    plan: Plan,
    claims: readonly (InstanceRecord | undefined)[],
    last: InstanceRecord | undefined,
    wanted: readonly InstanceRecord[],
  ): FireDueResult | Promise<FireDueResult> {
    const instances: InstanceRecord[] = [];
    // A batch with more due after it waits for its windows to be handed to the operator before answering,
    // so the next batch does not pile thousands of dispatches on the service at once.
    const more = plan.fire.length >= FIRE_BATCH && plan.nextDueTime === asOf;
    const dispatched: Promise<unknown>[] = [];
    const taken: { readonly at: number; readonly windowStart: number; readonly instanceId?: string }[] = [];
    for (const [i, w] of plan.fire.entries()) {
      const claimed = claims[i];
      if (claimed) {
        if (more) {
          const handed = new Promise<unknown>((resolve) => this.#runInstance(claimed, resolve, { root: true }));
          dispatched.push(Promise.race([handed, this.#runs.get(claimed.instanceId)]));
        } else this.#runInstance(claimed);
        instances.push(claimed);
      } else {
        // Another replica or an engine's earlier try claimed it first: report the row it wrote (read below).
        taken.push({
          at: instances.length,
          windowStart: w.start,
          ...(wanted[i] ? { instanceId: wanted[i].instanceId } : {}),
        });
      }
    }
    const answer = (): FireDueResult => {
      if (instances.length === 0 && last && last.dueTime <= asOf) instances.push(last);
      return { instances, ...(plan.nextDueTime !== undefined ? { nextDueTime: plan.nextDueTime } : {}) };
    };
    if (taken.length === 0 && dispatched.length === 0) return answer();
    return (async () => {
      // In window order, as they were planned: each found row goes where its window was.
      const found: (InstanceRecord | undefined)[] = [];
      for (const t of taken) {
        const row = await this.#o.store.getInstance(groupId, t.windowStart);
        // The row this call wrote itself (a claim written whose answer was lost, retried as taken): send it.
        if (row && row.instanceId === t.instanceId && row.state === 'DISPATCHED' && !this.#held.has(row.instanceId))
          this.#runInstance(row);
        found.push(row);
      }
      for (let k = taken.length - 1; k >= 0; k--) {
        const row = found[k];
        if (row) instances.splice(taken[k]!.at, 0, row);
      }
      await Promise.all(dispatched);
      return answer();
    })();
  }

  /**
   * The live (registered or updated) schedules an engine plugin runs, or with `PAUSED` its paused ones,
   * for its reconcile on start.
   */
  async listOwned(engineId: string, which: 'LIVE' | 'PAUSED' = 'LIVE'): Promise<ScheduleInfo[]> {
    const out: ScheduleInfo[] = [];
    for (let after: string | undefined; ;) {
      const page = await this.#o.store.listSchedules({
        statuses: [...FIRING, 'PAUSED'],
        limit: 500,
        ...(after ? { afterGroupId: after } : {}),
      });
      for (const s of page)
        if (s.engineId === engineId && (s.status === 'PAUSED') === (which === 'PAUSED')) out.push(s.info);
      if (page.length < 500) break;
      after = page[page.length - 1]!.groupId;
    }
    return out;
  }

  #newInstance(
    groupId: string,
    w: PlannedWindow,
    trigger: InstanceTrigger,
    state: InstanceState,
    now: number,
  ): InstanceRecord {
    return {
      instanceId: randomUUID(),
      groupId,
      windowStart: w.start,
      windowEnd: w.end,
      dueTime: w.dueTime,
      state,
      trigger,
      jobIds: [],
      attempt: 1,
      owner: this.#o.owner,
      createdAt: now,
      updatedAt: now,
      ...(state === 'SKIPPED' ? { finishedAt: now } : {}),
      ...(state === 'DISPATCHED' ? { dispatchedAt: now } : {}),
    };
  }

  /** Fires one window now; with rerun, again even when it already ran (its output is replaced). */
  async trigger(groupId: string, windowStart: number, rerun: boolean): Promise<InstanceRecord> {
    if (this.#stopped) throw stopping();
    const s = await this.#load(groupId);
    const rules = firingRules(s.info);
    const w = windowAt(rules.spec, windowStart);
    if (!w || w.start !== windowStart) {
      throw invalidArgument(
        'window_start',
        `the start of one of the schedule's windows${w ? ` (the window holding it starts at ${w.start})` : ` within [${rules.spec.startTime}, ${rules.spec.endTime})`}`,
        windowStart,
      );
    }
    const early = await this.#o.store.getInstance(groupId, w.start);
    if (early && early.state === 'SCHEDULED' && early.dueTime > this.#o.clock.now()) {
      // Submitted before it was due: run now what would have run at its due time.
      const taken = await this.#o.store.takeOverInstance(
        early.instanceId,
        early.updatedAt,
        this.#o.owner,
        this.#o.clock.now(),
      );
      if (taken) {
        this.#early.get(taken.instanceId)?.cancel();
        this.#early.delete(taken.instanceId);
        return this.#startClaimed({ ...taken, dueTime: this.#o.clock.now() });
      }
    }
    return this.#fireOne(groupId, rules, w, 'MANUAL', rerun ? FINAL_STATES : []);
  }

  /** Claims (or re-arms, from the given states) one window and dispatches it; returns its instance either way. */
  async #fireOne(
    groupId: string,
    rules: FiringRules,
    w: Window,
    trigger: InstanceTrigger,
    rearmFrom: readonly InstanceState[],
  ): Promise<InstanceRecord> {
    const now = this.#o.clock.now();
    const planned: PlannedWindow = { ...w, dueTime: dueTime(rules, w), trigger };
    const [claimed] = await this.#claims.run([this.#newInstance(groupId, planned, trigger, 'DISPATCHED', now)]);
    if (claimed) {
      this.#runInstance(claimed);
      return claimed;
    }
    if (rearmFrom.length > 0) {
      const rearmed = await this.#o.store.rearmInstance(groupId, w.start, rearmFrom, trigger, this.#o.owner, now);
      if (rearmed) {
        this.#runInstance(rearmed);
        return rearmed;
      }
    }
    const existing = await this.#o.store.getInstance(groupId, w.start);
    if (rearmFrom.length > 0 && existing && ACTIVE_STATES.includes(existing.state)) {
      throw failedPrecondition(
        `window ${w.start} of group '${groupId}' is ${existing.state}; it can run again once it has ended`,
      );
    }
    return existing!;
  }

  /**
   * Records a window submitted from outside the schedule, or finds its instance, and dispatches it when due:
   * at once (answering the dispatched row, its job ids set) when its due time has passed, else at its due time
   * (answering the SCHEDULED row). TIME bounds must be one of the schedule's windows (any with engine None);
   * a window overlapping another recorded one of the group is ALREADY_EXISTS. `created` is false when the
   * window was found rather than recorded or re-armed by this call.
   */
  async claimWindow(input: ClaimWindowInput): Promise<{ instance: InstanceRecord; created: boolean }> {
    if (this.#stopped) throw stopping();
    const s = await this.#load(input.groupId);
    const rules = firingRules(s.info);
    const now = this.#o.clock.now();
    const { boundaryType, lowerBound, upperBound } = input.boundaries;
    let planned: PlannedWindow;
    if (boundaryType === 'TIME') {
      const w = checkTimeWindow(s.info, Number(lowerBound), Number(upperBound));
      planned = { ...w, dueTime: dueTime(rules, w), trigger: 'EXTERNAL' };
      await this.#refuseOverlap(input.groupId, w, '');
    } else {
      const key = offsetKey(lowerBound, upperBound);
      planned = { start: key, end: key, dueTime: now, trigger: 'EXTERNAL' };
    }
    const wanted: InstanceRecord = {
      ...this.#newInstance(input.groupId, planned, 'EXTERNAL', 'SCHEDULED', now),
      ...(boundaryType === 'OFFSET' ? { boundaries: input.boundaries } : {}),
      triggeredBy: input.triggeredBy,
    };
    const claimed = await this.#o.store.claimInstance(wanted);
    if (claimed) {
      if (boundaryType === 'TIME') {
        // Two overlapping windows claimed at once each see the other here: both give way, neither runs.
        try {
          await this.#refuseOverlap(input.groupId, planned, claimed.instanceId);
        } catch (err) {
          await this.#o.store.withdrawInstance(claimed.instanceId);
          throw err;
        }
      }
      return { instance: await this.#startClaimed(claimed), created: true };
    }
    if (input.rerun) {
      const rearmed = await this.#o.store.rearmInstance(
        input.groupId,
        planned.start,
        FINAL_STATES,
        'EXTERNAL',
        this.#o.owner,
        now,
      );
      if (rearmed) return { instance: await this.#startClaimed(rearmed), created: true };
    }
    const existing = await this.#o.store.getInstance(input.groupId, planned.start);
    if (!existing)
      throw new SluiceError(ERROR_CODES.VERSION_CONFLICT, 'the window changed while it was claimed; try again');
    if (boundaryType === 'TIME' && existing.windowEnd !== planned.end)
      throw new SluiceError(
        ERROR_CODES.ALREADY_EXISTS,
        `window [${planned.start}, ${planned.end}) of group '${input.groupId}' overlaps its recorded window [${existing.windowStart}, ${existing.windowEnd}) (${existing.state}); overlapping windows of one group never both run`,
        { field: 'upper_bound' },
      );
    if (input.rerun && ACTIVE_STATES.includes(existing.state))
      throw failedPrecondition(
        `window [${lowerBound}, ${upperBound}) of group '${input.groupId}' is ${existing.state}; it can run again once it has ended`,
      );
    return { instance: existing, created: false };
  }

  async #refuseOverlap(groupId: string, w: Window, exceptId: string): Promise<void> {
    // The same window is found, not refused; a different one sharing its start overlaps like any other.
    const others = (await this.#o.store.overlappingInstances(groupId, w.start, w.end, exceptId)).filter(
      (i) => i.windowStart !== w.start || i.windowEnd !== w.end,
    );
    if (others.length === 0) return;
    const shown = others
      .slice(0, 3)
      .map((i) => `[${i.windowStart}, ${i.windowEnd}) (${i.state})`)
      .join(', ');
    throw new SluiceError(
      ERROR_CODES.ALREADY_EXISTS,
      `window [${w.start}, ${w.end}) of group '${groupId}' overlaps its recorded window${others.length > 1 ? 's' : ''} ${shown}; overlapping windows of one group never both run (submit exactly a recorded window to find it, or with rerun to run it again)`,
      { field: 'lower_bound' },
    );
  }

  /** Dispatches a claimed row now when it is due (answering it dispatched), or arms it for its due time. */
  #startClaimed(instance: InstanceRecord): Promise<InstanceRecord> {
    if (instance.dueTime > this.#o.clock.now()) {
      this.#armEarly(instance);
      return Promise.resolve(instance);
    }
    return new Promise((resolve, reject) =>
      this.#runInstance(instance, (outcome) => (outcome instanceof Error ? reject(outcome) : resolve(outcome))),
    );
  }

  /** Dispatches a window submitted early at its due time, on whichever replica takes it over first. */
  #armEarly(instance: InstanceRecord): void {
    if (this.#stopped || this.#early.has(instance.instanceId)) return;
    const timer = this.#o.clock.scheduleAt(instance.dueTime, () => {
      this.#early.delete(instance.instanceId);
      this.#track(
        (async () => {
          const row = await this.#o.store.getInstanceById(instance.instanceId);
          if (!row || row.state !== 'SCHEDULED' || this.#stopped) return;
          // Another replica took it at its due time (its timer ran first and it is sending the window): left to
          // that one. Should it die, the sweep takes the row over once its lease has run out. A row changed before
          // its due time (a TriggerWindow that could not send it, a re-run) is taken as armed.
          if (row.owner !== this.#o.owner && row.updatedAt >= instance.dueTime) return;
          const taken = await this.#o.store.takeOverInstance(
            row.instanceId,
            row.updatedAt,
            this.#o.owner,
            this.#o.clock.now(),
          );
          if (taken) this.#runInstance(taken);
        })(),
      ).catch((err: unknown) =>
        this.#o.logger.error('dispatching a window at its due time failed', { instanceId: instance.instanceId, err }),
      );
    });
    this.#early.set(instance.instanceId, timer);
  }

  /** Chooses past windows in [from, to) and fires them again with their own parallelism; dry run only lists them. */
  async backfill(input: BackfillInput): Promise<{ windows: PlannedWindow[]; instances: InstanceRecord[] }> {
    if (this.#stopped) throw stopping();
    const s = await this.#load(input.groupId);
    const rules = firingRules(s.info);
    if (
      !Number.isSafeInteger(input.fromTime) ||
      !Number.isSafeInteger(input.toTime) ||
      input.toTime <= input.fromTime
    ) {
      throw invalidArgument('to_time', `epoch milliseconds after from_time (${input.fromTime})`, input.toTime);
    }
    if (!Number.isInteger(input.maxParallel) || input.maxParallel < 0 || input.maxParallel > 100)
      throw invalidArgument('max_parallel', 'an integer from 0 to 100 (0: 1)', input.maxParallel);
    const now = this.#o.clock.now();
    const existing = new Map<number, InstanceRecord>();
    for (let after: { groupId: string; windowStart: number } | undefined; ;) {
      const rows = await this.#o.store.listInstances({
        groupId: input.groupId,
        windowFrom: input.fromTime,
        windowTo: input.toTime,
        limit: 1000,
        ...(after ? { after } : {}),
      });
      for (const r of rows) existing.set(r.windowStart, r);
      if (rows.length < 1000) break;
      after = { groupId: input.groupId, windowStart: rows[rows.length - 1]!.windowStart };
    }
    const chosen: PlannedWindow[] = [];
    let scanned = 0;
    for (const w of windowsAfter(rules.spec, input.fromTime)) {
      // Windows come in order: once one has not closed, none after it has, so the scan ends there.
      if (w.start >= input.toTime || w.end > now) break;
      if (++scanned > BACKFILL_MAX_WINDOWS)
        throw invalidArgument('to_time', `a range of at most ${BACKFILL_MAX_WINDOWS} windows`, input.toTime);
      if (scanned % 1000 === 0) {
        await new Promise((r) => setImmediate(r)); // other calls keep being served during a long scan
        input.signal?.throwIfAborted();
      }
      if (w.start < input.fromTime) continue;
      const row = existing.get(w.start);
      const missing = !row || row.state === 'SKIPPED';
      const pick =
        input.mode === 'ALL'
          ? !row || !ACTIVE_STATES.includes(row.state)
          : input.mode === 'FAILED'
            ? missing || row!.state === 'FAILED'
            : missing;
      if (pick) chosen.push({ ...w, dueTime: dueTime(rules, w), trigger: 'BACKFILL' });
    }
    if (input.reverse) chosen.reverse();
    if (input.dryRun) return { windows: chosen, instances: [] };
    const instances: InstanceRecord[] = [];
    const parallel = input.maxParallel || 1;
    // Dispatch in waves of max_parallel: the next window is claimed when one of the running ends.
    let next = 0;
    const startNext = async (): Promise<void> => {
      // Stopping: the windows not claimed yet are left (Backfill MISSING finds them again).
      if (this.#stopped) return;
      const w = chosen[next++];
      if (!w) return;
      const inst = await this.#fireOne(
        input.groupId,
        rules,
        w,
        'BACKFILL',
        input.mode === 'MISSING'
          ? ['SKIPPED']
          : ['SKIPPED', 'FAILED', ...(input.mode === 'ALL' ? (['SUCCEEDED'] as const) : [])],
      );
      instances.push(inst);
      const done = this.#runs.get(inst.instanceId);
      if (done) await done;
      return startNext();
    };
    const lanes = Array.from({ length: Math.min(parallel, chosen.length) }, () => startNext());
    // The first wave is claimed before answering; the rest continue in the background.
    await new Promise((r) => setImmediate(r));
    this.#track(Promise.all(lanes));
    while (instances.length < Math.min(parallel, chosen.length)) await new Promise((r) => setImmediate(r));
    return { windows: chosen, instances: [...instances] };
  }

  async listInstances(query: Parameters<ScheduleStore['listInstances']>[0]): Promise<InstanceRecord[]> {
    return this.#o.store.listInstances(query);
  }

  // ---- dispatch --------------------------------------------------------------------------------

  readonly #runs = new Map<string, Promise<void>>();

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p)).catch(() => {});
    return p;
  }

  /**
   * Dispatches a claimed (or taken over) instance and follows it to its end. `onDispatched` hears the dispatched
   * row (or the row as it was when the service stops or loses it first), or the error that failed the dispatch.
   */
  #runInstance(
    instance: InstanceRecord,
    onDispatched?: (outcome: InstanceRecord | Error) => void,
    options: { root?: boolean } = {},
  ): void {
    const held = new AbortController();
    this.#held.get(instance.instanceId)?.abort(new InstanceLost('superseded'));
    this.#held.set(instance.instanceId, held);
    // One signal per window, no AbortSignal.any: stop() aborts every held controller (a burst has thousands).
    if (this.#stopping.signal.aborted) held.abort(this.#stopping.signal.reason);
    const ended = (): void => {
      this.#runs.delete(instance.instanceId);
      if (this.#held.get(instance.instanceId) === held) this.#held.delete(instance.instanceId);
      this.#inflight.delete(run);
    };
    // One trace per fired window: the dispatch, the operator's job and the connector reads join it. A window
    // submitted from outside and run at once joins its caller's trace instead (a W3C traceparent is continued).
    // One promise follows the run (no catch and finally chained on): a burst starts thousands at once.
    const run: Promise<void> = tracer.startActiveSpan(
      'window fire',
      {
        root: options.root ?? onDispatched === undefined,
        attributes: {
          'sluice.group.id': instance.groupId,
          'sluice.window.start': instance.windowStart,
          'sluice.window.end': instance.windowEnd,
          'sluice.instance.id': instance.instanceId,
          'sluice.instance.attempt': instance.attempt,
          ...(instance.boundaries ? { 'sluice.window.boundary_type': instance.boundaries.boundaryType } : {}),
        },
      },
      (span) =>
        this.#dispatchAndFollow(instance, held.signal, onDispatched).then(
          () => {
            span.end();
            ended();
          },
          (err: unknown) => {
            span.setStatus({ code: SpanStatusCode.ERROR });
            span.end();
            this.#o.logger.error('instance run failed', { instanceId: instance.instanceId, err });
            ended();
          },
        ),
    );
    this.#runs.set(instance.instanceId, run);
    this.#inflight.add(run);
  }

  /**
   * Submits the window (again, for a row taken over after dispatch: the operator answers the window's jobs for
   * the same run id) and follows its jobs. Nothing is written once `signal` aborts: this replica is stopping,
   * or another one holds the row now.
   */
  async #dispatchAndFollow(
    instance: InstanceRecord,
    signal: AbortSignal,
    onDispatched: (outcome: InstanceRecord | Error) => void = () => {},
  ): Promise<void> {
    let jobIds: readonly string[];
    try {
      jobIds = await this.#o.dispatcher.submit(
        {
          groupId: instance.groupId,
          ...(instance.boundaries ?? {
            boundaryType: 'TIME',
            lowerBound: String(instance.windowStart),
            upperBound: String(instance.windowEnd),
          }),
          instanceId: runId(instance),
          rerun: instance.attempt > 1,
        },
        signal,
      );
    } catch (err) {
      // Stopping: the row stays as it is and this replica takes it up when it starts again; lost: another has it.
      if (signal.aborted) return onDispatched(instance);
      onDispatched(err instanceof Error ? err : new Error(String(err)));
      const message = err instanceof Error ? err.message : String(err);
      this.#o.logger.error('dispatch failed', { groupId: instance.groupId, windowStart: instance.windowStart, err });
      // A row with no job ids yet (SCHEDULED, or claimed DISPATCHED before the call) ends here when the operator
      // refused it. One the call may have reached (UNAVAILABLE: a timeout after the operator made the jobs) is
      // left for the next take-over, which submits the same run id and gets those jobs, SCHEDULED or DISPATCHED
      // alike: ended FAILED, its jobs would run unfollowed and a re-run would run the window twice. Rows with
      // job ids are left too, as they always were.
      const ends = instance.jobIds.length === 0 && !mayPass(err);
      if (ends) {
        await this.#update(
          instance.instanceId,
          { state: 'FAILED', error: message, finishedAt: this.#o.clock.now() },
          instance.state === 'SCHEDULED' ? ['SCHEDULED'] : ['DISPATCHED'],
        );
        this.#wake(instance.groupId);
      }
      return;
    }
    if (signal.aborted) return onDispatched(instance);
    const now = this.#o.clock.now();
    const dispatched =
      instance.state === 'SCHEDULED'
        ? await this.#o.store.updateInstance(
            instance.instanceId,
            { state: 'DISPATCHED', jobIds, dispatchedAt: now },
            now,
            ['SCHEDULED'],
          )
        : sameIds(instance.jobIds, jobIds)
          ? instance
          : instance.jobIds.length === 0
            ? // Claimed DISPATCHED before the call: the ids are written with the RUNNING or final state, so the
              // fire costs one write before its dispatch. A replica taking the row over meanwhile submits it again
              // and the operator answers these same jobs.
              { ...instance, jobIds }
            : await this.#o.store.updateInstance(instance.instanceId, { jobIds }, now, ['DISPATCHED', 'RUNNING']);
    onDispatched(dispatched ?? (await this.#o.store.getInstanceById(instance.instanceId)) ?? instance);
    if (!dispatched) return;
    await this.#afterFiring(); // the rest of a burst goes out first
    if (!signal.aborted) await this.#follow(dispatched, signal);
  }

  async #follow(instance: InstanceRecord, signal: AbortSignal): Promise<void> {
    let outcome: { succeeded: boolean; error?: string };
    try {
      outcome = await this.#o.dispatcher.follow(
        instance.jobIds,
        () =>
          void this.#update(instance.instanceId, { state: 'RUNNING', jobIds: instance.jobIds }, ['DISPATCHED']).catch(
            () => {},
          ),
        signal,
      );
    } catch (err) {
      if (signal.aborted) return; // followed again at the next start, or by the replica that holds it now
      throw err;
    }
    await this.#update(
      instance.instanceId,
      {
        state: outcome.succeeded ? 'SUCCEEDED' : 'FAILED',
        jobIds: instance.jobIds,
        finishedAt: this.#o.clock.now(),
        ...(outcome.error ? { error: outcome.error } : {}),
      },
      ['DISPATCHED', 'RUNNING'],
    );
    this.#wake(instance.groupId);
  }
}
