import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { type Boundaries, ERROR_CODES, SluiceError, invalidArgument, notFound } from 'sluice/sdk';
import type {
  GroupRecord,
  GroupStatus,
  JobPatch,
  JobQuery,
  JobRecord,
  JobState,
  OperatorStore,
} from '../../operator/domain/model.js';
import type {
  InstancePatch,
  InstanceQuery,
  InstanceRecord,
  InstanceState,
  InstanceTrigger,
  ScheduleRecord,
  ScheduleStatus,
  ScheduleStore,
} from '../domain/model.js';
import { SCHEMA_MIGRATIONS_DDL, pendingMigrations } from './migrations.js';
import { WindowTaken, checkLimit, windowJobs, windowLowerMs } from './common.js';

/** How long a write waits for another connection's lock before failing as UNAVAILABLE. */
const BUSY_TIMEOUT_MS = 5000;

const INSTANCE_COLUMNS =
  'instance_id, group_id, window_start, window_end, due_time, state, "trigger", job_ids, attempt, dispatched_at, finished_at, error, owner, created_at, updated_at';
const SCHEDULE_COLUMNS = 'group_id, info, status, engine_id, version, created_at, updated_at';
const GROUP_COLUMNS =
  'group_id, description, streams, schedule, runner, retry, status, version, created_at, updated_at';
/** What a job reads back; window_lower_ms is derived from the bounds on insert and only queried. */
const JOB_COLUMNS =
  'job_id, group_id, stream_id, instance_id, boundary_type, lower_bound, upper_bound, generation, state, runner, attempt, ' +
  'resolved_source_options, resolved_positions, progress, error, owner, created_at, started_at, finished_at, updated_at';

interface ScheduleRow {
  group_id: string;
  info: string;
  status: string;
  engine_id: string;
  version: number;
  created_at: number;
  updated_at: number;
}

interface InstanceRow {
  instance_id: string;
  group_id: string;
  window_start: number;
  window_end: number;
  due_time: number;
  state: string;
  trigger: string;
  job_ids: string;
  attempt: number;
  dispatched_at: number | null;
  finished_at: number | null;
  error: string | null;
  owner: string;
  created_at: number;
  updated_at: number;
}

interface GroupRow {
  group_id: string;
  description: string;
  streams: string;
  schedule: string;
  runner: string;
  retry: string;
  status: string;
  version: number;
  created_at: number;
  updated_at: number;
}

