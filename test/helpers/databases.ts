import { type Probe, probe } from './integration.js';

/** The machine's PostgreSQL and MariaDB (README: test services); overridable for other machines. */
export const PG_URL = process.env.SLUICE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env.SLUICE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export async function probePostgres(): Promise<Probe> {
  return probe(`PostgreSQL at ${PG_URL}`, async () => {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
    await client.connect();
    await client.query('SELECT 1');
    await client.end();
  });
}

export async function probeMysql(): Promise<Probe> {
  return probe(`MariaDB/MySQL at ${MYSQL_URL}`, async () => {
    const mysql = await import('mysql2/promise');
    const conn = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
    await conn.query('SELECT 1');
    await conn.end();
  });
}

/** A unique, lower-case name for a table or topic of one test run. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
}
