import { invalidArgument, type Boundaries, type Options } from 'sluice/sdk';

/**
 * Offsets and windows of the Kafka connector: the `partition:offset` syntax of OFFSET bounds, Flink's
 * `partition:0,offset:42;...` syntax, the bounded options fillInBoundaries writes, and the resolution
 * of a window to per-partition [start, stop) offsets against the broker (resolveWindow).
 */

/** Partition → offset. Offsets are bigint: Kafka offsets are 64-bit. */
export type OffsetMap = ReadonlyMap<number, bigint>;

const PAIR = /^\s*(0|[1-9]\d{0,9})\s*:\s*(0|[1-9]\d{0,18})\s*$/;
const MAX_OFFSET = (1n << 63n) - 1n;
const MAX_PARTITION = 2 ** 31 - 1;

export const OFFSET_LIST_EXPECTED =
  'a list of partition:offset pairs with non-negative integers, each partition once, e.g. "0:10,1:12"';

/** Parses `"0:10,1:12"`; throws INVALID_ARGUMENT naming `field` when it does not parse. */
export function parseOffsetList(field: string, raw: unknown): Map<number, bigint> {
  if (typeof raw !== 'string' || raw.trim() === '') throw invalidArgument(field, OFFSET_LIST_EXPECTED, raw);
  const out = new Map<number, bigint>();
  for (const part of raw.split(',')) {
    const m = PAIR.exec(part);
    if (!m) throw invalidArgument(field, OFFSET_LIST_EXPECTED, raw);
    const partition = Number(m[1]);
    const offset = BigInt(m[2]!);
    if (partition > MAX_PARTITION || offset > MAX_OFFSET || out.has(partition))
      throw invalidArgument(field, OFFSET_LIST_EXPECTED, raw);
    out.set(partition, offset);
  }
  return out;
}

/** `"0:10,1:12"`, partitions in ascending order. */
export function formatOffsetList(offsets: OffsetMap): string {
  return [...offsets.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([p, o]) => `${p}:${o}`)
    .join(',');
}

/** Flink's `scan.*.specific-offsets` syntax: `partition:0,offset:10;partition:1,offset:12`. */
export function formatFlinkOffsets(offsets: OffsetMap): string {
  return [...offsets.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([p, o]) => `partition:${p},offset:${o}`)
    .join(';');
}

const FLINK_PAIR = /^partition:(\d+),offset:(\d+)$/;

/** Parses Flink's syntax back (the bounded options store offsets in it). */
export function parseFlinkOffsets(field: string, raw: unknown): Map<number, bigint> {
  const out = new Map<number, bigint>();
  if (typeof raw !== 'string') throw invalidArgument(field, 'offsets as partition:P,offset:O;...', raw);
  if (raw === '') return out;
  for (const part of raw.split(';')) {
    const m = FLINK_PAIR.exec(part);
    if (!m) throw invalidArgument(field, 'offsets as partition:P,offset:O;...', raw);
    out.set(Number(m[1]), BigInt(m[2]!));
  }
  return out;
}

const EPOCH_MS = /^(0|[1-9]\d*)$/;

function parseTimeBound(field: string, raw: string): number {
  const n = Number(raw);
  if (!EPOCH_MS.test(raw) || !Number.isSafeInteger(n))
    throw invalidArgument(field, 'epoch milliseconds as a non-negative integer', raw);
  return n;
}

/** Keys of the bounded options (Flink's names, so flinkTableOptions passes them through). */
export const K = {
  boundaryType: 'scan.boundary-type',
  startupMode: 'scan.startup.mode',
  startupTimestamp: 'scan.startup.timestamp-millis',
  startupOffsets: 'scan.startup.specific-offsets',
  boundedMode: 'scan.bounded.mode',
  boundedTimestamp: 'scan.bounded.timestamp-millis',
  boundedOffsets: 'scan.bounded.specific-offsets',
} as const;

/**
 * fillInBoundaries: pure. TIME: the two timestamps (and `startOffsets`, when given, as explicit start
 * offsets). OFFSET: the two offset lists, checked (lower <= upper for every partition in both).
 */
