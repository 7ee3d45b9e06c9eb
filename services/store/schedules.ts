import { type Kysely, type Selectable, sql } from 'kysely';
import { ERROR_CODES, SluiceError, invalidArgument, notFound } from 'sluice/sdk';
import type { ScheduleRecord, ScheduleStatus } from '../schedule/domain/model.js';
import { checkLimit } from './checks.js';
import type { Database, SchedulesTable } from './database.js';
import type { StoreDialect } from './dialect.js';
import { jsonRows } from './json-rows.js';
import { prepared } from './prepared.js';

const COLUMNS = ['group_id', 'info', 'status', 'engine_id', 'version', 'created_at', 'updated_at'] as const;

/** The schedule service's schedules: one row per group, optimistic locking on `version`. */
export class Schedules {
  /**
   * The insert of a group's first schedule row, and the take-over of a DELETED row, each compiled once: a
   * registration runs one of them (the second only when the first found a row), not the query builder.
   */
  readonly #insertNew;
  readonly #replaceDeleted;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: StoreDialect,
  ) {
    this.#insertNew = prepared(db, COLUMNS, (v) =>
      db
        .insertInto('schedules')
        .values(v)
        .onConflict((oc) => oc.column('group_id').doNothing())
        .returning('group_id'),
    );
    this.#replaceDeleted = prepared(db, COLUMNS, (v) =>
      db
        .updateTable('schedules')
        .set({
          info: v.info,
          status: v.status,
          engine_id: v.engine_id,
          version: v.version,
          created_at: v.created_at,
          updated_at: v.updated_at,
        })
        .where('group_id', '=', v.group_id)
        .where('status', '=', 'DELETED')
        .returning('group_id'),
    );
  }

  /**
   * ALREADY_EXISTS unless the group has no schedule or a DELETED one (which is replaced). Answers whether a
   * DELETED row was replaced: when not, the group never had a schedule here, so the ledger holds no window of it.
   */
  async insert(record: ScheduleRecord): Promise<{ replaced: boolean }> {
    const row: Record<(typeof COLUMNS)[number], unknown> = {
      group_id: record.groupId,
      info: JSON.stringify(record.info),
      status: record.status,
      engine_id: record.engineId,
      version: record.version,
      created_at: record.createdAt,
      updated_at: record.updatedAt,
    };
    if ((await this.#insertNew(row)).rows.length > 0) return { replaced: false };
    // A row is there: only a DELETED one gives way, atomically (the status is checked in the same statement).
    if ((await this.#replaceDeleted(row)).rows.length > 0) return { replaced: true };
    throw new SluiceError(ERROR_CODES.ALREADY_EXISTS, `schedule '${record.groupId}' already exists`);
  }

  async update(record: ScheduleRecord, expectedVersion: number): Promise<void> {
    if (record.version !== expectedVersion + 1) {
      throw invalidArgument('version', `${expectedVersion + 1} (expected version + 1)`, record.version);
    }
    const row = await this.db
      .updateTable('schedules')
      .set({
        info: JSON.stringify(record.info),
        status: record.status,
        engine_id: record.engineId,
        version: record.version,
        updated_at: record.updatedAt,
      })
      .where('group_id', '=', record.groupId)
      .where('version', '=', expectedVersion)
      .returning('group_id')
      .executeTakeFirst();
    if (row !== undefined) return;
    const current = await this.db
      .selectFrom('schedules')
      .select('version')
      .where('group_id', '=', record.groupId)
      .executeTakeFirst();
    if (current === undefined) throw notFound('schedule', record.groupId);
    throw new SluiceError(
      ERROR_CODES.VERSION_CONFLICT,
      `schedule ${record.groupId} was changed: version ${expectedVersion} is stale (current ${Number(current.version)})`,
    );
  }

  async get(groupId: string): Promise<ScheduleRecord | undefined> {
    const row = await this.db
      .selectFrom('schedules')
      .select(COLUMNS)
      .where('group_id', '=', groupId)
      .executeTakeFirst();
    return row && this.toRecord(row);
  }

  /** The schedules of the groups, in the order given (undefined where there is none), in one query. */
  async getMany(groupIds: readonly string[]): Promise<(ScheduleRecord | undefined)[]> {
    if (groupIds.length === 0) return [];
    // The ids as one JSON parameter: one statement text for any number of groups, prepared once.
    const ids = jsonRows(
      this.dialect,
      'g',
      { group_id: 'text' },
      [...new Set(groupIds)].map((group_id) => ({ group_id })),
    );
    const rows = await this.db
      .selectFrom('schedules')
      .select(COLUMNS)
      .where('group_id', 'in', sql<string>`(SELECT g.group_id FROM ${ids})`)
      .execute();
    const found = new Map(rows.map((row) => [row.group_id, row]));
    return groupIds.map((id) => {
      const row = found.get(id);
      return row && this.toRecord(row);
    });
  }

  async list(query: {
    readonly statuses?: readonly ScheduleStatus[];
    readonly afterGroupId?: string;
    readonly limit: number;
  }): Promise<ScheduleRecord[]> {
    checkLimit(query.limit);
    if (query.statuses?.length === 0 || query.limit === 0) return [];
    let select = this.db.selectFrom('schedules').select(COLUMNS);
    if (query.statuses !== undefined) select = select.where('status', 'in', query.statuses);
    if (query.afterGroupId !== undefined) select = select.where('group_id', '>', query.afterGroupId);
    const rows = await select.orderBy('group_id').limit(query.limit).execute();
    return rows.map((row) => this.toRecord(row));
  }

  private toRecord(row: Selectable<SchedulesTable>): ScheduleRecord {
    return {
      groupId: row.group_id,
      info: this.dialect.readJson(row.info),
      status: row.status as ScheduleStatus,
      engineId: row.engine_id,
      version: Number(row.version),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
    };
  }
}
