import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Kysely } from 'kysely';
import { ERROR_CODES, type Logger, SluiceError } from 'sluice/sdk';
import type { Database } from './database.js';
import { type StoreDialect, parseJsonText } from './dialect.js';
import { NodeSqliteDatabase, NodeSqliteDialect } from './node-sqlite.js';
import {
  type Checkpoints,
  DEFAULT_AUTOCHECKPOINT_PAGES,
  SAFETY_NET_PAGES,
  startCheckpoints,
} from './sqlite-checkpoints.js';
import { SqlStore } from './store.js';

/** How long a write waits for another connection's lock before failing as UNAVAILABLE. */
const BUSY_TIMEOUT_MS = 5000;

/** SQLite's primary result codes that mean "another connection holds the lock": retrying may help. */
const BUSY_CODES = new Set([5 /* SQLITE_BUSY */, 6 /* SQLITE_LOCKED */]);

function sqliteDialect(path: string, database: NodeSqliteDatabase): StoreDialect {
  return {
    name: 'sqlite',
    execute: (sql, parameters) => database.execute(sql, parameters),
    executeAll: (statements) => database.executeAll(statements),
    types: { json: 'text', epochMs: 'integer' },
    readJson: parseJsonText,
    // BEGIN IMMEDIATE has taken the write lock: no other migrator gets past it.
    lockMigrations: async () => {},
    unavailable(err, doing) {
      const errcode = (err as { errcode?: unknown })?.errcode;
      if (typeof errcode !== 'number' || !BUSY_CODES.has(errcode & 0xff)) return undefined;
      const message = err instanceof Error ? err.message : String(err);
      return new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        `store: ${doing}: SQLite database ${path} is busy: ${message}`,
        {},
        { cause: err },
      );
    },
    target: path,
  };
}

export interface SqliteStoreOptions {
  /** Told when the checkpoint thread fails; nothing else is logged by the store. */
  readonly logger?: Logger;
}

/**
 * The store in one SQLite file (WAL, so readers do not block the writer). One connection per process; every
 * transaction is IMMEDIATE, and several processes may share the file, serialised by SQLite's write lock. The
 * WAL's checkpoints run on a thread of their own, off the event loop (sqlite-checkpoints.ts).
 */
export class SqliteStore extends SqlStore {
  /**
   * Opens (creating it and its folder when missing) the database at `path`; `:memory:` for a private one.
   * `logger` hears of a checkpoint thread that fails (the store goes on, checkpointing on its own connection).
   */
  static async open(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    const memory = path === ':memory:';
    const location = memory ? path : resolve(path);
    let db: DatabaseSync | undefined;
    try {
      if (!memory) mkdirSync(dirname(location), { recursive: true });
      db = new DatabaseSync(location);
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      if (!memory) db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA foreign_keys = ON');
      // WAL with NORMAL sync is durable against process crashes and much cheaper than FULL.
      db.exec('PRAGMA synchronous = NORMAL');
      // Checkpoints run on a thread of their own (sqlite-checkpoints.ts); this connection's are a safety net.
      if (!memory) db.exec(`PRAGMA wal_autocheckpoint = ${SAFETY_NET_PAGES}`);
    } catch (err) {
      try {
        db?.close();
      } catch {
        // Closing a half-open handle: nothing more to do.
      }
      const message = err instanceof Error ? err.message : String(err);
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        `store: cannot open SQLite database ${location}: ${message}`,
        {},
        { cause: err },
      );
    }
    const database = new NodeSqliteDatabase(db, location);
    const kysely = new Kysely<Database>({ dialect: new NodeSqliteDialect(database) });
    const opened = db;
    const checkpoints = memory
      ? undefined
      : startCheckpoints(location, (err) => {
          // The thread failed: this connection checkpoints by itself again, at SQLite's usual threshold.
          options.logger?.warn('SQLite checkpoint thread failed; checkpointing on the store connection instead', {
            path: location,
            err,
          });
          try {
            opened.exec(`PRAGMA wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
          } catch {
            // Closed meanwhile: nothing left to checkpoint from here.
          }
        });
    if (checkpoints) database.onWrite = () => checkpoints.written();
    return new SqliteStore(kysely, sqliteDialect(location, database), checkpoints);
  }

  private constructor(
    db: Kysely<Database>,
    dialect: StoreDialect,
    private readonly checkpoints: Checkpoints | undefined,
  ) {
    super(db, dialect);
  }

  /** WAL frames the checkpoint thread has copied into the database file (0 for `:memory:`). */
  get framesCheckpointed(): number {
    return this.checkpoints?.framesCheckpointed ?? 0;
  }

  /** Checkpoints asked of that thread: after writes only (0 for `:memory:`). */
  get checkpointsAsked(): number {
    return this.checkpoints?.checkpointsAsked ?? 0;
  }

  override async close(): Promise<void> {
    await this.checkpoints?.close();
    await super.close();
  }

  /** The database file (or `:memory:`). */
  get path(): string {
    return this.dialect.target;
  }
}