export function boundedOptions(options: Options, b: Boundaries): Record<string, unknown> {
  const out: Record<string, unknown> = { ...options, [K.boundaryType]: b.boundaryType };
  if (b.boundaryType === 'TIME') {
    const lower = parseTimeBound('boundaries.lower_bound', b.lowerBound);
    const upper = parseTimeBound('boundaries.upper_bound', b.upperBound);
    if (lower > upper)
      throw invalidArgument('boundaries.upper_bound', `a bound >= the lower bound ${lower}`, b.upperBound);
    out[K.startupTimestamp] = String(lower);
    out[K.boundedMode] = 'timestamp';
    out[K.boundedTimestamp] = String(upper);
    if (options.startOffsets !== undefined) {
      out[K.startupMode] = 'specific-offsets';
      out[K.startupOffsets] = formatFlinkOffsets(parseOffsetList('options.startOffsets', options.startOffsets));
    } else {
      out[K.startupMode] = 'timestamp';
    }
    return out;
  }
  if (b.boundaryType === 'OFFSET') {
    const lower = parseOffsetList('boundaries.lower_bound', b.lowerBound);
    const upper = parseOffsetList('boundaries.upper_bound', b.upperBound);
    for (const [p, start] of lower) {
      const stop = upper.get(p);
      if (stop !== undefined && stop < start) {
        throw invalidArgument(
          'boundaries.upper_bound',
          `an offset >= the lower bound's ${p}:${start} for partition ${p}`,
          b.upperBound,
        );
      }
    }
    out[K.startupMode] = 'specific-offsets';
    out[K.startupOffsets] = formatFlinkOffsets(lower);
    out[K.boundedMode] = 'specific-offsets';
    out[K.boundedOffsets] = formatFlinkOffsets(upper);
    return out;
  }
  throw invalidArgument('boundaries.boundary_type', 'TIME or OFFSET', b.boundaryType);
}

/** What a window asks for, read back from the bounded options. */
export interface WindowSpec {
  readonly type: 'TIME' | 'OFFSET';
  /** TIME: epoch ms of the bounds. */
  readonly lowerMs?: number;
  readonly upperMs?: number;
  /** OFFSET: the lower bound; TIME: explicit start offsets (`startOffsets`), if any. */
  readonly startOffsets?: OffsetMap;
  /** OFFSET: the upper bound. */
  readonly stopOffsets?: OffsetMap;
}

/** Reads the window back from options fillInBoundaries returned. */
export function windowSpec(options: Options): WindowSpec {
  const type = options[K.boundaryType];
  if (type === 'TIME') {
    const lowerMs = parseTimeBound(K.startupTimestamp, String(options[K.startupTimestamp]));
    const upperMs = parseTimeBound(K.boundedTimestamp, String(options[K.boundedTimestamp]));
    const startOffsets =
      options[K.startupMode] === 'specific-offsets'
        ? parseFlinkOffsets(K.startupOffsets, options[K.startupOffsets])
        : undefined;
    return { type, lowerMs, upperMs, ...(startOffsets ? { startOffsets } : {}) };
  }
  if (type === 'OFFSET') {
    return {
      type,
      startOffsets: parseFlinkOffsets(K.startupOffsets, options[K.startupOffsets]),
      stopOffsets: parseFlinkOffsets(K.boundedOffsets, options[K.boundedOffsets]),
    };
  }
  throw invalidArgument(`options.${K.boundaryType}`, 'TIME or OFFSET (options returned by fillInBoundaries)', type);
}

/** The part of a kafkajs admin client the resolution needs (a fake one in unit tests). */
export interface OffsetAdmin {
  /** Per partition: `low` (log start), `high` (end; the last stable offset under read_committed). */
  fetchTopicOffsets(topic: string): Promise<Array<{ partition: number; offset: string; high: string; low: string }>>;
  /** Per partition: the first offset whose timestamp is >= `timestamp`, or -1 when there is none. */
  fetchTopicOffsetsByTimestamp(
    topic: string,
    timestamp?: number,
  ): Promise<Array<{ partition: number; offset: string }>>;
}

