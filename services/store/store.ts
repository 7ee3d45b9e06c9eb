import type { Kysely } from 'kysely';
import { type Boundaries, ERROR_CODES, SluiceError, isSluiceError } from 'sluice/sdk';
import type {
  GroupRecord,
  GroupStatus,
  JobPatch,
  JobQuery,
  JobRecord,
  JobRun,
  JobState,
  OperatorStore,
} from '../operator/domain/model.js';
import type {
  FiringHead,
  InstancePatch,
  InstanceQuery,
  InstanceRecord,
  InstanceState,
  InstanceTrigger,
  InstanceUpdate,
  ScheduleRecord,
  ScheduleStatus,
  ScheduleStore,
} from '../schedule/domain/model.js';
import type { Database } from './database.js';
import type { StoreDialect } from './dialect.js';
import { Groups } from './groups.js';
import { Instances } from './instances.js';
import { Jobs } from './jobs.js';
import { migrate } from './migrations.js';
import { Batcher } from '../schedule/domain/batcher.js';
import { MAX_INSERTS, Schedules } from './schedules.js';

/**
 * Both services' ports over one database: the schedule service's schedules and ledger, the operator's groups and
 * jobs. Each method is one repository call (one statement or one transaction), run through {@link run} so a store
 * out of reach answers UNAVAILABLE naming the database and a closed one says so.
 */
export class SqlStore implements ScheduleStore, OperatorStore {
  private closed = false;
  private readonly schedules: Schedules;
  private readonly instances: Instances;
  private readonly groups: Groups;
  private readonly jobs: Jobs;

  protected constructor(
    protected readonly db: Kysely<Database>,
    protected readonly dialect: StoreDialect,
  ) {
    this.schedules = new Schedules(db, dialect);
    this.instances = new Instances(db, dialect);
    this.groups = new Groups(db, dialect);
    this.jobs = new Jobs(db, dialect);
  }

  /** The database, as messages name it (`host:port/database` or the SQLite file). */
  get target(): string {
    return this.dialect.target;
  }

  migrate(): Promise<void> {
    return this.run('migrate', () => migrate(this.db, this.dialect));
  }

  // Schedules and the ledger

  insertSchedule(record: ScheduleRecord): Promise<{ replaced: boolean; version: number }> {
    return this.scheduleInserts.run([record]).then(([inserted]) => {
      if (inserted!.outcome === 'EXISTS')
        throw new SluiceError(ERROR_CODES.ALREADY_EXISTS, `schedule '${record.groupId}' already exists`);
      return { replaced: inserted!.outcome === 'REPLACED', version: inserted!.version };
    });
  }

  /**
   * The schedules registered in one turn of the event loop (calls that arrived together) go in as one statement,
   * one commit for all of them, rather than a commit each.
   */
  private readonly scheduleInserts = new Batcher(
    (records: readonly ScheduleRecord[]) => this.run('insert schedule', () => this.schedules.insertMany(records)),
    MAX_INSERTS,
  );

  updateSchedule(record: ScheduleRecord, expectedVersion: number): Promise<void> {
    return this.run('update schedule', () => this.schedules.update(record, expectedVersion));
  }

  getSchedule(groupId: string): Promise<ScheduleRecord | undefined> {
    return this.run('get schedule', () => this.schedules.get(groupId));
  }

  getSchedules(groupIds: readonly string[]): Promise<(ScheduleRecord | undefined)[]> {
    return this.run('get schedules', () => this.schedules.getMany(groupIds));
  }

  listSchedules(query: {
    readonly statuses?: readonly ScheduleStatus[];
    readonly afterGroupId?: string;
    readonly limit: number;
  }): Promise<ScheduleRecord[]> {
    return this.run('list schedules', () => this.schedules.list(query));
  }

  claimInstance(instance: InstanceRecord): Promise<InstanceRecord | undefined> {
    return this.run('claim instance', () => this.instances.claim(instance));
  }

  claimInstances(instances: readonly InstanceRecord[]): Promise<(InstanceRecord | undefined)[]> {
    return this.run('claim instances', () => this.instances.claimMany(instances));
  }

  rearmInstance(
    groupId: string,
    windowStart: number,
    fromStates: readonly InstanceState[],
    trigger: InstanceTrigger,
    owner: string,
    now: number,
  ): Promise<InstanceRecord | undefined> {
    return this.run('re-arm instance', () =>
      this.instances.rearm(groupId, windowStart, fromStates, trigger, owner, now),
    );
  }

  takeOverInstance(
    instanceId: string,
    seenUpdatedAt: number,
    owner: string,
    now: number,
    states: readonly InstanceState[] = ['SCHEDULED'],
  ): Promise<InstanceRecord | undefined> {
    return this.run('take over instance', () => this.instances.takeOver(instanceId, seenUpdatedAt, owner, now, states));
  }

  renewInstances(owner: string, instanceIds: readonly string[], now: number): Promise<string[]> {
    return this.run('renew instances', () => this.instances.renew(owner, instanceIds, now));
  }

  updateInstance(
    instanceId: string,
    patch: InstancePatch,
    now: number,
    fromStates?: readonly InstanceState[],
  ): Promise<InstanceRecord | undefined> {
    return this.run('update instance', () => this.instances.update(instanceId, patch, now, fromStates));
  }

  updateInstances(updates: readonly InstanceUpdate[]): Promise<(InstanceRecord | undefined)[]> {
    return this.run('update instances', () => this.instances.updateMany(updates));
  }

  getInstance(groupId: string, windowStart: number): Promise<InstanceRecord | undefined> {
    return this.run('get instance', () => this.instances.get(groupId, windowStart));
  }

