import anyTest, { type TestFn } from 'ava';
import { createRequire } from 'node:module';
import {
  type Boundaries,
  type BoundedReader,
  type ConnectorPlugin,
  type Options,
  type Row,
  applyDefaults,
} from 'sluice/sdk';
import { Catalog } from '../../services/catalog/domain/catalog.js';
import { checkSecretRef } from '../../services/core/option-secrets.js';
import { silentLogger } from '../../services/core/logger.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';
import type {
  PulsarApi,
  PulsarClientConfig,
  PulsarMessage,
  PulsarMessageId,
  PulsarReader,
  PulsarReaderConfig,
} from '../../plugins/connectors/pulsar/client.js';
import {
  type MessageIdParts,
  compareMessageIds,
  decodeMessageIdData,
  encodeMessageIdData,
  formatMessageId,
  parseMessageId,
} from '../../plugins/connectors/pulsar/message-id.js';
import { SOURCE_OPTIONS, boundedOptions, readPlan } from '../../plugins/connectors/pulsar/options.js';
import { openBoundedReader } from '../../plugins/connectors/pulsar/reader.js';

interface Ctx {
  loaded: LoadedPlugin<ConnectorPlugin>;
  runner: HookRunner;
  catalog: Catalog;
}

const test = anyTest as TestFn<Ctx>;

/** Whether pulsar-client (with its native binding) loads on this machine; here it does not. */
const CLIENT_LOADS = (() => {
  try {
    createRequire(import.meta.url)('pulsar-client');
    return true;
  } catch {
    return false;
  }
})();

test.before(async (t) => {
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  const loaded = plugins.connectors.get('pulsar');
  if (!loaded)
    throw new Error(
      `the pulsar connector did not load: ${JSON.stringify(plugins.problems.filter((p) => p.pluginId === 'pulsar'))}`,
    );
  const runner = new HookRunner({ timeoutMs: 10_000 });
  t.context = { loaded, runner, catalog: new Catalog(plugins, runner) };
});

const OPTIONS = { serviceUrl: 'pulsar://broker:6650', topic: 'orders' };
const time = (lower: string, upper: string): Boundaries => ({
  boundaryType: 'TIME',
  lowerBound: lower,
  upperBound: upper,
});
const offset = (lower: string, upper: string): Boundaries => ({
  boundaryType: 'OFFSET',
  lowerBound: lower,
  upperBound: upper,
});
const code = (err: unknown) => (err as { code?: string }).code;
const field = (err: unknown) => (err as { details?: { field?: string } }).details?.field;

// --- fillInBoundaries ---

test('TIME windows map to source.start.publish-time / source.stop.at-publish-time (epoch ms), as InLong does', async (t) => {
  const direct = await t.context.runner.call(t.context.loaded, 'fillInBoundaries', {
    options: OPTIONS,
    boundaries: time('1767225600000', '1767229200000'),
  });
  t.deepEqual(direct, {
    serviceUrl: 'pulsar://broker:6650',
    topic: 'orders',
    'source.start.publish-time': '1767225600000',
    'source.stop.at-publish-time': '1767229200000',
  });
  const resolved = await t.context.catalog.resolveBoundaries('pulsar', OPTIONS, time('0', '60000'));
  t.deepEqual(resolved.boundedOptions, {
    serviceUrl: 'pulsar://broker:6650',
    topic: 'orders',
    format: 'json',
    ignoreParseErrors: false,
    metadata: false,
    batchSize: 500,
    readTimeoutMs: 1000,
    stallTimeoutMs: 60000,
    operationTimeoutSeconds: 30,
    'source.start.publish-time': '0',
    'source.stop.at-publish-time': '60000',
  });
});

test('OFFSET windows map to source.start.message-id / source.stop.at-message-id, in canonical form', async (t) => {
  const call = (b: Boundaries) =>
    t.context.runner.call(t.context.loaded, 'fillInBoundaries', { options: OPTIONS, boundaries: b });
  t.deepEqual(await call(offset('12:2:-1', '12:40:-1')), {
    ...OPTIONS,
    'source.start.message-id': '12:2:-1',
    'source.stop.at-message-id': '12:40:-1',
  });
  t.deepEqual(await call(offset('7:0:3:2', '9:15:3')), {
    ...OPTIONS,
    'source.start.message-id': '7:0:3:2',
    'source.stop.at-message-id': '9:15:3',
  });
  t.deepEqual(
    await call(offset('7:0:3:-1', '7:0:3:-1')),
    { ...OPTIONS, 'source.start.message-id': '7:0:3', 'source.stop.at-message-id': '7:0:3' },
    'batch index -1 is the three-part form; an empty window is allowed',
  );
});

