/**
 * The SQL sinks' writer keeps no batch alive once it is written: a PostgreSQL COPY keeps the statement row maps
 * (StatementRows) of every batch it was sent until it ends, to name the window's row of a refused line, and a map
 * that held its batch would keep a whole window's rows in memory.
 */
import test from 'ava';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Row } from 'sluice/sdk';
import { type StatementRows, type WriterSession, windowWriter } from '../../plugins/connectors/_sql/core.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A session that keeps what a COPY keeps: each statement's row map, until the end. */
function copyLikeSession(kept: StatementRows[]): WriterSession {
  const none = async () => {};
  return {
    caseInsensitive: false,
    transactionalDdl: true,
    maxParams: 65_535,
    begin: none,
    lockWindow: none,
    deleteWindow: none,
    insert: async (_columns, _rows, _keys, at) => void kept.push(at),
    create: async () => new Map(),
    commit: none,
    rollback: none,
    release: none,
    convert: (value) => value,
    mapError: (err) => {
      throw err;
    },
  };
}

for (const mode of ['replace-window', 'upsert'] as const)
  test(`${mode}: a written batch is not kept alive by the row maps its statements leave`, async (t) => {
    const kept: StatementRows[] = [];
    const writer = windowWriter(
      copyLikeSession(kept),
      {
        url: 'postgres://sluice@127.0.0.1/test',
        table: ['t'],
        mode,
        ...(mode === 'replace-window' ? { windowColumn: 'w' } : {}),
        keyColumns: ['id'],
        createTable: false,
        batchSize: 100,
        connectTimeoutMs: 1000,
      },
      {
        groupId: 'g',
        streamId: 's',
        jobId: 'j',
        boundaries: { boundaryType: 'OFFSET', lowerBound: '0', upperBound: '3' },
      },
      new Map([
        ['id', 'integer'],
        ['payload', 'other'],
        ['w', 'other'],
      ]),
      't',
    );
    // Each row holds a payload the test can tell apart; an upsert batch repeats a key, so rows are dropped.
    const batch = (b: number): Row[] =>
      Array.from({ length: 300 }, (_, i) => ({
        id: b * 1000 + (mode === 'upsert' && i === 1 ? 0 : i),
        payload: { b, i },
      }));
    const first = batch(0);
    const refs = first.map((row) => new WeakRef(row.payload as object));
    await writer.write(first);
    first.length = 0;
    await writer.write(batch(1));
    await writer.write(batch(2));
    t.true(kept.length >= 9, 'a row map for every statement, as a COPY keeps them');
    // (The upsert keeps the last row of key 0: the window's row 2.)
    t.is(kept[0]!.row(0), mode === 'upsert' ? 2 : 1, 'the maps still answer');
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    t.is(refs.filter((r) => r.deref() !== undefined).length, 0, 'no row of the first batch is alive');
    await writer.commit();
  });
