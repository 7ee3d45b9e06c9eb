/**
 * Version 1 of the store's schema exactly as the first release wrote it (hand-written DDL per dialect): the
 * fixture for "a database created by an earlier release is upgraded in place".
 */
export const VERSION_1_DDL = {
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
} as const;

export const VERSION_1_DESCRIPTION = 'schedules and the instance ledger';
