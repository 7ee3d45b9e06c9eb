import type { Connection, FieldPacket, Query } from 'mysql2';
import type { BoundedReader, SluiceError } from 'sluice/sdk';
import { parseJsonExact, timestampTextToIso } from '../_sql/values.js';

/** Protocol column types (mysql2's `columnType`). */
const FLOAT = 4;
const DOUBLE = 5;
const TIMESTAMP = 7;
const DATETIME = 12;
const JSON_TYPE = 245;
/** Read as its text by mysql2's row parser (as DECIMAL is). */
const NEWDECIMAL = 246;

type Convert = (value: unknown) => unknown;

/** `YYYY-MM-DD HH:MM:SS[.f]` (UTC, the session's zone) to ISO 8601 UTC, every fractional digit kept. */
const timestamp: Convert = (v) => {
  if (typeof v !== 'string') return v;
  // The common shape without a regular expression; zero dates and other text take the careful path.
  if (v.length >= 19 && v.charCodeAt(10) === 32 && v.charCodeAt(0) !== 48) return `${v.slice(0, 10)}T${v.slice(11)}Z`;
  return timestampTextToIso(v);
};
/** The server's shortest round-trip text of a DOUBLE or FLOAT, read by the JS parser (exact, unlike mysql2's digit loop). */
const float: Convert = (v) => (typeof v === 'string' ? Number(v) : v);
const json: Convert = (v) => (typeof v === 'string' ? parseJsonExact(v) : v);

/**
 * The conversions a result's columns need, decided once from its field metadata; every other column is
 * the value mysql2's row parser gives (numbers, BIGINT as a number when exact and as text beyond 2^53,
 * DECIMAL as text, BIT and binary as bytes). DOUBLE and FLOAT columns are switched to text before the
 * parser is compiled, because mysql2 accumulates their digits in a double (one value in twenty of a
 * random sample came out one ulp off); the text is parsed with `Number`, which is exact.
 */
export function streamConversions(fields: FieldPacket[]): { names: string[]; fns: Convert[] } {
  const names: string[] = [];
  const fns: Convert[] = [];
  for (const f of fields) {
    const type = f.columnType;
    const extended = (f as { extendedFormat?: string }).extendedFormat;
    let fn: Convert | undefined;
    if (type === FLOAT || type === DOUBLE) {
      (f as { columnType?: number }).columnType = NEWDECIMAL;
      fn = float;
    } else if (type === TIMESTAMP || type === DATETIME) fn = timestamp;
    else if (type === JSON_TYPE || extended === 'json') fn = json;
    if (fn) {
      names.push(f.name);
      fns.push(fn);
    }
  }
  return { names, fns };
}

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
  /** Ends the transaction and the connection; `abandoned`: the query is still streaming, just drop the connection. */
  close(abandoned: boolean): Promise<void>;
  mapError(err: unknown, doing: string): SluiceError;
}

/**
 * The window as one streamed query in the reader's snapshot (text protocol): rows are gathered into
 * batches as they arrive. Once a batch is waiting to be taken the connection is paused (mysql2 stops
 * parsing, the socket stops reading and TCP holds the server back), so at most one batch plus the one
 * being filled and the socket's buffers are held, whatever the window's size.
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
      let conversions: { names: string[]; fns: Convert[] } = { names: [], fns: [] };
      const q = conn.query(spec.sql);
      query = q;
      q.on('fields', (fields: FieldPacket[]) => {
        conversions = streamConversions(fields);
      });
      q.on('result', (row: Record<string, unknown>) => {
        const { names, fns } = conversions;
        for (let i = 0; i < names.length; i++) row[names[i]!] = fns[i]!(row[names[i]!]);
        filling.push(row);
        if (filling.length >= spec.batchSize) {
          ready.push(filling);
          filling = [];
          // One batch waits for the consumer: stop reading until it is taken.
          conn.pause();
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
            yield batch;
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
