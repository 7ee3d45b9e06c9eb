import { type Kysely, type Selectable, sql } from 'kysely';
import { ERROR_CODES, SluiceError, invalidArgument, notFound } from 'sluice/sdk';
import type { ScheduleRecord, ScheduleStatus } from '../schedule/domain/model.js';
import { checkLimit } from './checks.js';
import type { Database, SchedulesTable } from './database.js';
import { type StoreDialect, parseJsonText } from './dialect.js';
import { type JsonRowType, jsonRows } from './json-rows.js';
import { prepared } from './prepared.js';

const COLUMNS = ['group_id', 'info', 'status', 'engine_id', 'version', 'created_at', 'updated_at'] as const;
const COLUMN_TYPES: Readonly<Record<(typeof COLUMNS)[number], JsonRowType>> = {
  group_id: 'text',
  info: 'json',
  status: 'text',
  engine_id: 'text',
  version: 'integer',
  created_at: 'epochMs',
  updated_at: 'epochMs',
};
/** Groups whose parsed schedule info getMany keeps, to reuse while their text is unchanged. */
const INFO_CACHE = 100_000;
/** Schedules one insertMany takes at most. */
export const MAX_INSERTS = 500;

/**
 * How inserting a schedule went: a new row or a DELETED row replaced, with the version stored; or a live schedule
 * found (nothing written).
 */
