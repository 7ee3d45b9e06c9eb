import {
  defineConnectorPlugin,
  fieldError,
  invalidArgument,
  type Boundaries,
  type Options,
  type Row,
} from 'sluice/sdk';

/**
 * Rows are a pure function of their id, so any window can be read again and yields the same rows:
 * row `id` has event time `id * intervalMs`, and a value derived from `seed` and `id`.
 */
function row(id: number, intervalMs: number, seed: number, padding: string): Row {
  // 32-bit mix so values look random but are reproducible across runs and machines.
  let x = (id ^ seed) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0;
  return {
    id,
    ts: id * intervalMs,
    value: ((x ^ (x >>> 16)) >>> 0) % 1_000_000,
    ...(padding ? { payload: padding } : {}),
  };
}

const ceilDiv = (a: number, b: number) => Math.floor((a + b - 1) / b);

function idRange(b: Boundaries, intervalMs: number): { start: number; stop: number } {
  const parse = (field: string, raw: string) => {
    if (!/^(0|[1-9]\d*)$/.test(raw) || !Number.isSafeInteger(Number(raw)))
      throw invalidArgument(field, 'a non-negative integer', raw);
    return Number(raw);
  };
  const lower = parse('boundaries.lower_bound', b.lowerBound);
  const upper = parse('boundaries.upper_bound', b.upperBound);
  if (lower > upper)
    throw invalidArgument('boundaries.upper_bound', `a bound >= the lower bound ${lower}`, b.upperBound);
  // TIME: ids whose event time falls in [lower, upper). OFFSET: ids in [lower, upper).
  return b.boundaryType === 'TIME'
    ? { start: ceilDiv(lower, intervalMs), stop: ceilDiv(upper, intervalMs) }
    : { start: lower, stop: upper };
}

export default defineConnectorPlugin({
  roles: ['source'],
  boundaryTypes: ['TIME', 'OFFSET'],
  sourceOptions: {
    type: 'object',
    properties: {
      intervalMs: {
        type: 'integer',
        minimum: 1,
        default: 1000,
        description: 'Event-time distance between two rows, in milliseconds.',
      },
      seed: {
        type: 'integer',
        minimum: 0,
        default: 0,
        description: 'Seed of the value column; the same seed gives the same rows.',
      },
      payloadBytes: {
        type: 'integer',
        minimum: 0,
        maximum: 1_048_576,
        default: 0,
        description: 'Size of an extra `payload` string column, for load tests.',
      },
      batchSize: {
        type: 'integer',
        minimum: 1,
        maximum: 100_000,
        default: 1000,
        description: 'Rows per batch handed to the sink.',
      },
    },
  },

  validate({ options }) {
    const interval = options.intervalMs as number;
    return interval > 86_400_000 ? [fieldError('options.intervalMs', 'at most 86400000 (one day)', interval)] : [];
  },

  fillInBoundaries({ options, boundaries }): Options {
    const { start, stop } = idRange(boundaries, options.intervalMs as number);
    return { ...options, 'datagen.start-id': start, 'datagen.stop-id': stop };
  },

  async openReader({ options }) {
    const start = options['datagen.start-id'] as number;
    const stop = options['datagen.stop-id'] as number;
    const intervalMs = options.intervalMs as number;
    const seed = options.seed as number;
    const batchSize = options.batchSize as number;
    const padding = 'x'.repeat(options.payloadBytes as number);
    let next = start;
    return {
      async *batches() {
        while (next < stop) {
          const end = Math.min(stop, next + batchSize);
          const batch: Row[] = [];
          for (let id = next; id < end; id++) batch.push(row(id, intervalMs, seed, padding));
          next = end;
          yield batch;
        }
      },
      positions: () => ({ id: String(next) }),
      async close() {},
    };
  },

  flinkTableOptions({ options }) {
    const start = options['datagen.start-id'] as number;
    const stop = options['datagen.stop-id'] as number;
    return {
      connector: 'datagen',
      'number-of-rows': String(stop - start),
      'fields.id.kind': 'sequence',
      'fields.id.start': String(start),
      'fields.id.end': String(Math.max(start, stop - 1)),
    };
  },
});
