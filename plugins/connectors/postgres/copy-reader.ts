import { StringDecoder } from 'node:string_decoder';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { type BoundedReader, type SluiceError, markFloatColumns } from 'sluice/sdk';
import { COPY_TEXT_FORM, CopyText, passableType } from './copy-text.js';
import { parserFor, unescapeCopy } from './values.js';

export interface CopyReadSpec {
  /** `COPY (<query>) TO STDOUT`: the window's rows in key order. */
  readonly sql: string;
  /** The query's columns in order, with their type OIDs (from the snapshot's first statement). */
  readonly fields: readonly { readonly name: string; readonly dataTypeID: number }[];
  readonly keyColumn: string;
  readonly stripKey: boolean;
  readonly batchSize: number;
  /** The floating-point columns, every batch is marked with (markFloatColumns). */
  readonly floatColumns?: ReadonlySet<string>;
  /** Ends the transaction and the connection; `abandoned`: a COPY is still running, just drop the connection. */
  close(abandoned: boolean): Promise<void>;
  mapError(err: unknown, doing: string): SluiceError;
}

/**
 * The window as one `COPY (SELECT …) TO STDOUT` (text format) in the reader's snapshot: rows are parsed
 * from the stream as it arrives, batchSize at a time. The stream is read only as fast as batches are
 * taken, so at most one batch and the socket's buffers are held whatever the window's size.
 */
export function copyReader(client: pg.Client, spec: CopyReadSpec): BoundedReader {
  const names = spec.fields.map((f) => f.name);
  const parsers = spec.fields.map((f) => parserFor(f.dataTypeID));
  const oids = spec.fields.map((f) => f.dataTypeID);
  const passable = oids.map(passableType);
  // Set by offerNativeForm before the first batch: built-in-typed values go out as their COPY text.
  let native = false;
  let started = false;
  const keyIndex = names.indexOf(spec.keyColumn);
  const width = names.length;
  let lastKey: unknown;
  let rows = 0;
  let stream: ReturnType<typeof copyTo> | undefined;
  let closed = false;

  function parseLine(line: string): Record<string, unknown> {
    const row: Record<string, unknown> = {};
    let start = 0;
    for (let i = 0; i < width; i++) {
      let end = line.indexOf('\t', start);
      if (end === -1 || i === width - 1) end = line.length;
      const field = line.slice(start, end);
      start = end + 1;
      const isNull = field === '\\N';
      // Passed on as COPY text: no parse here, no encoding in the writer.
      const wrap = native && passable[i]! && !isNull;
      if (i === keyIndex) {
        lastKey = isNull ? null : parsers[i]!(unescapeCopy(field));
        if (spec.stripKey) continue;
        row[names[i]!] = wrap ? new CopyText(field, oids[i]!) : lastKey;
        continue;
      }
      row[names[i]!] = isNull ? null : wrap ? new CopyText(field, oids[i]!) : parsers[i]!(unescapeCopy(field));
    }
    return row;
  }

  return {
    offerNativeForm(form: string): boolean {
      if (form !== COPY_TEXT_FORM || started) return false;
      native = true;
      return true;
    },
    async *batches() {
      started = true;
      const copy = client.query(copyTo(spec.sql));
      stream = copy;
      const decoder = new StringDecoder('utf8');
      let rest = '';
      let batch: Record<string, unknown>[] = [];
      try {
        for await (const chunk of copy as AsyncIterable<Buffer>) {
          const text = rest + decoder.write(chunk);
          let start = 0;
          for (;;) {
            const nl = text.indexOf('\n', start);
            if (nl === -1) break;
            batch.push(parseLine(text.slice(start, nl)));
            start = nl + 1;
            if (batch.length >= spec.batchSize) {
              rows += batch.length;
              const full = batch;
              batch = [];
              yield markFloatColumns(full, spec.floatColumns);
            }
          }
          rest = text.slice(start);
        }
      } catch (err) {
        throw spec.mapError(err, 'reading the window (COPY)');
      }
      if (batch.length > 0) {
        rows += batch.length;
        yield markFloatColumns(batch, spec.floatColumns);
      }
    },
    positions: (): Record<string, string> =>
      lastKey === undefined ? { rows: String(rows) } : { key: String(lastKey), rows: String(rows) },
    async close() {
      if (closed) return;
      closed = true;
      const abandoned = stream !== undefined && !stream.readableEnded;
      // Left before the end: the connection goes, and the server ends the COPY and the transaction with it.
      if (abandoned) stream!.on('error', () => {});
      await spec.close(abandoned);
    },
  };
}
