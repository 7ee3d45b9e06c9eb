/**
 * Conformance harness of the mysql connector, against the machine's MariaDB/MySQL (MYSQL_URL). Every
 * seeded source and every sink destination is a fresh InnoDB table: id BIGINT (the monotonic key), ts
 * DATETIME(3) (the record's ts in UTC, ms precision), name TEXT; a sink table also has the window
 * column. OFFSET windows are key ranges: from the id of the first record (in the order seeded) at or
 * after fromTs, to the id of the first record at or after toTs (or the largest id + 1).
 */
import mysql from 'mysql2/promise';
import type { Boundaries, BoundaryType, Options, Row, WindowRef } from 'sluice/sdk';
import { DEFAULT_WINDOW_COLUMN, windowId } from '../../../plugins/connectors/_sql/core.js';
import { MYSQL_URL, probeMysql, uniqueName } from '../../helpers/databases.js';
import type { ConformanceHarness, ConformanceRecord, SeededSource } from '../harness.js';

const tables: string[] = [];
const qi = (name: string) => `\`${name.replaceAll('`', '``')}\``;

/** `YYYY-MM-DD HH:MM:SS.sss` in UTC. */
const dateTime = (ms: number) => new Date(ms).toISOString().slice(0, 23).replace('T', ' ');

async function withConnection<T>(fn: (conn: mysql.Connection) => Promise<T>): Promise<T> {
  const conn = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 5000, dateStrings: true });
  try {
    await conn.query("SET time_zone = '+00:00'");
    return await fn(conn);
  } finally {
    await conn.end();
  }
}

async function freshTable(withWindow: boolean): Promise<string> {
  const table = uniqueName('conformance_my');
  tables.push(table);
  await withConnection((c) =>
    c.query(
      `CREATE TABLE ${qi(table)} (id BIGINT NOT NULL, ts DATETIME(3) NOT NULL, name TEXT NOT NULL${withWindow ? `, ${qi(DEFAULT_WINDOW_COLUMN)} VARCHAR(768) NOT NULL, INDEX (${qi(DEFAULT_WINDOW_COLUMN)})` : ''}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    ),
  );
  return table;
}

async function seed(records: readonly ConformanceRecord[]): Promise<SeededSource> {
  const table = await freshTable(false);
  await withConnection(async (c) => {
    for (let i = 0; i < records.length; i += 500) {
      const chunk = records.slice(i, i + 500);
      await c.execute(
        `INSERT INTO ${qi(table)} (id, ts, name) VALUES ${chunk.map(() => '(?, ?, ?)').join(', ')}`,
        chunk.flatMap((r) => [r.id, dateTime(r.ts), r.name]),
      );
    }
  });
  const after = records.length === 0 ? 1 : Math.max(...records.map((r) => r.id)) + 1;
  const keyAt = (ts: number) => records.find((r) => r.ts >= ts)?.id ?? after;
  return {
    // A small page size, so that every conformance read pages several times.
    options: { url: MYSQL_URL, table, keyColumn: 'id', timeColumn: 'ts', batchSize: 7 },
    async boundaries(type: BoundaryType, fromTs: number, toTs: number): Promise<Boundaries> {
      if (type === 'TIME') return { boundaryType: 'TIME', lowerBound: String(fromTs), upperBound: String(toTs) };
      return { boundaryType: 'OFFSET', lowerBound: String(keyAt(fromTs)), upperBound: String(keyAt(toTs)) };
    },
  };
}

async function readBack(options: Options, window: WindowRef): Promise<readonly ConformanceRecord[]> {
  const column = typeof options.windowColumn === 'string' ? options.windowColumn : DEFAULT_WINDOW_COLUMN;
  const [rows] = await withConnection((c) =>
    c.execute<mysql.RowDataPacket[]>(
      `SELECT id, ts, name FROM ${qi(String(options.table))} WHERE ${qi(column)} = ? ORDER BY id`,
      [windowId(window)],
    ),
  );
  return rows.map((r) => ({
    id: Number(r.id),
    ts: Date.parse(`${String(r.ts).replace(' ', 'T')}Z`),
    name: String(r.name),
  }));
}

const harness: ConformanceHarness = {
  connectorId: 'mysql',
  available: probeMysql,
  sampleSourceOptions: { url: MYSQL_URL, table: 'test.conformance_sample', keyColumn: 'id', timeColumn: 'ts' },
  sampleBoundaries: { OFFSET: { boundaryType: 'OFFSET', lowerBound: '100', upperBound: '200' } },
  source: { seed, idOf: (row: Row) => Number(row.id) },
  sink: {
    async options() {
      return { url: MYSQL_URL, table: await freshTable(true) };
    },
    readBack,
  },
  async cleanup() {
    const dropping = tables.splice(0);
    if (dropping.length === 0) return;
    await withConnection((c) => c.query(`DROP TABLE IF EXISTS ${dropping.map(qi).join(', ')}`));
  },
};

export default harness;
