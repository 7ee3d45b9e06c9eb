import type { Boundaries, HookContext } from './types.js';
import type { Availability, HookNames } from './connector.js';

/** A schedule as an engine sees it; InLong's ScheduleInfo with times in epoch milliseconds. */
export interface ScheduleInfo {
  readonly groupId: string;
  /** 0: normal (unit + interval), 1: crontab. */
  readonly scheduleType: number;
  /** Y M W D H I S O. */
  readonly scheduleUnit: string;
  readonly scheduleInterval: number;
  readonly startTime: number;
  readonly endTime: number;
  /** Minutes. */
  readonly delayTime: number;
  readonly selfDepend: number;
  readonly taskParallelism: number;
  readonly crontabExpression: string;
  readonly scheduleEngine: string;
  readonly version: number;
  /** IANA zone, e.g. Europe/Berlin. */
  readonly timeZone: string;
  readonly catchUp: { readonly mode: 'ALL' | 'LATEST' | 'NONE'; readonly windowMs: number };
  readonly alignment: 'END' | 'START';
}

/** What an engine sends when a window fires: InLong's OfflineJobRequest. */
export interface OfflineJobRequest extends Boundaries {
  readonly groupId: string;
  readonly instanceId?: string;
}

/** A ledger row a FireDue call claimed, or found claimed by an earlier call for the same window. */
export interface FiredInstance {
  readonly instanceId: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly dueTime: number;
  /** SCHEDULED, DISPATCHED, RUNNING, SUCCEEDED, FAILED or SKIPPED. */
  readonly state: string;
}

/** What `fireDue` did. */
export interface FireDueOutcome {
  /**
   * The instances this call claimed and dispatched, those of due windows another caller claimed first,
   * and, when nothing new was due, the group's latest instance due at `asOf`.
   */
  readonly instances: readonly FiredInstance[];
  /**
   * The next window's due time after `asOf`, or `asOf` itself when more windows are due than one call fires
   * (a long catch-up goes in batches of 100: call again at once); undefined when the schedule has ended or
   * waits for running windows.
   */
  readonly nextDueTime?: number;
}

/** One group's part of `fireDueMany`: what `fireDue` would have answered for it, or why its fire failed. */
export type FireDueManyOutcome =
  | { readonly groupId: string; readonly ok: true; readonly outcome: FireDueOutcome }
  | { readonly groupId: string; readonly ok: false; readonly error: Error };

/**
 * The cron language of an external scheduler: `unix` is 5 fields (minute hour day-of-month month
 * day-of-week) with a one-minute resolution, as Airflow's cron timetables read it; `quartz` is 7 fields
 * (second minute hour day-of-month month day-of-week year) with a one-second resolution, as Quartz (and
 * so DolphinScheduler) reads it.
 */
export type CronDialect = 'unix' | 'quartz';

/** A cron for an external scheduler whose ticks cover every due time of a schedule. */
export interface CoveringCron {
  /** The expression in the requested dialect, evaluated in `timeZone`. */
  readonly expression: string;
  /**
   * The IANA zone the external scheduler must evaluate the cron in: the schedule's zone, except for
   * S, I and H schedules (fixed durations, not wall-clock times), whose crons are in UTC so that a
   * daylight-saving change neither shifts their ticks nor repeats an hour no cron can tick twice in.
   */
  readonly timeZone: string;
  /**
   * True when every tick is a due time. False when no cron of the dialect expresses the schedule (e.g.
   * every 7 days from an arbitrary anchor, month-end clamping): then it is the coarsest cron that puts a
   * tick in [due, due + resolution) for every due time, and FireDue makes the extra ticks no-ops.
   */
  readonly exact: boolean;
  /** The dialect's resolution in ms: 60,000 for `unix`, 1,000 for `quartz`. */
  readonly resolutionMs: number;
  /** Epoch ms of the first due time: the external scheduler's start date. */
  readonly firstDue: number;
  /** Epoch ms of the last due time; absent when the schedule has no end. */
  readonly lastDue?: number;
}

/** What an engine says of the scheduler it drives; ListEngines shows it. */
export interface EngineAbout {
  /** The counterpart and its version, e.g. `Airflow 3.1.0` or `DolphinScheduler 3.2.2`. */
  readonly remote?: string;
  /** A live check's verdict: unavailable, with the reason, when the counterpart does not answer. */
  readonly availability?: Availability;
}

