import {
  type BoundedReader,
  ERROR_CODES,
  type Logger,
  type Row,
  SluiceError,
  isRawJson,
  parseJsonExact,
} from 'sluice/sdk';
import type { PulsarApi, PulsarAuthentication, PulsarClient, PulsarMessage, PulsarReader } from './client.js';
import {
  type MessageIdParts,
  compareMessageIds,
  decodeMessageIdData,
  encodeMessageIdData,
  entryBefore,
  formatMessageId,
  positionAfter,
} from './message-id.js';
import { classifyPulsarError, pulsarFailure } from './errors.js';
import { type ReadPlan, checkAuthTokenEnv } from './options.js';

function unavailable(what: string, err?: unknown): SluiceError {
  const message = err === undefined ? '' : `: ${err instanceof Error ? err.message : String(err)}`;
  return new SluiceError(
    ERROR_CODES.UNAVAILABLE,
    `pulsar: ${what}${message}`,
    {},
    err === undefined ? undefined : { cause: err },
  );
}

/** The topic of one partition: `-1` is the (non-partitioned) topic itself. */
export function partitionTopic(topic: string, partition: number): string {
  return partition < 0 ? topic : `${topic}-partition-${partition}`;
}

/** The C++ client's log levels, 0 debug to 3 error, to the hook's logger. */
function clientLog(logger: Logger) {
  return (level: number, file: string, line: number, message: string) => {
    const fields = { file, line };
    if (level >= 3) logger.error(`pulsar-client: ${message}`, fields);
    else if (level === 2) logger.warn(`pulsar-client: ${message}`, fields);
    else logger.debug(`pulsar-client: ${message}`, fields);
  };
}

/**
 * Opens a bounded reader over the plan's window, with the given pulsar-client API (the real module,
 * or a stand-in in tests). It connects (a topic lookup) before returning, so a broker that is down
 * fails the open with UNAVAILABLE.
 *
 * Reading one partition: a Pulsar Reader (non-durable subscription) starts at the window's start,
 * by publish time (seekTimestamp) or just before the start message id (a reader's start is exclusive),
 * and every message is checked against both bounds. It stops at the first message at or past the
 * upper bound, or when hasNext() says nothing is left before the topic's last message id (asked of
 * the broker when the reader has caught up), so a window whose end no newer message has passed still
 * ends. readNext always has a timeout; when the broker says messages are left but none arrives for
 * stallTimeoutMs, the read fails with UNAVAILABLE instead of hanging.
 */
export async function openBoundedReader(api: PulsarApi, plan: ReadPlan, logger: Logger): Promise<BoundedReader> {
  let authentication: PulsarAuthentication | undefined;
  if (plan.authTokenEnv !== undefined) {
    // Checked again here, where the variable is read: SLUICE_SECRET_ENV may be stricter than when the group was made.
    const refused = checkAuthTokenEnv(plan.authTokenEnv);
    if (refused)
      throw new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `pulsar: reading ${plan.authTokenEnv} (authTokenEnv) is not allowed: expected ${refused.expected}, got ${refused.received}`,
        { field: refused.path, expected: refused.expected, received: refused.received },
      );
    const token = process.env[plan.authTokenEnv];
    if (!token)
      throw new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `pulsar: the environment variable ${plan.authTokenEnv} (authTokenEnv) is not set`,
      );
    if (!api.AuthenticationToken)
      throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, 'pulsar: this pulsar-client has no AuthenticationToken');
    authentication = new api.AuthenticationToken({ token });
  }
  let client: PulsarClient;
  try {
    client = new api.Client({
      serviceUrl: plan.serviceUrl,
      operationTimeoutSeconds: plan.operationTimeoutSeconds,
      log: clientLog(logger),
      ...(authentication === undefined ? {} : { authentication }),
    });
  } catch (err) {
    throw unavailable(`cannot create a client for ${plan.serviceUrl}`, err);
  }
  const topic = plan.topic.full;
  let targets: string[];
  try {
    const partitions = await client.getPartitionsForTopic(topic);
    if (plan.window.type === 'TIME') {
      targets = partitions;
    } else {
      const wanted = partitionTopic(topic, plan.window.start.partition);
      if (!partitions.includes(wanted)) {
        throw new SluiceError(
          ERROR_CODES.FAILED_PRECONDITION,
          plan.window.start.partition < 0
            ? `pulsar: ${topic} is partitioned (${partitions.length} partitions); an OFFSET bound must name one of them`
            : `pulsar: ${topic} has no partition ${plan.window.start.partition} (it has ${partitions.length === 1 && partitions[0] === topic ? 'none: use partition -1' : partitions.length})`,
        );
      }
      targets = [wanted];
    }
  } catch (err) {
    await client.close().catch(() => {});
    if (err instanceof SluiceError) throw err;
    throw unavailable(`cannot look up ${topic} at ${plan.serviceUrl}`, err);
  }
  return new PulsarBoundedReader(api, client, plan, targets, logger);
}