export type ScheduleInsert =
  { readonly outcome: 'NEW' | 'REPLACED'; readonly version: number } | { readonly outcome: 'EXISTS' };

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
    this.#insertNew = prepared(
      db,
      COLUMNS,
      (v) =>
        db
          .insertInto('schedules')
          .values(v)
          .onConflict((oc) => oc.column('group_id').doNothing())
          .returning('group_id'),
      dialect.execute,
    );
    // The versions of a group go on across its deletion: the record's version is added to the deleted row's, so
    // a replica (or a caller holding a version for optimistic locking) that knew the deleted schedule sees the
    // new one as newer, never as a version it has already seen.
    this.#replaceDeleted = prepared(
      db,
      COLUMNS,
      (v) =>
        db
          .updateTable('schedules')
          .set((eb) => ({
            info: v.info,
            status: v.status,
            engine_id: v.engine_id,
            version: eb('version', '+', v.version),
            created_at: v.created_at,
            updated_at: v.updated_at,
          }))
          .where('group_id', '=', v.group_id)
          .where('status', '=', 'DELETED')
          .returning(['group_id', 'version']),
      dialect.execute,
    );
  }

  /**
   * Inserts each schedule whose group has no schedule row, replaces a DELETED one, and leaves a live one alone;
   * answers, in the order given, which of the three happened and the version stored. The new rows of several
   * groups go in as one statement (one commit for registrations asked for together); a group given twice is taken
   * by its first entry. NEW means the group never had a schedule here, so the ledger holds no window of it; a
   * REPLACED row's version is the deleted row's plus the record's.
   */
  async insertMany(records: readonly ScheduleRecord[]): Promise<ScheduleInsert[]> {
    if (records.length > MAX_INSERTS)
      throw invalidArgument('records', `at most ${MAX_INSERTS} schedules per insert`, records.length);
    const rows = records.map((record) => this.toRow(record));
    records.forEach((record, i) => this.#remember(record.groupId, rows[i]!.info, record.info));
    const outcomes: (ScheduleInsert | undefined)[] = new Array<undefined>(records.length);
    const fresh = (i: number): ScheduleInsert => ({ outcome: 'NEW', version: records[i]!.version });
    if (records.length === 1) {
      if ((await this.#insertNew(rows[0]!)).rows.length > 0) outcomes[0] = fresh(0);
    } else if (records.length > 1) {
      const first = new Map<string, number>();
      records.forEach((r, i) => first.has(r.groupId) || first.set(r.groupId, i));
      // In key order, so two replicas inserting overlapping batches cannot deadlock on PostgreSQL. The rows go
      // as one JSON parameter (one statement text for any batch size); WHERE true: SQLite would otherwise read
      // ON CONFLICT as a join's ON.
      const source = jsonRows(
        this.dialect,
        's',
        COLUMN_TYPES,
        [...first.keys()].sort().map((groupId) => {
          const i = first.get(groupId)!;
          return { ...rows[i], info: records[i]!.info };
        }),
      );
      const columns = sql.join(COLUMNS.map((c) => sql.ref(c)));
      const { rows: inserted } = await sql<{
        group_id: string;
      }>`INSERT INTO schedules (${columns}) SELECT ${columns} FROM ${source} WHERE true ON CONFLICT (group_id) DO NOTHING RETURNING group_id`.execute(
        this.db,
      );
      for (const { group_id } of inserted) {
        const i = first.get(group_id)!;
        outcomes[i] = fresh(i);
      }
    }
    // A row was there (or an earlier entry of this call put it there): only a DELETED one gives way, atomically
    // (the status is checked in the same statement).
    for (let i = 0; i < records.length; i++) {
      if (outcomes[i] !== undefined) continue;
      const [replaced] = (await this.#replaceDeleted(rows[i]!)).rows;
      outcomes[i] = replaced ? { outcome: 'REPLACED', version: Number(replaced.version) } : { outcome: 'EXISTS' };
    }
    return outcomes as ScheduleInsert[];
  }

  private toRow(record: ScheduleRecord): Record<(typeof COLUMNS)[number], unknown> {
    return {
      group_id: record.groupId,
      info: JSON.stringify(record.info),
      status: record.status,
      engine_id: record.engineId,
      version: record.version,
      created_at: record.createdAt,
      updated_at: record.updatedAt,
    };
  }

  async update(record: ScheduleRecord, expectedVersion: number): Promise<void> {
    if (record.version !== expectedVersion + 1) {
      throw invalidArgument('version', `${expectedVersion + 1} (expected version + 1)`, record.version);
    }
    const info = JSON.stringify(record.info);
    const row = await this.db
      .updateTable('schedules')
      .set({
        info,
        status: record.status,
        engine_id: record.engineId,
        version: record.version,
        updated_at: record.updatedAt,
      })
      .where('group_id', '=', record.groupId)
      .where('version', '=', expectedVersion)
      .returning('group_id')
      .executeTakeFirst();
    if (row !== undefined) return this.#remember(record.groupId, info, record.info);
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
    // The info as its text (PostgreSQL's driver would parse the jsonb itself), parsed only when it changed.
    const info = this.dialect.name === 'postgres' ? sql<string>`info::text`.as('info') : ('info' as const);
    const rows = await this.db
      .selectFrom('schedules')
      .select(['group_id', info, 'status', 'engine_id', 'version', 'created_at', 'updated_at'])
      .where('group_id', 'in', sql<string>`(SELECT g.group_id FROM ${ids})`)
      .execute();
    const found = new Map(rows.map((row) => [row.group_id, row]));
    return groupIds.map((id) => {
      const row = found.get(id);
      return row && this.fromFireRead(row);
    });
  }

  /**
   * A schedule row read to fire its group ({@link getMany}, or the ledger's combined read), its info selected as
   * text: the group's last parsed info is reused while that text is unchanged.
   */
  fromFireRead(row: Selectable<SchedulesTable>): ScheduleRecord {
    return this.toRecord(row, this.#parsedInfo(row.group_id, row.info));
  }

  /**
   * A schedule's info as parsed from `text`, the last parse of the group's info reused while its text is the
   * same: the engines' FireDue calls read the same schedules again at every due instant, and parsing their
   * info was about a tenth of a burst's CPU. Compared by text, not version: a re-registered group starts its
   * versions again. At most INFO_CACHE groups (then it starts over); the infos handed out are shared, as the
   * service only reads them.
   */
  #parsedInfo(groupId: string, text: unknown): ScheduleRecord['info'] {
    const hit = this.#infos.get(groupId);
    if (hit !== undefined && hit.text === text) return hit.info;
    const info = parseJsonText<ScheduleRecord['info']>(text);
    this.#remember(groupId, text, info);
    return info;
  }

  /**
   * Keeps `info` as the group's parsed info for the text `text`; the writes keep what they wrote, so the first
   * fire after a registration finds it (on SQLite, which reads back the text written; PostgreSQL's jsonb reads
   * back normalized). Kept for a write that did not happen too: a read compares the text, so it is never used.
   */
  #remember(groupId: string, text: unknown, info: ScheduleRecord['info']): void {
    if (this.#infos.size >= INFO_CACHE && !this.#infos.has(groupId)) this.#infos.clear();
    this.#infos.set(groupId, { text, info });
  }

  readonly #infos = new Map<string, { readonly text: unknown; readonly info: ScheduleRecord['info'] }>();

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

  private toRecord(
    row: Selectable<SchedulesTable>,
    info: ScheduleRecord['info'] = this.dialect.readJson(row.info),
  ): ScheduleRecord {
    return {
      groupId: row.group_id,
      info,
      status: row.status as ScheduleStatus,
      engineId: row.engine_id,
      version: Number(row.version),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
    };
  }
}
