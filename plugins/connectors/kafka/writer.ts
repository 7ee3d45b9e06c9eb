import { Partitioners, type IHeaders, type Message, type Producer } from 'kafkajs';
import {
  ERROR_CODES,
  SluiceError,
  type HookContext,
  type Options,
  type Row,
  type WindowRef,
  type WindowWriter,
} from 'sluice/sdk';
import { connectionConfig, createKafka, guard } from './client.js';

/** Headers every message of a window carries, so that consumers can tell windows and runs apart. */
export const WINDOW_HEADERS = {
  lower: 'sluice-window-lower',
  upper: 'sluice-window-upper',
  type: 'sluice-window-type',
  jobId: 'sluice-job-id',
  groupId: 'sluice-group-id',
  streamId: 'sluice-stream-id',
} as const;

/**
 * The header of a commit marker: the message commit() adds after every message of the job was
 * acknowledged. Its value is the number of data messages the job wrote.
 */
export const COMMIT_HEADER = 'sluice-commit';

/** The key of a window's commit markers: one per window, so all its markers share a partition, in order. */
export function commitMarkerKey(window: WindowRef): string {
  const b = window.boundaries;
  return `sluice-commit ${JSON.stringify([window.groupId, window.streamId, b.boundaryType, b.lowerBound, b.upperBound])}`;
}

export function windowHeaders(window: WindowRef): Record<string, string> {
  return {
    [WINDOW_HEADERS.lower]: window.boundaries.lowerBound,
    [WINDOW_HEADERS.upper]: window.boundaries.upperBound,
    [WINDOW_HEADERS.type]: window.boundaries.boundaryType,
    [WINDOW_HEADERS.jobId]: window.jobId,
    [WINDOW_HEADERS.groupId]: window.groupId,
    [WINDOW_HEADERS.streamId]: window.streamId,
  };
}

/** JSON's replacer for rows: bigints become decimal strings and bytes base64, which JSON.stringify cannot do. */
function replacer(this: unknown, key: string, value: unknown): unknown {
  // The value before its toJSON: a Buffer's would already be {type: 'Buffer', data: [...]} here.
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Uint8Array)
    return Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64');
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** JSON of a row: bigints as decimal strings, bytes base64, exact numbers (JSON.rawJSON) as they came. */
export function rowToJson(row: Row): string {
  return JSON.stringify(row, replacer);
}

function keyOf(row: Row, keyField: string | undefined): string | null {
  if (keyField === undefined) return null;
  const v = row[keyField];
  if (v === undefined || v === null) return null;
  return typeof v === 'string' ? v : typeof v === 'object' ? rowToJson(v as Row) : String(v);
}

/**
 * Opens an at-least-once writer: each row becomes one message (JSON value, key from `keyField`, the
 * window headers). write() sends and waits for the brokers' acknowledgement (`acks`); commit() waits for
 * what is pending, then (unless `commitMarker` is false) sends the window's commit marker naming the job
 * and its message count, and closes the producer. Kafka without transactions cannot take messages back:
 * abort() stops producing, and whatever was already sent stays in the topic, with no marker; consumers
 * that follow the marker rule ignore it (see docs/connectors/kafka.md).
 */
export async function openKafkaWriter(options: Options, window: WindowRef, ctx: HookContext): Promise<WindowWriter> {
  const cfg = connectionConfig(options);
  const keyField = options.keyField as string | undefined;
  const acks = (options.acks as number | undefined) ?? -1;
  const commitMarker = (options.commitMarker as boolean | undefined) ?? true;
  const what = `writing topic '${cfg.topic}' on ${cfg.brokers.join(',')}`;
  const kafka = createKafka(cfg, ctx.logger);
  const headers: IHeaders = windowHeaders(window);

  // Fail at open, with NOT_FOUND, when the topic does not exist (the producer would retry for long).
  const admin = kafka.admin();
  try {
    await guard(what, async () => {
      await admin.connect();
      await admin.fetchTopicMetadata({ topics: [cfg.topic] });
    });
  } finally {
    await admin.disconnect().catch(() => {});
  }

  const producer: Producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    idempotent: false,
    maxInFlightRequests: 1,
    retry: { retries: cfg.retries, initialRetryTime: 300, maxRetryTime: 10_000 },
  });
  await guard(what, () => producer.connect()).catch(async (err: unknown) => {
    await producer.disconnect().catch(() => {});
    throw err;
  });

  let state: 'open' | 'committed' | 'aborted' | 'failed' = 'open';
  let pending: Promise<unknown> = Promise.resolve();
  let sent = 0;
  let disconnected: Promise<void> | undefined;
  const disconnect = () => (disconnected ??= producer.disconnect().catch(() => {}));

  return {
    async write(batch) {
      if (state !== 'open')
        throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, `${what}: write after the writer was ${state}`);
      if (batch.length === 0) return;
      const messages: Message[] = batch.map((row) => ({ key: keyOf(row, keyField), value: rowToJson(row), headers }));
      const send = guard(what, () =>
        producer.send({ topic: cfg.topic, messages, acks, timeout: cfg.requestTimeoutMs }),
      );
      pending = send.catch(() => {});
      try {
        await send;
        sent += messages.length;
      } catch (err) {
        state = 'failed';
        throw err;
      }
    },
    async commit() {
      if (state !== 'open')
        throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, `${what}: commit after the writer was ${state}`);
      await pending;
      if (commitMarker) {
        const marker: Message = {
          key: commitMarkerKey(window),
          value: JSON.stringify({ sluice: 'commit', jobId: window.jobId, messages: sent }),
          headers: { ...windowHeaders(window), [COMMIT_HEADER]: String(sent) },
        };
        try {
          await guard(what, () =>
            producer.send({ topic: cfg.topic, messages: [marker], acks, timeout: cfg.requestTimeoutMs }),
          );
        } catch (err) {
          state = 'failed';
          throw err;
        }
      }
      state = 'committed';
      await disconnect();
      ctx.logger.debug('kafka: window written', { topic: cfg.topic, messages: sent, jobId: window.jobId });
    },
    async abort(reason) {
      if (state === 'committed') return;
      state = 'aborted';
      await pending;
      await disconnect();
      if (sent > 0) {
        ctx.logger.warn(
          'kafka: writer aborted; messages already sent stay in the topic (at-least-once, no transactions)',
          {
            topic: cfg.topic,
            messages: sent,
            jobId: window.jobId,
            reason: reason instanceof Error ? reason.message : String(reason),
          },
        );
      }
    },
  };
}