type Verdict = 'before' | 'inside' | 'after';

class PulsarBoundedReader implements BoundedReader {
  readonly #api: PulsarApi;
  readonly #client: PulsarClient;
  readonly #plan: ReadPlan;
  readonly #targets: readonly string[];
  readonly #logger: Logger;
  #current: PulsarReader | undefined;
  #closed = false;
  #done = false;
  readonly #positions: Record<string, string> = {};
  /** Single-partition reads: the first id inside the window, the last id seen, the id that stopped the read. */
  #first: MessageIdParts | undefined;
  #lastSeen: MessageIdParts | undefined;
  #stoppedAt: MessageIdParts | undefined;
  #skipped = 0;

  constructor(api: PulsarApi, client: PulsarClient, plan: ReadPlan, targets: readonly string[], logger: Logger) {
    this.#api = api;
    this.#client = client;
    this.#plan = plan;
    this.#targets = targets;
    this.#logger = logger;
  }

  async *batches(): AsyncIterable<readonly Row[]> {
    const w = this.#plan.window;
    const empty = w.type === 'TIME' ? w.start >= w.stop : compareMessageIds(w.start, w.stop) >= 0;
    if (!empty) {
      for (const target of this.#targets) {
        if (this.#closed) return;
        yield* this.#readPartition(target);
      }
    }
    this.#done = true;
  }

  async #openPartition(target: string): Promise<PulsarReader> {
    const w = this.#plan.window;
    const startMessageId =
      w.type === 'OFFSET'
        ? this.#api.MessageId.deserialize(encodeMessageIdData(entryBefore(w.start)))
        : this.#api.MessageId.earliest();
    let reader: PulsarReader;
    try {
      reader = await this.#client.createReader({
        topic: target,
        startMessageId,
        subscriptionRolePrefix: this.#plan.subscriptionName,
        receiverQueueSize: Math.min(1000, Math.max(10, this.#plan.batchSize)),
      });
    } catch (err) {
      throw unavailable(`cannot create a reader on ${target}`, err);
    }
    if (w.type === 'TIME' && w.start > 0) {
      try {
        await reader.seekTimestamp(w.start);
      } catch (err) {
        await reader.close().catch(() => {});
        throw unavailable(`cannot seek ${target} to publish time ${w.start}`, err);
      }
    }
    return reader;
  }

  /**
   * The next message, or undefined when none is left (or the reader was closed). readNext comes first:
   * hasNext() blocks the event loop when caught up (it asks the broker synchronously), so it is asked
   * only after a readNext timed out, and only of a connected reader. When the broker says messages are
   * left but none arrives for stallTimeoutMs on a connected reader, the entries left are markers (a
   * transaction's commit, a replicated subscription's snapshot), which no reader receives: the read
   * ends there. A reader that stays disconnected that long fails with UNAVAILABLE.
   */
  async #next(reader: PulsarReader, target: string): Promise<PulsarMessage | undefined> {
    let waitingSince: number | undefined;
    for (;;) {
      if (this.#closed) return undefined;
      let failure: unknown;
      try {
        return await reader.readNext(this.#plan.readTimeoutMs);
      } catch (err) {
        if (this.#closed) return undefined;
        failure = err;
      }
      const kind = classifyPulsarError(failure);
      if (kind !== 'timeout') throw pulsarFailure(kind, `cannot read ${target}`, failure);
      waitingSince ??= Date.now();
      const stalled = Date.now() - waitingSince >= this.#plan.stallTimeoutMs;
      if (!reader.isConnected()) {
        if (stalled)
          throw unavailable(
            `the reader on ${target} has had no broker connection for ${this.#plan.stallTimeoutMs} ms (stallTimeoutMs)`,
            failure,
          );
        continue;
      }
      let more: boolean;
      try {
        more = reader.hasNext();
      } catch (err) {
        throw pulsarFailure(
          classifyPulsarError(err),
          `cannot ask the broker for the last message id of ${target}`,
          err,
        );
      }
      if (!more) return undefined;
      if (stalled) {
        this.#logger.warn('pulsar: the entries left are not delivered to readers (markers); the read ends here', {
          topic: target,
          waitedMs: Date.now() - waitingSince,
        });
        return undefined;
      }
    }
  }

