import type { Kysely, QueryResult } from 'kysely';
import type { SluiceError } from 'sluice/sdk';
import type { Database } from './database.js';

/**
 * What differs between SQLite and PostgreSQL once Kysely has compiled a query: the column types a migration
 * names, how JSON comes back, how migrators exclude each other and which errors mean "the store is not
 * reachable right now". Everything else (every query, every migration) is written once.
 */
export interface StoreDialect {
  readonly name: 'sqlite' | 'postgres';
  /** Column types: JSON text (SQLite TEXT, PostgreSQL JSONB) and epoch milliseconds (64-bit integers). */
  readonly types: { readonly json: 'text' | 'jsonb'; readonly epochMs: 'integer' | 'bigint' };
  /** A JSON column's value as read: text in SQLite, already parsed by pg for JSONB. */
  readJson<T>(value: unknown): T;
  /** Run first inside the migration transaction: one migrator at a time per database (or schema). */
  lockMigrations(trx: Kysely<Database>): Promise<void>;
  /** The store being out of reach (lost connection, lock held too long) as UNAVAILABLE; undefined for other errors. */
  unavailable(err: unknown, doing: string): SluiceError | undefined;
  /** The database, as messages name it (never with a password). */
  readonly target: string;
  /**
   * Runs a compiled statement on the store's own connection without Kysely's executor, in the same turn a query
   * through Kysely takes (SQLite: node-sqlite.ts). Absent where Kysely's executor is the way (PostgreSQL's pool).
   * Not for statements inside a Kysely transaction: they run on the transaction's connection.
   */
  readonly execute?: (sql: string, parameters: readonly unknown[]) => Promise<QueryResult<unknown>>;
  /** Statements as {@link execute} runs one, all in one transaction (each one's result, in order). */
  readonly executeAll?: (
    statements: readonly { sql: string; parameters: readonly unknown[] }[],
  ) => Promise<QueryResult<unknown>[]>;
}

/** Reads a JSON column that holds text (SQLite). */
export function parseJsonText<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}
