import type { Kysely, Selectable } from 'kysely';
import { ERROR_CODES, SluiceError, invalidArgument, notFound } from 'sluice/sdk';
import type { GroupRecord, GroupStatus } from '../operator/domain/model.js';
import { checkLimit } from './checks.js';
import type { Database, GroupsTable } from './database.js';
import type { StoreDialect } from './dialect.js';

const COLUMNS = [
  'group_id',
  'description',
  'streams',
  'schedule',
  'runner',
  'retry',
  'status',
  'version',
  'created_at',
  'updated_at',
] as const;

/** The operator's groups: one row per group, optimistic locking on `version`. */
export class Groups {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: StoreDialect,
  ) {}

  /**
   * ALREADY_EXISTS unless no group has the id or that group is DELETED (then it is replaced, its version going on
   * from the deleted row's: the record's added to it). Answers the version stored.
   */
  async insert(group: GroupRecord): Promise<number> {
    const row = await this.db
      .insertInto('groups')
      .values({
        group_id: group.groupId,
        description: group.description,
        streams: JSON.stringify(group.streams),
        schedule: JSON.stringify(group.schedule),
        runner: group.runner,
        retry: JSON.stringify(group.retry),
        status: group.status,
        version: group.version,
        created_at: group.createdAt,
        updated_at: group.updatedAt,
      })
      .onConflict((oc) =>
        oc
          .column('group_id')
          .doUpdateSet((eb) => ({
            description: eb.ref('excluded.description'),
            streams: eb.ref('excluded.streams'),
            schedule: eb.ref('excluded.schedule'),
            runner: eb.ref('excluded.runner'),
            retry: eb.ref('excluded.retry'),
            status: eb.ref('excluded.status'),
            // A client holding a version of the deleted group must not match the new one (optimistic locking).
            version: eb('groups.version', '+', eb.ref('excluded.version')),
            created_at: eb.ref('excluded.created_at'),
            updated_at: eb.ref('excluded.updated_at'),
          }))
          .where('groups.status', '=', 'DELETED'),
      )
      .returning(['group_id', 'version'])
      .executeTakeFirst();
    if (row === undefined) throw new SluiceError(ERROR_CODES.ALREADY_EXISTS, `group '${group.groupId}' already exists`);
    return Number(row.version);
  }

  async update(group: GroupRecord, expectedVersion: number): Promise<void> {
    if (group.version !== expectedVersion + 1) {
      throw invalidArgument('version', `${expectedVersion + 1} (expected version + 1)`, group.version);
    }
    const row = await this.db
      .updateTable('groups')
      .set({
        description: group.description,
        streams: JSON.stringify(group.streams),
        schedule: JSON.stringify(group.schedule),
        runner: group.runner,
        retry: JSON.stringify(group.retry),
        status: group.status,
        version: group.version,
        updated_at: group.updatedAt,
      })
      .where('group_id', '=', group.groupId)
      .where('version', '=', expectedVersion)
      .returning('group_id')
      .executeTakeFirst();
    if (row !== undefined) return;
    const current = await this.db
      .selectFrom('groups')
      .select('version')
      .where('group_id', '=', group.groupId)
      .executeTakeFirst();
    if (current === undefined) throw notFound('group', group.groupId);
    throw new SluiceError(
      ERROR_CODES.VERSION_CONFLICT,
      `group ${group.groupId} was changed: version ${expectedVersion} is stale (current ${Number(current.version)})`,
    );
  }

  async get(groupId: string): Promise<GroupRecord | undefined> {
    const row = await this.db.selectFrom('groups').select(COLUMNS).where('group_id', '=', groupId).executeTakeFirst();
    return row && this.toRecord(row);
  }

  async list(query: {
    readonly statuses?: readonly GroupStatus[];
    readonly afterGroupId?: string;
    readonly limit: number;
  }): Promise<GroupRecord[]> {
    checkLimit(query.limit);
    if (query.statuses?.length === 0 || query.limit === 0) return [];
    let select = this.db.selectFrom('groups').select(COLUMNS);
    if (query.statuses !== undefined) select = select.where('status', 'in', query.statuses);
    if (query.afterGroupId !== undefined) select = select.where('group_id', '>', query.afterGroupId);
    const rows = await select.orderBy('group_id').limit(query.limit).execute();
    return rows.map((row) => this.toRecord(row));
  }

  private toRecord(row: Selectable<GroupsTable>): GroupRecord {
    return {
      groupId: row.group_id,
      description: row.description,
      streams: this.dialect.readJson(row.streams),
      schedule: this.dialect.readJson(row.schedule),
      runner: row.runner,
      retry: this.dialect.readJson(row.retry),
      status: row.status as GroupStatus,
      version: Number(row.version),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
    };
  }
}
