import type { Connection, FieldPacket, Query } from 'mysql2';
import { type BoundedReader, type SluiceError, markFloatColumns } from 'sluice/sdk';
import { ValueError } from '../_sql/core.js';
import { compileRowParser, type RowParser } from './row-parser.js';

/** The server closed the connection without saying why (mysql2's code for it, so it maps as unavailable). */
function connectionLost(): Error {
  return Object.assign(new Error('the server closed the connection before the read ended'), {
    code: 'PROTOCOL_CONNECTION_LOST',
    fatal: true,
  });
}

export interface StreamReadSpec {
  /** One `SELECT … WHERE <window> ORDER BY key`; its values are literals the reader made (digits, dates). */
  readonly sql: string;
  /** The key column as the result names it; undefined when the rows do not carry it. */
  readonly keyField: string | undefined;
  readonly batchSize: number;
  /** The floating-point columns, every batch is marked with (markFloatColumns). */
  readonly floatColumns?: ReadonlySet<string>;
  /** Ends the transaction and the connection; `abandoned`: the query is still streaming, just drop the connection. */
  close(abandoned: boolean): Promise<void>;
  mapError(err: unknown, doing: string): SluiceError;
}

/**
 * Has the query parse its rows with the parser compiled for its fields (row-parser.ts) instead of
 * mysql2's own. mysql2 has no option for this: it compiles its parser right after the 'fields' event
 * and keeps it in the query's `_rowParser`, which becomes an accessor here that hands out ours.
 * `used()` says whether any row came through it, so that a mysql2 that no longer reads `_rowParser`
 * fails the read instead of giving its own, inexact, values.
 */
function useRowParser(q: Query): { used(): boolean } {
  let ours: RowParser | undefined;
  let theirs: unknown;
  let rows = 0;
  q.on('fields', (fields: FieldPacket[]) => {
    const compiled = compileRowParser(fields);
    ours = {
      next(packet, f, o) {
        rows++;
        try {
          return compiled.next(packet, f, o);
        } catch (err) {
          // A value that cannot be read (JSON JavaScript cannot parse): the row is the one being parsed.
          if (err instanceof ValueError) err.row = `row ${rows} of the window`;
          throw err;
        }
      },
    };
  });
  Object.defineProperty(q, '_rowParser', {
    configurable: true,
    get: () => ours ?? theirs,
    set: (parser: unknown) => {
      theirs = parser;
    },
  });
  return { used: () => rows > 0 };
}

/**
 * The window as one streamed query in the reader's snapshot (text protocol): rows are gathered into
 * batches as they arrive. Once a batch is waiting to be taken the connection is paused (mysql2 stops
 * parsing, the socket stops reading and TCP holds the server back), so at most one batch plus the one
 * being filled and the socket's buffers are held, whatever the window's size. A batch the consumer is
 * already waiting for does not pause it: the consumer takes the batch once the socket chunk being parsed
 * is done, and a pause would only make mysql2 copy that chunk's remaining rows aside and replay them.
 */
export function streamReader(conn: Connection, spec: StreamReadSpec): BoundedReader {
  let lastKey: unknown;
  let rows = 0;
  let query: Query | undefined;
  let ended = false;
  let closed = false;

  return {
    async *batches() {
      let filling: Record<string, unknown>[] = [];
      const ready: Record<string, unknown>[][] = [];
      let failure: unknown;
      let wake: (() => void) | undefined;
      const notify = () => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      const q = conn.query(spec.sql);
      query = q;
      const parser = useRowParser(q);
      let first = true;
      q.on('result', (row: Record<string, unknown>) => {
        if (first) {
          first = false;
          if (!parser.used()) {
            // Left as a read still streaming, so that close() drops the connection.
            failure = new Error(
              "mysql2 did not parse the rows with the reader's row parser (a changed mysql2?): its values would not be exact",
            );
            conn.pause();
            notify();
            return;
          }
        }
        filling.push(row);
        if (filling.length >= spec.batchSize) {
          ready.push(filling);
          filling = [];
          // One batch waits for the consumer: stop reading until it is taken, unless the consumer is
          // already waiting for it (it takes the batch as soon as this socket chunk is parsed).
          if (wake === undefined) conn.pause();
          notify();
        }
      });
      q.on('error', (err: unknown) => {
        failure = err;
        ended = true;
        notify();
      });
      q.on('end', () => {
        ended = true;
        if (filling.length > 0) ready.push(filling);
        filling = [];
        notify();
      });
      // A connection lost mid-read (KILL, the server's net_write_timeout, a reset) is reported by mysql2
      // on the connection only: a query without a callback gets neither 'error' nor 'end'. Without these
      // the read would wait for an event that cannot come, and the event loop would empty under it.
      const lost = (err?: unknown) => {
        if (ended) return;
        failure = err ?? connectionLost();
        ended = true;
        notify();
      };
      const onClose = () => lost();
      // The socket (typed on pool connections only): its 'close' also covers a close without 'end'.
      const socket = (conn as unknown as { stream?: NodeJS.EventEmitter }).stream;
      conn.on('error', lost);
      conn.on('end', onClose);
      socket?.on('close', onClose);
      try {
        for (;;) {
          if (failure !== undefined) throw spec.mapError(failure, 'reading the window');
          const batch = ready.shift();
          if (batch) {
            if (ready.length === 0 && !ended) conn.resume();
            rows += batch.length;
            if (spec.keyField !== undefined) lastKey = batch[batch.length - 1]![spec.keyField];
            yield markFloatColumns(batch, spec.floatColumns);
            continue;
          }
          if (ended) return;
          await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        conn.off('error', lost);
        conn.off('end', onClose);
        socket?.off('close', onClose);
      }
    },
    positions: (): Record<string, string> =>
      lastKey === undefined ? { rows: String(rows) } : { key: String(lastKey), rows: String(rows) },
    async close() {
      if (closed) return;
      closed = true;
      const abandoned = query !== undefined && !ended;
      await spec.close(abandoned);
    },
  };
}