  #verdict(message: PulsarMessage, id: MessageIdParts): Verdict {
    const w = this.#plan.window;
    if (w.type === 'TIME') {
      const t = message.getPublishTimestamp();
      return t >= w.stop ? 'after' : t < w.start ? 'before' : 'inside';
    }
    return compareMessageIds(id, w.stop) >= 0 ? 'after' : compareMessageIds(id, w.start) < 0 ? 'before' : 'inside';
  }

  #toRow(message: PulsarMessage, id: MessageIdParts): Row | undefined {
    const data = message.getData();
    let row: Record<string, unknown>;
    if (this.#plan.format === 'raw') {
      row = { value: data.toString('utf8') };
    } else {
      let value: unknown;
      try {
        // Numbers a double cannot hold keep their text (the SDK's parseJsonExact).
        value = parseJsonExact(data);
      } catch (err) {
        if (this.#plan.ignoreParseErrors) {
          this.#skipped++;
          this.#logger.warn('pulsar: skipped a message that is not JSON', {
            messageId: formatMessageId(id),
            error: (err as Error).message,
          });
          return undefined;
        }
        throw new SluiceError(
          ERROR_CODES.FAILED_PRECONDITION,
          `pulsar: message ${formatMessageId(id)} of ${this.#plan.topic.full} is not JSON (${(err as Error).message}); set ignoreParseErrors to skip such messages`,
        );
      }
      row =
        typeof value === 'object' && value !== null && !Array.isArray(value) && !isRawJson(value)
          ? (value as Record<string, unknown>)
          : { value };
    }
    if (this.#plan.metadata) {
      const eventTime = message.getEventTimestamp();
      row._pulsar = {
        messageId: formatMessageId(id),
        publishTime: message.getPublishTimestamp(),
        eventTime: eventTime > 0 ? eventTime : null,
        key: message.getPartitionKey() || null,
        // pulsar-client builds the properties as an Array with string keys, which JSON would drop.
        properties: { ...Object.fromEntries(Object.entries(message.getProperties() ?? {})) },
      };
    }
    return row;
  }

  async *#readPartition(target: string): AsyncIterable<readonly Row[]> {
    const reader = await this.#openPartition(target);
    this.#current = reader;
    const single = this.#targets.length === 1;
    // Ids name the partition as an OFFSET bound does: -1 for the topic itself (even one named
    // `x-partition-N`, whose messages carry N), N for the N-th partition of a partitioned topic.
    const partition = target === this.#plan.topic.full ? -1 : Number(/-partition-(\d+)$/.exec(target)?.[1] ?? -1);
    try {
      let batch: Row[] = [];
      for (;;) {
        const message = await this.#next(reader, target);
        if (!message) break;
        const id = { ...decodeMessageIdData(message.getMessageId().serialize()), partition };
        const verdict = this.#verdict(message, id);
        if (verdict === 'after') {
          if (single) this.#stoppedAt = id;
          break;
        }
        if (single) this.#lastSeen = id;
        this.#positions[target] = formatMessageId(id);
        if (verdict === 'before') continue;
        if (single) this.#first ??= id;
        const row = this.#toRow(message, id);
        if (row) batch.push(row);
        if (batch.length >= this.#plan.batchSize) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
    } finally {
      this.#current = undefined;
      await reader.close().catch(() => {});
    }
    if (this.#skipped > 0)
      this.#logger.warn('pulsar: messages skipped as not JSON', { topic: target, skipped: this.#skipped });
  }

  positions(): Readonly<Record<string, string>> {
    return { ...this.#positions };
  }

  /**
   * Once the read has ended, on a single partition (a non-partitioned topic, or an OFFSET window):
   * the window as message ids, `{start, stop}`, for an OFFSET re-run that reads the same messages.
   * stop is the first message past the window, or the position right after the last message when
   * the topic ended. Empty before the end, for partitioned TIME reads, and when nothing was seen.
   */
  resolved(): Readonly<Record<string, string>> {
    if (!this.#done || this.#targets.length !== 1) return {};
    const stop = this.#stoppedAt ?? (this.#lastSeen ? positionAfter(this.#lastSeen) : undefined);
    if (!stop) return {};
    return { start: formatMessageId(this.#first ?? stop), stop: formatMessageId(stop) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#current?.close().catch(() => {});
    await this.#client.close().catch((err: unknown) =>
      this.#logger.warn('pulsar: closing the client failed', {
        error: err instanceof Error ? err.message : String(err),
      }),
    );
  }
}