interface JobRow {
  job_id: string;
  group_id: string;
  stream_id: string;
  instance_id: string;
  boundary_type: string;
  lower_bound: string;
  upper_bound: string;
  generation: number;
  state: string;
  runner: string;
  attempt: number;
  resolved_source_options: string;
  resolved_positions: string;
  progress: string;
  error: string;
  owner: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

function toSchedule(row: ScheduleRow): ScheduleRecord {
  return {
    groupId: row.group_id,
    info: JSON.parse(row.info) as ScheduleRecord['info'],
    status: row.status as ScheduleStatus,
    engineId: row.engine_id,
    version: Number(row.version),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toInstance(row: InstanceRow): InstanceRecord {
  return {
    instanceId: row.instance_id,
    groupId: row.group_id,
    windowStart: Number(row.window_start),
    windowEnd: Number(row.window_end),
    dueTime: Number(row.due_time),
    state: row.state as InstanceState,
    trigger: row.trigger as InstanceTrigger,
    jobIds: JSON.parse(row.job_ids) as string[],
    attempt: Number(row.attempt),
    ...(row.dispatched_at === null ? {} : { dispatchedAt: Number(row.dispatched_at) }),
    ...(row.finished_at === null ? {} : { finishedAt: Number(row.finished_at) }),
    ...(row.error === null ? {} : { error: row.error }),
    owner: row.owner,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toGroup(row: GroupRow): GroupRecord {
  return {
    groupId: row.group_id,
    description: row.description,
    streams: JSON.parse(row.streams) as GroupRecord['streams'],
    schedule: JSON.parse(row.schedule) as GroupRecord['schedule'],
    runner: row.runner,
    retry: JSON.parse(row.retry) as GroupRecord['retry'],
    status: row.status as GroupStatus,
    version: Number(row.version),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toJob(row: JobRow): JobRecord {
  return {
    jobId: row.job_id,
    groupId: row.group_id,
    streamId: row.stream_id,
    instanceId: row.instance_id,
    boundaries: {
      boundaryType: row.boundary_type as Boundaries['boundaryType'],
      lowerBound: row.lower_bound,
      upperBound: row.upper_bound,
    },
    generation: Number(row.generation),
    state: row.state as JobState,
    runner: row.runner,
    attempt: Number(row.attempt),
    resolvedSourceOptions: JSON.parse(row.resolved_source_options) as JobRecord['resolvedSourceOptions'],
    resolvedPositions: JSON.parse(row.resolved_positions) as JobRecord['resolvedPositions'],
    progress: JSON.parse(row.progress) as JobRecord['progress'],
    error: row.error,
    owner: row.owner,
    createdAt: Number(row.created_at),
    ...(row.started_at === null ? {} : { startedAt: Number(row.started_at) }),
    ...(row.finished_at === null ? {} : { finishedAt: Number(row.finished_at) }),
    updatedAt: Number(row.updated_at),
  };
}

/** SQLite's primary result codes that mean "another connection holds the lock": retrying may help. */
const BUSY_CODES = new Set([5 /* SQLITE_BUSY */, 6 /* SQLITE_LOCKED */]);

/**
 * The schedule and operator store in one SQLite file (WAL, so readers do not block the writer). Every method is one
 * statement or one IMMEDIATE transaction; several processes may share the file, serialised by SQLite's
 * write lock.
 */
export class SqliteScheduleStore implements ScheduleStore, OperatorStore {
  private readonly statements = new Map<string, StatementSync>();
  private closed = false;

  private constructor(
    private readonly db: DatabaseSync,
    readonly path: string,
  ) {}

  /** Opens (creating it and its folder when missing) the database at `path`; `:memory:` for a private one. */
  static async open(path: string): Promise<SqliteScheduleStore> {
    const memory = path === ':memory:';
    const location = memory ? path : resolve(path);
    let db: DatabaseSync | undefined;
    try {
      if (!memory) mkdirSync(dirname(location), { recursive: true });
      db = new DatabaseSync(location);
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      if (!memory) db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA foreign_keys = ON');
      // WAL with NORMAL sync is durable against process crashes and much cheaper than FULL.
      db.exec('PRAGMA synchronous = NORMAL');
    } catch (err) {
      try {
        db?.close();
      } catch {
        // Closing a half-open handle: nothing more to do.
      }
      const message = err instanceof Error ? err.message : String(err);
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        `schedule store: cannot open SQLite database ${location}: ${message}`,
        {},
        { cause: err },
      );
    }
    return new SqliteScheduleStore(db, location);
  }

  async migrate(): Promise<void> {
    this.run('migrate', () => {
      this.transaction(() => {
        this.db.exec(SCHEMA_MIGRATIONS_DDL.sqlite);
        const applied = this.stmt('SELECT version FROM schema_migrations').all() as unknown as { version: number }[];
        for (const migration of pendingMigrations(applied.map((r) => Number(r.version)))) {
          for (const sql of migration.sqlite) this.db.exec(sql);
          this.stmt('INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)').run(
            migration.version,
            migration.description,
            Date.now(),
          );
        }
      });
    });
  }

  async insertSchedule(record: ScheduleRecord): Promise<void> {
    this.run('insert schedule', () => {
      const result = this.stmt(
        `INSERT INTO schedules (${SCHEDULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (group_id) DO UPDATE SET
           info = excluded.info, status = excluded.status, engine_id = excluded.engine_id, version = excluded.version,
           created_at = excluded.created_at, updated_at = excluded.updated_at
         WHERE schedules.status = 'DELETED'`,
      ).run(
        record.groupId,
        JSON.stringify(record.info),
        record.status,
        record.engineId,
        record.version,
        record.createdAt,
        record.updatedAt,
      );
      if (Number(result.changes) === 0) {
        throw new SluiceError(ERROR_CODES.ALREADY_EXISTS, `schedule '${record.groupId}' already exists`);
      }
    });
  }

  async updateSchedule(record: ScheduleRecord, expectedVersion: number): Promise<void> {
    if (record.version !== expectedVersion + 1) {
      throw invalidArgument('version', `${expectedVersion + 1} (expected version + 1)`, record.version);
    }
    this.run('update schedule', () => {
      const result = this.stmt(
        `UPDATE schedules SET info = ?, status = ?, engine_id = ?, version = ?, updated_at = ?
         WHERE group_id = ? AND version = ?`,
      ).run(
        JSON.stringify(record.info),
        record.status,
        record.engineId,
        record.version,
        record.updatedAt,
        record.groupId,
        expectedVersion,
      );
      if (Number(result.changes) > 0) return;
      const current = this.stmt('SELECT version FROM schedules WHERE group_id = ?').get(record.groupId) as
        { version: number } | undefined;
      if (current === undefined) throw notFound('schedule', record.groupId);
      throw new SluiceError(
        ERROR_CODES.VERSION_CONFLICT,
        `schedule ${record.groupId} was changed: version ${expectedVersion} is stale (current ${Number(current.version)})`,
      );
    });
  }

  async getSchedule(groupId: string): Promise<ScheduleRecord | undefined> {
    return this.run('get schedule', () => {
      const row = this.stmt(`SELECT ${SCHEDULE_COLUMNS} FROM schedules WHERE group_id = ?`).get(groupId) as
        ScheduleRow | undefined;
      return row && toSchedule(row);
    });
  }

  async listSchedules(query: {
    readonly statuses?: readonly ScheduleStatus[];
    readonly afterGroupId?: string;
    readonly limit: number;
  }): Promise<ScheduleRecord[]> {
    checkLimit(query.limit);
    return this.run('list schedules', () => {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (query.statuses !== undefined) {
        where.push('status IN (SELECT value FROM json_each(?))');
        params.push(JSON.stringify(query.statuses));
      }
      if (query.afterGroupId !== undefined) {
        where.push('group_id > ?');
        params.push(query.afterGroupId);
      }
      params.push(query.limit);
      const sql = `SELECT ${SCHEDULE_COLUMNS} FROM schedules${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY group_id LIMIT ?`;
      return (this.stmt(sql).all(...params) as unknown as ScheduleRow[]).map(toSchedule);
    });
  }

  async claimInstance(instance: InstanceRecord): Promise<InstanceRecord | undefined> {
    return this.run('claim instance', () => {
      const result = this.stmt(
        `INSERT INTO instances (${INSTANCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (group_id, window_start) DO NOTHING`,
      ).run(
        instance.instanceId,
        instance.groupId,
        instance.windowStart,
        instance.windowEnd,
        instance.dueTime,
        instance.state,
        instance.trigger,
        JSON.stringify(instance.jobIds),
        instance.attempt,
        instance.dispatchedAt ?? null,
        instance.finishedAt ?? null,
        instance.error ?? null,
        instance.owner,
        instance.createdAt,
        instance.updatedAt,
      );
      if (Number(result.changes) === 0) return undefined;
      // Synchronous: nothing in this process runs between the insert and this read.
      return this.byId(instance.instanceId);
    });
  }

  async rearmInstance(
    groupId: string,
    windowStart: number,
    fromStates: readonly InstanceState[],
    trigger: InstanceTrigger,
    owner: string,
    now: number,
  ): Promise<InstanceRecord | undefined> {
    return this.run('re-arm instance', () =>
      this.transaction(() => {
        const result = this.stmt(
          `UPDATE instances SET state = 'SCHEDULED', attempt = attempt + 1, "trigger" = ?, owner = ?,
             job_ids = '[]', error = NULL, finished_at = NULL, updated_at = ?
           WHERE group_id = ? AND window_start = ? AND state IN (SELECT value FROM json_each(?))`,
        ).run(trigger, owner, now, groupId, windowStart, JSON.stringify(fromStates));
        if (Number(result.changes) === 0) return undefined;
        const row = this.stmt(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE group_id = ? AND window_start = ?`).get(
          groupId,
          windowStart,
        ) as InstanceRow | undefined;
        return row && toInstance(row);
      }),
    );
  }

  async takeOverInstance(
    instanceId: string,
    seenUpdatedAt: number,
    owner: string,
    now: number,
  ): Promise<InstanceRecord | undefined> {
    return this.run('take over instance', () =>
      this.transaction(() => {
        // Compare-and-swap on updated_at: the first taker changes it, so a second one no longer matches.
        const result = this.stmt(
          `UPDATE instances SET owner = ?, updated_at = MAX(?, updated_at + 1)
           WHERE instance_id = ? AND state = 'SCHEDULED' AND updated_at = ?`,
        ).run(owner, now, instanceId, seenUpdatedAt);
        return Number(result.changes) === 0 ? undefined : this.byId(instanceId);
      }),
    );
  }

  async updateInstance(
    instanceId: string,
    patch: InstancePatch,
    now: number,
    fromStates?: readonly InstanceState[],
  ): Promise<InstanceRecord | undefined> {
    return this.run('update instance', () =>
      this.transaction(() => {
        // One statement for every patch shape: an absent field binds NULL and keeps the stored value.
        const result = this.stmt(
          `UPDATE instances SET
             state = COALESCE(?, state), job_ids = COALESCE(?, job_ids), dispatched_at = COALESCE(?, dispatched_at),
             finished_at = COALESCE(?, finished_at), error = COALESCE(?, error), updated_at = ?
           WHERE instance_id = ? AND (? IS NULL OR state IN (SELECT value FROM json_each(?)))`,
        ).run(
          patch.state ?? null,
          patch.jobIds === undefined ? null : JSON.stringify(patch.jobIds),
          patch.dispatchedAt ?? null,
          patch.finishedAt ?? null,
          patch.error ?? null,
          now,
          instanceId,
          fromStates === undefined ? null : 1,
          JSON.stringify(fromStates ?? []),
        );
        if (Number(result.changes) === 0) return undefined;
        return this.byId(instanceId);
      }),
    );
  }

  async getInstance(groupId: string, windowStart: number): Promise<InstanceRecord | undefined> {
    return this.run('get instance', () => {
      const row = this.stmt(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE group_id = ? AND window_start = ?`).get(
        groupId,
        windowStart,
      ) as InstanceRow | undefined;
      return row && toInstance(row);
    });
  }

  async getInstanceById(instanceId: string): Promise<InstanceRecord | undefined> {
    return this.run('get instance', () => this.byId(instanceId));
  }

  async listInstances(query: InstanceQuery): Promise<InstanceRecord[]> {
    checkLimit(query.limit);
    return this.run('list instances', () => {
      // Only the filters present go into the SQL, so the planner can use the indexes; one cached statement per shape.
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (query.groupId !== undefined) {
        where.push('group_id = ?');
        params.push(query.groupId);
      }
      if (query.states !== undefined) {
        where.push('state IN (SELECT value FROM json_each(?))');
        params.push(JSON.stringify(query.states));
      }
      if (query.windowFrom !== undefined) {
        where.push('window_start >= ?');
        params.push(query.windowFrom);
      }
      if (query.windowTo !== undefined) {
        where.push('window_start < ?');
        params.push(query.windowTo);
      }
      if (query.after !== undefined) {
        where.push('(group_id, window_start) > (?, ?)');
        params.push(query.after.groupId, query.after.windowStart);
      }
      params.push(query.limit);
      const sql = `SELECT ${INSTANCE_COLUMNS} FROM instances${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY group_id, window_start LIMIT ?`;
      return (this.stmt(sql).all(...params) as unknown as InstanceRow[]).map(toInstance);
    });
  }

  async lastInstance(groupId: string): Promise<InstanceRecord | undefined> {
    return this.run('last instance', () => {
      const row = this.stmt(
        `SELECT ${INSTANCE_COLUMNS} FROM instances WHERE group_id = ? ORDER BY window_start DESC LIMIT 1`,
      ).get(groupId) as InstanceRow | undefined;
      return row && toInstance(row);
    });
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Operator: groups and jobs

  async insertGroup(group: GroupRecord): Promise<void> {
    this.run('insert group', () => {
      const result = this.stmt(
        `INSERT INTO groups (${GROUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (group_id) DO UPDATE SET
           description = excluded.description, streams = excluded.streams, schedule = excluded.schedule, runner = excluded.runner,
           retry = excluded.retry, status = excluded.status, version = excluded.version,
           created_at = excluded.created_at, updated_at = excluded.updated_at
         WHERE groups.status = 'DELETED'`,
      ).run(
        group.groupId,
        group.description,
        JSON.stringify(group.streams),
        JSON.stringify(group.schedule),
        group.runner,
        JSON.stringify(group.retry),
        group.status,
        group.version,
        group.createdAt,
        group.updatedAt,
      );
      if (Number(result.changes) === 0) {
        throw new SluiceError(ERROR_CODES.ALREADY_EXISTS, `group '${group.groupId}' already exists`);
      }
    });
  }

  async updateGroup(group: GroupRecord, expectedVersion: number): Promise<void> {
    if (group.version !== expectedVersion + 1) {
      throw invalidArgument('version', `${expectedVersion + 1} (expected version + 1)`, group.version);
    }
    this.run('update group', () => {
      const result = this.stmt(
        `UPDATE groups SET description = ?, streams = ?, schedule = ?, runner = ?, retry = ?, status = ?, version = ?, updated_at = ?
         WHERE group_id = ? AND version = ?`,
      ).run(
        group.description,
        JSON.stringify(group.streams),
        JSON.stringify(group.schedule),
        group.runner,
        JSON.stringify(group.retry),
        group.status,
        group.version,
        group.updatedAt,
        group.groupId,
        expectedVersion,
      );
      if (Number(result.changes) > 0) return;
      const current = this.stmt('SELECT version FROM groups WHERE group_id = ?').get(group.groupId) as
        { version: number } | undefined;
      if (current === undefined) throw notFound('group', group.groupId);
      throw new SluiceError(
        ERROR_CODES.VERSION_CONFLICT,
        `group ${group.groupId} was changed: version ${expectedVersion} is stale (current ${Number(current.version)})`,
      );
    });
  }

  async getGroup(groupId: string): Promise<GroupRecord | undefined> {
    return this.run('get group', () => {
      const row = this.stmt(`SELECT ${GROUP_COLUMNS} FROM groups WHERE group_id = ?`).get(groupId) as
        GroupRow | undefined;
      return row && toGroup(row);
    });
  }

  async listGroups(query: {
    readonly statuses?: readonly GroupStatus[];
    readonly afterGroupId?: string;
    readonly limit: number;
  }): Promise<GroupRecord[]> {
    checkLimit(query.limit);
    return this.run('list groups', () => {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (query.statuses !== undefined) {
        where.push('status IN (SELECT value FROM json_each(?))');
        params.push(JSON.stringify(query.statuses));
      }
      if (query.afterGroupId !== undefined) {
        where.push('group_id > ?');
        params.push(query.afterGroupId);
      }
      params.push(query.limit);
      const sql = `SELECT ${GROUP_COLUMNS} FROM groups${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY group_id LIMIT ?`;
      return (this.stmt(sql).all(...params) as unknown as GroupRow[]).map(toGroup);
    });
  }

  async insertWindowJobs(jobs: readonly JobRecord[]): Promise<boolean> {
    const ordered = windowJobs(jobs);
    return this.run('insert window jobs', () => {
      try {
        this.transaction(() => {
          const insert = this.stmt(
            `INSERT INTO jobs (${JOB_COLUMNS}, window_lower_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (group_id, stream_id, boundary_type, lower_bound, upper_bound, generation) DO NOTHING`,
          );
          for (const job of ordered) {
            const result = insert.run(
              job.jobId,
              job.groupId,
              job.streamId,
              job.instanceId,
              job.boundaries.boundaryType,
              job.boundaries.lowerBound,
              job.boundaries.upperBound,
              job.generation,
              job.state,
              job.runner,
              job.attempt,
              JSON.stringify(job.resolvedSourceOptions),
              JSON.stringify(job.resolvedPositions),
              JSON.stringify(job.progress),
              job.error,
              job.owner,
              job.createdAt,
              job.startedAt ?? null,
              job.finishedAt ?? null,
              job.updatedAt,
              windowLowerMs(job.boundaries),
            );
            // A job of this window and generation exists: roll back whatever this call inserted.
            if (Number(result.changes) === 0) throw new WindowTaken();
          }
        });
        return true;
      } catch (err) {
        if (err instanceof WindowTaken) return false;
        throw err;
      }
    });
  }

  async latestWindowJobs(groupId: string, boundaries: Boundaries): Promise<JobRecord[]> {
    return this.run('latest window jobs', () => {
      const rows = this.stmt(
        `SELECT ${JOB_COLUMNS} FROM jobs
         WHERE group_id = ?1 AND boundary_type = ?2 AND lower_bound = ?3 AND upper_bound = ?4
           AND generation = (SELECT MAX(generation) FROM jobs WHERE group_id = ?1 AND boundary_type = ?2 AND lower_bound = ?3 AND upper_bound = ?4)
         ORDER BY stream_id`,
      ).all(groupId, boundaries.boundaryType, boundaries.lowerBound, boundaries.upperBound) as unknown as JobRow[];
      return rows.map(toJob);
    });
  }

  async updateJob(
    jobId: string,
    patch: JobPatch,
    now: number,
    fromStates?: readonly JobState[],
  ): Promise<JobRecord | undefined> {
    return this.run('update job', () =>
      this.transaction(() => {
        // One statement for every patch shape: an absent field binds NULL and keeps the stored value.
        const result = this.stmt(
          `UPDATE jobs SET
             state = COALESCE(?, state), attempt = COALESCE(?, attempt), resolved_positions = COALESCE(?, resolved_positions),
             progress = COALESCE(?, progress), error = COALESCE(?, error), owner = COALESCE(?, owner),
             started_at = COALESCE(?, started_at), finished_at = COALESCE(?, finished_at), updated_at = ?
           WHERE job_id = ? AND (? IS NULL OR state IN (SELECT value FROM json_each(?)))`,
        ).run(
          patch.state ?? null,
          patch.attempt ?? null,
          patch.resolvedPositions === undefined ? null : JSON.stringify(patch.resolvedPositions),
          patch.progress === undefined ? null : JSON.stringify(patch.progress),
          patch.error ?? null,
          patch.owner ?? null,
          patch.startedAt ?? null,
          patch.finishedAt ?? null,
          now,
          jobId,
          fromStates === undefined ? null : 1,
          JSON.stringify(fromStates ?? []),
        );
        if (Number(result.changes) === 0) return undefined;
        return this.jobById(jobId);
      }),
    );
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    return this.run('get job', () => this.jobById(jobId));
  }

  async listJobs(query: JobQuery): Promise<JobRecord[]> {
    checkLimit(query.limit);
    return this.run('list jobs', () => {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (query.groupId !== undefined) {
        where.push('group_id = ?');
        params.push(query.groupId);
      }
      if (query.states !== undefined) {
        where.push('state IN (SELECT value FROM json_each(?))');
        params.push(JSON.stringify(query.states));
      }
      if (query.windowFrom !== undefined) {
        where.push('window_lower_ms >= ?');
        params.push(query.windowFrom);
      }
      if (query.windowTo !== undefined) {
        where.push('window_lower_ms < ?');
        params.push(query.windowTo);
      }
      if (query.afterJobId !== undefined) {
        where.push('job_id > ?');
        params.push(query.afterJobId);
      }
      params.push(query.limit);
      const sql = `SELECT ${JOB_COLUMNS} FROM jobs${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY job_id LIMIT ?`;
      return (this.stmt(sql).all(...params) as unknown as JobRow[]).map(toJob);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.statements.clear();
    this.db.close();
  }

  private byId(instanceId: string): InstanceRecord | undefined {
    const row = this.stmt(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?`).get(instanceId) as
      InstanceRow | undefined;
    return row && toInstance(row);
  }

  private jobById(jobId: string): JobRecord | undefined {
    const row = this.stmt(`SELECT ${JOB_COLUMNS} FROM jobs WHERE job_id = ?`).get(jobId) as JobRow | undefined;
    return row && toJob(row);
  }

  /** The prepared statement for `sql`, prepared once per connection. */
  private stmt(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs `fn` in an IMMEDIATE transaction: the write lock is taken up front, so it cannot fail half-way on a lock upgrade. */
  private transaction<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Runs `fn`, turning "the database is locked" into UNAVAILABLE (another process held the lock too long). */
  private run<T>(doing: string, fn: () => T): T {
    if (this.closed)
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        `schedule store: ${doing}: the SQLite database ${this.path} is closed`,
      );
    try {
      return fn();
    } catch (err) {
      const errcode = (err as { errcode?: unknown })?.errcode;
      if (typeof errcode === 'number' && BUSY_CODES.has(errcode & 0xff)) {
        const message = err instanceof Error ? err.message : String(err);
        throw new SluiceError(
          ERROR_CODES.UNAVAILABLE,
          `schedule store: ${doing}: SQLite database ${this.path} is busy: ${message}`,
          {},
          { cause: err },
        );
      }
      throw err;
    }
  }
}
