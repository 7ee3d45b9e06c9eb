import type { ExecutionContext, TestFn } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { EnginePlugin } from 'sluice/sdk';
import { silentLogger } from '../../services/core/logger.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import type { LoadedPlugin } from '../../services/host/loader.js';
import type { ManualClock } from '../../services/schedule/domain/clock.js';
import type { ScheduleStore } from '../../services/schedule/domain/model.js';
import { ScheduleService, type ScheduleServiceOptions } from '../../services/schedule/domain/service.js';
import { PostgresScheduleStore, SqliteScheduleStore } from '../../services/store/index.js';
import { PG_URL, probePostgres, uniqueName } from './databases.js';
import { gate } from './integration.js';
import { FakeDispatcher } from './schedule.js';

/** A store backend for tests that run once on SQLite and once on PostgreSQL. */
export interface StoreBackend<C> {
  readonly name: 'sqlite' | 'postgres';
  /** Declares a serial test on this backend (skipped, or failed when integration is required, without PostgreSQL). */
  readonly declare: (title: string, fn: (t: ExecutionContext<C>) => Promise<void>) => void;
  /**
   * A fresh, empty store for the test: `open()` gives a new handle on it each call, as a second replica (or a
   * restart) would have. Handles are closed and the store removed when the test ends.
   */
  setup(t: ExecutionContext<C>): Promise<() => Promise<ScheduleStore>>;
}

/**
 * The SQLite backend (a file in a temporary folder) and the PostgreSQL one (a schema of its own per test in the
 * test server's database, dropped after), in that order. `prefix` names the folders and schemas.
 */
export async function storeBackends<C>(test: TestFn<C>, prefix: string): Promise<StoreBackend<C>[]> {
  const pgTest = gate(test, await probePostgres());
  const sqlite: StoreBackend<C> = {
    name: 'sqlite',
    declare: (title, fn) => test.serial(title, fn),
    async setup(t) {
      const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
      const stores: ScheduleStore[] = [];
      t.teardown(async () => {
        for (const s of stores) await s.close();
        await rm(dir, { recursive: true, force: true });
      });
      return async () => {
        const store = await SqliteScheduleStore.open(join(dir, 'sluice.db'));
        stores.push(store);
        await store.migrate();
        return store;
      };
    },
  };
  const postgres: StoreBackend<C> = {
    name: 'postgres',
    declare: (title, fn) => pgTest.serial(title, fn),
    async setup(t) {
      const schema = uniqueName(prefix.replaceAll('-', '_'));
      const stores: ScheduleStore[] = [];
      t.teardown(async () => {
        for (const s of stores) await s.close();
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
      });
      return async () => {
        const store = await PostgresScheduleStore.open(PG_URL, { schema, poolSize: 4 });
        stores.push(store);
        await store.migrate();
        return store;
      };
    },
  };
  return [sqlite, postgres];
}

/** A started replica on its own store handle, clock and operator stand-in (no engines: only FireDue and claims fire). */
export async function replica(
  open: () => Promise<ScheduleStore>,
  clock: ManualClock,
  owner: string,
  engines: ReadonlyMap<string, LoadedPlugin<EnginePlugin>> = new Map(),
  options: Pick<ScheduleServiceOptions, 'rescanMs'> = {},
): Promise<{ service: ScheduleService; dispatcher: FakeDispatcher }> {
  const dispatcher = new FakeDispatcher(clock);
  const service = new ScheduleService({
    ...options,
    store: await open(),
    engines,
    hooks: new HookRunner({ timeoutMs: 10_000 }),
    clock,
    dispatcher,
    logger: silentLogger,
    owner,
  });
  await service.start();
  return { service, dispatcher };
}
