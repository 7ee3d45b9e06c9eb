import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
  SqliteDialect,
  SqliteDriver,
  type SqliteDatabase,
  type SqliteStatement,
} from 'kysely';

/** Prepared statements kept per connection; the store's queries have a few dozen shapes (batches pass their rows as one JSON parameter). */
const STATEMENT_CACHE_LIMIT = 256;

/**
 * `node:sqlite`'s DatabaseSync in the shape Kysely's SqliteDialect expects (better-sqlite3's): parameters as one
 * array instead of spread, `reader` from the statement's result columns, statements prepared once per SQL text.
 */
export class NodeSqliteDatabase implements SqliteDatabase {
  readonly #statements = new Map<string, NodeSqliteStatement>();
  /** The turn every statement on this file in this process takes (see fileLocks). */
  readonly lock: Mutex;
  /** Called after each statement that may write (any but a SELECT, RETURNING ones too): the checkpoint thread's cue. */
  onWrite: (() => void) | undefined;

  /** `file`: the absolute path the database was opened on, or `:memory:` (a private one, with a lock of its own). */
  constructor(
    readonly db: DatabaseSync,
    file: string,
  ) {
    this.lock = lockOf(file);
  }

  /**
   * Runs one statement as Kysely's SQLite connection would (rows for a statement that answers rows, the
   * changes otherwise), in the file's turn like a query through Kysely, without Kysely's executor: a
   * statement compiled once (prepared.ts) skips its connection provider, its own connection mutex and
   * their promises, about 3 KB of garbage and a tenth of RegisterSchedule's store time.
   */
  execute(sql: string, parameters: readonly unknown[]): Promise<QueryResult<unknown>> {
    return this.#inTurn(() => this.#run(sql, parameters));
  }

  /**
   * Runs the statements in one IMMEDIATE transaction, in the file's turn, without Kysely's executor (as
   * {@link execute}): answers each statement's result, in order. Rolled back whole when one fails. The
   * statements run synchronously, so nothing else of this process runs between them.
   */
  executeAll(statements: readonly { sql: string; parameters: readonly unknown[] }[]): Promise<QueryResult<unknown>[]> {
    return this.#inTurn(() => {
      this.#run('BEGIN IMMEDIATE', []);
      try {
        const results = statements.map((s) => this.#run(s.sql, s.parameters));
        this.#run('COMMIT', []);
        return results;
      } catch (err) {
        if (this.db.isTransaction) this.#run('ROLLBACK', []);
        throw err;
      }
    });
  }

  /** Runs `work` (synchronous) in the file's turn: now when the file is free (the usual case), else when it is. */
  #inTurn<T>(work: () => T): Promise<T> {
    if (this.lock.tryLock()) {
      try {
        return Promise.resolve(work());
      } catch (err) {
        return Promise.reject(err as Error);
      } finally {
        this.lock.unlock();
      }
    }
    return this.lock.lock().then(() => {
      try {
        return work();
      } finally {
        this.lock.unlock();
      }
    });
  }

  #run(sql: string, parameters: readonly unknown[]): QueryResult<unknown> {
    const statement = this.prepare(sql);
    if (statement.reader) return { rows: statement.all(parameters) };
    const { changes, lastInsertRowid } = statement.run(parameters);
    return {
      insertId: lastInsertRowid != null ? BigInt(lastInsertRowid) : undefined,
      numAffectedRows: changes != null ? BigInt(changes) : undefined,
      rows: [],
    };
  }

  prepare(sql: string): SqliteStatement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      // Least recently used out: the batched statements of a burst (one text per batch size) come and go
      // without pushing out the few dozen statements used all the time.
      if (this.#statements.size >= STATEMENT_CACHE_LIMIT)
        this.#statements.delete(this.#statements.keys().next().value!);
      statement = new NodeSqliteStatement(this.db.prepare(sql), this, !/^\s*select\b/i.test(sql));
    } else {
      this.#statements.delete(sql);
    }
    this.#statements.set(sql, statement);
    return statement;
  }

  close(): void {
    this.#statements.clear();
    this.db.close();
  }
}

class NodeSqliteStatement implements SqliteStatement {
  readonly reader: boolean;

  constructor(
    private readonly statement: StatementSync,
    private readonly database: NodeSqliteDatabase,
    private readonly writes: boolean,
  ) {
    this.reader = statement.columns().length > 0;
  }

  all(parameters: readonly unknown[]): unknown[] {
    const rows = this.statement.all(...(parameters as SQLInputValue[]));
    if (this.writes) this.database.onWrite?.();
    return rows;
  }

  run(parameters: readonly unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint } {
    const result = this.statement.run(...(parameters as SQLInputValue[]));
    if (this.writes) this.database.onWrite?.();
    return result;
  }

  iterate(parameters: readonly unknown[]): IterableIterator<unknown> {
    if (this.writes) this.database.onWrite?.();
    return this.statement.iterate(...(parameters as SQLInputValue[]));
  }
}

/** One holder at a time, in arrival order. */
class Mutex {
  #held = false;
  readonly #waiting: (() => void)[] = [];

  /** Takes the lock now if nobody holds it or waits for it; false otherwise (then use lock()). */
  tryLock(): boolean {
    if (this.#held) return false;
    this.#held = true;
    return true;
  }

  lock(): Promise<void> {
    if (this.tryLock()) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  /** Hands the lock to the next in line, if any. */
  unlock(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#held = false;
  }
}

/**
 * One mutex per database file in this process. node:sqlite waits for a lock synchronously (busy_timeout), so a
 * second connection of the same process that hit the first one's open transaction would block the thread the
 * first needs to finish it: statements of all connections to a file take turns here instead. Other processes
 * are kept apart by SQLite's own lock, as before.
 */
const fileLocks = new Map<string, Mutex>();

function lockOf(file: string): Mutex {
  if (file === ':memory:') return new Mutex();
  let lock = fileLocks.get(file);
  if (!lock) fileLocks.set(file, (lock = new Mutex()));
  return lock;
}

/**
 * Kysely's SQLite driver with IMMEDIATE transactions (the write lock is taken at BEGIN, so a transaction never
 * fails half-way on a lock upgrade), a rollback only when SQLite has not rolled back already, and a connection
 * handed out only while no other connection of this process to the same file is in use.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  readonly #lock: Mutex;

  constructor(private readonly database: NodeSqliteDatabase) {
    super({ database });
    this.#lock = database.lock;
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    await this.#lock.lock();
    return super.acquireConnection();
  }

  override async releaseConnection(): Promise<void> {
    this.#lock.unlock();
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('BEGIN IMMEDIATE'));
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.database.db.isTransaction) await connection.executeQuery(CompiledQuery.raw('ROLLBACK'));
  }
}

/** Kysely's SqliteDialect over a `node:sqlite` database. */
export class NodeSqliteDialect extends SqliteDialect {
  constructor(private readonly database: NodeSqliteDatabase) {
    super({ database });
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.database);
  }
}
