import { type Kysely, sql } from 'kysely';
import type { Database } from './database.js';
import type { StoreDialect } from './dialect.js';

/**
 * The store's schema (the schedule service's schedules and ledger, the operator's groups and jobs: one database
 * serves both) as versioned migrations, each written once against Kysely's schema builder and run on either
 * dialect; applied in order inside one transaction and recorded in `schema_migrations`. A migration, once
 * released, is never edited: a change is a new entry with the next version.
 *
 * Kysely's own Migrator is not used: it records names in its own tables, and databases created by earlier
 * releases already record versions in `schema_migrations`.
 */
export interface Migration {
  /** Strictly increasing, starting at 1. */
  readonly version: number;
  readonly description: string;
  up(db: Kysely<unknown>, types: StoreDialect['types'], dialect: StoreDialect['name']): Promise<void>;
}

/** The PostgreSQL channel schedule writes are announced on; the payload is `<schema> <groupId>`. */
export const SCHEDULE_CHANNEL = 'sluice_schedules';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'schedules and the instance ledger',
    async up(db, { json, epochMs }) {
      await db.schema
        .createTable('schedules')
        .addColumn('group_id', 'text', (c) => c.notNull().primaryKey())
        .addColumn('info', json, (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('engine_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .addColumn('updated_at', epochMs, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('schedules_status').on('schedules').columns(['status', 'group_id']).execute();
      await db.schema
        .createTable('instances')
        .addColumn('instance_id', 'text', (c) => c.notNull().primaryKey())
        .addColumn('group_id', 'text', (c) => c.notNull())
        .addColumn('window_start', epochMs, (c) => c.notNull())
        .addColumn('window_end', epochMs, (c) => c.notNull())
        .addColumn('due_time', epochMs, (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('trigger', 'text', (c) => c.notNull())
        .addColumn('job_ids', json, (c) => c.notNull().defaultTo(sql`'[]'`))
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('dispatched_at', epochMs)
        .addColumn('finished_at', epochMs)
        .addColumn('error', 'text')
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .addColumn('updated_at', epochMs, (c) => c.notNull())
        .addUniqueConstraint('instances_window', ['group_id', 'window_start'])
        .execute();
      await db.schema.createIndex('instances_state_due').on('instances').columns(['state', 'due_time']).execute();
      await db.schema.createIndex('instances_group_state').on('instances').columns(['group_id', 'state']).execute();
    },
  },
  {
    version: 2,
    description: 'operator groups and jobs',
    async up(db, { json, epochMs }) {
      await db.schema
        .createTable('groups')
        .addColumn('group_id', 'text', (c) => c.notNull().primaryKey())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('streams', json, (c) => c.notNull())
        .addColumn('schedule', json, (c) => c.notNull())
        .addColumn('runner', 'text', (c) => c.notNull())
        .addColumn('retry', json, (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .addColumn('updated_at', epochMs, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('groups_status').on('groups').columns(['status', 'group_id']).execute();
      await db.schema
        .createTable('jobs')
        .addColumn('job_id', 'text', (c) => c.notNull().primaryKey())
        .addColumn('group_id', 'text', (c) => c.notNull())
        .addColumn('stream_id', 'text', (c) => c.notNull())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('boundary_type', 'text', (c) => c.notNull())
        .addColumn('lower_bound', 'text', (c) => c.notNull())
        .addColumn('upper_bound', 'text', (c) => c.notNull())
        .addColumn('window_lower_ms', epochMs)
        .addColumn('generation', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('runner', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('resolved_source_options', json, (c) => c.notNull())
        .addColumn('resolved_positions', json, (c) => c.notNull())
        .addColumn('progress', json, (c) => c.notNull())
        .addColumn('error', 'text', (c) => c.notNull())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('created_at', epochMs, (c) => c.notNull())
        .addColumn('started_at', epochMs)
        .addColumn('finished_at', epochMs)
        .addColumn('updated_at', epochMs, (c) => c.notNull())
        .addUniqueConstraint('jobs_window_generation', [
          'group_id',
          'stream_id',
          'boundary_type',
          'lower_bound',
          'upper_bound',
          'generation',
        ])
        .execute();
      await db.schema
        .createIndex('jobs_window')
        .on('jobs')
        .columns(['group_id', 'boundary_type', 'lower_bound', 'upper_bound'])
        .execute();
      await db.schema.createIndex('jobs_state').on('jobs').column('state').execute();
      await db.schema
        .createIndex('jobs_group_window_lower')
        .on('jobs')
        .columns(['group_id', 'window_lower_ms'])
        .execute();
    },
  },
  {
    version: 3,
    description: 'PostgreSQL: every schedule write notifies the replicas',
    async up(db, _types, dialect) {
      // SQLite has no notifications; its replicas (processes on one file) rely on the periodic re-scan.
      if (dialect !== 'postgres') return;
      // In the trigger, so a write notifies exactly when it commits, whichever replica (or tool) made it.
      // The payload names the schema: replicas of different schemas in one database may share the channel.
      await sql`CREATE FUNCTION sluice_schedule_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('${sql.raw(SCHEDULE_CHANNEL)}', TG_TABLE_SCHEMA || ' ' || NEW.group_id);
          RETURN NULL;
        END $$`.execute(db);
      await sql`CREATE TRIGGER schedules_notify AFTER INSERT OR UPDATE ON schedules
        FOR EACH ROW EXECUTE FUNCTION sluice_schedule_changed()`.execute(db);
    },
  },
  {
    version: 4,
    description: 'job leases',
    async up(db, { epochMs }) {
      await db.schema.alterTable('jobs').addColumn('lease_until', epochMs).execute();
      await db.schema.createIndex('jobs_state_lease').on('jobs').columns(['state', 'lease_until']).execute();
    },
  },
  {
    version: 5,
    description: 'instances of windows submitted from outside: their bounds and who submitted them',
    async up(db) {
      // Rows written before are TIME windows the schedule fired: the defaults describe them.
      await db.schema
        .alterTable('instances')
        .addColumn('boundary_type', 'text', (c) => c.notNull().defaultTo('TIME'))
        .execute();
      await db.schema.alterTable('instances').addColumn('lower_bound', 'text').execute();
      await db.schema.alterTable('instances').addColumn('upper_bound', 'text').execute();
      await db.schema.alterTable('instances').addColumn('triggered_by', 'text').execute();
    },
  },
  {
    version: 6,
    description: "jobs: the trace id of a job's run, for links to a trace viewer",
    async up(db) {
      await db.schema.alterTable('jobs').addColumn('trace_id', 'text').execute();
    },
  },
];

/** The newest schema version this build knows. */
export const LATEST_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

/**
 * The migrations not yet applied, in version order. Versions recorded in the database but unknown to
 * this build (a newer replica migrated first) are left alone, so a rolling upgrade keeps old replicas
 * running as long as migrations are additive.
 */
export function pendingMigrations(applied: Iterable<number>): Migration[] {
  const done = new Set(applied);
  return MIGRATIONS.filter((m) => !done.has(m.version));
}

/** Applies the pending migrations in one transaction, one migrator at a time. */
export async function migrate(db: Kysely<Database>, dialect: StoreDialect): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await dialect.lockMigrations(trx);
    await trx.schema
      .createTable('schema_migrations')
      .ifNotExists()
      .addColumn('version', 'integer', (c) => c.notNull().primaryKey())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('applied_at', dialect.types.epochMs, (c) => c.notNull())
      .execute();
    const applied = await trx.selectFrom('schema_migrations').select('version').execute();
    for (const migration of pendingMigrations(applied.map((r) => Number(r.version)))) {
      await migration.up(trx as unknown as Kysely<unknown>, dialect.types, dialect.name);
      await trx
        .insertInto('schema_migrations')
        .values({ version: migration.version, description: migration.description, applied_at: Date.now() })
        .execute();
    }
  });
}

// A broken list is a programming error: fail at import, not half-way through a migration.
MIGRATIONS.forEach((m, i) => {
  const previous = i === 0 ? 0 : MIGRATIONS[i - 1]!.version;
  if (!Number.isInteger(m.version) || m.version <= previous) {
    throw new Error(`store migrations: version ${m.version} must be an integer greater than ${previous}`);
  }
});
