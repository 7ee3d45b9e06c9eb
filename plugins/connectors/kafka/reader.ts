import type { Admin, Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import {
  ERROR_CODES,
  SluiceError,
  isRawJson,
  parseJsonExact,
  type BoundedReader,
  type HookContext,
  type Options,
  type Row,
} from 'sluice/sdk';
import { type ConnectionConfig, connectionConfig, createKafka, guard, kafkaError } from './client.js';
import { formatOffsetList, resolveWindow, windowSpec, type PartitionRange } from './offsets.js';
import { COMMIT_HEADER } from './writer.js';

export type Format = 'json' | 'raw';

/**
 * Most bytes one fetch brings (kafkajs's default is 10 MiB): the whole response is decoded into message
 * objects at once and stays alive until its last batch is handed on, so it sets how much a read holds.
 * 1 MiB keeps that near the size of the batches in flight (the channel's four of batchSize rows).
 */
const FETCH_MAX_BYTES = 1024 * 1024;

/** How long no partition may move before the watchdog asks the watermarks again (ms). */
const WATCHDOG_IDLE_MS = 5000;

function text(value: Buffer | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : value.toString('utf8');
}

function headerMap(headers: IHeaders | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map((v) => text(v) ?? '') : (text(value) ?? '');
  }
  return out;
}

/**
 * One message as a row, or undefined for a message the format skips (a tombstone in `json`).
 * json: the value's fields (it must be a JSON object; numbers a double cannot hold keep their text, see the
 * SDK's parseJsonExact), plus `_topic`, `_partition`, `_offset` (string),
 * `_timestamp` (epoch ms) and `_key` (string or null) with metadataColumns; they win over value fields.
 * raw: `{key, value, topic, partition, offset, timestamp, headers}`; key, value (UTF-8) and header
 * values are strings (or null), offset a decimal string, timestamp epoch ms, partition a number.
 */
