import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { ERROR_CODES, SluiceError, invalidArgument, isSluiceError } from 'sluice/sdk';
import type { Database } from './database.js';
import type { StoreDialect } from './dialect.js';
import type { ScheduleChangeListener } from '../schedule/domain/model.js';
import { SCHEDULE_CHANNEL } from './migrations.js';
import { SqlStore } from './store.js';

export interface PostgresStoreOptions {
  /** A schema of its own (created when missing; set as the search_path of every pooled connection). */
  readonly schema?: string;
  /** Connections in the pool; 10 by default. Each one opened stays open (a burst of due windows finds it ready). */
  readonly poolSize?: number;
  /** How long to wait for a connection, in milliseconds; 10 s by default. */
  readonly connectTimeoutMs?: number;
}

/** BIGINT (epoch ms) as a JS number; the pool's own parsers, so pg's global ones stay untouched. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`store: BIGINT ${text} is beyond a safe JS integer`);
  return value;
}
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 && format !== 'binary'
      ? parseInt8
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** `host:port/database` of a URL: what error messages name, never the user's password. */
function describeTarget(url: URL): string {
  const host = url.hostname || url.searchParams.get('host') || 'localhost';
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  return `${host}:${url.port || '5432'}${database ? `/${database}` : ''}`;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
]);
/** SQLSTATEs meaning the server is going away, starting up or full: retrying later may work. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '53400']);

/** True when `err` means the server could not be reached or dropped the connection. */
export function isConnectionError(err: unknown): boolean {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
  const text = err instanceof Error ? err.message : String(err);
  return (
    NETWORK_CODES.has(code) ||
    code.startsWith('08') ||
    UNAVAILABLE_STATES.has(code) ||
    /connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|Client has encountered a connection error/i.test(
      text,
    )
  );
}

function postgresDialect(target: string, scrub: (text: string) => string): StoreDialect {
  return {
    name: 'postgres',
    types: { json: 'jsonb', epochMs: 'bigint' },
    // pg parses JSONB itself.
    readJson: <T>(value: unknown) => value as T,
    async lockMigrations(trx) {
      // One migrator at a time per schema: the others wait here, then find nothing pending.
      await sql`SELECT pg_advisory_xact_lock(hashtext('sluice.schedule.migrate:' || coalesce(current_schema(), '')))`.execute(
        trx,
      );
    },
    unavailable(err, doing) {
      if (!isConnectionError(err)) return undefined;
      return new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        scrub(`store: ${doing}: PostgreSQL at ${target} unavailable: ${messageOf(err)}`),
        {},
        { cause: err },
      );
    },
    target,
  };
}

/**
 * The store in PostgreSQL, for replicas that share one ledger. Row locks and the unique constraints make
 * concurrent replicas agree: a window is claimed, and re-armed, by exactly one of them; a window's jobs are
 * inserted by exactly one.
 */
export class PostgresStore extends SqlStore {
  private constructor(
    db: Kysely<Database>,
    dialect: StoreDialect,
    /** The schema of its own, when one was asked for. */
    readonly schema: string | undefined,
    /** How to open a connection of its own (the listener's), as the pool opens its. */
    private readonly connection: pg.ClientConfig,
  ) {
    super(db, dialect);
  }

