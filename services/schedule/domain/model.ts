import type { Boundaries, ScheduleInfo } from 'sluice/sdk';

/** A schedule's life: NEW → APPROVED → REGISTERED ⇄ UPDATED, PAUSED from and back to them, any → DELETED. */
export type ScheduleStatus = 'NEW' | 'APPROVED' | 'REGISTERED' | 'UPDATED' | 'PAUSED' | 'DELETED';

export interface ScheduleRecord {
  readonly groupId: string;
  readonly info: ScheduleInfo;
  readonly status: ScheduleStatus;
  /** The engine plugin that accepted info.scheduleEngine. */
  readonly engineId: string;
  /** Optimistic lock; starts at 1 and grows by one on every change. */
  readonly version: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type InstanceState = 'SCHEDULED' | 'DISPATCHED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'SKIPPED';
export type InstanceTrigger = 'SCHEDULE' | 'CATCH_UP' | 'MANUAL' | 'BACKFILL' | 'EXTERNAL';
/** Triggers of the windows a schedule fires or skips itself: only these move its watermark. */
export const SCHEDULE_TRIGGERS: readonly InstanceTrigger[] = ['SCHEDULE', 'CATCH_UP'];
export const FINAL_STATES: readonly InstanceState[] = ['SUCCEEDED', 'FAILED', 'SKIPPED'];

/** The ledger row of one window: unique on (groupId, windowStart), written before dispatch. */
export interface InstanceRecord {
  readonly instanceId: string;
  readonly groupId: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly dueTime: number;
  readonly state: InstanceState;
  readonly trigger: InstanceTrigger;
  readonly jobIds: readonly string[];
  /** 1 for the first run; a re-run (backfill, trigger with rerun) adds one. */
  readonly attempt: number;
  readonly dispatchedAt?: number;
  readonly finishedAt?: number;
  readonly error?: string;
  /** Which replica claimed it (for diagnosis). */
  readonly owner: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  /**
   * An OFFSET window's bounds (canonical form). Such a row has no window times: its windowStart and windowEnd
   * are a negative key derived from the bounds (unique per group, never a TIME window's start), its due time
   * the moment it was submitted. Absent for TIME windows, whose bounds are windowStart and windowEnd.
   */
  readonly boundaries?: Boundaries;
  /** Who submitted an EXTERNAL window (engine:<id>, token:<fingerprint>, inlong:<user>). */
  readonly triggeredBy?: string;
}

export interface InstancePatch {
  readonly state?: InstanceState;
  readonly jobIds?: readonly string[];
  readonly dispatchedAt?: number;
  readonly finishedAt?: number;
  readonly error?: string;
}

/** One updateInstance of several written together (updateInstances). */
export interface InstanceUpdate {
  readonly instanceId: string;
  readonly patch: InstancePatch;
  readonly now: number;
  readonly fromStates?: readonly InstanceState[];
}

export interface InstanceQuery {
  readonly groupId?: string;
  readonly states?: readonly InstanceState[];
  /** Windows starting in [windowFrom, windowTo); undefined bounds are open. */
  readonly windowFrom?: number;
  readonly windowTo?: number;
  /** Keyset paging: rows after this (groupId, windowStart), in that order. */
  readonly after?: { readonly groupId: string; readonly windowStart: number };
  readonly limit: number;
}

/**
 * Where schedules and the ledger live: SQLite by default, PostgreSQL when several replicas share one
 * ledger. Every method is atomic on its own; the unique (groupId, windowStart) row is what makes
 * exactly one replica fire a window.
 */
/** What a fire planned ahead checks at its due time (ScheduleStore.firingHeads). */
export interface FiringHead {
  readonly version: number;
  readonly status: string;
  /** The schedule row's last write: a schedule deleted and registered again is at version 2 again. */
  readonly updatedAt: number;
  /** The group's latest TIME instance due by the instant asked, if any. */
  readonly lastId?: string;
}

export interface ScheduleStore {
  /** Applies pending versioned migrations. */
  migrate(): Promise<void>;
  /**
   * ALREADY_EXISTS when the group has a schedule that is not DELETED (a DELETED one is replaced). `replaced` is
   * false when the group had no schedule row at all: then the ledger holds no window of it either (windows are
   * only recorded for a group with a schedule, and schedule rows are never removed). `version` is the version
   * stored: the record's for a new row; for a replaced one, the deleted row's plus the record's, so a group's
   * versions never repeat (every replica sees the new schedule as newer than the deleted one).
   */
  insertSchedule(record: ScheduleRecord): Promise<{ replaced: boolean; version: number }>;
  /** Writes `record` (whose version is expectedVersion + 1); VERSION_CONFLICT when the stored version is not expectedVersion. */
  updateSchedule(record: ScheduleRecord, expectedVersion: number): Promise<void>;
  getSchedule(groupId: string): Promise<ScheduleRecord | undefined>;
  /** getSchedule for several groups in one query (at most 500): in the order given, undefined where none. */
  getSchedules(groupIds: readonly string[]): Promise<(ScheduleRecord | undefined)[]>;
  /** Ordered by groupId; `afterGroupId` for keyset paging. */
  listSchedules(query: {
    readonly statuses?: readonly ScheduleStatus[];
    readonly afterGroupId?: string;
    readonly limit: number;
  }): Promise<ScheduleRecord[]>;
  /** Inserts the instance unless (groupId, windowStart) exists; returns it when this call inserted it. */
  claimInstance(instance: InstanceRecord): Promise<InstanceRecord | undefined>;
  /**
   * claimInstance for many windows in one write (at most 500): answers, in order, each instance this call
   * inserted, or undefined where its window was taken (by a stored row or an earlier entry of the call).
   */
  claimInstances(instances: readonly InstanceRecord[]): Promise<(InstanceRecord | undefined)[]>;
  /**
   * Re-arms an existing instance for another run when its state is one of `fromStates`: state
   * SCHEDULED, attempt + 1 (a SKIPPED row, which never ran, stays attempt 1), trigger, owner,
   * jobIds/error/finishedAt cleared. Returns it when this call
   * re-armed it (so two replicas cannot both re-run a window).
   */
  rearmInstance(
    groupId: string,
    windowStart: number,
    fromStates: readonly InstanceState[],
    trigger: InstanceTrigger,
    owner: string,
    now: number,
  ): Promise<InstanceRecord | undefined>;
  /** Applies the patch when the current state is one of `fromStates` (any state when omitted); returns the row after, or undefined. */
  updateInstance(
    instanceId: string,
    patch: InstancePatch,
    now: number,
    fromStates?: readonly InstanceState[],
  ): Promise<InstanceRecord | undefined>;
  /**
   * updateInstance for each of several instances (at most 500), in one transaction; answers, in order, each row
   * after its update or undefined. Updates of one instance apply in the order given.
   */
  updateInstances(updates: readonly InstanceUpdate[]): Promise<(InstanceRecord | undefined)[]>;
  /**
   * Takes an instance in one of `states` (default SCHEDULED) over for `owner` when it is still exactly as it was
   * seen (its updatedAt unchanged): of replicas that find the same orphaned row, one gets it. Returns it when
   * this call won.
   */
  takeOverInstance(
    instanceId: string,
    seenUpdatedAt: number,
    owner: string,
    now: number,
    states?: readonly InstanceState[],
  ): Promise<InstanceRecord | undefined>;
  /**
   * Moves updated_at on for the unfinished instances `owner` still owns among `instanceIds` (its heartbeat, so
   * no replica takes them over while it lives); answers those ids.
   */
  renewInstances(owner: string, instanceIds: readonly string[], now: number): Promise<string[]>;
  getInstance(groupId: string, windowStart: number): Promise<InstanceRecord | undefined>;
  getInstanceById(instanceId: string): Promise<InstanceRecord | undefined>;
  /** Ordered by (groupId, windowStart). */
  listInstances(query: InstanceQuery): Promise<InstanceRecord[]>;
  /** The TIME instance with the greatest windowStart of the group; of those due by `dueBy` when given. */
  lastInstance(groupId: string, dueBy?: number): Promise<InstanceRecord | undefined>;
  /** lastInstance for several groups in one query (at most 500): in the order given, undefined where none. */
  lastInstances(
    queries: readonly { readonly groupId: string; readonly dueBy?: number }[],
  ): Promise<(InstanceRecord | undefined)[]>;
  /**
   * What firing reads, for several groups (at most 500): each group's schedule and, where it has one,
   * lastInstance(groupId, dueBy); in the order given, both undefined where there is no schedule. One query on
   * PostgreSQL (one round trip per batch of due groups).
   */
  schedulesWithLast(
    queries: readonly { readonly groupId: string; readonly dueBy?: number }[],
  ): Promise<{ schedule?: ScheduleRecord; last?: InstanceRecord }[]>;
  /**
   * What a fire planned ahead checks at its due time, for several groups (at most 500): each group's schedule
   * version, status and updatedAt and the id of lastInstance(groupId, dueBy), in the order given; undefined where
   * there is no schedule. Cheaper than schedulesWithLast: no schedule info or instance row is read.
   */
  firingHeads(groupIds: readonly string[], dueBy: number): Promise<(FiringHead | undefined)[]>;
  /**
   * Where the schedule itself has got to, when the group's latest row is not its own (a window run ahead by
   * TriggerWindow, Backfill or an external submission, or one it fired re-run by hand): its latest TIME
   * instance due by `dueBy` with trigger SCHEDULE or CATCH_UP, and the window start and state of every TIME
   * instance after that one, in window order.
   */
  scheduleProgress(
    groupId: string,
    dueBy: number,
  ): Promise<{
    last?: InstanceRecord;
    claimedAfter: readonly { readonly windowStart: number; readonly state: InstanceState }[];
  }>;
  /** Up to 10 TIME instances of the group, not SKIPPED and other than `exceptId`, whose windows meet [lower, upper). */
  overlappingInstances(groupId: string, lower: number, upper: number, exceptId: string): Promise<InstanceRecord[]>;
  /** Deletes a SCHEDULED instance never dispatched (a claim given up); true when this call deleted it. */
  withdrawInstance(instanceId: string): Promise<boolean>;
  /**
   * Per group whose schedule is not DELETED, the greatest windowEnd of its SUCCEEDED instances: the first `limit`
   * groups by groupId. Data freshness is restored from it at start.
   */
  lastSucceededWindows(limit: number): Promise<{ groupId: string; windowEnd: number }[]>;
  /**
   * Where the store can announce changes (PostgreSQL): calls `onChange` with the group of every schedule written,
   * by any replica, once committed; `onGap` when announcements may have been missed (the listening connection
   * was lost and is back), so the caller re-reads everything. Absent where the store cannot announce (SQLite).
   */
  watchSchedules?(listener: ScheduleChangeListener): Promise<{ close(): Promise<void> }>;
  close(): Promise<void>;
}

export interface ScheduleChangeListener {
  onChange(groupId: string): void;
  onGap(): void;
}