export function messageToRow(
  format: Format,
  metadataColumns: boolean,
  topic: string,
  partition: number,
  m: KafkaMessage,
): Row | undefined {
  const timestamp = Number(m.timestamp);
  if (format === 'raw') {
    return {
      key: text(m.key),
      value: text(m.value),
      topic,
      partition,
      offset: m.offset,
      timestamp,
      headers: headerMap(m.headers),
    };
  }
  const value = m.value;
  if (value === null || value === undefined) return undefined;
  let parsed: unknown;
  try {
    // The bytes themselves: parseJsonExact scans them for long numbers before it decodes them.
    parsed = parseJsonExact(value);
  } catch (err) {
    throw new SluiceError(
      ERROR_CODES.FAILED_PRECONDITION,
      `topic ${topic} partition ${partition} offset ${m.offset}: the value is not JSON (${(err as Error).message}); use format "raw" for non-JSON values`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || isRawJson(parsed)) {
    throw new SluiceError(
      ERROR_CODES.FAILED_PRECONDITION,
      `topic ${topic} partition ${partition} offset ${m.offset}: the value is JSON but not an object; format "json" needs one object per message (use "raw")`,
    );
  }
  if (!metadataColumns) return parsed as Row;
  return {
    ...(parsed as Row),
    _topic: topic,
    _partition: partition,
    _offset: m.offset,
    _timestamp: timestamp,
    _key: text(m.key),
  };
}

type Item =
  | { kind: 'rows'; rows: Row[]; positions: ReadonlyMap<number, bigint> }
  | { kind: 'end' }
  | { kind: 'error'; error: unknown };

/** A small queue from kafkajs's push (eachBatch) to the pull of batches(), with back-pressure. */
class Channel {
  readonly #items: Item[] = [];
  #pull?: (item: Item) => void;
  #space: (() => void)[] = [];
  #closed = false;
  constructor(readonly capacity: number) {}

  push(item: Item): void {
    if (this.#closed) return;
    if (item.kind !== 'rows') this.#closed = true;
    const pull = this.#pull;
    if (pull) {
      this.#pull = undefined;
      pull(item);
    } else {
      this.#items.push(item);
    }
  }

  next(): Promise<Item> {
    const item = this.#items.shift();
    if (item) {
      this.#wake();
      return Promise.resolve(item);
    }
    return new Promise((resolve) => {
      this.#pull = resolve;
      this.#wake();
    });
  }

  get full(): boolean {
    return this.#items.length >= this.capacity;
  }

  /** Resolves once there is room, or the channel is closed. */
  space(): Promise<void> {
    if (!this.full || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#space.push(resolve));
  }

  /** Closes the channel; a pull still waiting gets `last` (the reader was closed under it). */
  close(last: Item): void {
    this.#closed = true;
    const pull = this.#pull;
    this.#pull = undefined;
    pull?.(last);
    this.#wake(true);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #wake(all = false): void {
    if (!all && this.full) return;
    const waiting = this.#space;
    this.#space = [];
    for (const w of waiting) w();
  }
}

interface PartitionState {
  readonly range: PartitionRange;
  /** Next offset the consumer will deliver for this partition. */
  next: bigint;
  done: boolean;
}

/**
 * Opens a bounded reader: resolves the window to offsets with an admin client (this is where a broker
 * that cannot be reached fails the job with UNAVAILABLE), then reads with a consumer in a group of its
 * own (nothing committed), seeking every partition to its start offset and pausing it at its stop offset.
 * `newKafka` makes the kafkajs client (tests pass a fake to play batches a mock broker cannot send).
 */
export async function openKafkaReader(
  options: Options,
  ctx: HookContext,
  newKafka: (cfg: ConnectionConfig, logger: HookContext['logger']) => Pick<Kafka, 'admin' | 'consumer'> = createKafka,
): Promise<BoundedReader> {
  const cfg = connectionConfig(options);
  const spec = windowSpec(options);
  const format = (options.format as Format | undefined) ?? 'json';
  const metadataColumns = (options.metadataColumns as boolean | undefined) ?? false;
  const batchSize = (options.batchSize as number | undefined) ?? 500;
  const what = `reading topic '${cfg.topic}' from ${cfg.brokers.join(',')}`;
  const kafka = newKafka(cfg, ctx.logger);

  const admin: Admin = kafka.admin();
  const resolved = await guard(what, async () => {
    await admin.connect();
    return resolveWindow(admin, cfg.topic, spec);
  }).catch(async (err: unknown) => {
    await admin.disconnect().catch(() => {});
    throw err;
  });
  if (resolved.truncated.length > 0) {
    ctx.logger.warn(
      'kafka: the window starts before the log start of some partitions; their first records were deleted (retention)',
      { topic: cfg.topic, partitions: resolved.truncated },
    );
  }

  const states = new Map<number, PartitionState>(
    resolved.partitions.map((r) => [r.partition, { range: r, next: r.start, done: r.start >= r.stop }]),
  );
  // An empty window needs no consumer, nor the admin (kept otherwise for the watchdog).
  if ([...states.values()].every((s) => s.done)) await admin.disconnect().catch(() => {});
  /** Positions of the rows handed out so far, per partition. */
  const yielded = new Map<number, bigint>(resolved.partitions.map((r) => [r.partition, r.start]));
  const channel = new Channel(4);
  let consumer: Consumer | undefined;
  let lastProgress = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;

  const allDone = () => [...states.values()].every((s) => s.done);
  const snapshot = () =>
    new Map([...states.entries()].map(([p, s]) => [p, s.next < s.range.stop ? s.next : s.range.stop]));

  const markDone = (s: PartitionState) => {
    if (s.done) return;
    s.done = true;
    try {
      consumer?.pause([{ topic: cfg.topic, partitions: [s.range.partition] }]);
    } catch {
      // Pausing before the group is joined is redone at join (below).
    }
    if (allDone()) channel.push({ kind: 'end' });
  };

  /** Moves a partition past `lastOffset`; true when it has reached its stop offset or the high watermark. */
  const progress = (s: PartitionState, lastOffset: string, highWatermark: string): boolean => {
    const next = BigInt(lastOffset) + 1n;
    if (next > s.next) s.next = next;
    lastProgress = Date.now();
    return s.next >= s.range.stop || BigInt(highWatermark) <= s.next;
  };

  const eachBatch = async ({ batch, heartbeat, isStale }: EachBatchPayload) => {
    const s = states.get(batch.partition);
    if (!s || s.done || isStale() || channel.closed) return;
    const rows: Row[] = [];
    const messages = batch.messages;
    const count = messages.length;
    // Offsets rise within a partition's fetch: when its first and last message are inside the window,
    // every one is, and no message needs a BigInt of its own (about 0.1-0.25 s per million messages).
    const inside =
      count > 0 && BigInt(messages[0]!.offset) >= s.next && BigInt(messages[count - 1]!.offset) < s.range.stop;
    for (const m of messages) {
      if (!inside) {
        const offset = BigInt(m.offset);
        if (offset < s.next || offset >= s.range.stop) continue;
      }
      // Sluice's own commit markers (written by this connector's sink) are not data.
      if (m.headers?.[COMMIT_HEADER] !== undefined) continue;
      const row = messageToRow(format, metadataColumns, cfg.topic, batch.partition, m);
      if (row) rows.push(row);
    }
    const finished = progress(s, batch.lastOffset(), batch.highWatermark);
    const positions = snapshot();
    for (let i = 0; i < rows.length; i += batchSize) {
      // Positions move with the last chunk of a fetch: the middle of a fetch is no position.
      const last = i + batchSize >= rows.length;
      channel.push({ kind: 'rows', rows: rows.slice(i, i + batchSize), positions: last ? positions : new Map() });
      while (channel.full && !channel.closed) {
        await Promise.race([channel.space(), new Promise((r) => setTimeout(r, 3000))]);
        await heartbeat().catch(() => {});
      }
    }
    if (finished) markDone(s);
  };

  /**
   * A safety net for partitions the consumer stops delivering from before their stop offset (records
   * deleted by retention meanwhile, a high watermark that went down): when nothing moved for a while,
   * the watermarks are asked again and such partitions end.
   */
  const watchdog = async () => {
    if (Date.now() - lastProgress < WATCHDOG_IDLE_MS || allDone() || channel.closed) return;
    lastProgress = Date.now();
    try {
      const marks = await admin.fetchTopicOffsets(cfg.topic);
      for (const m of marks) {
        const s = states.get(m.partition);
        if (!s || s.done) continue;
        if (BigInt(m.high) <= s.next || BigInt(m.low) >= s.range.stop) {
          ctx.logger.warn(
            'kafka: a partition ended before its stop offset (its records were deleted, or its high watermark went down)',
            {
              topic: cfg.topic,
              partition: m.partition,
              next: String(s.next),
              stop: String(s.range.stop),
              low: m.low,
              high: m.high,
            },
          );
          markDone(s);
        }
      }
    } catch (err) {
      ctx.logger.debug('kafka: watermark check failed', { err });
    }
  };

  async function start(): Promise<void> {
    const c = kafka.consumer({
      groupId: `sluice-reader-${crypto.randomUUID()}`,
      allowAutoTopicCreation: false,
      readUncommitted: false,
      // A bounded read never waits for records that do not exist yet, and disconnect() waits for the
      // fetch in flight: kafkajs's default 5 s long poll added 5 s to every window.
      maxWaitTimeInMs: 250,
      maxBytes: FETCH_MAX_BYTES,
      maxBytesPerPartition: FETCH_MAX_BYTES,
      retry: { retries: cfg.retries, initialRetryTime: 300, maxRetryTime: 10_000, restartOnFailure: async () => false },
    });
    consumer = c;
    // At every (re)join: seek each partition to where this reader is, pause the finished ones (and any
    // partition created after the window was resolved). Nothing is committed, so without this a
    // rejoin would start again from the beginning.
    c.on(c.events.GROUP_JOIN, () => {
      const done: number[] = [];
      for (const s of states.values()) {
        if (s.done) done.push(s.range.partition);
        else c.seek({ topic: cfg.topic, partition: s.range.partition, offset: String(s.next) });
      }
      if (done.length > 0) c.pause([{ topic: cfg.topic, partitions: done }]);
    });
    // Batches of only control records (transaction markers) or aborted messages reach no eachBatch;
    // this event still reports how far they went, so a window ending on a marker ends.
    c.on(c.events.END_BATCH_PROCESS, ({ payload }) => {
      const s = states.get(payload.partition);
      if (payload.topic !== cfg.topic || payload.batchSize !== 0 || !s || s.done) return;
      if (progress(s, payload.lastOffset, payload.highWatermark)) markDone(s);
    });
    c.on(c.events.CRASH, ({ payload }) => channel.push({ kind: 'error', error: kafkaError(payload.error, what) }));
    await guard(what, async () => {
      await c.connect();
      await c.subscribe({ topics: [cfg.topic], fromBeginning: true });
      await c.run({
        autoCommit: false,
        eachBatch: (payload) => eachBatch(payload).catch((err: unknown) => channel.push({ kind: 'error', error: err })),
      });
    });
    lastProgress = Date.now();
    timer = setInterval(() => void watchdog(), 1000);
    timer.unref();
  }

  async function stop(): Promise<void> {
    channel.close({
      kind: 'error',
      error: new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `${what}: the reader was closed before the window was read`,
      ),
    });
    clearInterval(timer);
    const c = consumer;
    consumer = undefined;
    if (c) await c.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }

  let started = false;
  return {
    async *batches() {
      if (started)
        throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, 'batches() of a Kafka reader can be iterated once');
      started = true;
      if (allDone()) return;
      try {
        await start();
        for (;;) {
          const item = await channel.next();
          if (item.kind === 'error') throw item.error;
          if (item.kind === 'end') break;
          item.positions.forEach((v, k) => yielded.set(k, v));
          yield item.rows;
        }
        for (const [p, s] of states) yielded.set(p, s.range.stop);
      } finally {
        await stop();
      }
    },
    positions() {
      return Object.fromEntries(
        [...yielded.entries()].sort((a, b) => a[0] - b[0]).map(([p, o]) => [String(p), String(o)]),
      );
    },
    resolved() {
      return {
        start: formatOffsetList(new Map(resolved.partitions.map((r) => [r.partition, r.start]))),
        stop: formatOffsetList(new Map(resolved.partitions.map((r) => [r.partition, r.stop]))),
      };
    },
    close() {
      return (closing ??= stop());
    },
  };
}