  getInstanceById(instanceId: string): Promise<InstanceRecord | undefined> {
    return this.run('get instance', () => this.instances.getById(instanceId));
  }

  listInstances(query: InstanceQuery): Promise<InstanceRecord[]> {
    return this.run('list instances', () => this.instances.list(query));
  }

  lastInstance(groupId: string, dueBy?: number): Promise<InstanceRecord | undefined> {
    return this.run('last instance', () => this.instances.last(groupId, dueBy));
  }

  lastInstances(
    queries: readonly { readonly groupId: string; readonly dueBy?: number }[],
  ): Promise<(InstanceRecord | undefined)[]> {
    return this.run('last instances', () => this.instances.lastMany(queries));
  }

  schedulesWithLast(
    queries: readonly { readonly groupId: string; readonly dueBy?: number }[],
  ): Promise<{ schedule?: ScheduleRecord; last?: InstanceRecord }[]> {
    return this.run('schedules with last instances', async () => {
      if (this.dialect.name === 'postgres')
        return this.instances.lastManyWithSchedules(queries, (row) => this.schedules.fromFireRead(row));
      // SQLite: the two reads, on its one connection either way (joined in one statement they took more CPU).
      const schedules = await this.schedules.getMany(queries.map((q) => q.groupId));
      const lasts = await this.instances.lastMany(queries);
      return schedules.map((schedule, i) => {
        const last = lasts[i];
        return schedule === undefined ? {} : last === undefined ? { schedule } : { schedule, last };
      });
    });
  }

  firingHeads(groupIds: readonly string[], dueBy: number): Promise<(FiringHead | undefined)[]> {
    return this.run('firing heads', () => this.instances.firingHeads(groupIds, dueBy));
  }

  scheduleProgress(
    groupId: string,
    dueBy: number,
  ): Promise<{ last?: InstanceRecord; claimedAfter: { windowStart: number; state: InstanceState }[] }> {
    return this.run('schedule progress', () => this.instances.scheduleProgress(groupId, dueBy));
  }

  overlappingInstances(groupId: string, lower: number, upper: number, exceptId: string): Promise<InstanceRecord[]> {
    return this.run('overlapping instances', () => this.instances.overlapping(groupId, lower, upper, exceptId));
  }

  withdrawInstance(instanceId: string): Promise<boolean> {
    return this.run('withdraw instance', () => this.instances.withdraw(instanceId));
  }

  lastSucceededWindows(limit: number): Promise<{ groupId: string; windowEnd: number }[]> {
    return this.run('last succeeded windows', () => this.instances.lastSucceeded(limit));
  }

  // Groups and jobs

  insertGroup(group: GroupRecord): Promise<number> {
    return this.run('insert group', () => this.groups.insert(group));
  }

  updateGroup(group: GroupRecord, expectedVersion: number): Promise<void> {
    return this.run('update group', () => this.groups.update(group, expectedVersion));
  }

  getGroup(groupId: string): Promise<GroupRecord | undefined> {
    return this.run('get group', () => this.groups.get(groupId));
  }

  listGroups(query: {
    readonly statuses?: readonly GroupStatus[];
    readonly afterGroupId?: string;
    readonly limit: number;
  }): Promise<GroupRecord[]> {
    return this.run('list groups', () => this.groups.list(query));
  }

  insertWindowJobs(jobs: readonly JobRecord[]): Promise<boolean> {
    return this.run('insert window jobs', () => this.jobs.insertWindow(jobs));
  }

  latestWindowJobs(groupId: string, boundaries: Boundaries): Promise<JobRecord[]> {
    return this.run('latest window jobs', () => this.jobs.latestOfWindow(groupId, boundaries));
  }

  updateJob(
    jobId: string,
    patch: JobPatch,
    now: number,
    fromStates?: readonly JobState[],
    run?: JobRun,
  ): Promise<JobRecord | undefined> {
    return this.run('update job', () => this.jobs.update(jobId, patch, now, fromStates, run));
  }

  getJob(jobId: string): Promise<JobRecord | undefined> {
    return this.run('get job', () => this.jobs.get(jobId));
  }

  getJobs(jobIds: readonly string[]): Promise<JobRecord[]> {
    return this.run('get jobs', () => this.jobs.getMany(jobIds));
  }

  listJobs(query: JobQuery): Promise<JobRecord[]> {
    return this.run('list jobs', () => this.jobs.list(query));
  }

  renewJobLeases(owner: string, jobIds: readonly string[], until: number): Promise<string[]> {
    return this.run('renew job leases', () => this.jobs.renewLeases(owner, jobIds, until));
  }

  expiredJobs(now: number, limit: number): Promise<JobRecord[]> {
    return this.run('expired jobs', () => this.jobs.expired(now, limit));
  }

  takeOverJob(
    jobId: string,
    seenLeaseUntil: number | undefined,
    owner: string,
    until: number,
    now: number,
  ): Promise<JobRecord | undefined> {
    return this.run('take over job', () => this.jobs.takeOver(jobId, seenLeaseUntil, owner, until, now));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.destroy();
  }

  /** Runs `fn`; a store out of reach becomes UNAVAILABLE naming the database (never a password). */
  protected async run<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) {
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        `store: ${doing}: the ${this.dialect.name === 'sqlite' ? 'SQLite database' : 'PostgreSQL store for'} ${this.dialect.target} is closed`,
      );
    }
    try {
      return await fn();
    } catch (err) {
      if (isSluiceError(err)) throw err;
      throw this.dialect.unavailable(err, doing) ?? err;
    }
  }
}