/** Given to an engine's start hook: how it reaches the rest of Sluice. */
export interface EngineContext extends HookContext {
  /** Now, in epoch ms; tests drive this clock. */
  now(): number;
  /** Runs fn at `at` (epoch ms) on the service's clock; use it instead of setTimeout so tests can drive time. */
  scheduleAt(at: number, fn: () => void): { cancel(): void };
  /**
   * The one firing contract: an engine is a clock that says *when*, Sluice decides *which windows*.
   * Fires every window of the group that is due at `asOf` (epoch ms; omitted or 0: now), as the
   * schedule's catch-up, selfDepend and parallelism rules allow at that instant. Each window is written
   * to the ledger before it is dispatched, so calling this twice, from two replicas, or again after an
   * engine retry fires nothing twice. An `asOf` more than 5 s ahead of `now()` is refused
   * (INVALID_ARGUMENT). External engines reach the same contract as `ScheduleService/FireDue` over gRPC
   * or `POST /sluice/v1/groups/{groupId}/fire-due` over HTTP.
   *
   * Resolves with the instances fired (or found already fired: see {@link FiredInstance}) and when to
   * call again (`nextDueTime` undefined: nothing is due until a running window ends or the schedule
   * changes; `onWake` tells when). A group that is paused, deleted or unknown fires nothing.
   */
  fireDue(groupId: string, asOf?: number): Promise<FireDueOutcome>;
  /**
   * `fireDue` for many groups due at the same `asOf` (omitted or 0: now), e.g. every schedule due on the hour:
   * the same contract and outcome per group, at a fraction of the cost of one call per group (their schedules,
   * latest instances and claims are read and written a few hundred groups a statement). Resolves with one
   * {@link FireDueManyOutcome} per group, in the order given; a group whose fire failed (its claim could not be
   * written) has `ok: false` and fired nothing, and the others are unaffected. Rejects only when `asOf` is
   * refused (INVALID_ARGUMENT, as `fireDue`). A group listed twice is fired once and answered twice.
   *
   * Optional for engines to call, and absent on hosts older than the method: an engine falls back to one
   * `fireDue` per group when `ctx.fireDueMany` is undefined.
   */
  fireDueMany?(groupIds: readonly string[], asOf?: number): Promise<readonly FireDueManyOutcome[]>;
  /**
   * Tells the service that `groupIds` are due at `at` (epoch ms, in the next minute): it may read and plan their
   * windows now, so that at `at` a `fireDueMany` of them only checks that nothing changed meanwhile (the
   * schedule's version and status, the group's latest window) before it claims and dispatches. A hint, answered
   * by nothing: what `fireDue` and `fireDueMany` answer is the same with it or without it, and a plan found out
   * of date is made again. Worth calling about a second ahead for instants many schedules share.
   *
   * Optional for engines to call, and absent on hosts older than the method.
   */
  prepareDue?(groupIds: readonly string[], at: number): void;
  /**
   * The live schedules (registered or updated, not paused or deleted) this engine runs, as stored. An
   * engine holding state elsewhere (an external scheduler's DAGs or workflows) compares them with what
   * it holds on `start` and repairs the drift: creates the missing, removes the unknown.
   */
  listSchedules(): Promise<readonly ScheduleInfo[]>;
  /**
   * The paused schedules this engine runs, as stored. An engine with `pause`/`resume` hooks keeps their
   * objects on `start` (present, held as `pause` leaves them) rather than removing them as unknown.
   */
  listPaused(): Promise<readonly ScheduleInfo[]>;
  /** Subscribes to wake-ups: a group whose running window ended, or that was resumed, may have windows due. */
  onWake(listener: (groupId: string) => void): void;
  /**
   * The cron an external scheduler should tick on to drive `info` through `fireDue`: exact where the
   * dialect can say it, otherwise the coarsest cron with a tick in [due, due + resolution) of every due
   * time that PreviewWindows lists (due times with a sub-resolution part round up). Throws
   * INVALID_ARGUMENT when the schedule is not valid.
   */
  coveringCron(info: ScheduleInfo, dialect: CronDialect): CoveringCron;
  /** Sends a window to the operator directly (external-style engines); the built-in engine uses fireDue. */
  submitOfflineJob(request: OfflineJobRequest): Promise<{ readonly jobIds: readonly string[] }>;
}

