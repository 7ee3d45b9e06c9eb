import type { Boundaries, Options, ScheduleInfo } from 'sluice/sdk';

/** A connector with its options, at one end of a stream. */
export interface Endpoint {
  readonly connectorId: string;
  readonly options: Options;
}

/** One output field: from a source field, optionally renamed and cast. */
export interface FieldMapping {
  readonly sourceField: string;
  /** Defaults to sourceField. */
  readonly targetField: string;
  /** '' keeps the value as it is. */
  readonly cast: '' | 'string' | 'int' | 'float' | 'bool' | 'timestamp' | 'json';
}

export interface StreamSpec {
  readonly streamId: string;
  readonly source: Endpoint;
  readonly sink: Endpoint;
  /** Empty: every field as it is. */
  readonly fields: readonly FieldMapping[];
}

/** NEW → APPROVED → REGISTERED (schedule registered); DELETED. */
export type GroupStatus = 'NEW' | 'APPROVED' | 'REGISTERED' | 'DELETED';

export interface RetryPolicy {
  /** Attempts in all, including the first. */
  readonly maxAttempts: number;
  /** Delay before the first retry; doubles each time. */
  readonly initialBackoffMs: number;
}

/** A sync task: InLong's group with its streams and schedule. */
export interface GroupRecord {
  readonly groupId: string;
  readonly description: string;
  readonly streams: readonly StreamSpec[];
  readonly schedule: ScheduleInfo;
  /** 'embedded' | 'flink' | '' (the service default). */
  readonly runner: string;
  readonly retry: RetryPolicy;
  readonly status: GroupStatus;
  readonly version: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type JobState = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
export const FINAL_JOB_STATES: readonly JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

export interface JobProgress {
  readonly records: number;
  readonly bytes: number;
  /** Source positions reached, e.g. Kafka partition → offset. */
  readonly positions: Readonly<Record<string, string>>;
}

/** One stream of one window. */
export interface JobRecord {
  readonly jobId: string;
  readonly groupId: string;
  readonly streamId: string;
  /** The schedule instance that fired the window ('' for an external or manual submission). */
  readonly instanceId: string;
  readonly boundaries: Boundaries;
  /**
   * 1 for the first run of the window; a re-run (SubmitOfflineJob with rerun) creates jobs of the next
   * generation. Unique on (groupId, streamId, boundaries, generation): the idempotency key.
   */
  readonly generation: number;
  readonly state: JobState;
  /** The runner that runs it: 'embedded' or 'flink'. */
  readonly runner: string;
  /** Attempts made so far (retries per the group's policy). */
  readonly attempt: number;
  /** Source options with the window's bounds filled in (the connector's fillInBoundaries). */
  readonly resolvedSourceOptions: Options;
  /** Where a TIME window resolved to (e.g. Kafka start/stop offsets), once the reader opened. */
  readonly resolvedPositions: Readonly<Record<string, string>>;
  readonly progress: JobProgress;
  readonly error: string;
  /** Which operator replica runs it. */
  readonly owner: string;
  /** Until when the owner holds it (epoch ms): renewed while it lives, taken over by another replica after. */
  readonly leaseUntil?: number;
  readonly createdAt: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  /** The W3C trace id of its latest run, when tracing is on. */
  readonly traceId?: string;
  readonly updatedAt: number;
}

/** One run of a job: the replica that holds it and the attempt it runs. */
export interface JobRun {
  readonly owner: string;
  readonly attempt: number;
}

export interface JobPatch {
  readonly state?: JobState;
  readonly attempt?: number;
  readonly resolvedPositions?: Readonly<Record<string, string>>;
  readonly progress?: JobProgress;
  readonly error?: string;
  readonly owner?: string;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly traceId?: string;
}

export interface JobQuery {
  readonly groupId?: string;
  readonly states?: readonly JobState[];
  /** Jobs whose window lower bound (as a number, TIME windows) is in [windowFrom, windowTo). */
  readonly windowFrom?: number;
  readonly windowTo?: number;
  /** Keyset paging: jobs with jobId greater than this, ordered by jobId (ids sort by creation time). */
  readonly afterJobId?: string;
  readonly limit: number;
}

/** Where groups and jobs live: the same database as the schedules (SQLite by default, PostgreSQL when configured). */
export interface OperatorStore {
  migrate(): Promise<void>;
  /**
   * ALREADY_EXISTS when a group with the id exists and is not DELETED. A DELETED one is replaced, and its versions
   * go on (the record's version is added to the deleted row's), so no version of the deleted group matches the
   * new one. Answers the version stored.
   */
  insertGroup(group: GroupRecord): Promise<number>;
  /** Writes `group` (version expectedVersion + 1); VERSION_CONFLICT on a stale version, NOT_FOUND when missing. */
  updateGroup(group: GroupRecord, expectedVersion: number): Promise<void>;
  getGroup(groupId: string): Promise<GroupRecord | undefined>;
  /** Ordered by groupId. */
  listGroups(query: {
    readonly statuses?: readonly GroupStatus[];
    readonly afterGroupId?: string;
    readonly limit: number;
  }): Promise<GroupRecord[]>;
  /**
   * Inserts the jobs of one window (one per stream) in one transaction unless jobs of that
   * (groupId, boundaries, generation) exist; returns true when this call inserted them.
   */
  insertWindowJobs(jobs: readonly JobRecord[]): Promise<boolean>;
  /** The jobs of the window's latest generation (empty when none). */
  latestWindowJobs(groupId: string, boundaries: Boundaries): Promise<JobRecord[]>;
  /**
   * Applies the patch when the state is one of fromStates (any when omitted) and, given `run`, while the job is
   * still that run's (its owner and attempt: a replica that lost the job to a take-over writes nothing); the row
   * after, or undefined.
   */
  updateJob(
    jobId: string,
    patch: JobPatch,
    now: number,
    fromStates?: readonly JobState[],
    run?: JobRun,
  ): Promise<JobRecord | undefined>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  /** The jobs among `jobIds` that exist (any order): one read for many, as watches of remote jobs poll. */
  getJobs(jobIds: readonly string[]): Promise<JobRecord[]>;
  listJobs(query: JobQuery): Promise<JobRecord[]>;
  /**
   * Extends to `until` the leases `owner` holds on the unfinished jobs among `jobIds`; returns the ids it still
   * holds (a job cancelled or taken over elsewhere is missing).
   */
  renewJobLeases(owner: string, jobIds: readonly string[], until: number): Promise<string[]>;
  /** Unfinished (PENDING, RUNNING) jobs whose lease ended before `now` or that have none, by jobId. */
  expiredJobs(now: number, limit: number): Promise<JobRecord[]>;
  /**
   * Takes an unfinished job over for `owner` until `until` when its lease is still the one seen: of replicas
   * finding the same expired job, one gets it. The row after, or undefined.
   */
  takeOverJob(
    jobId: string,
    seenLeaseUntil: number | undefined,
    owner: string,
    until: number,
    now: number,
  ): Promise<JobRecord | undefined>;
  close(): Promise<void>;
}
