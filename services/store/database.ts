import type { ColumnType, Generated } from 'kysely';

/**
 * The tables as Kysely sees them: one description for both dialects. Times are epoch milliseconds in 64-bit
 * integers (read back as JS numbers, never beyond 2^53); JSON columns are written as JSON text (SQLite TEXT,
 * PostgreSQL JSONB) and read back by {@link StoreDialect.readJson}.
 */
type Json = ColumnType<unknown, string, string>;

export interface SchedulesTable {
  group_id: string;
  info: Json;
  status: string;
  engine_id: string;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface InstancesTable {
  instance_id: string;
  group_id: string;
  window_start: number;
  window_end: number;
  due_time: number;
  state: string;
  trigger: string;
  job_ids: Json;
  attempt: number;
  dispatched_at: number | null;
  finished_at: number | null;
  error: string | null;
  owner: string;
  created_at: number;
  updated_at: number;
  /** TIME, or OFFSET for a window of connector positions (its window_start is a key, not a time). */
  boundary_type: Generated<string>;
  lower_bound: string | null;
  upper_bound: string | null;
  triggered_by: string | null;
}

export interface GroupsTable {
  group_id: string;
  description: string;
  streams: Json;
  schedule: Json;
  runner: string;
  retry: Json;
  status: string;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface JobsTable {
  job_id: string;
  group_id: string;
  stream_id: string;
  instance_id: string;
  boundary_type: string;
  lower_bound: string;
  upper_bound: string;
  /** The lower bound of a TIME window as a number, for range queries; NULL otherwise. Written, never read back. */
  window_lower_ms: number | null;
  generation: number;
  state: string;
  runner: string;
  attempt: number;
  resolved_source_options: Json;
  resolved_positions: Json;
  progress: Json;
  error: string;
  owner: string;
  lease_until: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
  /** The trace of the job's latest run, when tracing was on (migration 6). */
  trace_id: string | null;
}

export interface SchemaMigrationsTable {
  version: number;
  description: string;
  applied_at: number;
}

export interface Database {
  schedules: SchedulesTable;
  instances: InstancesTable;
  groups: GroupsTable;
  jobs: JobsTable;
  schema_migrations: SchemaMigrationsTable;
}
