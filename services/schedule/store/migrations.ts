/**
 * The store's schema (the schedule service's schedules and ledger, the operator's groups and jobs: one
 * database serves both) as versioned migrations: data, applied in order by each store inside
 * one transaction and recorded in `schema_migrations`. A migration, once released, is never edited:
 * a change is a new entry with the next version.
 *
 * Times are epoch milliseconds in 64-bit integers (SQLite INTEGER, PostgreSQL BIGINT); JSON is text in
 * SQLite and JSONB in PostgreSQL.
 */

export interface Migration {
  /** Strictly increasing, starting at 1. */
  readonly version: number;
  readonly description: string;
  /** Statements for SQLite, run in order. */
  readonly sqlite: readonly string[];
  /** Statements for PostgreSQL, run in order. */
  readonly postgres: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'schedules and the instance ledger',
    sqlite: [
      `CREATE TABLE schedules (
        group_id TEXT NOT NULL PRIMARY KEY,
        info TEXT NOT NULL,
        status TEXT NOT NULL,
        engine_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      )`,
      `CREATE INDEX schedules_status ON schedules (status, group_id)`,
      `CREATE TABLE instances (
        instance_id TEXT NOT NULL PRIMARY KEY,
        group_id TEXT NOT NULL,
        window_start INTEGER NOT NULL,
        window_end INTEGER NOT NULL,
        due_time INTEGER NOT NULL,
        state TEXT NOT NULL,
        "trigger" TEXT NOT NULL,
        job_ids TEXT NOT NULL DEFAULT '[]',
        attempt INTEGER NOT NULL,
        dispatched_at INTEGER,
        finished_at INTEGER,
        error TEXT,
        owner TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        CONSTRAINT instances_window UNIQUE (group_id, window_start)
      )`,
      `CREATE INDEX instances_state_due ON instances (state, due_time)`,
      `CREATE INDEX instances_group_state ON instances (group_id, state)`,
    ],
    postgres: [
      `CREATE TABLE schedules (
        group_id TEXT NOT NULL PRIMARY KEY,
        info JSONB NOT NULL,
        status TEXT NOT NULL,
        engine_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      `CREATE INDEX schedules_status ON schedules (status, group_id)`,
      `CREATE TABLE instances (
        instance_id TEXT NOT NULL PRIMARY KEY,
        group_id TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        window_end BIGINT NOT NULL,
        due_time BIGINT NOT NULL,
        state TEXT NOT NULL,
        "trigger" TEXT NOT NULL,
        job_ids JSONB NOT NULL DEFAULT '[]'::jsonb,
        attempt INTEGER NOT NULL,
        dispatched_at BIGINT,
        finished_at BIGINT,
        error TEXT,
        owner TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        CONSTRAINT instances_window UNIQUE (group_id, window_start)
      )`,
      `CREATE INDEX instances_state_due ON instances (state, due_time)`,
      `CREATE INDEX instances_group_state ON instances (group_id, state)`,
    ],
  },
  {
    version: 2,
    description: 'operator groups and jobs',
    sqlite: [
      `CREATE TABLE groups (
        group_id TEXT NOT NULL PRIMARY KEY,
        description TEXT NOT NULL,
        streams TEXT NOT NULL,
        schedule TEXT NOT NULL,
        runner TEXT NOT NULL,
        retry TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      )`,
      `CREATE INDEX groups_status ON groups (status, group_id)`,
      `CREATE TABLE jobs (
        job_id TEXT NOT NULL PRIMARY KEY,
        group_id TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        boundary_type TEXT NOT NULL,
        lower_bound TEXT NOT NULL,
        upper_bound TEXT NOT NULL,
        window_lower_ms INTEGER,
        generation INTEGER NOT NULL,
        state TEXT NOT NULL,
        runner TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        resolved_source_options TEXT NOT NULL,
        resolved_positions TEXT NOT NULL,
        progress TEXT NOT NULL,
        error TEXT NOT NULL,
        owner TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        updated_at INTEGER NOT NULL,
        CONSTRAINT jobs_window_generation UNIQUE (group_id, stream_id, boundary_type, lower_bound, upper_bound, generation)
      )`,
      `CREATE INDEX jobs_window ON jobs (group_id, boundary_type, lower_bound, upper_bound)`,
      `CREATE INDEX jobs_state ON jobs (state)`,
      `CREATE INDEX jobs_group_window_lower ON jobs (group_id, window_lower_ms)`,
    ],
    postgres: [
      `CREATE TABLE groups (
        group_id TEXT NOT NULL PRIMARY KEY,
        description TEXT NOT NULL,
        streams JSONB NOT NULL,
        schedule JSONB NOT NULL,
        runner TEXT NOT NULL,
        retry JSONB NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      `CREATE INDEX groups_status ON groups (status, group_id)`,
      `CREATE TABLE jobs (
        job_id TEXT NOT NULL PRIMARY KEY,
        group_id TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        boundary_type TEXT NOT NULL,
        lower_bound TEXT NOT NULL,
        upper_bound TEXT NOT NULL,
        window_lower_ms BIGINT,
        generation INTEGER NOT NULL,
        state TEXT NOT NULL,
        runner TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        resolved_source_options JSONB NOT NULL,
        resolved_positions JSONB NOT NULL,
        progress JSONB NOT NULL,
        error TEXT NOT NULL,
        owner TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        updated_at BIGINT NOT NULL,
        CONSTRAINT jobs_window_generation UNIQUE (group_id, stream_id, boundary_type, lower_bound, upper_bound, generation)
      )`,
      `CREATE INDEX jobs_window ON jobs (group_id, boundary_type, lower_bound, upper_bound)`,
      `CREATE INDEX jobs_state ON jobs (state)`,
      `CREATE INDEX jobs_group_window_lower ON jobs (group_id, window_lower_ms)`,
    ],
  },
];

/** The table that records applied versions; created by the runner before anything else. */
export const SCHEMA_MIGRATIONS_DDL = {
  sqlite: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER NOT NULL PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`,
  postgres: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER NOT NULL PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at BIGINT NOT NULL
  )`,
} as const;

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

// A broken list is a programming error: fail at import, not half-way through a migration.
MIGRATIONS.forEach((m, i) => {
  const previous = i === 0 ? 0 : MIGRATIONS[i - 1]!.version;
  if (!Number.isInteger(m.version) || m.version <= previous) {
    throw new Error(`schedule store migrations: version ${m.version} must be an integer greater than ${previous}`);
  }
});
