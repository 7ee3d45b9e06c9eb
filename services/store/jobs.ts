import type { Kysely, Selectable, Updateable } from 'kysely';
import type { Boundaries } from 'sluice/sdk';
import type { JobPatch, JobQuery, JobRecord, JobRun, JobState } from '../operator/domain/model.js';
import { WindowTaken, checkLimit, windowJobs, windowLowerMs } from './checks.js';
import type { Database, JobsTable } from './database.js';
import type { StoreDialect } from './dialect.js';

/** What a job reads back; window_lower_ms is derived from the bounds on insert and only queried. */
const COLUMNS = [
  'job_id',
  'group_id',
  'stream_id',
  'instance_id',
  'boundary_type',
  'lower_bound',
  'upper_bound',
  'generation',
  'state',
  'runner',
  'attempt',
  'resolved_source_options',
  'resolved_positions',
  'progress',
  'error',
  'owner',
  'lease_until',
  'created_at',
  'started_at',
  'finished_at',
  'updated_at',
  'trace_id',
] as const;

const UNFINISHED: readonly JobState[] = ['PENDING', 'RUNNING'];

/** The operator's jobs: one per stream of a window and generation, that key unique. */
export class Jobs {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: StoreDialect,
  ) {}

  /** The jobs of one window in one transaction, unless that window and generation has jobs; true when inserted. */
  async insertWindow(jobs: readonly JobRecord[]): Promise<boolean> {
    const ordered = windowJobs(jobs);
    try {
      await this.db.transaction().execute(async (trx) => {
        for (const job of ordered) {
          // A rival transaction's uncommitted row makes this wait for its outcome: nothing is inserted once it commits.
          const row = await trx
            .insertInto('jobs')
            .values({
              job_id: job.jobId,
              group_id: job.groupId,
              stream_id: job.streamId,
              instance_id: job.instanceId,
              boundary_type: job.boundaries.boundaryType,
              lower_bound: job.boundaries.lowerBound,
              upper_bound: job.boundaries.upperBound,
              window_lower_ms: windowLowerMs(job.boundaries),
              generation: job.generation,
              state: job.state,
              runner: job.runner,
              attempt: job.attempt,
              resolved_source_options: JSON.stringify(job.resolvedSourceOptions),
              resolved_positions: JSON.stringify(job.resolvedPositions),
              progress: JSON.stringify(job.progress),
              error: job.error,
              owner: job.owner,
              lease_until: job.leaseUntil ?? null,
              created_at: job.createdAt,
              started_at: job.startedAt ?? null,
              finished_at: job.finishedAt ?? null,
              trace_id: job.traceId ?? null,
              updated_at: job.updatedAt,
            })
            .onConflict((oc) =>
              oc
                .columns(['group_id', 'stream_id', 'boundary_type', 'lower_bound', 'upper_bound', 'generation'])
                .doNothing(),
            )
            .returning('job_id')
            .executeTakeFirst();
          // A job of this window and generation exists: roll back whatever this call inserted.
          if (row === undefined) throw new WindowTaken();
        }
      });
      return true;
    } catch (err) {
      if (err instanceof WindowTaken) return false;
      throw err;
    }
  }

  /** The jobs of the window's latest generation, by streamId (empty when none). */
  async latestOfWindow(groupId: string, boundaries: Boundaries): Promise<JobRecord[]> {
    const rows = await this.db
      .selectFrom('jobs')
      .select(COLUMNS)
      .where('group_id', '=', groupId)
      .where('boundary_type', '=', boundaries.boundaryType)
      .where('lower_bound', '=', boundaries.lowerBound)
      .where('upper_bound', '=', boundaries.upperBound)
      .where('generation', '=', (eb) =>
        eb
          .selectFrom('jobs')
          .select((e) => e.fn.max('generation').as('generation'))
          .where('group_id', '=', groupId)
          .where('boundary_type', '=', boundaries.boundaryType)
          .where('lower_bound', '=', boundaries.lowerBound)
          .where('upper_bound', '=', boundaries.upperBound),
      )
      .orderBy('stream_id')
      .execute();
    return rows.map((row) => this.toRecord(row));
  }

  async update(
    jobId: string,
    patch: JobPatch,
    now: number,
    fromStates?: readonly JobState[],
    run?: JobRun,
  ): Promise<JobRecord | undefined> {
    if (fromStates?.length === 0) return undefined;
    const set: Updateable<JobsTable> = { updated_at: now };
    if (patch.state !== undefined) set.state = patch.state;
    if (patch.attempt !== undefined) set.attempt = patch.attempt;
    if (patch.resolvedPositions !== undefined) set.resolved_positions = JSON.stringify(patch.resolvedPositions);
    if (patch.progress !== undefined) set.progress = JSON.stringify(patch.progress);
    if (patch.error !== undefined) set.error = patch.error;
    if (patch.owner !== undefined) set.owner = patch.owner;
    if (patch.startedAt !== undefined) set.started_at = patch.startedAt;
    if (patch.finishedAt !== undefined) set.finished_at = patch.finishedAt;
    if (patch.traceId !== undefined) set.trace_id = patch.traceId;
    let update = this.db.updateTable('jobs').set(set).where('job_id', '=', jobId);
    if (fromStates !== undefined) update = update.where('state', 'in', fromStates);
    if (run !== undefined) update = update.where('owner', '=', run.owner).where('attempt', '=', run.attempt);
    const row = await update.returning(COLUMNS).executeTakeFirst();
    return row && this.toRecord(row);
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const row = await this.db.selectFrom('jobs').select(COLUMNS).where('job_id', '=', jobId).executeTakeFirst();
    return row && this.toRecord(row);
  }

  /**
   * The jobs among `jobIds` that exist, in one query per 500 ids (a SQLite statement takes at most 999
   * parameters on older builds); order unspecified.
   */
  async getMany(jobIds: readonly string[]): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for (let i = 0; i < jobIds.length; i += 500) {
      const rows = await this.db
        .selectFrom('jobs')
        .select(COLUMNS)
        .where('job_id', 'in', jobIds.slice(i, i + 500))
        .execute();
      for (const row of rows) out.push(this.toRecord(row));
    }
    return out;
  }

  /** Ordered by jobId. */
  async list(query: JobQuery): Promise<JobRecord[]> {
    checkLimit(query.limit);
    if (query.states?.length === 0 || query.limit === 0) return [];
    let select = this.db.selectFrom('jobs').select(COLUMNS);
    if (query.groupId !== undefined) select = select.where('group_id', '=', query.groupId);
    if (query.states !== undefined) select = select.where('state', 'in', query.states);
    if (query.windowFrom !== undefined) select = select.where('window_lower_ms', '>=', query.windowFrom);
    if (query.windowTo !== undefined) select = select.where('window_lower_ms', '<', query.windowTo);
    if (query.afterJobId !== undefined) select = select.where('job_id', '>', query.afterJobId);
    const rows = await select.orderBy('job_id').limit(query.limit).execute();
    return rows.map((row) => this.toRecord(row));
  }

  /**
   * In one statement per 500 ids, as getMany: one parameter per id made a replica holding ~33k jobs (SQLite) or
   * ~65k (PostgreSQL) fail every renewal with "too many SQL variables", and so lose all its leases at once.
   */
  async renewLeases(owner: string, jobIds: readonly string[], until: number): Promise<string[]> {
    const held: string[] = [];
    for (let i = 0; i < jobIds.length; i += 500) {
      const rows = await this.db
        .updateTable('jobs')
        .set({ lease_until: until })
        .where('owner', '=', owner)
        .where('job_id', 'in', jobIds.slice(i, i + 500))
        .where('state', 'in', UNFINISHED)
        .returning('job_id')
        .execute();
      for (const r of rows) held.push(r.job_id);
    }
    return held;
  }

  async expired(now: number, limit: number): Promise<JobRecord[]> {
    checkLimit(limit);
    if (limit === 0) return [];
    const rows = await this.db
      .selectFrom('jobs')
      .select(COLUMNS)
      .where('state', 'in', UNFINISHED)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .orderBy('job_id')
      .limit(limit)
      .execute();
    return rows.map((row) => this.toRecord(row));
  }

  async takeOver(
    jobId: string,
    seenLeaseUntil: number | undefined,
    owner: string,
    until: number,
    now: number,
  ): Promise<JobRecord | undefined> {
    // Compare-and-swap on the lease: the first taker changes it, so a second one no longer matches.
    const row = await this.db
      .updateTable('jobs')
      .set({ owner, lease_until: until, updated_at: now })
      .where('job_id', '=', jobId)
      .where('state', 'in', UNFINISHED)
      .where('lease_until', seenLeaseUntil === undefined ? 'is' : '=', seenLeaseUntil ?? null)
      .returning(COLUMNS)
      .executeTakeFirst();
    return row && this.toRecord(row);
  }

  private toRecord(row: Selectable<Pick<JobsTable, (typeof COLUMNS)[number]>>): JobRecord {
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
      resolvedSourceOptions: this.dialect.readJson(row.resolved_source_options),
      resolvedPositions: this.dialect.readJson(row.resolved_positions),
      progress: this.dialect.readJson(row.progress),
      error: row.error,
      owner: row.owner,
      ...(row.lease_until === null ? {} : { leaseUntil: Number(row.lease_until) }),
      createdAt: Number(row.created_at),
      ...(row.started_at === null ? {} : { startedAt: Number(row.started_at) }),
      ...(row.finished_at === null ? {} : { finishedAt: Number(row.finished_at) }),
      ...(row.trace_id ? { traceId: row.trace_id } : {}),
      updatedAt: Number(row.updated_at),
    };
  }
}