export interface PartitionRange {
  readonly partition: number;
  /** First offset of the window (inclusive). */
  readonly start: bigint;
  /** End of the window (exclusive); start == stop: nothing to read. */
  readonly stop: bigint;
  readonly low: bigint;
  readonly high: bigint;
}

export interface ResolvedWindow {
  readonly partitions: readonly PartitionRange[];
  /** Partitions whose start was raised to the log start: their first records are gone (retention). */
  readonly truncated: readonly number[];
}

const max = (a: bigint, b: bigint) => (a > b ? a : b);
const min = (a: bigint, b: bigint) => (a < b ? a : b);

/**
 * Resolves a window to per-partition [start, stop) offsets. Needs the broker (the admin).
 *
 * TIME (Flink's `scan.bounded.mode=timestamp` rule): start is the first offset whose timestamp is >= the
 * lower bound, stop the first offset whose timestamp is >= the upper bound; an answer of -1 (no such
 * message) is the partition's high watermark. Explicit `startOffsets` replace the lower lookup for the
 * partitions they name (the lookup is skipped when they name every partition).
 * OFFSET: the lower and upper lists; a partition absent from the lower list starts at its log start, one
 * absent from the upper list stops at its high watermark.
 * Both: start is raised to the log start, stop capped at the high watermark (records that do not exist
 * yet are not waited for), and stop is never below start.
 */
export async function resolveWindow(admin: OffsetAdmin, topic: string, spec: WindowSpec): Promise<ResolvedWindow> {
  const marks = await admin.fetchTopicOffsets(topic);
  if (marks.length === 0) throw invalidArgument('options.topic', 'a topic with partitions', topic);
  const known = new Set(marks.map((m) => m.partition));
  const checkPartitions = (field: string, offsets: OffsetMap | undefined) => {
    for (const p of offsets?.keys() ?? []) {
      if (!known.has(p))
        throw invalidArgument(
          field,
          `partitions of topic '${topic}' (${[...known].sort((a, b) => a - b).join(', ')})`,
          `partition ${p}`,
        );
    }
  };

  let startOf: (p: number, low: bigint, high: bigint) => bigint;
  let stopOf: (p: number, high: bigint) => bigint;
  if (spec.type === 'TIME') {
    checkPartitions('options.startOffsets', spec.startOffsets);
    const lookup = async (ts: number) => {
      const answer = await admin.fetchTopicOffsetsByTimestamp(topic, ts);
      return new Map(answer.map((a) => [a.partition, BigInt(a.offset)]));
    };
    const needLower = !spec.startOffsets || marks.some((m) => !spec.startOffsets!.has(m.partition));
    const [lower, upper] = await Promise.all([
      needLower ? lookup(spec.lowerMs!) : Promise.resolve(new Map<number, bigint>()),
      lookup(spec.upperMs!),
    ]);
    // -1 (or no answer): no message at or after the timestamp, so everything up to the end is before it.
    const orHigh = (answer: bigint | undefined, high: bigint) => (answer === undefined || answer < 0n ? high : answer);
    startOf = (p, _low, high) => spec.startOffsets?.get(p) ?? orHigh(lower.get(p), high);
    stopOf = (p, high) => orHigh(upper.get(p), high);
  } else {
    checkPartitions('boundaries.lower_bound', spec.startOffsets);
    checkPartitions('boundaries.upper_bound', spec.stopOffsets);
    startOf = (p, low) => spec.startOffsets?.get(p) ?? low;
    stopOf = (p, high) => spec.stopOffsets?.get(p) ?? high;
  }

  const truncated: number[] = [];
  const partitions = marks
    .map((m) => {
      const low = BigInt(m.low);
      const high = BigInt(m.high);
      const wanted = startOf(m.partition, low, high);
      if (wanted < low) truncated.push(m.partition);
      const start = max(wanted, low);
      const stop = max(min(stopOf(m.partition, high), high), start);
      return { partition: m.partition, start, stop, low, high };
    })
    .sort((a, b) => a.partition - b.partition);
  return { partitions, truncated: truncated.sort((a, b) => a - b) };
}
