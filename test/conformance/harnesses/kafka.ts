import { Kafka, logLevel, type IHeaders } from 'kafkajs';
import type { Boundaries, BoundaryType, Options, Row, WindowRef } from 'sluice/sdk';
import { uniqueName } from '../../helpers/databases.js';
import { type KafkaMock, probeKafkaMock, startKafkaMock } from '../../helpers/kafka-mock.js';
import type { ConformanceHarness, ConformanceRecord, SeededSource } from '../harness.js';

/**
 * The kafka connector against librdkafka's mock cluster (test/helpers/kafka-mock.ts). Every seeded
 * source and every sink destination gets a cluster of its own with one fresh topic: the mock cannot
 * create topics through the admin API, and starting one takes milliseconds.
 *
 * Records are spread round-robin over PARTITIONS partitions, in the order given, each with message
 * timestamp = record.ts and value {id, ts, name}.
 */

const PARTITIONS = 3;
const clusters: KafkaMock[] = [];

async function freshTopic(partitions: number): Promise<{ brokers: string[]; topic: string }> {
  const topic = uniqueName('conformance');
  const mock = await startKafkaMock({ [topic]: partitions });
  clusters.push(mock);
  return { brokers: mock.brokers, topic };
}

const client = (brokers: string[]) => new Kafka({ brokers, clientId: 'sluice-conformance', logLevel: logLevel.ERROR });

async function seed(records: readonly ConformanceRecord[]): Promise<SeededSource> {
  const { brokers, topic } = await freshTopic(PARTITIONS);
  /** Where each record landed, in the order given. */
  const placed: { partition: number; offset: bigint; ts: number }[] = [];
  const next = Array.from({ length: PARTITIONS }, () => 0n);
  const producer = client(brokers).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    // One send per record: each partition's offsets then follow the order given exactly.
    for (const [i, r] of records.entries()) {
      const partition = i % PARTITIONS;
      await producer.send({
        topic,
        acks: -1,
        messages: [
          {
            partition,
            key: String(r.id),
            value: JSON.stringify({ id: r.id, ts: r.ts, name: r.name }),
            timestamp: String(r.ts),
          },
        ],
      });
      placed.push({ partition, offset: next[partition]!, ts: r.ts });
      next[partition]! += 1n;
    }
  } finally {
    await producer.disconnect();
  }

  return {
    options: { brokers, topic, format: 'json' },
    async boundaries(type: BoundaryType, fromTs: number, toTs: number): Promise<Boundaries> {
      if (type !== 'OFFSET') throw new Error(`kafka harness: ${type} windows are not expressed over the mock`);
      // Positions in the order given: a = the first record at or after fromTs, b = the first at or after
      // toTs (never before a). Per partition, the window is [first offset at index >= a, first at >= b).
      const firstAtOrAfter = (ts: number) => {
        const i = placed.findIndex((p) => p.ts >= ts);
        return i < 0 ? placed.length : i;
      };
      const a = firstAtOrAfter(fromTs);
      const b = Math.max(a, firstAtOrAfter(toTs));
      const offsetAt = (index: number, partition: number) =>
        placed.slice(index).find((p) => p.partition === partition)?.offset ?? next[partition]!;
      const list = (index: number) =>
        Array.from({ length: PARTITIONS }, (_, p) => `${p}:${offsetAt(index, p)}`).join(',');
      return { boundaryType: 'OFFSET', lowerBound: list(a), upperBound: list(b) };
    },
  };
}

interface Message {
  partition: number;
  offset: bigint;
  headers: IHeaders;
  value: string | null;
}

const header = (headers: IHeaders | undefined, name: string) => {
  const v = headers?.[name];
  const one = Array.isArray(v) ? v[v.length - 1] : v;
  return one === undefined ? undefined : String(one);
};

/**
 * Every message of the topic up to its current end, read with a consumer of a fresh group (about 3 s
 * on the mock: its group join delay).
 */
