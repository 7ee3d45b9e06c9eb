import { CompiledQuery, type Insertable, type Kysely, type Selectable, type Updateable, sql } from 'kysely';
import { invalidArgument } from 'sluice/sdk';
import type {
  FiringHead,
  InstancePatch,
  InstanceQuery,
  InstanceRecord,
  InstanceState,
  InstanceTrigger,
  InstanceUpdate,
} from '../schedule/domain/model.js';
import { SCHEDULE_TRIGGERS } from '../schedule/domain/model.js';
import { checkLimit } from './checks.js';
import type { Database, InstancesTable, SchedulesTable } from './database.js';
import type { StoreDialect } from './dialect.js';
import { batchRows } from './batch-rows.js';
import { type JsonRowType, PG_TYPES, inJsonArray, jsonRows } from './json-rows.js';

const COLUMNS = [
  'instance_id',
  'group_id',
  'window_start',
  'window_end',
  'due_time',
  'state',
  'trigger',
  'job_ids',
  'attempt',
  'dispatched_at',
  'finished_at',
  'error',
  'owner',
  'created_at',
  'updated_at',
  'boundary_type',
  'lower_bound',
  'upper_bound',
  'triggered_by',
] as const;

/** Each column's type, for rows passed as parameters ({@link batchRows}). */
const COLUMN_TYPES: Readonly<Record<(typeof COLUMNS)[number], JsonRowType>> = {
  instance_id: 'text',
  group_id: 'text',
  window_start: 'epochMs',
  window_end: 'epochMs',
  due_time: 'epochMs',
  state: 'text',
  trigger: 'text',
  job_ids: 'json',
  attempt: 'integer',
  dispatched_at: 'epochMs',
  finished_at: 'epochMs',
  error: 'text',
  owner: 'text',
  created_at: 'epochMs',
  updated_at: 'epochMs',
  boundary_type: 'text',
  lower_bound: 'text',
  upper_bound: 'text',
  triggered_by: 'text',
};

/**
 * Rows one claim statement inserts at most (19 bound values a row stays well under SQLite's 32,766 and
 * PostgreSQL's 65,535 parameters a statement), and updates one transaction applies at most.
 */
export const MAX_CLAIMS = 500;

/**
 * Rows a SQLite claim statement holds: a batch goes as the fewest of these (a burst's 250 as one statement, which
 * binds its 4,750 values faster than 12 smaller ones; 81 = 64 + 2 × 8 + 1).
 */
const SQLITE_CLAIM_SIZES = [250, 64, 8, 1] as const;

const sqliteClaimTexts = new Map<number, string>();

/**
 * An instance's values for a SQLite claim statement, in COLUMNS order, as toRow writes them (each value read
 * once, straight into the statement's parameters: a burst binds 19 values for each of thousands of rows).
 */
function pushClaimValues(out: unknown[], i: InstanceRecord): void {
  out.push(
    i.instanceId,
    i.groupId,
    i.windowStart,
    i.windowEnd,
    i.dueTime,
    i.state,
    i.trigger,
    JSON.stringify(i.jobIds),
    i.attempt,
    i.dispatchedAt ?? null,
    i.finishedAt ?? null,
    i.error ?? null,
    i.owner,
    i.createdAt,
    i.updatedAt,
    i.boundaries?.boundaryType ?? 'TIME',
    i.boundaries?.lowerBound ?? null,
    i.boundaries?.upperBound ?? null,
    i.triggeredBy ?? null,
  );
}

/** Instances.firingHeads on SQLite: parameters the due-by instant, then the group ids as a JSON array. */
const SQLITE_FIRING_HEADS =
  "SELECT q.key AS probe, s.version AS version, s.status AS status, s.updated_at AS updated_at, (SELECT l.instance_id FROM instances l WHERE l.group_id = s.group_id AND l.boundary_type = 'TIME' AND l.due_time <= ? ORDER BY l.window_start DESC LIMIT 1) AS last_id FROM json_each(?) q JOIN schedules s ON s.group_id = q.value";