test('fillInBoundaries is pure: same input, same output, the input untouched', (t) => {
  const fill = t.context.loaded.plugin.fillInBoundaries!;
  const ctx = { signal: new AbortController().signal, logger: silentLogger, pluginId: 'pulsar', settings: {} };
  for (const boundaries of [time('100', '200'), offset('1:2:-1', '3:4:-1')]) {
    const options = { ...OPTIONS, format: 'raw', nested: undefined };
    const before = structuredClone(options);
    const b = { ...boundaries };
    const first = fill({ options, boundaries: b }, ctx);
    const second = fill({ options, boundaries: b }, ctx);
    t.deepEqual(first, second);
    t.not(first, options, 'a new object');
    t.deepEqual(options, before, 'options untouched');
    t.deepEqual(b, boundaries, 'boundaries untouched');
  }
});

test('bad bounds are INVALID_ARGUMENT naming the bound', async (t) => {
  const cases: [Boundaries, string][] = [
    [time('abc', '10'), 'boundaries.lower_bound'],
    [time('-5', '10'), 'boundaries.lower_bound'],
    [time('1.5', '10'), 'boundaries.lower_bound'],
    [time('10', '99999999999999999999'), 'boundaries.upper_bound'],
    [time('20', '10'), 'boundaries.upper_bound'],
    [offset('12:2', '12:40:-1'), 'boundaries.lower_bound'],
    [offset('12:x:-1', '12:40:-1'), 'boundaries.lower_bound'],
    [offset('-1:2:-1', '12:40:-1'), 'boundaries.lower_bound'],
    [offset('012:2:-1', '12:40:-1'), 'boundaries.lower_bound'],
    [offset('12:2:-2', '12:40:-1'), 'boundaries.lower_bound'],
    [offset('12:2:-1:1:1', '12:40:-1'), 'boundaries.lower_bound'],
    [offset('earliest', '12:40:-1'), 'boundaries.lower_bound'],
    [offset('12:2:-1', '12:40'), 'boundaries.upper_bound'],
    [offset('12:2:-1', '99999999999999999999:0:-1'), 'boundaries.upper_bound'],
    [offset('12:2:0', '12:40:1'), 'boundaries.upper_bound'],
    [offset('12:40:-1', '12:2:-1'), 'boundaries.upper_bound'],
    [offset('12:2:-1:5', '12:2:-1:4'), 'boundaries.upper_bound'],
  ];
  for (const [boundaries, expected] of cases) {
    const err = await t.throwsAsync(
      t.context.runner.call(t.context.loaded, 'fillInBoundaries', { options: OPTIONS, boundaries }),
      undefined,
      JSON.stringify(boundaries),
    );
    t.is(code(err), 'INVALID_ARGUMENT', JSON.stringify(boundaries));
    t.is(field(err), expected, JSON.stringify(boundaries));
  }
  const err = await t.throwsAsync(
    t.context.runner.call(t.context.loaded, 'fillInBoundaries', {
      options: OPTIONS,
      boundaries: offset('12:2', '12:40:-1'),
    }),
  );
  t.regex(err!.message, /ledgerId:entryId:partition/, 'the message shows the expected format');
});

// --- options ---

test('options: URL, topic and cross-field checks are field errors; good options pass', async (t) => {
  const paths = async (options: Options) =>
    (await t.context.catalog.validateOptions('pulsar', 'source', options)).map((e) => e.path);
  t.deepEqual(await paths(OPTIONS), []);
  t.deepEqual(
    await paths({
      ...OPTIONS,
      topic: 'persistent://acme/sales/orders-partition-2',
      adminUrl: 'http://broker:8080',
      subscriptionName: 'nightly',
      format: 'raw',
      authTokenEnv: 'SLUICE_SECRET_PULSAR_TOKEN',
    }),
    [],
  );
  t.deepEqual(await paths({ ...OPTIONS, topic: 'acme/sales/orders' }), []);
  t.deepEqual(await paths({}), ['options.serviceUrl', 'options.topic']);
  t.deepEqual(await paths({ ...OPTIONS, serviceUrl: 'http://broker:6650' }), ['options.serviceUrl']);
  t.deepEqual(await paths({ ...OPTIONS, adminUrl: 'broker:8080' }), ['options.adminUrl']);
  t.deepEqual(await paths({ ...OPTIONS, topic: 'non-persistent://public/default/t' }), ['options.topic']);
  t.deepEqual(await paths({ ...OPTIONS, topic: 'public/default' }), ['options.topic']);
  t.deepEqual(await paths({ ...OPTIONS, topic: 'kafka://x/y/z' }), ['options.topic']);
  t.deepEqual(await paths({ ...OPTIONS, subscriptionName: 'has space' }), ['options.subscriptionName']);
  t.deepEqual(await paths({ ...OPTIONS, format: 'avro' }), ['options.format']);
  t.deepEqual(await paths({ ...OPTIONS, batchSize: 0 }), ['options.batchSize']);
  t.deepEqual(await paths({ ...OPTIONS, format: 'raw', ignoreParseErrors: true }), ['options.ignoreParseErrors']);
  t.deepEqual(await paths({ ...OPTIONS, readTimeoutMs: 5000, stallTimeoutMs: 1000 }), ['options.readTimeoutMs']);
  t.deepEqual(await paths({ ...OPTIONS, authTokenEnv: 'not-a-name' }), ['options.authTokenEnv']);
  // SLUICE_SECRET_ENV unset: only SLUICE_SECRET_ names, so no other variable of the service can be sent to a broker.
  for (const name of ['PULSAR_TOKEN', 'SLUICE_AUTH_TOKENS', 'SLUICE_SECRET_KEY', 'SLUICE_SECRET_ENV', 'HOME'])
    t.deepEqual(await paths({ ...OPTIONS, authTokenEnv: name }), ['options.authTokenEnv'], name);
  for (const [name, prop] of Object.entries(SOURCE_OPTIONS.properties!))
    t.true((prop.description ?? '').length > 20, `${name} is documented`);
});