async function readTopic(brokers: string[], topic: string): Promise<Message[]> {
  const kafka = client(brokers);
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((m) => [m.partition, BigInt(m.high)]));
  await admin.disconnect();
  const waiting = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
  const out: Message[] = [];
  if (waiting.size === 0) return out;
  const consumer = kafka.consumer({ groupId: uniqueName('conformance-readback'), allowAutoTopicCreation: false });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `reading back ${topic}: partitions ${[...waiting].join(', ')} did not reach their end within 30 s`,
            ),
          ),
        30_000,
      );
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        clearTimeout(timer);
        reject(payload.error);
      });
      void consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const end = ends.get(batch.partition) ?? 0n;
            for (const m of batch.messages) {
              if (BigInt(m.offset) < end)
                out.push({
                  partition: batch.partition,
                  offset: BigInt(m.offset),
                  headers: m.headers ?? {},
                  value: m.value?.toString('utf8') ?? null,
                });
            }
            if (BigInt(batch.lastOffset()) + 1n >= end) waiting.delete(batch.partition);
            if (waiting.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

const harness: ConformanceHarness = {
  connectorId: 'kafka',
  available: probeKafkaMock,
  sampleSourceOptions: { brokers: ['127.0.0.1:9092'], topic: 'conformance-sample', format: 'json' },
  sampleBoundaries: { OFFSET: { boundaryType: 'OFFSET', lowerBound: '0:0,1:5', upperBound: '0:10,1:20' } },
  unsupportedWindows: {
    TIME:
      "librdkafka's mock broker answers ListOffsets by timestamp with -1, so a TIME window cannot resolve to offsets " +
      'on it, and no real broker runs here; test/connectors/kafka.test.ts checks the resolution against a recording fake admin',
  },
  source: {
    seed,
    idOf: (row: Row) => Number(row.id),
  },
  sink: {
    async options(): Promise<Options> {
      const { brokers, topic } = await freshTopic(2);
      return { brokers, topic, keyField: 'id' };
    },
    /**
     * The window's committed output, as a consumer following docs/connectors/kafka.md reads it: among
     * the messages whose window headers match the window, the last commit marker (header sluice-commit;
     * all markers of a window share one key, hence one partition, in order) names the job whose data
     * messages are the output. No marker: nothing committed (an aborted job's messages are in the topic,
     * since the sink is at-least-once, but are not output). Sorted by id: Kafka has no order across
     * partitions.
     */
    async readBack(options: Options, window: WindowRef): Promise<readonly ConformanceRecord[]> {
      const b = window.boundaries;
      const ofWindow = (await readTopic(options.brokers as string[], options.topic as string)).filter(
        (m) =>
          header(m.headers, 'sluice-window-type') === b.boundaryType &&
          header(m.headers, 'sluice-window-lower') === b.lowerBound &&
          header(m.headers, 'sluice-window-upper') === b.upperBound &&
          header(m.headers, 'sluice-group-id') === window.groupId &&
          header(m.headers, 'sluice-stream-id') === window.streamId,
      );
      const markers = ofWindow
        .filter((m) => header(m.headers, 'sluice-commit') !== undefined)
        .sort((x, y) => (x.offset < y.offset ? -1 : x.offset > y.offset ? 1 : 0));
      const last = markers[markers.length - 1];
      if (!last) return [];
      const jobId = header(last.headers, 'sluice-job-id');
      const data = ofWindow.filter(
        (m) => header(m.headers, 'sluice-commit') === undefined && header(m.headers, 'sluice-job-id') === jobId,
      );
      const expected = Number(header(last.headers, 'sluice-commit'));
      if (data.length !== expected)
        throw new Error(
          `readBack: the commit marker of job ${jobId} counts ${expected} messages, the topic holds ${data.length}`,
        );
      return data
        .map((m) => {
          const v = JSON.parse(m.value ?? 'null') as { id: number; ts: number; name: string };
          return { id: v.id, ts: v.ts, name: v.name };
        })
        .sort((x, y) => x.id - y.id);
    },
  },
  async cleanup() {
    await Promise.all(clusters.splice(0).map((c) => c.stop()));
  },
};

export default harness;