/**
 * A schedule-engine plugin (InLong's ScheduleEngineClient and ScheduleEngine in one): the default export
 * of an engine plugin's entry module. Hooks signal failure by throwing a SluiceError (InLong returned
 * false); anything else thrown is reported as PLUGIN_FAILED with the plugin id and hook name.
 */
export interface EnginePlugin {
  readonly kind?: 'engine';
  /**
   * True when this engine runs schedules whose scheduleEngine is `engineType`. Keep it cheap, and answer for the
   * type alone: the schedule service asks once per distinct value and keeps the engine that accepted it for
   * its life (whether the engine is available is still checked at every registration).
   */
  accept(engineType: string): boolean;
  /** Starts firing the schedule's windows. Called once per schedule, after it is stored. */
  register(info: ScheduleInfo, ctx: HookContext): void | Promise<void>;
  /** Stops firing the group's windows; must be idempotent. Called on unregister and on delete. */
  unregister(groupId: string, ctx: HookContext): void | Promise<void>;
  /** Replaces the schedule in place; windows already fired are not fired again. */
  update(info: ScheduleInfo, ctx: HookContext): void | Promise<void>;
  /**
   * Holds the group's firing at the counterpart while its schedule is paused (e.g. a workflow taken
   * offline, a DAG paused), keeping what it holds; must be idempotent. Called after the PAUSED status is
   * stored; when it throws, the status is put back and PauseSchedule fails with the hook's error.
   * Without it, a paused group's ticks still reach FireDue, which fires nothing while it is paused.
   */
  pause?(groupId: string, ctx: HookContext): void | Promise<void>;
  /**
   * Lets the group fire again after `pause`: brings its objects back online, creating them when missing
   * (so it also repairs a counterpart that lost them); must be idempotent. Called after the resumed
   * status is stored; when it throws, the status goes back to PAUSED and ResumeSchedule fails with the
   * hook's error.
   */
  resume?(info: ScheduleInfo, ctx: HookContext): void | Promise<void>;
  /**
   * The engine's tick resolution: how long after a window's due time it may fire it (e.g. the period of
   * its clock). Default 0: exactly at the due time, on the service's clock. The conformance kit holds
   * the engine to it.
   */
  resolutionMs?(ctx: HookContext): number;
  /**
   * Describes the counterpart this engine drives (its version; whether it answers) for ListEngines.
   * Called by the catalog on ListEngines with a short deadline; keep it to one cheap request.
   */
  about?(ctx: HookContext): EngineAbout | Promise<EngineAbout>;
  /** Called once when the service starts, before any register, with the context to fire windows through. */
  start?(ctx: EngineContext): void | Promise<void>;
  /** Called once on shutdown; stop timers and release connections. */
  stop?(ctx: HookContext): void | Promise<void>;
}

/** An engine plugin's hooks. */
export type EngineHook = HookNames<EnginePlugin>;

/** Every engine hook, once, and whether it is required: the compiler checks both against EnginePlugin. */
const ENGINE_HOOK_SET: Readonly<Record<EngineHook, 'required' | 'optional'>> = {
  accept: 'required',
  register: 'required',
  unregister: 'required',
  update: 'required',
  pause: 'optional',
  resume: 'optional',
  resolutionMs: 'optional',
  about: 'optional',
  start: 'optional',
  stop: 'optional',
} satisfies {
  readonly [K in EngineHook]: Partial<Pick<EnginePlugin, K>> extends Pick<EnginePlugin, K> ? 'optional' : 'required';
};
export const ENGINE_HOOKS = Object.freeze(Object.keys(ENGINE_HOOK_SET) as EngineHook[]);
export const ENGINE_REQUIRED_HOOKS = Object.freeze(ENGINE_HOOKS.filter((h) => ENGINE_HOOK_SET[h] === 'required'));
export const ENGINE_FIELDS = ['kind'] as const;

/** Declares an engine plugin; returns it unchanged, typed and marked as an engine. */
export function defineEnginePlugin<const T extends EnginePlugin>(plugin: T): T & { readonly kind: 'engine' } {
  return Object.freeze({ ...plugin, kind: 'engine' as const });
}