// --- availability and openReader without pulsar-client ---

(CLIENT_LOADS ? test : test.skip)(
  `with pulsar-client loaded, availability says the reader can run${CLIENT_LOADS ? '' : ' (pulsar-client and its native libpulsar do not load here)'}`,
  async (t) => {
    const a = await t.context.runner.call(t.context.loaded, 'availability', undefined);
    t.deepEqual(a, { reader: { available: true } });
    t.deepEqual((await t.context.catalog.getConnector('pulsar')).reader, a.reader, 'GetConnector shows it');
  },
);

(CLIENT_LOADS ? test.skip : test)(
  `the plugin loads without pulsar-client; availability says the reader cannot run and what to install${CLIENT_LOADS ? ' (pulsar-client loads here)' : ''}`,
  async (t) => {
    const a = await t.context.runner.call(t.context.loaded, 'availability', undefined);
    t.false(a.reader!.available);
    t.regex(
      a.reader!.reason!,
      /^pulsar-client could not be loaded \(.+\): install the Apache Pulsar C\+\+ client library \(libpulsar/,
    );
    t.regex(a.reader!.reason!, /npm rebuild pulsar-client/);
    t.deepEqual(
      await t.context.runner.call(t.context.loaded, 'availability', undefined),
      a,
      'the outcome is cached and stable',
    );
    const info = await t.context.catalog.getConnector('pulsar');
    t.deepEqual(info.reader, a.reader, 'GetConnector shows it');
  },
);

(CLIENT_LOADS ? test.skip : test)(
  'openReader without pulsar-client is FAILED_PRECONDITION saying what to install (code kept through the hook runner)',
  async (t) => {
    const bounded = boundedOptions(applyDefaults(SOURCE_OPTIONS, OPTIONS), time('0', '1000'));
    const err = await t.throwsAsync(
      t.context.runner.call(t.context.loaded, 'openReader', { options: bounded, boundaries: time('0', '1000') }),
    );
    t.is(code(err), 'FAILED_PRECONDITION');
    t.regex(
      err!.message,
      /^plugin 'pulsar' openReader: the embedded Pulsar reader cannot run in this process: pulsar-client could not be loaded/,
    );
    t.regex(err!.message, /libpulsar/);
    t.regex(err!.message, /npm rebuild pulsar-client/);
    const details = (err as unknown as { details: { pluginId: string; hook: string } }).details;
    t.is(details.pluginId, 'pulsar');
    t.is(details.hook, 'openReader');
  },
);

test('openReader refuses options that carry no window, before touching pulsar-client', async (t) => {
  const err = await t.throwsAsync(
    t.context.runner.call(t.context.loaded, 'openReader', {
      options: applyDefaults(SOURCE_OPTIONS, OPTIONS),
      boundaries: time('0', '1'),
    }),
  );
  t.is(code(err), 'FAILED_PRECONDITION');
  t.regex(err!.message, /carry no window/);
});

// --- flinkTableOptions ---

test('flinkTableOptions refuses: the Flink Pulsar connector 4.1 cannot bound a table in a batch job', async (t) => {
  for (const b of [time('1767225600000', '1767229200000'), offset('12:2:-1', '12:40:-1')]) {
    const bounded = (await t.context.catalog.resolveBoundaries('pulsar', OPTIONS, b)).boundedOptions;
    const err = await t.throwsAsync(
      t.context.runner.call(t.context.loaded, 'flinkTableOptions', { role: 'source', options: bounded }),
    );
    t.is(code(err), 'FAILED_PRECONDITION');
    t.regex(err!.message, /unbounded source.*embedded runner/);
  }
});

// --- message ids ---

test('message ids: text form parsed and printed canonically, ordered by ledger, entry, batch index', (t) => {
  t.deepEqual(parseMessageId('12:2:-1'), { ledgerId: 12n, entryId: 2n, partition: -1, batchIndex: -1 });
  t.deepEqual(parseMessageId('12:2:3:4'), { ledgerId: 12n, entryId: 2n, partition: 3, batchIndex: 4 });
  t.deepEqual(parseMessageId('9223372036854775807:0:0'), {
    ledgerId: 9223372036854775807n,
    entryId: 0n,
    partition: 0,
    batchIndex: -1,
  });
  for (const bad of [
    '',
    '1:2',
    '1:2:3:4:5',
    ' 1:2:3',
    '1:2:-3',
    '1:-2:0',
    '9223372036854775808:0:0',
    '1:2:2147483648',
    '01:2:3',
  ])
    t.is(parseMessageId(bad), undefined, bad);
  t.is(formatMessageId(parseMessageId('12:2:-1:-1')!), '12:2:-1');
  const sorted = ['2:0:-1', '1:5:-1:1', '1:5:-1', '1:10:-1', '1:5:-1:0']
    .map((s) => parseMessageId(s)!)
    .sort(compareMessageIds)
    .map(formatMessageId);
  t.deepEqual(sorted, ['1:5:-1', '1:5:-1:0', '1:5:-1:1', '1:10:-1', '2:0:-1']);
});

test('message ids: the MessageIdData protobuf that MessageId.serialize/deserialize speak', (t) => {
  const id = (s: string) => parseMessageId(s)!;
  t.is(encodeMessageIdData(id('12:2:-1')).toString('hex'), '080c1002');
  t.is(encodeMessageIdData(id('300:0:3:7')).toString('hex'), '08ac0210001803' + '2007');
  t.is(
    encodeMessageIdData({ ledgerId: 5n, entryId: -1n, partition: -1, batchIndex: -1 }).toString('hex'),
    '08051' + '0ffffffffffffffffff01',
    'entry -1 (before the first entry) as uint64',
  );
  for (const s of ['12:2:-1', '300:0:3:7', '9223372036854775807:9223372036854775807:2147483647:2147483647', '0:0:0']) {
    t.deepEqual(decodeMessageIdData(encodeMessageIdData(id(s))), id(s), s);
  }
  // Fields the C++ client may write too: partition -1 spelled out (10-byte varint), ack_set, batch_size, a chunk's first id.
  const cpp = Buffer.from('080c1002' + '18ffffffffffffffffff01' + '2003' + '2801' + '300a' + '3a0408011002', 'hex');
  t.deepEqual(decodeMessageIdData(cpp), { ledgerId: 12n, entryId: 2n, partition: -1, batchIndex: 3 });
  t.throws(() => decodeMessageIdData(Buffer.from('080c10', 'hex')), { message: /malformed/ });
  t.throws(() => decodeMessageIdData(Buffer.from('1002', 'hex')), { message: /no ledgerId/ });
});

// --- the reader loop, against a stand-in for pulsar-client (not a real broker) ---

interface FakeMessage {
  readonly id: string;
  readonly publishTime: number;
  readonly data: string;
  readonly key?: string;
}

/** A stand-in for the pulsar-client module: topics are arrays of messages; a reader's start is exclusive, as Pulsar's. */
class FakePulsar {
  readonly clients: { config: PulsarClientConfig; closed: boolean }[] = [];
  readonly readers: { config: PulsarReaderConfig; start: string; closed: boolean; seekedTo?: number; reads: number }[] =
    [];
  constructor(
    readonly topics: Record<string, readonly FakeMessage[]>,
    /**
     * stall: the broker reports messages left but delivers none; disconnected: with it, the reader has
     * lost its broker; markers: entries after the last message that no reader receives (a transaction's
     * commit marker), so hasNext() stays true at the end; properties: each message's properties.
     */
    readonly behaviour: {
      stall?: boolean;
      down?: boolean;
      disconnected?: boolean;
      markers?: boolean;
      properties?: Record<string, string>;
      failRead?: string;
    } = {},
  ) {}

  api(): PulsarApi {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const fake = this;
    const messageId = (
      parts: MessageIdParts | 'earliest',
    ): PulsarMessageId & { parts: MessageIdParts | 'earliest' } => ({
      parts,
      serialize: () => (parts === 'earliest' ? Buffer.alloc(0) : encodeMessageIdData(parts)),
      toString: () => (parts === 'earliest' ? 'earliest' : formatMessageId(parts)),
    });
    class Client {
      readonly #state: { config: PulsarClientConfig; closed: boolean };
      constructor(config: PulsarClientConfig) {
        this.#state = { config, closed: false };
        fake.clients.push(this.#state);
      }
      async getPartitionsForTopic(topic: string): Promise<string[]> {
        if (fake.behaviour.down) throw new Error('Failed to get partitions: ConnectError');
        const parts = Object.keys(fake.topics)
          .filter((t) => t.startsWith(`${topic}-partition-`))
          .sort();
        if (parts.length > 0) return parts;
        if (topic in fake.topics) return [topic];
        throw new Error('TopicNotFound');
      }
      async createReader(config: PulsarReaderConfig): Promise<PulsarReader> {
        const messages = fake.topics[config.topic] ?? [];
        const start = (config.startMessageId as unknown as { parts: MessageIdParts | 'earliest' }).parts;
        const state = {
          config,
          start: start === 'earliest' ? 'earliest' : formatMessageId(start),
          closed: false,
          reads: 0,
          seekedTo: undefined as number | undefined,
        };
        fake.readers.push(state);
        let pos =
          start === 'earliest' ? 0 : messages.findIndex((m) => compareMessageIds(parseMessageId(m.id)!, start) > 0);
        if (pos < 0) pos = messages.length;
        return {
          // As pulsar-client: synchronous, and it throws (not rejects) on failure.
          hasNext: () => fake.behaviour.stall === true || fake.behaviour.markers === true || pos < messages.length,
          isConnected: () => fake.behaviour.disconnected !== true,
          readNext: (timeout?: number) => {
            state.reads++;
            if (fake.behaviour.failRead)
              return Promise.reject(new Error(`Failed to receive message: ${fake.behaviour.failRead}`));
            if (!fake.behaviour.stall && pos < messages.length) {
              const m = messages[pos++]!;
              const msg: PulsarMessage = {
                getData: () => Buffer.from(m.data),
                getMessageId: () => messageId(parseMessageId(m.id)!),
                getPublishTimestamp: () => m.publishTime,
                getEventTimestamp: () => 0,
                getPartitionKey: () => m.key ?? '',
                // As pulsar-client's Message.cc: an Array with string keys.
                getProperties: () =>
                  Object.assign([] as unknown as { [key: string]: string }, fake.behaviour.properties ?? {}),
              };
              return Promise.resolve(msg);
            }
            return new Promise((_, reject) =>
              setTimeout(() => reject(new Error('Failed to receive message: TimeOut')), timeout ?? 0),
            );
          },
          seekTimestamp: async (ts: number) => {
            state.seekedTo = ts;
            pos = messages.findIndex((m) => m.publishTime >= ts);
            if (pos < 0) pos = messages.length;
            // As pulsar-client: these resolve with null.
            return null;
          },
          close: async () => {
            state.closed = true;
            return null;
          },
        };
      }
      async close() {
        this.#state.closed = true;
        return null;
      }
    }
    return {
      Client,
      MessageId: {
        earliest: () => messageId('earliest'),
        deserialize: (data: Buffer) => messageId(decodeMessageIdData(data)),
      },
    };
  }
}

const TOPIC = 'persistent://public/default/orders';
/** Ten messages, one per second from t=1000, batched two per entry from entry 4 on. */
const MESSAGES: FakeMessage[] = Array.from({ length: 10 }, (_, i) => ({
  id: i < 4 ? `7:${i}:-1` : `7:${4 + Math.floor((i - 4) / 2)}:-1:${(i - 4) % 2}`,
  publishTime: 1000 * (i + 1),
  data: JSON.stringify({ n: i + 1 }),
}));

async function drain(reader: BoundedReader): Promise<{ rows: Row[]; batches: number }> {
  const rows: Row[] = [];
  let batches = 0;
  for await (const batch of reader.batches()) {
    rows.push(...batch);
    batches++;
  }
  return { rows, batches };
}

const plan = (b: Boundaries, extra: Options = {}) =>
  readPlan(boundedOptions(applyDefaults(SOURCE_OPTIONS, { ...OPTIONS, ...extra }), b));

test('reader (stand-in client): a TIME window reads [lower, upper) by publish time and stops at the first later message', async (t) => {
  const fake = new FakePulsar({ [TOPIC]: MESSAGES });
  const reader = await openBoundedReader(fake.api(), plan(time('3000', '7000'), { batchSize: 2 }), silentLogger);
  const { rows, batches } = await drain(reader);
  t.deepEqual(rows, [{ n: 3 }, { n: 4 }, { n: 5 }, { n: 6 }]);
  t.is(batches, 2, 'batches of batchSize');
  t.is(fake.readers[0]!.seekedTo, 3000, 'started by publish time');
  t.is(fake.readers[0]!.reads, 5, 'read one message past the window, no more');
  t.true(fake.readers[0]!.closed);
  t.deepEqual(
    reader.resolved!(),
    { start: '7:2:-1', stop: '7:5:-1:0' },
    'the window as message ids: stop is the first message past it',
  );
  t.deepEqual(reader.positions!(), { [TOPIC]: '7:4:-1:1' });
  await reader.close();
  t.true(fake.clients[0]!.closed);
  t.is(fake.clients[0]!.config.serviceUrl, 'pulsar://broker:6650');
  t.is(fake.readers[0]!.config.subscriptionRolePrefix, 'sluice-orders');
});

test('reader (stand-in client): a window past the newest message ends after one readNext timeout, then hasNext (which blocks, so it comes last)', async (t) => {
  const fake = new FakePulsar({ [TOPIC]: MESSAGES });
  const reader = await openBoundedReader(
    fake.api(),
    plan(time('9000', '999999'), { readTimeoutMs: 50, stallTimeoutMs: 60_000 }),
    silentLogger,
  );
  t.deepEqual((await drain(reader)).rows, [{ n: 9 }, { n: 10 }]);
  t.is(fake.readers[0]!.reads, 3, 'two messages, then one read that timed out before hasNext said the end');
  t.deepEqual(
    reader.resolved!(),
    { start: '7:6:-1:0', stop: '7:6:-1:2' },
    'stop: the position right after the last message',
  );
  const empty = await openBoundedReader(fake.api(), plan(time('50000', '60000')), silentLogger);
  t.deepEqual((await drain(empty)).rows, []);
  await Promise.all([reader.close(), empty.close()]);
});

test('reader (stand-in client): an OFFSET window starts just before its entry and keeps [lower, upper) to the batch index', async (t) => {
  const fake = new FakePulsar({ [TOPIC]: MESSAGES });
  const reader = await openBoundedReader(fake.api(), plan(offset('7:4:-1:1', '7:6:-1:1')), silentLogger);
  t.deepEqual((await drain(reader)).rows, [{ n: 6 }, { n: 7 }, { n: 8 }, { n: 9 }]);
  t.is(fake.readers[0]!.start, '7:3:-1', 'the reader starts (exclusively) at the entry before the lower bound');
  t.deepEqual(reader.resolved!(), { start: '7:4:-1:1', stop: '7:6:-1:1' });
  const whole = await openBoundedReader(fake.api(), plan(offset('7:0:-1', '7:2:-1')), silentLogger);
  t.deepEqual((await drain(whole)).rows, [{ n: 1 }, { n: 2 }]);
  t.is(fake.readers[1]!.start, '7:-1:-1', 'entry -1: before the first entry of the ledger');
  await Promise.all([reader.close(), whole.close()]);
});

test('reader (stand-in client): partitioned topics: TIME reads every partition, OFFSET the one its bound names', async (t) => {
  const p = (n: number, partition: number, ts: number): FakeMessage => ({
    id: `3:${n}:${partition}`,
    publishTime: ts,
    data: JSON.stringify({ partition, n }),
  });
  const fake = new FakePulsar({
    [`${TOPIC}-partition-0`]: [p(0, 0, 100), p(1, 0, 200), p(2, 0, 300)],
    [`${TOPIC}-partition-1`]: [p(0, 1, 150), p(1, 1, 250)],
  });
  const all = await openBoundedReader(fake.api(), plan(time('150', '300')), silentLogger);
  t.deepEqual((await drain(all)).rows, [
    { partition: 0, n: 1 },
    { partition: 1, n: 0 },
    { partition: 1, n: 1 },
  ]);
  t.deepEqual(all.resolved!(), {}, 'several partitions: no single OFFSET window to pin');
  const one = await openBoundedReader(fake.api(), plan(offset('3:1:0', '3:3:0')), silentLogger);
  t.deepEqual((await drain(one)).rows, [
    { partition: 0, n: 1 },
    { partition: 0, n: 2 },
  ]);
  t.is(fake.readers.at(-1)!.config.topic, `${TOPIC}-partition-0`);
  const err = await t.throwsAsync(openBoundedReader(fake.api(), plan(offset('3:1:-1', '3:3:-1')), silentLogger));
  t.is(code(err), 'FAILED_PRECONDITION');
  t.regex(err!.message, /is partitioned \(2 partitions\)/);
  t.true(fake.clients.at(-1)!.closed, 'the client is closed when the open fails');
  await Promise.all([all.close(), one.close()]);
});

test('reader (stand-in client): never hangs: a reader without a broker connection fails with UNAVAILABLE after stallTimeoutMs', async (t) => {
  const fake = new FakePulsar({ [TOPIC]: MESSAGES }, { stall: true, disconnected: true });
  const reader = await openBoundedReader(
    fake.api(),
    plan(time('0', '99999'), { readTimeoutMs: 20, stallTimeoutMs: 150 }),
    silentLogger,
  );
  const started = Date.now();
  const err = await t.throwsAsync(drain(reader));
  t.is(code(err), 'UNAVAILABLE');
  t.regex(err!.message, /no broker connection for 150 ms \(stallTimeoutMs\)/);
  t.true(Date.now() - started < 2000);
  t.true(fake.readers[0]!.closed, 'the partition reader is closed on failure');
  await reader.close();
});

test('reader (stand-in client): a broker that cannot be reached fails the open with UNAVAILABLE', async (t) => {
  const fake = new FakePulsar({}, { down: true });
  const err = await t.throwsAsync(openBoundedReader(fake.api(), plan(time('0', '1')), silentLogger));
  t.is(code(err), 'UNAVAILABLE');
  t.regex(
    err!.message,
    /cannot look up persistent:\/\/public\/default\/orders at pulsar:\/\/broker:6650: .*ConnectError/,
  );
  t.true(fake.clients[0]!.closed);
});

test('reader (stand-in client): payload formats, parse errors, metadata', async (t) => {
  const messages: FakeMessage[] = [
    { id: '1:0:-1', publishTime: 10, data: '{"a":1}', key: 'k1' },
    { id: '1:1:-1', publishTime: 11, data: 'not json' },
    { id: '1:2:-1', publishTime: 12, data: '[1,2]' },
  ];
  const fake = new FakePulsar({ [TOPIC]: messages });
  const strict = await openBoundedReader(fake.api(), plan(time('0', '100')), silentLogger);
  const err = await t.throwsAsync(drain(strict));
  t.is(code(err), 'FAILED_PRECONDITION');
  t.regex(err!.message, /message 1:1:-1 of persistent:\/\/public\/default\/orders is not JSON/);
  const lenient = await openBoundedReader(
    fake.api(),
    plan(time('0', '100'), { ignoreParseErrors: true, metadata: true }),
    silentLogger,
  );
  t.deepEqual((await drain(lenient)).rows, [
    { a: 1, _pulsar: { messageId: '1:0:-1', publishTime: 10, eventTime: null, key: 'k1', properties: {} } },
    { value: [1, 2], _pulsar: { messageId: '1:2:-1', publishTime: 12, eventTime: null, key: null, properties: {} } },
  ]);
  const raw = await openBoundedReader(fake.api(), plan(time('0', '100'), { format: 'raw' }), silentLogger);
  t.deepEqual((await drain(raw)).rows, [{ value: '{"a":1}' }, { value: 'not json' }, { value: '[1,2]' }]);
  await Promise.all([strict.close(), lenient.close(), raw.close()]);
});

test('reader (stand-in client): authTokenEnv must name a set variable; close is idempotent', async (t) => {
  const fake = new FakePulsar({ [TOPIC]: MESSAGES });
  const err = await t.throwsAsync(
    openBoundedReader(
      fake.api(),
      plan(time('0', '1'), { authTokenEnv: 'SLUICE_SECRET_SURELY_UNSET_TOKEN' }),
      silentLogger,
    ),
  );
  t.is(code(err), 'FAILED_PRECONDITION');
  t.regex(err!.message, /SLUICE_SECRET_SURELY_UNSET_TOKEN/);
  const reader = await openBoundedReader(fake.api(), plan(time('0', '99999')), silentLogger);
  await reader.close();
  await reader.close();
  t.deepEqual((await drain(reader)).rows, [], 'a closed reader yields nothing');
  t.true(fake.clients.at(-1)!.closed);
});

test.serial(
  'authTokenEnv follows SLUICE_SECRET_ENV, as env: secret references do: a listed variable is a usable token, a Sluice setting never',
  async (t) => {
    const saved = { list: process.env.SLUICE_SECRET_ENV, token: process.env.PULSAR_TOKEN };
    const restore = (name: string, value: string | undefined) =>
      value === undefined ? delete process.env[name] : (process.env[name] = value);
    t.teardown(() => {
      restore('SLUICE_SECRET_ENV', saved.list);
      restore('PULSAR_TOKEN', saved.token);
    });
    process.env.SLUICE_SECRET_ENV = 'SLUICE_SECRET_*,PULSAR_TOKEN';
    process.env.PULSAR_TOKEN = 'a-pulsar-jwt-of-the-test';
    const errors = (authTokenEnv: string) =>
      t.context.catalog.validateOptions('pulsar', 'source', { ...OPTIONS, authTokenEnv });
    t.deepEqual(await errors('PULSAR_TOKEN'), [], 'a variable SLUICE_SECRET_ENV lists');
    t.deepEqual(await errors('SLUICE_SECRET_PULSAR_TOKEN'), [], 'a variable of a prefix SLUICE_SECRET_ENV lists');
    t.is(checkSecretRef('env:PULSAR_TOKEN'), undefined, 'the same answer as for an env: secret reference');
    for (const name of ['OTHER_TOKEN', 'SLUICE_AUTH_TOKENS', 'SLUICE_SECRET_KEY', 'SLUICE_SECRET_ENV']) {
      const [error, ...more] = await errors(name);
      t.deepEqual(more, [], name);
      t.is(error?.path, 'options.authTokenEnv', name);
      t.is(
        error?.expected,
        'a variable SLUICE_SECRET_ENV allows (SLUICE_SECRET_*,PULSAR_TOKEN; never a Sluice setting)',
        name,
      );
      t.is(error?.received, JSON.stringify(name));
      t.truthy(checkSecretRef(`env:${name}`), `env:${name} is refused as well`);
    }

    const fake = new FakePulsar({ [TOPIC]: MESSAGES });
    const tokens: string[] = [];
    const api: PulsarApi = {
      ...fake.api(),
      AuthenticationToken: class {
        constructor(params: { token: string }) {
          tokens.push(params.token);
        }
      },
    };
    const options = { authTokenEnv: 'PULSAR_TOKEN' };
    const reader = await openBoundedReader(api, plan(time('0', '99999'), options), silentLogger);
    t.deepEqual(tokens, ['a-pulsar-jwt-of-the-test']);
    t.truthy(fake.clients.at(-1)!.config.authentication, 'the client authenticates with the token');
    t.is((await drain(reader)).rows.length, MESSAGES.length);
    await reader.close();

    // The list narrowed since the group was made: the reader refuses before it reads the variable.
    process.env.SLUICE_SECRET_ENV = 'SLUICE_SECRET_*';
    const err = await t.throwsAsync(openBoundedReader(api, plan(time('0', '99999'), options), silentLogger));
    t.is(code(err), 'FAILED_PRECONDITION');
    t.is(field(err), 'options.authTokenEnv');
    t.regex(err!.message, /PULSAR_TOKEN \(authTokenEnv\) is not allowed: expected a variable SLUICE_SECRET_ENV allows/);
    t.false(err!.message.includes('a-pulsar-jwt-of-the-test'), 'never the token');
    t.deepEqual(tokens, ['a-pulsar-jwt-of-the-test'], 'the variable was not read again');
  },
);

test('reader (stand-in client): marker entries at the end (transactions, replicated subscriptions): hasNext stays true, the read ends after stallTimeoutMs with what it read', async (t) => {
  const fake = new FakePulsar({ [TOPIC]: MESSAGES }, { markers: true });
  const reader = await openBoundedReader(
    fake.api(),
    plan(time('9000', '999999'), { readTimeoutMs: 20, stallTimeoutMs: 100 }),
    silentLogger,
  );
  t.deepEqual((await drain(reader)).rows, [{ n: 9 }, { n: 10 }]);
  t.deepEqual(reader.resolved!(), { start: '7:6:-1:0', stop: '7:6:-1:2' });
  await reader.close();
});

test('reader (stand-in client): properties come as an object, though pulsar-client builds an Array', async (t) => {
  const fake = new FakePulsar(
    { [TOPIC]: [{ id: '1:0:-1', publishTime: 10, data: '{"a":1}' }] },
    {
      properties: { origin: 'eu', 'trace-id': 'x1' },
    },
  );
  const reader = await openBoundedReader(
    fake.api(),
    plan(time('0', '100'), { metadata: true, readTimeoutMs: 20 }),
    silentLogger,
  );
  const [row] = (await drain(reader)).rows;
  const properties = (row!._pulsar as { properties: unknown }).properties;
  t.false(Array.isArray(properties));
  t.is(JSON.stringify(properties), '{"origin":"eu","trace-id":"x1"}');
  await reader.close();
});

test('reader (stand-in client): readNext failures are classified by the client result, not all taken as timeouts', async (t) => {
  for (const [result, expected] of [
    ['AuthorizationError', 'FAILED_PRECONDITION'],
    ['TopicNotFound', 'FAILED_PRECONDITION'],
    ['ConnectError', 'UNAVAILABLE'],
  ] as const) {
    const fake = new FakePulsar({ [TOPIC]: MESSAGES }, { failRead: result });
    const reader = await openBoundedReader(
      fake.api(),
      plan(time('0', '99999'), { stallTimeoutMs: 60_000 }),
      silentLogger,
    );
    const started = Date.now();
    const err = await t.throwsAsync(drain(reader));
    t.is(code(err), expected, result);
    t.regex(err!.message, new RegExp(`Failed to receive message: ${result}`));
    t.true(Date.now() - started < 5000, 'failed at once, not after stallTimeoutMs');
    await reader.close();
  }
});

test('reader (stand-in client): a topic named by its partition gives ids of partition -1, which work as OFFSET bounds', async (t) => {
  const single = `${TOPIC}-partition-3`;
  const messages: FakeMessage[] = [0, 1, 2].map((n) => ({ id: `5:${n}:3`, publishTime: 10 + n, data: `{"n":${n}}` }));
  const fake = new FakePulsar({ [single]: messages });
  const options = { topic: single, readTimeoutMs: 20 };
  const first = await openBoundedReader(fake.api(), plan(time('0', '100'), options), silentLogger);
  t.deepEqual((await drain(first)).rows, [{ n: 0 }, { n: 1 }, { n: 2 }]);
  const window = first.resolved!();
  t.deepEqual(window, { start: '5:0:-1', stop: '5:3:-1' });
  await first.close();
  const again = await openBoundedReader(fake.api(), plan(offset(window.start!, window.stop!), options), silentLogger);
  t.deepEqual((await drain(again)).rows, [{ n: 0 }, { n: 1 }, { n: 2 }]);
  t.is(fake.readers.at(-1)!.config.topic, single);
  await again.close();
});
