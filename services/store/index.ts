import type { Logger } from 'sluice/sdk';
import type { OperatorStore } from '../operator/domain/model.js';
import type { ScheduleStore } from '../schedule/domain/model.js';
import { meteredStore } from './metered.js';
import { PostgresStore, type PostgresStoreOptions } from './postgres.js';
import { SqliteStore } from './sqlite.js';

export { MIGRATIONS, LATEST_VERSION, type Migration } from './migrations.js';
export { PostgresStore, type PostgresStoreOptions } from './postgres.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { SqlStore } from './store.js';
/** The former names of {@link SqliteStore} and {@link PostgresStore}. */
export { SqliteStore as SqliteScheduleStore, PostgresStore as PostgresScheduleStore };

/** One database, both services: the schedule service's schedules and ledger, the operator's groups and jobs. */
export type SluiceStore = ScheduleStore & OperatorStore;

export interface StoreConfig {
  /** A postgres:// or postgresql:// URL selects PostgreSQL (replicas sharing one ledger); anything else, SQLite. */
  readonly databaseUrl?: string;
  /** The SQLite file when no PostgreSQL URL is given. */
  readonly sqlitePath: string;
  /** PostgreSQL only: pool size and an isolated schema. */
  readonly postgres?: PostgresStoreOptions;
  /** SQLite only: told when the store's checkpoint thread fails. */
  readonly logger?: Logger;
}
/** The former name of {@link StoreConfig}. */
export type ScheduleStoreConfig = StoreConfig;

/** True for URLs that select the PostgreSQL store. */
export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(?:ql)?:\/\//i.test(url.trim());
}

/** Opens the configured store and applies pending migrations; the store is closed again when they fail. */
export async function openSluiceStore(config: StoreConfig): Promise<SluiceStore> {
  const store: SluiceStore = isPostgresUrl(config.databaseUrl)
    ? meteredStore(await PostgresStore.open(config.databaseUrl.trim(), config.postgres), 'postgresql')
    : meteredStore(await SqliteStore.open(config.sqlitePath, config.logger ? { logger: config.logger } : {}), 'sqlite');
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}

/** The former name of {@link openSluiceStore}. */
export const openScheduleStore: (config: StoreConfig) => Promise<SluiceStore> = openSluiceStore;
