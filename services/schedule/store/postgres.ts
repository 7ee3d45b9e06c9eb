import pg from 'pg';
import { type Boundaries, ERROR_CODES, SluiceError, invalidArgument, isSluiceError, notFound } from 'sluice/sdk';
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

export interface PostgresStoreOptions {
  /** A schema of its own (created when missing; set as the search_path of every pooled connection). */
  readonly schema?: string;
  /** Connections in the pool; 10 by default. */
  readonly poolSize?: number;
  /** How long to wait for a connection, in milliseconds; 10 s by default. */
  readonly connectTimeoutMs?: number;
}

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
  info: ScheduleRecord['info'];
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
  job_ids: string[];
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
  streams: GroupRecord['streams'];
  schedule: GroupRecord['schedule'];
  runner: string;
  retry: GroupRecord['retry'];
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
  resolved_source_options: JobRecord['resolvedSourceOptions'];
  resolved_positions: JobRecord['resolvedPositions'];
  progress: JobRecord['progress'];
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
    info: row.info,
    status: row.status as ScheduleStatus,
    engineId: row.engine_id,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toInstance(row: InstanceRow): InstanceRecord {
  return {
    instanceId: row.instance_id,
    groupId: row.group_id,
    windowStart: row.window_start,
    windowEnd: row.window_end,
    dueTime: row.due_time,
    state: row.state as InstanceState,
    trigger: row.trigger as InstanceTrigger,
    jobIds: row.job_ids,
    attempt: row.attempt,
    ...(row.dispatched_at === null ? {} : { dispatchedAt: row.dispatched_at }),
    ...(row.finished_at === null ? {} : { finishedAt: row.finished_at }),
    ...(row.error === null ? {} : { error: row.error }),
    owner: row.owner,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toGroup(row: GroupRow): GroupRecord {
  return {
    groupId: row.group_id,
    description: row.description,
    streams: row.streams,
    schedule: row.schedule,
    runner: row.runner,
    retry: row.retry,
    status: row.status as GroupStatus,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
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
    generation: row.generation,
    state: row.state as JobState,
    runner: row.runner,
    attempt: row.attempt,
    resolvedSourceOptions: row.resolved_source_options,
    resolvedPositions: row.resolved_positions,
    progress: row.progress,
    error: row.error,
    owner: row.owner,
    createdAt: row.created_at,
    ...(row.started_at === null ? {} : { startedAt: row.started_at }),
    ...(row.finished_at === null ? {} : { finishedAt: row.finished_at }),
    updatedAt: row.updated_at,
  };
}

/** BIGINT (epoch ms) as a JS number; the pool's own parsers, so pg's global ones stay untouched. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`schedule store: BIGINT ${text} is beyond a safe JS integer`);
  return value;
}
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 && format !== 'binary'
      ? parseInt8
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** `host:port/database` of a URL: what error messages name, never the user's password. */
function describeTarget(url: URL): string {
  const host = url.hostname || url.searchParams.get('host') || 'localhost';
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  return `${host}:${url.port || '5432'}${database ? `/${database}` : ''}`;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
]);
/** SQLSTATEs meaning the server is going away, starting up or full: retrying later may work. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '53400']);

function isConnectionError(err: unknown): boolean {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
  const text = err instanceof Error ? err.message : String(err);
  return (
    NETWORK_CODES.has(code) ||
    code.startsWith('08') ||
    UNAVAILABLE_STATES.has(code) ||
    /connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|Client has encountered a connection error/i.test(
      text,
    )
  );
}

/**
 * The schedule and operator store in PostgreSQL, for replicas that share one ledger. Every method is one
 * statement (or one transaction); row locks and the unique (group_id, window_start) constraint make
 * concurrent replicas agree: a window is claimed, and re-armed, by exactly one of them. The jobs'
 * unique (group, stream, boundaries, generation) does the same for a window's jobs.
 */
export class PostgresScheduleStore implements ScheduleStore, OperatorStore {
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    /** `host:port/database`, for messages. */
    readonly target: string,
    readonly schema: string | undefined,
    private readonly secrets: readonly string[],
  ) {}

  /** Connects (and creates `options.schema` when missing); UNAVAILABLE naming the host when the server cannot be reached. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresScheduleStore> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalidArgument('databaseUrl', 'a postgres:// or postgresql:// URL', url.replace(/\/\/[^@/]*@/, '//***@'));
    }
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
      throw invalidArgument('databaseUrl', 'a postgres:// or postgresql:// URL', `${parsed.protocol}//${parsed.host}`);
    }
    const { schema, poolSize = 10, connectTimeoutMs = 10_000 } = options;
    if (schema !== undefined && schema.length === 0) throw invalidArgument('schema', 'a non-empty schema name', schema);
    if (!Number.isInteger(poolSize) || poolSize < 1) throw invalidArgument('poolSize', 'an integer >= 1', poolSize);
    const target = describeTarget(parsed);
    const secrets = [parsed.password, safeDecode(parsed.password)].filter((s) => s.length > 0);

    // The search_path is part of each connection's startup packet, so no query can run before it is set.
    // pg lets `options` in the URL override the config's, so any found there is moved over and kept.
    const startupOptions: string[] = [];
    const urlOptions = parsed.searchParams.get('options');
    if (urlOptions) startupOptions.push(urlOptions);
    parsed.searchParams.delete('options');
    if (schema !== undefined)
      startupOptions.push(`-c search_path=${quoteIdent(schema).replace(/[\\\s]/g, (c) => `\\${c}`)}`);

    const pool = new pg.Pool({
      connectionString: parsed.toString(),
      max: poolSize,
      connectionTimeoutMillis: connectTimeoutMs,
      application_name: 'sluice-schedule',
      types,
      ...(startupOptions.length ? { options: startupOptions.join(' ') } : {}),
    });
    // An idle connection dropped by the server: the next query fails and says so; unhandled, it would crash the process.
    pool.on('error', () => {});
    const store = new PostgresScheduleStore(pool, target, schema, secrets);
    try {
      if (schema === undefined) {
        await pool.query('SELECT 1');
      } else {
        // Two replicas starting together would race on CREATE SCHEMA IF NOT EXISTS: serialise them.
        await store.transaction(async (client) => {
          await client.query("SELECT pg_advisory_xact_lock(hashtext('sluice.schedule.schema:' || $1))", [schema]);
          await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
        });
      }
    } catch (err) {
      await pool.end().catch(() => {});
      if (isSluiceError(err)) throw err;
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        store.scrub(`schedule store: cannot connect to PostgreSQL at ${target}: ${messageOf(err)}`),
        {},
        { cause: err },
      );
    }
    return store;
  }

  async migrate(): Promise<void> {
    await this.run('migrate', () =>
      this.transaction(async (client) => {
        // One migrator at a time per schema: the others wait here, then find nothing pending.
        await client.query(
          "SELECT pg_advisory_xact_lock(hashtext('sluice.schedule.migrate:' || coalesce(current_schema(), '')))",
        );
        await client.query(SCHEMA_MIGRATIONS_DDL.postgres);
        const applied = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
        for (const migration of pendingMigrations(applied.rows.map((r) => r.version))) {
          for (const sql of migration.postgres) await client.query(sql);
          await client.query('INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)', [
            migration.version,
            migration.description,
            Date.now(),
          ]);
        }
      }),
    );
  }

  async insertSchedule(record: ScheduleRecord): Promise<void> {
    const result = await this.run('insert schedule', () =>
      this.pool.query(
        `INSERT INTO schedules (${SCHEDULE_COLUMNS}) VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7)
         ON CONFLICT (group_id) DO UPDATE SET
           info = EXCLUDED.info, status = EXCLUDED.status, engine_id = EXCLUDED.engine_id, version = EXCLUDED.version,
           created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
         WHERE schedules.status = 'DELETED'`,
        [
          record.groupId,
          JSON.stringify(record.info),
          record.status,
          record.engineId,
          record.version,
          record.createdAt,
          record.updatedAt,
        ],
      ),
    );
    if (result.rowCount === 0)
      throw new SluiceError(ERROR_CODES.ALREADY_EXISTS, `schedule '${record.groupId}' already exists`);
  }

  async updateSchedule(record: ScheduleRecord, expectedVersion: number): Promise<void> {
    if (record.version !== expectedVersion + 1) {
      throw invalidArgument('version', `${expectedVersion + 1} (expected version + 1)`, record.version);
    }
    const result = await this.run('update schedule', () =>
      this.pool.query(
        `UPDATE schedules SET info = $2::jsonb, status = $3, engine_id = $4, version = $5, updated_at = $6
         WHERE group_id = $1 AND version = $7`,
        [
          record.groupId,
          JSON.stringify(record.info),
          record.status,
          record.engineId,
          record.version,
          record.updatedAt,
          expectedVersion,
        ],
      ),
    );
    if (result.rowCount !== 0) return;
    const current = await this.run('update schedule', () =>
      this.pool.query<{ version: number }>('SELECT version FROM schedules WHERE group_id = $1', [record.groupId]),
    );
    const row = current.rows[0];
    if (row === undefined) throw notFound('schedule', record.groupId);
    throw new SluiceError(
      ERROR_CODES.VERSION_CONFLICT,
      `schedule ${record.groupId} was changed: version ${expectedVersion} is stale (current ${row.version})`,
    );
  }

  async getSchedule(groupId: string): Promise<ScheduleRecord | undefined> {
    const result = await this.run('get schedule', () =>
      this.pool.query<ScheduleRow>(`SELECT ${SCHEDULE_COLUMNS} FROM schedules WHERE group_id = $1`, [groupId]),
    );
    const row = result.rows[0];
    return row && toSchedule(row);
  }

  async listSchedules(query: {
    readonly statuses?: readonly ScheduleStatus[];
    readonly afterGroupId?: string;
    readonly limit: number;
  }): Promise<ScheduleRecord[]> {
    checkLimit(query.limit);
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.statuses !== undefined) {
      params.push(query.statuses);
      where.push(`status = ANY($${params.length}::text[])`);
    }
    if (query.afterGroupId !== undefined) {
      params.push(query.afterGroupId);
      where.push(`group_id > $${params.length}`);
    }
    params.push(query.limit);
    const sql = `SELECT ${SCHEDULE_COLUMNS} FROM schedules${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY group_id LIMIT $${params.length}`;
    const result = await this.run('list schedules', () => this.pool.query<ScheduleRow>(sql, params));
    return result.rows.map(toSchedule);
  }

  async claimInstance(instance: InstanceRecord): Promise<InstanceRecord | undefined> {
    const result = await this.run('claim instance', () =>
      this.pool.query<InstanceRow>(
        `INSERT INTO instances (${INSTANCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (group_id, window_start) DO NOTHING
         RETURNING ${INSTANCE_COLUMNS}`,
        [
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
        ],
      ),
    );
    const row = result.rows[0];
    return row && toInstance(row);
  }

  async rearmInstance(
    groupId: string,
    windowStart: number,
    fromStates: readonly InstanceState[],
    trigger: InstanceTrigger,
    owner: string,
    now: number,
  ): Promise<InstanceRecord | undefined> {
    // Concurrent re-arms queue on the row lock; each re-checks the state once it has it, so one wins.
    const result = await this.run('re-arm instance', () =>
      this.pool.query<InstanceRow>(
        `UPDATE instances SET state = 'SCHEDULED', attempt = attempt + 1, "trigger" = $4, owner = $5,
           job_ids = '[]'::jsonb, error = NULL, finished_at = NULL, updated_at = $6
         WHERE group_id = $1 AND window_start = $2 AND state = ANY($3::text[])
         RETURNING ${INSTANCE_COLUMNS}`,
        [groupId, windowStart, fromStates, trigger, owner, now],
      ),
    );
    const row = result.rows[0];
    return row && toInstance(row);
  }

  async takeOverInstance(
    instanceId: string,
    seenUpdatedAt: number,
    owner: string,
    now: number,
  ): Promise<InstanceRecord | undefined> {
    // Compare-and-swap on updated_at: the first taker changes it, so a second one no longer matches.
    const result = await this.run('take over instance', () =>
      this.pool.query<InstanceRow>(
        `UPDATE instances SET owner = $3, updated_at = GREATEST($4::bigint, updated_at + 1)
         WHERE instance_id = $1 AND state = 'SCHEDULED' AND updated_at = $2
         RETURNING ${INSTANCE_COLUMNS}`,
        [instanceId, seenUpdatedAt, owner, now],
      ),
    );
    const row = result.rows[0];
    return row && toInstance(row);
  }

  async updateInstance(
    instanceId: string,
    patch: InstancePatch,
    now: number,
    fromStates?: readonly InstanceState[],
  ): Promise<InstanceRecord | undefined> {
    // One statement for every patch shape: an absent field binds NULL and keeps the stored value.
    const result = await this.run('update instance', () =>
      this.pool.query<InstanceRow>(
        `UPDATE instances SET
           state = COALESCE($2::text, state), job_ids = COALESCE($3::jsonb, job_ids),
           dispatched_at = COALESCE($4::bigint, dispatched_at), finished_at = COALESCE($5::bigint, finished_at),
           error = COALESCE($6::text, error), updated_at = $7
         WHERE instance_id = $1 AND ($8::text[] IS NULL OR state = ANY($8::text[]))
         RETURNING ${INSTANCE_COLUMNS}`,
        [
          instanceId,
          patch.state ?? null,
          patch.jobIds === undefined ? null : JSON.stringify(patch.jobIds),
          patch.dispatchedAt ?? null,
          patch.finishedAt ?? null,
          patch.error ?? null,
          now,
          fromStates ?? null,
        ],
      ),
    );
    const row = result.rows[0];
    return row && toInstance(row);
  }

  async getInstance(groupId: string, windowStart: number): Promise<InstanceRecord | undefined> {
    const result = await this.run('get instance', () =>
      this.pool.query<InstanceRow>(
        `SELECT ${INSTANCE_COLUMNS} FROM instances WHERE group_id = $1 AND window_start = $2`,
        [groupId, windowStart],
      ),
    );
    const row = result.rows[0];
    return row && toInstance(row);
  }

  async getInstanceById(instanceId: string): Promise<InstanceRecord | undefined> {
    const result = await this.run('get instance', () =>
      this.pool.query<InstanceRow>(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE instance_id = $1`, [instanceId]),
    );
    const row = result.rows[0];
    return row && toInstance(row);
  }

  async listInstances(query: InstanceQuery): Promise<InstanceRecord[]> {
    checkLimit(query.limit);
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (query.groupId !== undefined) where.push(`group_id = ${param(query.groupId)}`);
    if (query.states !== undefined) where.push(`state = ANY(${param(query.states)}::text[])`);
    if (query.windowFrom !== undefined) where.push(`window_start >= ${param(query.windowFrom)}`);
    if (query.windowTo !== undefined) where.push(`window_start < ${param(query.windowTo)}`);
    if (query.after !== undefined)
      where.push(
        `(group_id, window_start) > (${param(query.after.groupId)}, ${param(query.after.windowStart)}::bigint)`,
      );
    const sql = `SELECT ${INSTANCE_COLUMNS} FROM instances${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY group_id, window_start LIMIT ${param(query.limit)}`;
    const result = await this.run('list instances', () => this.pool.query<InstanceRow>(sql, params));
    return result.rows.map(toInstance);
  }

  async lastInstance(groupId: string): Promise<InstanceRecord | undefined> {
    const result = await this.run('last instance', () =>
      this.pool.query<InstanceRow>(
        `SELECT ${INSTANCE_COLUMNS} FROM instances WHERE group_id = $1 ORDER BY window_start DESC LIMIT 1`,
        [groupId],
      ),
    );
    const row = result.rows[0];
    return row && toInstance(row);
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Operator: groups and jobs

  async insertGroup(group: GroupRecord): Promise<void> {
    const result = await this.run('insert group', () =>
      this.pool.query(
        `INSERT INTO groups (${GROUP_COLUMNS}) VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6::jsonb, $7, $8, $9, $10)
         ON CONFLICT (group_id) DO UPDATE SET
           description = EXCLUDED.description, streams = EXCLUDED.streams, schedule = EXCLUDED.schedule, runner = EXCLUDED.runner,
           retry = EXCLUDED.retry, status = EXCLUDED.status, version = EXCLUDED.version,
           created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
         WHERE groups.status = 'DELETED'`,
        [
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
        ],
      ),
    );
    if (result.rowCount === 0)
      throw new SluiceError(ERROR_CODES.ALREADY_EXISTS, `group '${group.groupId}' already exists`);
  }

  async updateGroup(group: GroupRecord, expectedVersion: number): Promise<void> {
    if (group.version !== expectedVersion + 1) {
      throw invalidArgument('version', `${expectedVersion + 1} (expected version + 1)`, group.version);
    }
    const result = await this.run('update group', () =>
      this.pool.query(
        `UPDATE groups SET description = $2, streams = $3::jsonb, schedule = $4::jsonb, runner = $5, retry = $6::jsonb, status = $7,
           version = $8, updated_at = $9
         WHERE group_id = $1 AND version = $10`,
        [
          group.groupId,
          group.description,
          JSON.stringify(group.streams),
          JSON.stringify(group.schedule),
          group.runner,
          JSON.stringify(group.retry),
          group.status,
          group.version,
          group.updatedAt,
          expectedVersion,
        ],
      ),
    );
    if (result.rowCount !== 0) return;
    const current = await this.run('update group', () =>
      this.pool.query<{ version: number }>('SELECT version FROM groups WHERE group_id = $1', [group.groupId]),
    );
    const row = current.rows[0];
    if (row === undefined) throw notFound('group', group.groupId);
    throw new SluiceError(
      ERROR_CODES.VERSION_CONFLICT,
      `group ${group.groupId} was changed: version ${expectedVersion} is stale (current ${row.version})`,
    );
  }

  async getGroup(groupId: string): Promise<GroupRecord | undefined> {
    const result = await this.run('get group', () =>
      this.pool.query<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM groups WHERE group_id = $1`, [groupId]),
    );
    const row = result.rows[0];
    return row && toGroup(row);
  }

  async listGroups(query: {
    readonly statuses?: readonly GroupStatus[];
    readonly afterGroupId?: string;
    readonly limit: number;
  }): Promise<GroupRecord[]> {
    checkLimit(query.limit);
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (query.statuses !== undefined) where.push(`status = ANY(${param(query.statuses)}::text[])`);
    if (query.afterGroupId !== undefined) where.push(`group_id > ${param(query.afterGroupId)}`);
    const sql = `SELECT ${GROUP_COLUMNS} FROM groups${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY group_id LIMIT ${param(query.limit)}`;
    const result = await this.run('list groups', () => this.pool.query<GroupRow>(sql, params));
    return result.rows.map(toGroup);
  }

  async insertWindowJobs(jobs: readonly JobRecord[]): Promise<boolean> {
    const ordered = windowJobs(jobs);
    try {
      await this.run('insert window jobs', () =>
        this.transaction(async (client) => {
          for (const job of ordered) {
            // A rival transaction's uncommitted row makes this wait for its outcome: DO NOTHING once it commits.
            const result = await client.query(
              `INSERT INTO jobs (${JOB_COLUMNS}, window_lower_ms)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13::jsonb, $14::jsonb, $15, $16, $17, $18, $19, $20, $21)
               ON CONFLICT (group_id, stream_id, boundary_type, lower_bound, upper_bound, generation) DO NOTHING`,
              [
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
              ],
            );
            // A job of this window and generation exists: roll back whatever this call inserted.
            if (result.rowCount === 0) throw new WindowTaken();
          }
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof WindowTaken) return false;
      throw err;
    }
  }

  async latestWindowJobs(groupId: string, boundaries: Boundaries): Promise<JobRecord[]> {
    const result = await this.run('latest window jobs', () =>
      this.pool.query<JobRow>(
        `SELECT ${JOB_COLUMNS} FROM jobs
         WHERE group_id = $1 AND boundary_type = $2 AND lower_bound = $3 AND upper_bound = $4
           AND generation = (SELECT MAX(generation) FROM jobs WHERE group_id = $1 AND boundary_type = $2 AND lower_bound = $3 AND upper_bound = $4)
         ORDER BY stream_id`,
        [groupId, boundaries.boundaryType, boundaries.lowerBound, boundaries.upperBound],
      ),
    );
    return result.rows.map(toJob);
  }

  async updateJob(
    jobId: string,
    patch: JobPatch,
    now: number,
    fromStates?: readonly JobState[],
  ): Promise<JobRecord | undefined> {
    // One statement for every patch shape: an absent field binds NULL and keeps the stored value.
    const result = await this.run('update job', () =>
      this.pool.query<JobRow>(
        `UPDATE jobs SET
           state = COALESCE($2::text, state), attempt = COALESCE($3::integer, attempt),
           resolved_positions = COALESCE($4::jsonb, resolved_positions), progress = COALESCE($5::jsonb, progress),
           error = COALESCE($6::text, error), owner = COALESCE($7::text, owner),
           started_at = COALESCE($8::bigint, started_at), finished_at = COALESCE($9::bigint, finished_at), updated_at = $10
         WHERE job_id = $1 AND ($11::text[] IS NULL OR state = ANY($11::text[]))
         RETURNING ${JOB_COLUMNS}`,
        [
          jobId,
          patch.state ?? null,
          patch.attempt ?? null,
          patch.resolvedPositions === undefined ? null : JSON.stringify(patch.resolvedPositions),
          patch.progress === undefined ? null : JSON.stringify(patch.progress),
          patch.error ?? null,
          patch.owner ?? null,
          patch.startedAt ?? null,
          patch.finishedAt ?? null,
          now,
          fromStates ?? null,
        ],
      ),
    );
    const row = result.rows[0];
    return row && toJob(row);
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const result = await this.run('get job', () =>
      this.pool.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE job_id = $1`, [jobId]),
    );
    const row = result.rows[0];
    return row && toJob(row);
  }

  async listJobs(query: JobQuery): Promise<JobRecord[]> {
    checkLimit(query.limit);
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (query.groupId !== undefined) where.push(`group_id = ${param(query.groupId)}`);
    if (query.states !== undefined) where.push(`state = ANY(${param(query.states)}::text[])`);
    if (query.windowFrom !== undefined) where.push(`window_lower_ms >= ${param(query.windowFrom)}`);
    if (query.windowTo !== undefined) where.push(`window_lower_ms < ${param(query.windowTo)}`);
    if (query.afterJobId !== undefined) where.push(`job_id > ${param(query.afterJobId)}`);
    const sql = `SELECT ${JOB_COLUMNS} FROM jobs${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY job_id LIMIT ${param(query.limit)}`;
    const result = await this.run('list jobs', () => this.pool.query<JobRow>(sql, params));
    return result.rows.map(toJob);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /** Runs `fn` on one pooled connection inside BEGIN/COMMIT; rolls back on any error. */
  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // The connection is unusable: drop it from the pool rather than hand it out again.
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** Runs `fn`, turning a lost or refused connection into UNAVAILABLE naming the host (never the password). */
  private async run<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed)
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        `schedule store: ${doing}: the PostgreSQL store for ${this.target} is closed`,
      );
    try {
      return await fn();
    } catch (err) {
      if (isSluiceError(err) || !isConnectionError(err)) throw err;
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        this.scrub(`schedule store: ${doing}: PostgreSQL at ${this.target} unavailable: ${messageOf(err)}`),
        {},
        { cause: err },
      );
    }
  }

  private scrub(text: string): string {
    return this.secrets.reduce((out, secret) => out.split(secret).join('***'), text);
  }
}

function messageOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(messageOf).join('; ');
  if (err instanceof Error) return err.message || (err as { code?: string }).code || err.name;
  return String(err);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
