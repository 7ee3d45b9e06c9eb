import type { OperatorStore } from '../../operator/domain/model.js';
import type { ScheduleStore } from '../domain/model.js';
import { PostgresScheduleStore, type PostgresStoreOptions } from './postgres.js';
import { meteredStore } from './metered.js';
import { SqliteScheduleStore } from './sqlite.js';

export { MIGRATIONS, LATEST_VERSION, type Migration } from './migrations.js';
export { PostgresScheduleStore, type PostgresStoreOptions } from './postgres.js';
export { SqliteScheduleStore } from './sqlite.js';

/** One database, both services: the schedule service's schedules and ledger, the operator's groups and jobs. */
export type SluiceStore = ScheduleStore & OperatorStore;

export interface ScheduleStoreConfig {
  /** A postgres:// or postgresql:// URL selects PostgreSQL (replicas sharing one ledger); anything else, SQLite. */
  readonly databaseUrl?: string;
  /** The SQLite file when no PostgreSQL URL is given. */
  readonly sqlitePath: string;
  /** PostgreSQL only: pool size and an isolated schema. */
  readonly postgres?: PostgresStoreOptions;
}

/** True for URLs that select the PostgreSQL store. */
export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(?:ql)?:\/\//i.test(url.trim());
}

/** Opens the configured store and applies pending migrations; the store is closed again when they fail. */
export async function openSluiceStore(config: ScheduleStoreConfig): Promise<SluiceStore> {
  const store: SluiceStore = isPostgresUrl(config.databaseUrl)
    ? meteredStore(await PostgresScheduleStore.open(config.databaseUrl.trim(), config.postgres), 'postgresql')
    : meteredStore(await SqliteScheduleStore.open(config.sqlitePath), 'sqlite');
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}

/** The former name of {@link openSluiceStore}. */
export const openScheduleStore: (config: ScheduleStoreConfig) => Promise<SluiceStore> = openSluiceStore;
