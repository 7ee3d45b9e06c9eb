/**
 * Conformance harness of the postgres connector, against the machine's PostgreSQL (PG_URL). Every seeded
 * source and every sink destination is a fresh table: id bigint (the monotonic key), ts timestamptz(3)
 * (the record's ts, epoch ms, stored with ms precision), name text; a sink table also has the window
 * column. OFFSET windows are key ranges: from the id of the first record (in the order seeded) at or
 * after fromTs, to the id of the first record at or after toTs (or the largest id + 1).
 */
import pg from 'pg';
import type { Boundaries, BoundaryType, Options, Row, WindowRef } from 'sluice/sdk';
import { DEFAULT_WINDOW_COLUMN, windowId } from '../../../plugins/connectors/_sql/core.js';
import { PG_URL, probePostgres, uniqueName } from '../../helpers/databases.js';
import type { ConformanceHarness, ConformanceRecord, SeededSource } from '../harness.js';

const tables: string[] = [];
const qi = (name: string) => `"${name.replaceAll('"', '""')}"`;

async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function freshTable(withWindow: boolean): Promise<string> {
  const table = uniqueName('conformance_pg');
  tables.push(table);
  await withClient((c) =>
    c.query(
      `CREATE TABLE ${qi(table)} (id bigint NOT NULL, ts timestamptz(3) NOT NULL, name text NOT NULL${withWindow ? `, ${qi(DEFAULT_WINDOW_COLUMN)} text NOT NULL` : ''})`,
    ),
  );
  return table;
}

async function seed(records: readonly ConformanceRecord[]): Promise<SeededSource> {
  const table = await freshTable(false);
  await withClient(async (c) => {
    for (let i = 0; i < records.length; i += 500) {
      const chunk = records.slice(i, i + 500);
      const params = chunk.flatMap((r) => [r.id, new Date(r.ts).toISOString(), r.name]);
      const tuples = chunk.map((_, j) => `($${3 * j + 1}, $${3 * j + 2}, $${3 * j + 3})`);
      await c.query(`INSERT INTO ${qi(table)} (id, ts, name) VALUES ${tuples.join(', ')}`, params);
    }
  });
  const after = records.length === 0 ? 1 : Math.max(...records.map((r) => r.id)) + 1;
  const keyAt = (ts: number) => records.find((r) => r.ts >= ts)?.id ?? after;
  return {
    // A small page size, so that every conformance read pages several times.
    options: { url: PG_URL, table, keyColumn: 'id', timeColumn: 'ts', batchSize: 7 },
    async boundaries(type: BoundaryType, fromTs: number, toTs: number): Promise<Boundaries> {
      if (type === 'TIME') return { boundaryType: 'TIME', lowerBound: String(fromTs), upperBound: String(toTs) };
      return { boundaryType: 'OFFSET', lowerBound: String(keyAt(fromTs)), upperBound: String(keyAt(toTs)) };
    },
  };
}

async function readBack(options: Options, window: WindowRef): Promise<readonly ConformanceRecord[]> {
  const column = typeof options.windowColumn === 'string' ? options.windowColumn : DEFAULT_WINDOW_COLUMN;
  const res = await withClient((c) =>
    c.query<{ id: string; ts: Date; name: string }>(
      `SELECT id, ts, name FROM ${qi(String(options.table))} WHERE ${qi(column)} = $1 ORDER BY id`,
      [windowId(window)],
    ),
  );
  return res.rows.map((r) => ({ id: Number(r.id), ts: r.ts.getTime(), name: r.name }));
}

const harness: ConformanceHarness = {
  connectorId: 'postgres',
  available: probePostgres,
  sampleSourceOptions: { url: PG_URL, table: 'public.conformance_sample', keyColumn: 'id', timeColumn: 'ts' },
  sampleBoundaries: { OFFSET: { boundaryType: 'OFFSET', lowerBound: '100', upperBound: '200' } },
  source: { seed, idOf: (row: Row) => Number(row.id) },
  sink: {
    async options() {
      return { url: PG_URL, table: await freshTable(true) };
    },
    readBack,
  },
  async cleanup() {
    const dropping = tables.splice(0);
    if (dropping.length === 0) return;
    await withClient((c) => c.query(`DROP TABLE IF EXISTS ${dropping.map(qi).join(', ')}`));
  },
};

export default harness;