/** The SQLite claim of `rows` rows, with bound values: one text per size. */
function sqliteClaimText(rows: number): string {
  let text = sqliteClaimTexts.get(rows);
  if (text === undefined) {
    const row = `(${COLUMNS.map(() => '?').join(', ')})`;
    text =
      `INSERT INTO instances (${COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES ${Array.from({ length: rows }, () => row).join(', ')}` +
      ' ON CONFLICT (group_id, window_start) DO NOTHING RETURNING instance_id';
    sqliteClaimTexts.set(rows, text);
  }
  return text;
}

/**
 * The ledger: one row per (group, window), unique, written before dispatch. Every change is one conditional
 * statement, so of replicas racing for a window (claim, re-arm, take-over) exactly one gets it.
 */
export class Instances {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: StoreDialect,
  ) {}

  async claim(instance: InstanceRecord): Promise<InstanceRecord | undefined> {
    return (await this.claimMany([instance]))[0];
  }

  /**
   * Inserts each instance whose (group, window) has no row yet, in one transaction (on PostgreSQL one statement,
   * so one round trip for a burst of due windows); answers, in the order given, the row inserted or undefined where
   * the window was taken, by an earlier row or another entry of the same call.
   */
  async claimMany(instances: readonly InstanceRecord[]): Promise<(InstanceRecord | undefined)[]> {
    if (instances.length === 0) return [];
    if (instances.length > MAX_CLAIMS)
      throw invalidArgument('instances', `at most ${MAX_CLAIMS} instances per claim`, instances.length);
    // Inserted in key order: two replicas claiming overlapping batches take the key locks in the same order, so
    // one waits for the other (and then finds its rows taken) instead of deadlocking on PostgreSQL.
    const ordered = [...instances].sort((a, b) =>
      a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : a.windowStart - b.windowStart,
    );
    const rows = this.dialect.name === 'sqlite' ? await this.claimSqlite(ordered) : await this.claimBatch(ordered);
    const inserted = new Set(rows.map((row) => row.instance_id));
    return instances.map((instance) => (inserted.has(instance.instanceId) ? this.asStored(instance) : undefined));
  }

  /**
   * PostgreSQL: the rows go as one array parameter per column ({@link batchRows}), so every batch size is the
   * same statement text. WHERE true: SQLite would read ON CONFLICT after an INSERT … SELECT as a join's ON (kept
   * for any dialect).
   */
  private async claimBatch(ordered: readonly InstanceRecord[]): Promise<{ instance_id: string }[]> {
    const rows = ordered.map((instance) => ({ ...this.toRow(instance), job_ids: instance.jobIds }));
    // A column with one value in every row (a burst's state, owner, claim time, the NULLs) goes as one parameter
    // rather than an array of it: a burst's claim sends and unnests 6 of the 19 columns.
    const first = rows[0]!;
    const same = (c: (typeof COLUMNS)[number]) => {
      const v = c === 'job_ids' ? JSON.stringify(first.job_ids) : first[c];
      return rows.every((r) => (c === 'job_ids' ? JSON.stringify(r.job_ids) : r[c]) === v);
    };
    const constant = new Set(COLUMNS.filter((c) => c !== 'instance_id' && same(c)));
    const varying = COLUMNS.filter((c) => !constant.has(c));
    const source = batchRows(this.dialect, 'c', Object.fromEntries(varying.map((c) => [c, COLUMN_TYPES[c]])), rows);
    const values = COLUMNS.map((c) => {
      if (!constant.has(c)) return sql.ref(`c.${c}`);
      const v = first[c];
      const type = sql.raw(PG_TYPES[COLUMN_TYPES[c]]);
      return v === null || v === undefined
        ? sql`NULL::${type}`
        : sql`${COLUMN_TYPES[c] === 'json' ? JSON.stringify(v) : v}::${type}`;
    });
    // Only the ids come back: an inserted row holds exactly what was given, so the answer is built from that
    // (as the row would read), without sending and decoding every column of a burst's rows again.
    const { rows: inserted } = await sql<{
      instance_id: string;
    }>`INSERT INTO instances (${sql.join(COLUMNS.map((c) => sql.ref(c)))}) SELECT ${sql.join(values)} FROM ${source} WHERE true ON CONFLICT (group_id, window_start) DO NOTHING RETURNING instance_id`.execute(
      this.db,
    );
    return inserted;
  }

  /**
   * SQLite: bound values in statements of SQLITE_CLAIM_SIZES rows (a few texts, each prepared once), in one
   * transaction. SQLite reads JSON rows back with a json_extract per column and row, which cost a burst of
   * 2,000 claims about as much again as the inserts themselves.
   */
  private async claimSqlite(ordered: readonly InstanceRecord[]): Promise<{ instance_id: string }[]> {
    const statements: CompiledQuery<{ instance_id: string }>[] = [];
    let at = 0;
    for (const size of SQLITE_CLAIM_SIZES)
      for (; ordered.length - at >= size; at += size) {
        const parameters: unknown[] = [];
        for (let i = at; i < at + size; i++) pushClaimValues(parameters, ordered[i]!);
        statements.push(CompiledQuery.raw(sqliteClaimText(size), parameters));
      }
    // On the store's own connection, in one transaction, without Kysely's executor (which cost a burst as much as
    // the inserts); the SQLite dialect always has it.
    const executeAll = this.dialect.executeAll;
    if (!executeAll) throw new Error('SQLite claims run through the dialect executeAll');
    return (await executeAll(statements)).flatMap((r) => r.rows as { instance_id: string }[]);
  }

  async rearm(
    groupId: string,
    windowStart: number,
    fromStates: readonly InstanceState[],
    trigger: InstanceTrigger,
    owner: string,
    now: number,
  ): Promise<InstanceRecord | undefined> {
    if (fromStates.length === 0) return undefined;
    // Concurrent re-arms queue on the row lock; each re-checks the state once it has it, so one wins.
    const row = await this.db
      .updateTable('instances')
      .set((eb) => ({
        state: 'SCHEDULED',
        // A skipped window never ran: its first run is attempt 1 (and is not a rerun of anything).
        attempt: eb
          .case()
          .when('state', '=', 'SKIPPED')
          .then(eb.ref('attempt'))
          .else(eb('attempt', '+', 1))
          .end(),
        trigger,
        owner,
        job_ids: '[]',
        error: null,
        finished_at: null,
        updated_at: now,
      }))
      .where('group_id', '=', groupId)
      .where('window_start', '=', windowStart)
      .where('state', 'in', fromStates)
      .returning(COLUMNS)
      .executeTakeFirst();
    return row && this.toRecord(row);
  }

  async takeOver(
    instanceId: string,
    seenUpdatedAt: number,
    owner: string,
    now: number,
    states: readonly InstanceState[],
  ): Promise<InstanceRecord | undefined> {
    if (states.length === 0) return undefined;
    // Compare-and-swap on updated_at: the first taker changes it (always forward), so a second one no longer matches.
    const row = await this.db
      .updateTable('instances')
      .set({
        owner,
        updated_at: sql<number>`CASE WHEN updated_at + 1 > ${now} THEN updated_at + 1 ELSE ${now} END`,
      })
      .where('instance_id', '=', instanceId)
      .where('state', 'in', states)
      .where('updated_at', '=', seenUpdatedAt)
      .returning(COLUMNS)
      .executeTakeFirst();
    return row && this.toRecord(row);
  }

  /**
   * The owner's heartbeat on the unfinished rows it works on: their updated_at moves on, so no other replica
   * finds them stale. Answers the ids still held (a row taken over or ended meanwhile is missing).
   */
  async renew(owner: string, instanceIds: readonly string[], now: number): Promise<string[]> {
    if (instanceIds.length === 0) return [];
    const rows = await this.db
      .updateTable('instances')
      .set({ updated_at: sql<number>`CASE WHEN updated_at + 1 > ${now} THEN updated_at + 1 ELSE ${now} END` })
      .where('owner', '=', owner)
      .where('instance_id', 'in', instanceIds)
      .where('state', 'in', ['SCHEDULED', 'DISPATCHED', 'RUNNING'])
      .returning('instance_id')
      .execute();
    return rows.map((r) => r.instance_id);
  }

  async update(
    instanceId: string,
    patch: InstancePatch,
    now: number,
    fromStates?: readonly InstanceState[],
  ): Promise<InstanceRecord | undefined> {
    if (fromStates?.length === 0) return undefined;
    const set: Updateable<InstancesTable> = { updated_at: now };
    if (patch.state !== undefined) set.state = patch.state;
    if (patch.jobIds !== undefined) set.job_ids = JSON.stringify(patch.jobIds);
    if (patch.dispatchedAt !== undefined) set.dispatched_at = patch.dispatchedAt;
    if (patch.finishedAt !== undefined) set.finished_at = patch.finishedAt;
    if (patch.error !== undefined) set.error = patch.error;
    let update = this.db.updateTable('instances').set(set).where('instance_id', '=', instanceId);
    if (fromStates !== undefined) update = update.where('state', 'in', fromStates);
    const row = await update.returning(COLUMNS).executeTakeFirst();
    return row && this.toRecord(row);
  }

  /**
   * Several updates in a few statements (a burst of windows starting or ending together costs one statement and
   * commit, not one each): one UPDATE … FROM the updates as bound rows ({@link updateRound}) per round, one round
   * per update of an instance that is updated more than once, so an instance's updates apply in the order given.
   * Each answered as {@link update} answers it.
   */
  async updateMany(updates: readonly InstanceUpdate[]): Promise<(InstanceRecord | undefined)[]> {
    if (updates.length === 0) return [];
    if (updates.length > MAX_CLAIMS)
      throw invalidArgument('updates', `at most ${MAX_CLAIMS} instance updates at once`, updates.length);
    const rounds: { u: InstanceUpdate; i: number }[][] = [];
    const seen = new Map<string, number>();
    updates.forEach((u, i) => {
      const round = seen.get(u.instanceId) ?? 0;
      seen.set(u.instanceId, round + 1);
      (rounds[round] ??= []).push({ u, i });
    });
    const out: (InstanceRecord | undefined)[] = new Array(updates.length).fill(undefined);
    for (const round of rounds) {
      const live = round.filter(({ u }) => u.fromStates?.length !== 0);
      if (live.length === 0) continue;
      const rows = await this.updateRound(live.map(({ u }) => u));
      const byId = new Map(rows.map((row) => [row.instance_id, row]));
      for (const { u, i } of live) {
        const row = byId.get(u.instanceId);
        out[i] = row && this.toRecord(row);
      }
    }
    return out;
  }

  /**
   * One UPDATE for updates of distinct instances, the updates as parameters ({@link batchRows}: one statement
   * text for any batch): a field the patch leaves out is null there and keeps the column's value.
   */
  private async updateRound(updates: readonly InstanceUpdate[]): Promise<Selectable<InstancesTable>[]> {
    // The source's names differ from the table's, so the unqualified columns of SET and RETURNING are the table's.
    const source = batchRows(
      this.dialect,
      'u',
      {
        u_id: 'text',
        u_now: 'epochMs',
        u_state: 'text',
        u_job_ids: 'json',
        u_dispatched_at: 'epochMs',
        u_finished_at: 'epochMs',
        u_error: 'text',
        u_from: 'json',
      },
      updates.map((u) => ({
        u_id: u.instanceId,
        u_now: u.now,
        u_state: u.patch.state ?? null,
        u_job_ids: u.patch.jobIds ?? null,
        u_dispatched_at: u.patch.dispatchedAt ?? null,
        u_finished_at: u.patch.finishedAt ?? null,
        u_error: u.patch.error ?? null,
        u_from: u.fromStates ?? null,
      })),
    );
    const fromStates = inJsonArray(this.dialect, sql`state`, sql`u.u_from`);
    const { rows } = await sql<
      Selectable<InstancesTable>
    >`UPDATE instances SET updated_at = u.u_now, state = COALESCE(u.u_state, state), job_ids = COALESCE(u.u_job_ids, job_ids), dispatched_at = COALESCE(u.u_dispatched_at, dispatched_at), finished_at = COALESCE(u.u_finished_at, finished_at), error = COALESCE(u.u_error, error) FROM ${source} WHERE instance_id = u.u_id AND (u.u_from IS NULL OR ${fromStates}) RETURNING ${sql.join(
      COLUMNS.map((c) => sql.ref(c)),
    )}`.execute(this.db);
    return rows;
  }

  async get(groupId: string, windowStart: number): Promise<InstanceRecord | undefined> {
    const row = await this.db
      .selectFrom('instances')
      .select(COLUMNS)
      .where('group_id', '=', groupId)
      .where('window_start', '=', windowStart)
      .executeTakeFirst();
    return row && this.toRecord(row);
  }

  async getById(instanceId: string): Promise<InstanceRecord | undefined> {
    const row = await this.db
      .selectFrom('instances')
      .select(COLUMNS)
      .where('instance_id', '=', instanceId)
      .executeTakeFirst();
    return row && this.toRecord(row);
  }

  /** Ordered by (groupId, windowStart); only the filters present reach the SQL, so the planner can use the indexes. */
  async list(query: InstanceQuery): Promise<InstanceRecord[]> {
    checkLimit(query.limit);
    if (query.states?.length === 0 || query.limit === 0) return [];
    let select = this.db.selectFrom('instances').select(COLUMNS);
    if (query.groupId !== undefined) select = select.where('group_id', '=', query.groupId);
    if (query.states !== undefined) select = select.where('state', 'in', query.states);
    if (query.windowFrom !== undefined) select = select.where('window_start', '>=', query.windowFrom);
    if (query.windowTo !== undefined) select = select.where('window_start', '<', query.windowTo);
    const after = query.after;
    if (after !== undefined) {
      select = select.where((eb) =>
        eb.or([
          eb('group_id', '>', after.groupId),
          eb.and([eb('group_id', '=', after.groupId), eb('window_start', '>', after.windowStart)]),
        ]),
      );
    }
    const rows = await select.orderBy('group_id').orderBy('window_start').limit(query.limit).execute();
    return rows.map((row) => this.toRecord(row));
  }

  /**
   * Per group whose schedule is not DELETED, the greatest windowEnd of a SUCCEEDED instance; the first `limit`
   * groups by groupId. What data freshness starts from after a restart.
   */
  async lastSucceeded(limit: number): Promise<{ groupId: string; windowEnd: number }[]> {
    checkLimit(limit);
    if (limit === 0) return [];
    const rows = await this.db
      .selectFrom('instances as i')
      .innerJoin('schedules as s', 's.group_id', 'i.group_id')
      .select((eb) => ['i.group_id', eb.fn.max('i.window_end').as('window_end')])
      .where('i.state', '=', 'SUCCEEDED')
      .where('i.boundary_type', '=', 'TIME')
      .where('s.status', '!=', 'DELETED')
      .groupBy('i.group_id')
      .orderBy('i.group_id')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ groupId: row.group_id, windowEnd: Number(row.window_end) }));
  }

  /** The TIME instance with the greatest windowStart of the group (of those due by `dueBy`, when given). */
  async last(groupId: string, dueBy?: number): Promise<InstanceRecord | undefined> {
    let select = this.db
      .selectFrom('instances')
      .select(COLUMNS)
      .where('group_id', '=', groupId)
      .where('boundary_type', '=', 'TIME');
    if (dueBy !== undefined) select = select.where('due_time', '<=', dueBy);
    const row = await select.orderBy('window_start', 'desc').limit(1).executeTakeFirst();
    return row && this.toRecord(row);
  }

  /**
   * Where the schedule itself has got to (ScheduleStore.scheduleProgress): its latest TIME instance due by
   * `dueBy` with trigger SCHEDULE or CATCH_UP, and the starts of the TIME instances after it.
   */
  async scheduleProgress(
    groupId: string,
    dueBy: number,
  ): Promise<{ last?: InstanceRecord; claimedAfter: { windowStart: number; state: InstanceState }[] }> {
    const row = await this.db
      .selectFrom('instances')
      .select(COLUMNS)
      .where('group_id', '=', groupId)
      .where('boundary_type', '=', 'TIME')
      .where('due_time', '<=', dueBy)
      .where('trigger', 'in', SCHEDULE_TRIGGERS)
      .orderBy('window_start', 'desc')
      .limit(1)
      .executeTakeFirst();
    let after = this.db
      .selectFrom('instances')
      .select(['window_start', 'state'])
      .where('group_id', '=', groupId)
      .where('boundary_type', '=', 'TIME');
    if (row) after = after.where('window_start', '>', row.window_start);
    const rows = await after.orderBy('window_start').execute();
    return {
      ...(row ? { last: this.toRecord(row) } : {}),
      claimedAfter: rows.map((r) => ({ windowStart: Number(r.window_start), state: r.state as InstanceState })),
    };
  }

  /**
   * {@link last} for several groups in one query (one correlated index probe each): answers, in the
   * order given, each group's TIME instance with the greatest windowStart due by its `dueBy`.
   */
  async lastMany(
    queries: readonly { readonly groupId: string; readonly dueBy?: number }[],
  ): Promise<(InstanceRecord | undefined)[]> {
    if (queries.length === 0) return [];
    if (queries.length > MAX_CLAIMS)
      throw invalidArgument('queries', `at most ${MAX_CLAIMS} groups at once`, queries.length);
    // One index probe per group (the correlated sub-select), the groups as one JSON parameter: one statement
    // text for any number of groups, prepared once.
    const source = jsonRows(
      this.dialect,
      'q',
      { probe: 'integer', group_id: 'text', due_by: 'epochMs' },
      queries.map((q, probe) => ({ probe, group_id: q.groupId, due_by: q.dueBy ?? null })),
    );
    const columns = sql.join(COLUMNS.map((c) => sql.ref(`i.${c}`)));
    const latest = sql`l.group_id = q.group_id AND l.boundary_type = 'TIME' AND (q.due_by IS NULL OR l.due_time <= q.due_by) ORDER BY l.window_start DESC LIMIT 1`;
    // PostgreSQL: a LATERAL probe. Joined on the sub-select's instance id instead, it hashed the whole instances
    // table (a sequential scan of the ledger per call, growing with its history). SQLite has no LATERAL; it looks
    // the correlated sub-select's id up by primary key.
    const { rows } = await (
      this.dialect.name === 'postgres'
        ? sql<
            Selectable<InstancesTable> & { probe: number }
          >`SELECT q.probe AS probe, ${columns} FROM ${source} CROSS JOIN LATERAL (SELECT l.* FROM instances l WHERE ${latest}) i`
        : sql<
            Selectable<InstancesTable> & { probe: number }
          >`SELECT q.probe AS probe, ${columns} FROM ${source} JOIN instances i ON i.instance_id = (SELECT l.instance_id FROM instances l WHERE ${latest})`
    ).execute(this.db);
    const out: (InstanceRecord | undefined)[] = new Array(queries.length).fill(undefined);
    for (const row of rows) out[Number(row.probe)] = this.toRecord(row);
    return out;
  }

  /**
   * PostgreSQL: what firing a group reads, for several groups in one statement: each group's schedule (undefined
   * where there is none) and, where there is one, its latest TIME instance due by its `dueBy` (as
   * {@link lastMany}), in the order given, both as of one snapshot. A burst of due groups costs one read a task
   * instead of two, each a round trip, a parse and a plan on a server the service shares. (SQLite reads the two
   * apart: the same join there took more CPU than the two statements.) `schedule` decodes a schedule row, its
   * info selected as text.
   */
  async lastManyWithSchedules<S>(
    queries: readonly { readonly groupId: string; readonly dueBy?: number }[],
    schedule: (row: Selectable<SchedulesTable>) => S,
  ): Promise<{ schedule?: S; last?: InstanceRecord }[]> {
    if (queries.length === 0) return [];
    if (queries.length > MAX_CLAIMS)
      throw invalidArgument('queries', `at most ${MAX_CLAIMS} groups at once`, queries.length);
    if (this.dialect.name !== 'postgres') throw new Error('lastManyWithSchedules is PostgreSQL only');
    const source = batchRows(
      this.dialect,
      'q',
      { probe: 'integer', group_id: 'text', due_by: 'epochMs' },
      queries.map((q, probe) => ({ probe, group_id: q.groupId, due_by: q.dueBy ?? null })),
    );
    // The schedule's columns renamed (the instance's share their names); its info as text, parsed only when it
    // changed (the driver would parse the jsonb itself).
    const scheduleColumns = sql.join([
      sql`s.group_id AS s_group_id, s.info::text AS s_info`,
      sql`s.status AS s_status, s.engine_id AS s_engine_id, s.version AS s_version`,
      sql`s.created_at AS s_created_at, s.updated_at AS s_updated_at`,
    ]);
    const columns = sql.join(COLUMNS.map((c) => sql.ref(`i.${c}`)));
    const latest = sql`l.group_id = q.group_id AND l.boundary_type = 'TIME' AND (q.due_by IS NULL OR l.due_time <= q.due_by) ORDER BY l.window_start DESC LIMIT 1`;
    // The latest instance as lastMany finds it, a LATERAL probe.
    const query = sql`SELECT q.probe AS probe, ${scheduleColumns}, ${columns} FROM ${source} JOIN schedules s ON s.group_id = q.group_id LEFT JOIN LATERAL (SELECT ${sql.join(COLUMNS.map((c) => sql.ref(`l.${c}`)))} FROM instances l WHERE ${latest}) i ON true`;
    type Row = { [K in keyof Selectable<InstancesTable>]: Selectable<InstancesTable>[K] | null } & {
      probe: number;
      s_group_id: string;
      s_info: unknown;
      s_status: string;
      s_engine_id: string;
      s_version: number;
      s_created_at: number;
      s_updated_at: number;
    };
    const { rows } = await this.db.executeQuery(query.compile(this.db) as CompiledQuery<Row>);
    const out: { schedule?: S; last?: InstanceRecord }[] = queries.map(() => ({}));
    for (const row of rows) {
      out[Number(row.probe)] = {
        schedule: schedule({
          group_id: row.s_group_id,
          info: row.s_info,
          status: row.s_status,
          engine_id: row.s_engine_id,
          version: row.s_version,
          created_at: row.s_created_at,
          updated_at: row.s_updated_at,
        } as Selectable<SchedulesTable>),
        ...(row.instance_id === null ? {} : { last: this.toRecord(row as Selectable<InstancesTable>) }),
      };
    }
    return out;
  }

  /**
   * What a fire planned ahead checks at its due time, for several groups in one statement: each group's schedule
   * version, status and last write time, and the id of its latest TIME instance due by `dueBy` (as
   * {@link lastMany}), in the order given; undefined where there is no schedule. Neither the schedule's info nor
   * the instance row is read.
   */
  async firingHeads(groupIds: readonly string[], dueBy: number): Promise<(FiringHead | undefined)[]> {
    if (groupIds.length === 0) return [];
    if (groupIds.length > MAX_CLAIMS)
      throw invalidArgument('group_ids', `at most ${MAX_CLAIMS} groups at once`, groupIds.length);
    type Row = {
      probe: number | string;
      version: number;
      status: string;
      updated_at: number | string;
      last_id: string | null;
    };
    let rows: Row[];
    if (this.dialect.execute) {
      // SQLite: one statement text, the groups as one JSON array (json_each numbers them from 0).
      rows = (await this.dialect.execute(SQLITE_FIRING_HEADS, [dueBy, JSON.stringify(groupIds)])).rows as Row[];
    } else {
      const latest = sql`l.group_id = s.group_id AND l.boundary_type = 'TIME' AND l.due_time <= ${dueBy} ORDER BY l.window_start DESC LIMIT 1`;
      ({ rows } =
        await sql<Row>`SELECT q.probe - 1 AS probe, s.version AS version, s.status AS status, s.updated_at AS updated_at, (SELECT l.instance_id FROM instances l WHERE ${latest}) AS last_id FROM unnest(${[...groupIds]}::text[]) WITH ORDINALITY AS q(group_id, probe) JOIN schedules s ON s.group_id = q.group_id`.execute(
          this.db,
        ));
    }
    const out: (FiringHead | undefined)[] = groupIds.map(() => undefined);
    for (const row of rows)
      out[Number(row.probe)] = {
        version: Number(row.version),
        status: row.status,
        updatedAt: Number(row.updated_at),
        ...(row.last_id === null ? {} : { lastId: row.last_id }),
      };
    return out;
  }

  /** TIME instances of the group, not SKIPPED, other than `exceptId`, whose window meets [lower, upper). */
  async overlapping(groupId: string, lower: number, upper: number, exceptId: string): Promise<InstanceRecord[]> {
    const rows = await this.db
      .selectFrom('instances')
      .select(COLUMNS)
      .where('group_id', '=', groupId)
      .where('boundary_type', '=', 'TIME')
      .where('window_start', '<', upper)
      .where('window_end', '>', lower)
      .where('state', '!=', 'SKIPPED')
      .where('instance_id', '!=', exceptId)
      .orderBy('window_start')
      .limit(10)
      .execute();
    return rows.map((row) => this.toRecord(row));
  }

  /** Deletes an instance that was never dispatched (a claim withdrawn); true when this call deleted it. */
  async withdraw(instanceId: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('instances')
      .where('instance_id', '=', instanceId)
      .where('state', '=', 'SCHEDULED')
      .where('dispatched_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  private toRow(instance: InstanceRecord): Insertable<InstancesTable> {
    return {
      instance_id: instance.instanceId,
      group_id: instance.groupId,
      window_start: instance.windowStart,
      window_end: instance.windowEnd,
      due_time: instance.dueTime,
      state: instance.state,
      trigger: instance.trigger,
      job_ids: JSON.stringify(instance.jobIds),
      attempt: instance.attempt,
      dispatched_at: instance.dispatchedAt ?? null,
      finished_at: instance.finishedAt ?? null,
      error: instance.error ?? null,
      owner: instance.owner,
      created_at: instance.createdAt,
      updated_at: instance.updatedAt,
      boundary_type: instance.boundaries?.boundaryType ?? 'TIME',
      lower_bound: instance.boundaries?.lowerBound ?? null,
      upper_bound: instance.boundaries?.upperBound ?? null,
      triggered_by: instance.triggeredBy ?? null,
    };
  }

  /**
   * The record as {@link toRecord} reads back the row {@link toRow} writes for it: absent optional fields stay
   * absent, the job ids are a copy, and an OFFSET window's bounds are kept. Built directly (a burst answers
   * thousands of claims), not through a row.
   */
  private asStored(i: InstanceRecord): InstanceRecord {
    const r: { -readonly [K in keyof InstanceRecord]: InstanceRecord[K] } = {
      instanceId: i.instanceId,
      groupId: i.groupId,
      windowStart: i.windowStart,
      windowEnd: i.windowEnd,
      dueTime: i.dueTime,
      state: i.state,
      trigger: i.trigger,
      jobIds: [...i.jobIds],
      attempt: i.attempt,
      owner: i.owner,
      createdAt: i.createdAt,
      updatedAt: i.updatedAt,
    };
    if (i.dispatchedAt !== undefined) r.dispatchedAt = i.dispatchedAt;
    if (i.finishedAt !== undefined) r.finishedAt = i.finishedAt;
    if (i.error !== undefined) r.error = i.error;
    if (i.boundaries?.boundaryType === 'OFFSET')
      r.boundaries = {
        boundaryType: 'OFFSET',
        lowerBound: i.boundaries.lowerBound ?? '',
        upperBound: i.boundaries.upperBound ?? '',
      };
    if (i.triggeredBy !== undefined) r.triggeredBy = i.triggeredBy;
    return r;
  }

  private toRecord(row: Selectable<InstancesTable>): InstanceRecord {
    return {
      instanceId: row.instance_id,
      groupId: row.group_id,
      windowStart: Number(row.window_start),
      windowEnd: Number(row.window_end),
      dueTime: Number(row.due_time),
      state: row.state as InstanceState,
      trigger: row.trigger as InstanceTrigger,
      jobIds: this.dialect.readJson<string[]>(row.job_ids),
      attempt: Number(row.attempt),
      ...(row.dispatched_at === null ? {} : { dispatchedAt: Number(row.dispatched_at) }),
      ...(row.finished_at === null ? {} : { finishedAt: Number(row.finished_at) }),
      ...(row.error === null ? {} : { error: row.error }),
      owner: row.owner,
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
      ...(row.boundary_type === 'OFFSET'
        ? {
            boundaries: {
              boundaryType: 'OFFSET' as const,
              lowerBound: row.lower_bound ?? '',
              upperBound: row.upper_bound ?? '',
            },
          }
        : {}),
      ...(row.triggered_by === null ? {} : { triggeredBy: row.triggered_by }),
    };
  }
}