  /**
   * LISTENs on a connection of its own for the schedule writes the `schedules_notify` trigger announces. A lost
   * connection is opened again every second until it is back, then `onGap` says announcements may have been missed.
   */
  async watchSchedules(listener: ScheduleChangeListener): Promise<{ close(): Promise<void> }> {
    let closed = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      const c = new pg.Client(this.connection);
      c.on('error', () => {}); // followed by 'end', handled there
      try {
        await c.connect();
        const { rows } = await c.query<{ schema: string }>('SELECT current_schema() AS schema');
        const schema = rows[0]?.schema ?? '';
        c.on('notification', (msg) => {
          const payload = msg.payload ?? '';
          const space = payload.indexOf(' ');
          if (msg.channel === SCHEDULE_CHANNEL && space > 0 && payload.slice(0, space) === schema)
            listener.onChange(payload.slice(space + 1));
        });
        await c.query(`LISTEN ${SCHEDULE_CHANNEL}`);
      } catch (err) {
        await c.end().catch(() => {});
        throw err;
      }
      c.once('end', () => {
        client = undefined;
        if (!closed) again();
      });
      client = c;
    };
    const again = (): void => {
      retry = setTimeout(() => {
        retry = undefined;
        if (closed) return;
        connect().then(
          () => listener.onGap(),
          () => again(),
        );
      }, 1000);
      retry.unref();
    };
    try {
      await connect();
    } catch {
      // The store is out of reach now: keep trying; the caller's periodic re-scan covers the meantime.
      again();
    }
    return {
      close: async () => {
        closed = true;
        if (retry) clearTimeout(retry);
        await client?.end().catch(() => {});
      },
    };
  }

  /** Connects (and creates `options.schema` when missing); UNAVAILABLE naming the host when the server cannot be reached. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalidArgument('databaseUrl', 'a postgres:// or postgresql:// URL', url.replace(/\/\/[^@/]*@/, '//***@'));
    }
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
      throw invalidArgument('databaseUrl', 'a postgres:// or postgresql:// URL', `${parsed.protocol}//${parsed.host}`);
    }
    const { schema, poolSize = 10, connectTimeoutMs = 10_000 } = options;
    if (schema !== undefined && schema.length === 0) throw invalidArgument('schema', 'a non-empty schema name', schema);
    if (!Number.isInteger(poolSize) || poolSize < 1) throw invalidArgument('poolSize', 'an integer >= 1', poolSize);
    const target = describeTarget(parsed);
    const secrets = [parsed.password, safeDecode(parsed.password)].filter((s) => s.length > 0);
    const scrub = (text: string) => secrets.reduce((out, secret) => out.split(secret).join('***'), text);

    // The search_path is part of each connection's startup packet, so no query can run before it is set.
    // pg lets `options` in the URL override the config's, so any found there is moved over and kept.
    const startupOptions: string[] = [];
    const urlOptions = parsed.searchParams.get('options');
    if (urlOptions) startupOptions.push(urlOptions);
    parsed.searchParams.delete('options');
    if (schema !== undefined)
      startupOptions.push(`-c search_path=${quoteIdent(schema).replace(/[\\\s]/g, (c) => `\\${c}`)}`);

    const connection: pg.ClientConfig = {
      connectionString: parsed.toString(),
      connectionTimeoutMillis: connectTimeoutMs,
      application_name: 'sluice',
      keepAlive: true,
      types,
      ...(startupOptions.length ? { options: startupOptions.join(' ') } : {}),
    };
    // Connections once opened stay open (min = max): pg-pool would close one idle for 10 s, so a burst of windows
    // due on the hour found its pool empty and waited for new connections, each a new server process with its
    // caches to build again.
    const pool = new pg.Pool({ ...connection, max: poolSize, min: poolSize });
    // An idle connection dropped by the server: the next query fails and says so; unhandled, it would crash the process.
    pool.on('error', () => {});
    try {
      if (schema === undefined) {
        await pool.query('SELECT 1');
      } else {
        // Two replicas starting together would race on CREATE SCHEMA IF NOT EXISTS: serialise them.
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query("SELECT pg_advisory_xact_lock(hashtext('sluice.schedule.schema:' || $1))", [schema]);
          await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        } finally {
          client.release();
        }
      }
    } catch (err) {
      await pool.end().catch(() => {});
      if (isSluiceError(err)) throw err;
      throw new SluiceError(
        ERROR_CODES.UNAVAILABLE,
        scrub(`store: cannot connect to PostgreSQL at ${target}: ${messageOf(err)}`),
        {},
        { cause: err },
      );
    }
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return new PostgresStore(db, postgresDialect(target, scrub), schema, connection);
  }
}

function messageOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(messageOf).join('; ');
  if (err instanceof Error) return err.message || (err as { code?: string }).code || err.name;
  return String(err);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
