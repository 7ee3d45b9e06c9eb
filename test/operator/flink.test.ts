import anyTest, { type TestFn } from 'ava';
import { once } from 'node:events';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Boundaries, ConnectorPlugin } from 'sluice/sdk';
import { Catalog } from '../../services/catalog/domain/catalog.js';
import { silentLogger } from '../../services/core/logger.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { loadPlugins, type LoadedPlugin, type PluginSet } from '../../services/host/loader.js';
import type { FieldMapping, JobProgress, StreamSpec } from '../../services/operator/domain/model.js';
import {
  FLINK_JOB_STATES,
  FlinkRunner,
  rootCause,
  secretsOf,
  sluiceJobState,
  type FlinkRunnerOptions,
} from '../../services/operator/runners/flink.js';
import { FakeFlink, FLINK_JOB_ID } from '../helpers/fake-flink.js';
import { FLINK_CONNECTOR_OPTIONS, checkTableOptions } from '../../services/operator/runners/flink-connectors.js';
import {
  JSON_TIME_PATTERNS,
  flinkStatements,
  quoteIdentifier,
  quoteLiteral,
  sourceTimeBounds,
  timestampLiteral,
} from '../../services/operator/runners/flink-sql.js';

interface Ctx {
  plugins: PluginSet;
  hooks: HookRunner;
  catalog: Catalog;
}

const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  const hooks = new HookRunner({ timeoutMs: 10_000 });
  t.context = { plugins, hooks, catalog: new Catalog(plugins, hooks) };
});

const code = (err: unknown) => (err as { code?: string } | undefined)?.code;
const GOLDEN_DIR = new URL('../fixtures/flink/', import.meta.url);
/** 2025-01-01T00:00:00Z and one hour later. */
const H0 = 1_735_689_600_000;
const H1 = H0 + 3_600_000;
const time = (lower: number, upper: number): Boundaries => ({
  boundaryType: 'TIME',
  lowerBound: String(lower),
  upperBound: String(upper),
});
const offset = (lower: string, upper: string): Boundaries => ({
  boundaryType: 'OFFSET',
  lowerBound: lower,
  upperBound: upper,
});
const field = (sourceField: string, cast: FieldMapping['cast'] = '', targetField = ''): FieldMapping => ({
  sourceField,
  targetField,
  cast,
});

function connector(t: { context: Ctx }, id: string): LoadedPlugin<ConnectorPlugin> {
  const c = t.context.plugins.connectors.get(id);
  if (!c)
    throw new Error(
      `connector '${id}' did not load: ${JSON.stringify(t.context.plugins.problems.filter((p) => p.pluginId === id))}`,
    );
  return c;
}

/**
 * The statements of one job as the operator builds them: the catalog resolves the window into bounded
 * source options (validating them), the connectors give their Flink table options through the hook
 * runner, and the SQL connectors' TIME window becomes the runner's WHERE.
 */
async function statementsFor(
  t: { context: Ctx },
  jobId: string,
  stream: StreamSpec,
  boundaries: Boundaries,
): Promise<string[]> {
  const { catalog, hooks } = t.context;
  const sinkErrors = await catalog.validateOptions(stream.sink.connectorId, 'sink', stream.sink.options);
  if (sinkErrors.length > 0) throw new Error(`sink options are invalid: ${JSON.stringify(sinkErrors)}`);
  const { boundedOptions } = await catalog.resolveBoundaries(
    stream.source.connectorId,
    stream.source.options,
    boundaries,
  );
  const sourceTable = await hooks.call(connector(t, stream.source.connectorId), 'flinkTableOptions', {
    role: 'source',
    options: boundedOptions,
  });
  const sinkTable = await hooks.call(connector(t, stream.sink.connectorId), 'flinkTableOptions', {
    role: 'sink',
    options: stream.sink.options,
  });
  return flinkStatements({
    jobId,
    stream,
    boundaries,
    sourceTable,
    sinkTable,
    sourceBounds: sourceTimeBounds(boundedOptions),
    windowId: `nightly/${stream.streamId}/${boundaries.boundaryType}:${boundaries.lowerBound}:${boundaries.upperBound}`,
  });
}

const render = (statements: readonly string[]) => `${statements.map((s) => `${s};`).join('\n\n')}\n`;

/**
 * Compares with test/fixtures/flink/<name>.sql. With SLUICE_UPDATE_GOLDEN=1 a file that differs (or is
 * missing) is rewritten and the test still fails, naming it: a run passes only when what was rendered
 * equals a file that was there before it, so review the diff and run again.
 */
function golden(
  t: { is(a: unknown, b: unknown, m?: string): void; fail(m?: string): void },
  name: string,
  statements: readonly string[],
): void {
  const file = new URL(`${name}.sql`, GOLDEN_DIR);
  const rendered = render(statements);
  let committed: string | undefined;
  try {
    committed = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (process.env.SLUICE_UPDATE_GOLDEN === '1' && rendered !== committed) {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, rendered);
    t.fail(`golden ${name}.sql was rewritten: review the diff, then run again without SLUICE_UPDATE_GOLDEN`);
    return;
  }
  t.is(rendered, committed, `golden ${name}.sql`);
}

// ------------------------------------------------------------------------------------------ golden SQL

const PG_URL = 'postgres://loader:s3cr%27et@pg.internal:5432/warehouse?sslmode=require';
const MYSQL_URL = 'mysql://writer:w%40pw@mysql.internal:3306/analytics';

test('kafka → postgres, TIME window: Kafka bounds itself by timestamp, no WHERE; casts in the SELECT (golden)', async (t) => {
  const stream: StreamSpec = {
    streamId: 'orders',
    source: {
      connectorId: 'kafka',
      options: { brokers: ['kafka-1:9092', 'kafka-2:9092'], topic: 'orders', format: 'json', clientId: 'sluice' },
    },
    sink: {
      connectorId: 'postgres',
      options: { url: PG_URL, table: 'public.Orders', mode: 'upsert', keyColumns: ['order_id'] },
    },
    fields: [
      field('order_id', 'int'),
      field('customer'),
      field('amount', 'float'),
      field('paid', 'bool'),
      field('created', 'timestamp', 'created_at'),
      field('items', 'json'),
    ],
  };
  const statements = await statementsFor(t, '01JGZ8Q7K3-orders', stream, time(H0, H1));
  golden(t, 'kafka-to-postgres', statements);
  t.is(statements.length, 6);
  t.regex(statements[3]!, /'scan\.bounded\.timestamp-millis' = '1735693200000'/);
  t.notRegex(statements[5]!, /WHERE/);
});

test('postgres → mysql, TIME window: the runner adds WHERE timeColumn >= lower AND < upper, and declares the time column (golden)', async (t) => {
  const stream: StreamSpec = {
    streamId: 'events',
    source: {
      connectorId: 'postgres',
      options: { url: PG_URL, table: 'public.events', keyColumn: 'id', timeColumn: 'created_at', batchSize: 2000 },
    },
    sink: {
      connectorId: 'mysql',
      options: {
        url: MYSQL_URL,
        table: 'events',
        mode: 'upsert',
        keyColumns: ['event_id'],
        windowColumn: 'sluice_window',
      },
    },
    // created_at is not copied: it is declared in the source table all the same, for the WHERE.
    fields: [field('id', 'int', 'event_id'), field('kind'), field('body', 'json')],
  };
  const statements = await statementsFor(t, 'job-2', stream, time(H0, H1));
  golden(t, 'postgres-to-mysql', statements);
  // Flink's Postgres dialect puts column names into its SELECT as they are: declared "created_at", they reach PostgreSQL quoted.
  t.true(statements[3]!.includes('`"created_at"` TIMESTAMP(3)'));
  t.true(
    statements[5]!.endsWith(
      'WHERE `"created_at"` >= TIMESTAMP \'2025-01-01 00:00:00.000\' AND `"created_at"` < TIMESTAMP \'2025-01-01 01:00:00.000\'',
    ),
  );
  t.regex(statements[3]!, /'scan\.auto-commit' = 'false'/);
  t.regex(statements[4]!, /`sluice_window` STRING NOT NULL/);
  t.regex(statements[5]!, /'nightly\/events\/TIME:1735689600000:1735693200000' AS `sluice_window`/);
});

test('mysql → kafka, OFFSET window: a partitioned JDBC scan of [lower, upper - 1], no WHERE; the key column stays a sink column (golden)', async (t) => {
  const stream: StreamSpec = {
    streamId: 'orders-out',
    source: {
      connectorId: 'mysql',
      options: {
        url: 'mysql://reader:r@mysql.internal:3306/shop',
        table: 'shop.orders',
        keyColumn: 'id',
        timeColumn: 'updated_at',
        scanPartitions: 4,
      },
    },
    sink: {
      connectorId: 'kafka',
      options: { brokers: ['kafka-1:9092'], topic: 'orders-out', clientId: 'sluice', keyField: 'id' },
    },
    fields: [field('id', 'string'), field('status'), field('updated_at', 'timestamp')],
  };
  const statements = await statementsFor(t, 'job-3', stream, offset('1000', '2000'));
  golden(t, 'mysql-to-kafka', statements);
  t.regex(statements[3]!, /'scan\.partition\.upper-bound' = '1999'/);
  t.notRegex(statements[5]!, /WHERE/);
});

test('pulsar → mysql is refused on Flink: the Pulsar connector 4.1 cannot bound a table in a batch job', async (t) => {
  const stream: StreamSpec = {
    streamId: 'clicks',
    source: {
      connectorId: 'pulsar',
      options: { serviceUrl: 'pulsar://pulsar:6650', adminUrl: 'http://pulsar:8080', topic: 'acme/sales/clicks' },
    },
    sink: {
      connectorId: 'mysql',
      options: { url: MYSQL_URL, table: 'clicks', mode: 'upsert', keyColumns: ['click_id'] },
    },
    fields: [field('id', 'int', 'click_id'), field('url'), field('ts', 'timestamp', 'clicked_at')],
  };
  for (const b of [time(H0, H1), offset('12:2:-1', '12:40:-1')]) {
    const err = await t.throwsAsync(statementsFor(t, 'job-4', stream, b));
    t.is(code(err), 'FAILED_PRECONDITION');
    t.regex(err!.message, /unbounded source.*embedded runner/);
  }
  // And a table that says 'pulsar' all the same is refused by the generator too.
  const direct = t.throws(() =>
    flinkStatements({
      jobId: 'j',
      stream,
      boundaries: time(H0, H1),
      sourceTable: { connector: 'pulsar', 'admin-url': 'http://pulsar:8080' },
      sinkTable: { connector: 'jdbc' },
    }),
  );
  t.is(code(direct), 'FAILED_PRECONDITION');
});

test('datagen → kafka, OFFSET window: a bounded sequence of ids (golden)', async (t) => {
  const stream: StreamSpec = {
    streamId: 'gen',
    source: { connectorId: 'datagen', options: { intervalMs: 1000 } },
    sink: { connectorId: 'kafka', options: { brokers: ['kafka-1:9092'], topic: 'gen', clientId: 'sluice' } },
    fields: [field('id', 'int'), field('ts', 'int'), field('value', 'float')],
  };
  const statements = await statementsFor(t, 'job-5', stream, offset('0', '100'));
  golden(t, 'datagen-to-kafka', statements);
  t.regex(statements[3]!, /'number-of-rows' = '100'/);
});

test('an empty OFFSET window of a SQL source has no Flink form: flinkTableOptions refuses it (the runner skips the window)', async (t) => {
  const stream: StreamSpec = {
    streamId: 'events',
    source: { connectorId: 'postgres', options: { url: PG_URL, table: 'events', keyColumn: 'id' } },
    sink: { connectorId: 'file', options: { path: join(tmpdir(), 'out') } },
    fields: [field('id', 'int')],
  };
  const err = await t.throwsAsync(statementsFor(t, 'job-6', stream, offset('5', '5')));
  t.is(code(err), 'FAILED_PRECONDITION');
});

// ------------------------------------------------------------------------------ SQL construction rules

/** A small Flink SQL lexer: quoted identifiers, string literals, and bare words / symbols. Throws on an unterminated quote. */
function lex(sql: string): { kind: 'id' | 'str' | 'word'; value: string }[] {
  const tokens: { kind: 'id' | 'str' | 'word'; value: string }[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '`' || c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= sql.length) throw new Error(`unterminated ${c} in ${sql}`);
        if (sql[i] === c) {
          if (sql[i + 1] === c) {
            value += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += sql[i++];
      }
      tokens.push({ kind: c === '`' ? 'id' : 'str', value });
    } else {
      const word = /^(?:[A-Za-z0-9_.]+|>=|<=|--|.)/.exec(sql.slice(i))![0];
      tokens.push({ kind: 'word', value: word });
      i += word.length;
    }
  }
  return tokens;
}

test('hostile identifiers and values stay identifiers and literals: nothing escapes its quotes', (t) => {
  const evilTarget = "x` STRING) WITH ('connector' = 'print'); DROP TABLE t; --";
  const stream: StreamSpec = {
    streamId: 's',
    source: { connectorId: 'postgres', options: {} },
    sink: { connectorId: 'file', options: {} },
    fields: [field('we`ird', 'int', evilTarget), field("it's"), field('a``b', 'json', "'; DROP TABLE u; --")],
  };
  const sourceTable = {
    connector: 'custom',
    url: "jdbc:postgresql://h/db?x=1'); DROP TABLE t; --",
    "we'ird key`": "va`l\nue''",
  };
  const jobId = "job'); DROP TABLE x; --`";
  const statements = flinkStatements({
    jobId,
    stream,
    boundaries: time(H0, H1),
    sourceTable,
    sinkTable: { connector: 'print' },
    sourceBounds: { timeColumn: "t`s'", lower: H0, upper: H1 },
  });
  t.deepEqual(statements, [
    "SET 'execution.runtime-mode' = 'batch'",
    "SET 'table.local-time-zone' = 'UTC'",
    "SET 'pipeline.name' = 'sluice-job''); DROP TABLE x; --`'",
    [
      'CREATE TEMPORARY TABLE `src_job____DROP_TABLE_x_____` (',
      '  `we``ird` BIGINT,',
      "  `it's` STRING,",
      '  `a````b` STRING,',
      "  `t``s'` TIMESTAMP(3)",
      ') WITH (',
      "  'connector' = 'custom',",
      "  'url' = 'jdbc:postgresql://h/db?x=1''); DROP TABLE t; --',",
      "  'we''ird key`' = 'va`l\nue'''''",
      ')',
    ].join('\n'),
    [
      'CREATE TEMPORARY TABLE `sink_job____DROP_TABLE_x_____` (',
      "  `x`` STRING) WITH ('connector' = 'print'); DROP TABLE t; --` BIGINT,",
      "  `it's` STRING,",
      "  `'; DROP TABLE u; --` STRING",
      ') WITH (',
      "  'connector' = 'print'",
      ')',
    ].join('\n'),
    [
      'INSERT INTO `sink_job____DROP_TABLE_x_____`',
      'SELECT',
      "  CAST(`we``ird` AS BIGINT) AS `x`` STRING) WITH ('connector' = 'print'); DROP TABLE t; --`,",
      "  `it's` AS `it's`,",
      "  CAST(`a````b` AS STRING) AS `'; DROP TABLE u; --`",
      'FROM `src_job____DROP_TABLE_x_____`',
      "WHERE `t``s'` >= TIMESTAMP '2025-01-01 00:00:00.000' AND `t``s'` < TIMESTAMP '2025-01-01 01:00:00.000'",
    ].join('\n'),
  ]);
  // Lexed as Flink does: the hostile text comes back whole as identifiers and literals, and the bare words
  // are only the generator's own keywords.
  const allowed = new Set([
    'SET',
    '=',
    'CREATE',
    'TEMPORARY',
    'TABLE',
    '(',
    ')',
    ',',
    'WITH',
    'BIGINT',
    'STRING',
    'TIMESTAMP',
    '3',
    'INSERT',
    'INTO',
    'SELECT',
    'CAST',
    'AS',
    'FROM',
    'WHERE',
    '>=',
    '<',
    'AND',
  ]);
  const tokens = statements.map(lex);
  for (const ts of tokens)
    for (const w of ts.filter((x) => x.kind === 'word')) t.true(allowed.has(w.value), `bare word ${w.value}`);
  t.deepEqual(
    tokens[2]!.filter((x) => x.kind === 'str').map((x) => x.value),
    ['pipeline.name', `sluice-${jobId}`],
  );
  t.deepEqual(
    tokens[3]!.filter((x) => x.kind === 'id').map((x) => x.value),
    ['src_job____DROP_TABLE_x_____', 'we`ird', "it's", 'a``b', "t`s'"],
  );
  t.deepEqual(
    tokens[3]!.filter((x) => x.kind === 'str').map((x) => x.value),
    Object.entries(sourceTable).flat(),
  );
  t.deepEqual(
    tokens[4]!
      .filter((x) => x.kind === 'id')
      .map((x) => x.value)
      .slice(1),
    [evilTarget, "it's", "'; DROP TABLE u; --"],
  );
});

test('quoting helpers: doubled quotes, and UTC timestamp literals', (t) => {
  t.is(quoteIdentifier('a`b'), '`a``b`');
  t.is(quoteLiteral("it's"), "'it''s'");
  t.is(quoteLiteral('back\\slash'), "'back\\slash'");
  t.is(timestampLiteral(0), "TIMESTAMP '1970-01-01 00:00:00.000'");
  t.is(timestampLiteral(H0 + 1), "TIMESTAMP '2025-01-01 00:00:00.001'");
  t.is(code(t.throws(() => timestampLiteral(253_402_300_800_000))), 'INVALID_ARGUMENT');
});

test('TIME window edges as the SQL readers have them: an empty window reads nothing, an upper bound past year 9999 is open', (t) => {
  const base = {
    jobId: 'j',
    stream: {
      streamId: 's',
      source: { connectorId: 'postgres', options: {} },
      sink: { connectorId: 'file', options: {} },
      fields: [field('id', 'int'), field('ts', 'timestamp')],
    },
    sourceTable: { connector: 'jdbc' },
    sinkTable: { connector: 'print' },
  };
  const where = (lower: number, upper: number) =>
    flinkStatements({ ...base, boundaries: time(lower, upper), sourceBounds: { timeColumn: 'ts', lower, upper } })[5]!
      .split('\n')
      .at(-1);
  t.is(where(H0, H0), 'WHERE FALSE');
  t.is(where(H0, 253_402_300_800_000), "WHERE `ts` >= TIMESTAMP '2025-01-01 00:00:00.000'");
  t.is(where(253_402_300_800_000, 253_402_300_800_001), 'WHERE FALSE');
  const err = t.throws(() =>
    flinkStatements({ ...base, boundaries: offset('1', '2'), sourceBounds: { timeColumn: 'ts', lower: 1, upper: 2 } }),
  );
  t.is(code(err), 'INVALID_ARGUMENT');
});

test('sourceTimeBounds: only bounded options carrying a SQL TIME window (scan.lower / scan.upper and timeColumn)', async (t) => {
  const { catalog } = t.context;
  const pg = { url: PG_URL, table: 'events', keyColumn: 'id', timeColumn: 'created_at' };
  t.deepEqual(sourceTimeBounds((await catalog.resolveBoundaries('postgres', pg, time(H0, H1))).boundedOptions), {
    timeColumn: 'created_at',
    lower: H0,
    upper: H1,
  });
  t.is(sourceTimeBounds((await catalog.resolveBoundaries('postgres', pg, offset('1', '9'))).boundedOptions), undefined);
  t.is(
    sourceTimeBounds(
      (await catalog.resolveBoundaries('kafka', { brokers: ['k:9092'], topic: 'a' }, time(H0, H1))).boundedOptions,
    ),
    undefined,
  );
  t.is(
    sourceTimeBounds(
      (await catalog.resolveBoundaries('pulsar', { serviceUrl: 'pulsar://p:6650', topic: 'a' }, time(H0, H1)))
        .boundedOptions,
    ),
    undefined,
  );
  t.is(
    code(t.throws(() => sourceTimeBounds({ 'scan.boundary-type': 'TIME', 'scan.lower': '1', 'scan.upper': '2' }))),
    'INVALID_ARGUMENT',
  );
  t.is(
    code(
      t.throws(() =>
        sourceTimeBounds({ 'scan.boundary-type': 'TIME', timeColumn: 'ts', 'scan.lower': 'x', 'scan.upper': '2' }),
      ),
    ),
    'INVALID_ARGUMENT',
  );
});

test('a stream without a field mapping cannot run on Flink: FAILED_PRECONDITION naming the stream', (t) => {
  const err = t.throws(() =>
    flinkStatements({
      jobId: 'j',
      stream: {
        streamId: 'raw-orders',
        source: { connectorId: 'kafka', options: {} },
        sink: { connectorId: 'file', options: {} },
        fields: [],
      },
      boundaries: time(H0, H1),
      sourceTable: { connector: 'kafka' },
      sinkTable: { connector: 'filesystem' },
    }),
  );
  t.is(code(err), 'FAILED_PRECONDITION');
  t.regex(err!.message, /stream 'raw-orders' has no field mapping/);
  // A mapping with two fields onto one target is refused too (the sink table would have the column twice).
  const dup = t.throws(() =>
    flinkStatements({
      jobId: 'j',
      stream: {
        streamId: 's',
        source: { connectorId: 'kafka', options: {} },
        sink: { connectorId: 'file', options: {} },
        fields: [field('a', '', 'x'), field('b', '', 'x')],
      },
      boundaries: time(H0, H1),
      sourceTable: { connector: 'kafka' },
      sinkTable: { connector: 'filesystem' },
    }),
  );
  t.is(code(dup), 'INVALID_ARGUMENT');
});

test("an upsert sink's keyColumns become the sink table's PRIMARY KEY, and must be target fields", (t) => {
  const input = (keyColumns: string[]) => ({
    jobId: 'j',
    stream: {
      streamId: 'orders',
      source: { connectorId: 'kafka', options: {} },
      sink: { connectorId: 'postgres', options: { mode: 'upsert', keyColumns } },
      fields: [field('id', 'int', 'order_id'), field('region', '', 'reg`ion')],
    },
    boundaries: time(H0, H1),
    sourceTable: { connector: 'kafka' },
    sinkTable: { connector: 'jdbc' },
  });
  t.regex(
    flinkStatements(input(['order_id', 'reg`ion']))[4]!,
    /^ {2}PRIMARY KEY \(`order_id`, `reg``ion`\) NOT ENFORCED$/m,
  );
  const err = t.throws(() => flinkStatements(input(['id'])));
  t.is(code(err), 'FAILED_PRECONDITION');
  t.regex(err!.message, /keyColumns 'id' must be target fields/);
});

// --------------------------------------------------------------------------------- state mapping, docs

test('Flink job states map to Sluice job states as docs/runners.md says', (t) => {
  t.is(sluiceJobState('FINISHED'), 'SUCCEEDED');
  t.is(sluiceJobState('FAILED'), 'FAILED');
  t.is(sluiceJobState('CANCELED'), 'FAILED');
  t.is(sluiceJobState('CREATED'), 'PENDING');
  t.is(sluiceJobState('RESTARTING'), 'RUNNING');
  t.is(sluiceJobState('SOMETHING_NEW'), 'RUNNING');
  const doc = readFileSync(new URL('../../docs/runners.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## flink'));
  const rows = Object.fromEntries(
    [...section.matchAll(/^\| `([A-Z_]+)` \| `([A-Z_]+)` \|/gm)].map((m) => [m[1]!, m[2]!]),
  );
  t.deepEqual(rows, { ...FLINK_JOB_STATES });
});

test('rootCause: the last "Caused by" of a Java stack trace, else its first line', (t) => {
  const trace =
    'org.apache.flink.runtime.JobException: Recovery is suppressed\n\tat a.b(C.java:1)\nCaused by: java.io.IOException: x\n\tat d\nCaused by: java.sql.SQLException: Access denied\n\t... 3 more';
  t.is(rootCause(trace), 'java.sql.SQLException: Access denied');
  t.is(
    rootCause('Internal server error.\norg.apache.flink.SomeException: boom\n\tat x'),
    'org.apache.flink.SomeException: boom',
  );
});

// ------------------------------------------------------------------------------ a fake Flink over HTTP

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function runnerFor(fake: FakeFlink, extra: Partial<FlinkRunnerOptions> = {}): FlinkRunner {
  return new FlinkRunner({
    gatewayUrl: fake.gatewayUrl,
    restUrl: `${fake.restUrl}/`,
    pollIntervalMs: 5,
    retryBackoffMs: 5,
    requestTimeoutMs: 5000,
    logger: silentLogger,
    ...extra,
  });
}

const STATEMENTS = flinkStatements({
  jobId: 'job-7',
  stream: {
    streamId: 'gen',
    source: { connectorId: 'datagen', options: {} },
    sink: { connectorId: 'file', options: {} },
    fields: [field('id', 'int'), field('value', 'float')],
  },
  boundaries: offset('0', '10'),
  sourceTable: { connector: 'datagen', 'number-of-rows': '10' },
  sinkTable: { connector: 'print' },
});

/** The requests of one statement: submit, then its status until FINISHED (one RUNNING poll first). */
const statementCalls = (n: number) => [
  `gateway POST /v1/sessions/session-1/statements`,
  `gateway GET /v1/sessions/session-1/operations/op-${n}/status`,
  `gateway GET /v1/sessions/session-1/operations/op-${n}/status`,
];

test('happy path: one session, the statements in order, the job id from the INSERT, the job polled to FINISHED, the session closed', async (t) => {
  const fake = await new FakeFlink().start();
  t.teardown(() => fake.stop());
  const progress: JobProgress[] = [];
  const seen: string[] = [];
  const result = await runnerFor(fake).run(
    { jobId: 'job-7', statements: STATEMENTS },
    { signal: new AbortController().signal, onProgress: (p) => progress.push(p), onFlinkJob: (id) => seen.push(id) },
  );
  t.deepEqual(result, { flinkJobId: FLINK_JOB_ID });
  t.deepEqual(seen, [FLINK_JOB_ID]);
  t.deepEqual(fake.lines(), [
    'gateway POST /v1/sessions',
    ...[1, 2, 3, 4, 5, 6].flatMap(statementCalls),
    'gateway GET /v1/sessions/session-1/operations/op-6/result/0',
    'gateway GET /v1/sessions/session-1/operations/op-6/result/0',
    `rest GET /jobs/${FLINK_JOB_ID}`,
    `rest GET /jobs/${FLINK_JOB_ID}`,
    `rest GET /jobs/${FLINK_JOB_ID}`,
    'gateway DELETE /v1/sessions/session-1',
  ]);
  t.deepEqual(
    fake.calls.filter((c) => c.path.endsWith('/statements')).map((c) => c.body),
    STATEMENTS.map((statement) => ({ statement })),
  );
  t.deepEqual(fake.calls[0]!.body, { sessionName: 'sluice-job-7', properties: {} });
  t.deepEqual(progress.at(-1), { records: 30, bytes: 1920, positions: {} });
});

test('Flink 1.16 result shape: the job id from the "job id" row when there is no jobID field', async (t) => {
  const fake = await new FakeFlink({ legacyResult: true, jobStates: ['FINISHED'] }).start();
  t.teardown(() => fake.stop());
  t.deepEqual(
    await runnerFor(fake).run({ jobId: 'j', statements: STATEMENTS }, { signal: new AbortController().signal }),
    { flinkJobId: FLINK_JOB_ID },
  );
});

test('job FAILED: rejects FAILED_PRECONDITION with the root exception from /jobs/{id}/exceptions; the session is closed, no cancel', async (t) => {
  const fake = await new FakeFlink({
    jobStates: ['RUNNING', 'FAILED'],
    exceptions: {
      exceptionHistory: {
        entries: [
          {
            exceptionName: 'org.apache.flink.runtime.JobException',
            stacktrace:
              "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy\n\tat org.apache.flink...\nCaused by: java.sql.SQLException: Access denied for user 'writer'@'10.0.0.7'\n\tat com.mysql.cj...",
            timestamp: 1735689600123,
            taskName: 'Sink: sink',
            failureLabels: {},
            concurrentExceptions: [],
          },
        ],
        truncated: false,
      },
    },
  }).start();
  t.teardown(() => fake.stop());
  const err = await t.throwsAsync(
    runnerFor(fake).run({ jobId: 'j', statements: STATEMENTS }, { signal: new AbortController().signal }),
  );
  t.is(code(err), 'FAILED_PRECONDITION');
  t.is(
    err!.message,
    `Flink job ${FLINK_JOB_ID} FAILED: java.sql.SQLException: Access denied for user 'writer'@'10.0.0.7'`,
  );
  t.deepEqual(fake.lines().slice(-2), [
    `rest GET /jobs/${FLINK_JOB_ID}/exceptions`,
    'gateway DELETE /v1/sessions/session-1',
  ]);
  t.false(fake.lines().some((l) => l.includes('PATCH')));
});

test('job CANCELED outside Sluice: FAILED_PRECONDITION', async (t) => {
  const fake = await new FakeFlink({ jobStates: ['RUNNING', 'CANCELED'] }).start();
  t.teardown(() => fake.stop());
  const err = await t.throwsAsync(
    runnerFor(fake).run({ jobId: 'j', statements: STATEMENTS }, { signal: new AbortController().signal }),
  );
  t.is(code(err), 'FAILED_PRECONDITION');
  t.regex(err!.message, /CANCELED outside Sluice/);
  t.is(fake.lines().at(-1), 'gateway DELETE /v1/sessions/session-1');
});

test("a statement that fails: FAILED_PRECONDITION naming it, with the gateway's root cause; later statements are not sent", async (t) => {
  const fake = await new FakeFlink({
    failStatement: {
      index: 3,
      trace:
        "org.apache.flink.table.api.ValidationException: Could not find any factory for identifier 'datagen'\n\tat org.apache.flink...",
    },
  }).start();
  t.teardown(() => fake.stop());
  const err = await t.throwsAsync(
    runnerFor(fake).run({ jobId: 'j', statements: STATEMENTS }, { signal: new AbortController().signal }),
  );
  t.is(code(err), 'FAILED_PRECONDITION');
  t.is(
    err!.message,
    "Flink SQL Gateway: statement 4 of 6 (CREATE TEMPORARY TABLE) failed: org.apache.flink.table.api.ValidationException: Could not find any factory for identifier 'datagen'",
  );
  t.is(fake.calls.filter((c) => c.path.endsWith('/statements')).length, 4);
  t.is(fake.lines().at(-1), 'gateway DELETE /v1/sessions/session-1');
});

test('passwords in the table options never reach error messages, even when Flink echoes the SQL', async (t) => {
  const statements = flinkStatements({
    jobId: 'j',
    stream: {
      streamId: 's',
      source: { connectorId: 'datagen', options: {} },
      sink: { connectorId: 'postgres', options: { mode: 'upsert' } },
      fields: [field('id', 'int')],
    },
    boundaries: offset('0', '10'),
    sourceTable: {
      connector: 'kafka',
      'properties.sasl.jaas.config':
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="kafka-pw";',
    },
    sinkTable: { connector: 'jdbc', url: 'jdbc:postgresql://h/db', username: 'loader', password: "s3cr'et" },
  });
  t.deepEqual(secretsOf(statements), [
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="kafka-pw";',
    'kafka-pw',
    "s3cr''et",
    "s3cr'et",
  ]);
  const fake = await new FakeFlink({
    failStatement: {
      index: 4,
      trace:
        "org.apache.flink.table.api.ValidationException: cannot connect as loader/s3cr'et (option 'password' = 's3cr''et'); kafka-pw",
    },
  }).start();
  t.teardown(() => fake.stop());
  const err = await t.throwsAsync(
    runnerFor(fake).run({ jobId: 'j', statements }, { signal: new AbortController().signal }),
  );
  t.is(code(err), 'FAILED_PRECONDITION');
  t.is(
    err!.message,
    "Flink SQL Gateway: statement 5 of 6 (CREATE TEMPORARY TABLE) failed: org.apache.flink.table.api.ValidationException: cannot connect as loader/*** (option 'password' = '***'); ***",
  );
});

test('cancel via the signal while the job runs: PATCH /jobs/{id}?mode=cancel, then the session closed; rejects with the reason', async (t) => {
  const controller = new AbortController();
  const reason = new Error('CancelJob');
  const fake = await new FakeFlink({
    jobStates: ['RUNNING'],
    onRequest: (c, calls) => {
      if (c.server === 'rest' && calls.filter((x) => x.server === 'rest').length === 2) controller.abort(reason);
    },
  }).start();
  t.teardown(() => fake.stop());
  const err = await t.throwsAsync(
    runnerFor(fake).run({ jobId: 'j', statements: STATEMENTS }, { signal: controller.signal }),
  );
  t.is(err, reason);
  t.deepEqual(fake.lines().slice(-2), [
    `rest PATCH /jobs/${FLINK_JOB_ID}?mode=cancel`,
    'gateway DELETE /v1/sessions/session-1',
  ]);
});

test('cancel via the signal while the INSERT is still being submitted: its operation is cancelled, then the session closed', async (t) => {
  const controller = new AbortController();
  const reason = new Error('shutdown');
  const fake = await new FakeFlink({
    insertRunningPolls: 1000,
    onRequest: (c, calls) => {
      if (calls.filter((x) => x.path === '/v1/sessions/session-1/operations/op-6/status').length === 2)
        controller.abort(reason);
    },
  }).start();
  t.teardown(() => fake.stop());
  const err = await t.throwsAsync(
    runnerFor(fake).run({ jobId: 'j', statements: STATEMENTS }, { signal: controller.signal }),
  );
  t.is(err, reason);
  t.deepEqual(fake.lines().slice(-2), [
    'gateway POST /v1/sessions/session-1/operations/op-6/cancel',
    'gateway DELETE /v1/sessions/session-1',
  ]);
  t.false(fake.lines().some((l) => l.includes('/jobs/')));
});

test('run() failing after the job started (job status unreadable): the running Flink job is cancelled, then the session closed', async (t) => {
  // Once the job has been polled once, GET /jobs/{id} answers 503 until the retries run out; the cancel
  // (PATCH) still gets through, as it would when only the status endpoint is overloaded.
  let polls = 0;
  const fake = await new FakeFlink({
    jobStates: ['RUNNING'],
    unavailable: { times: 1000, match: (c) => c.server === 'rest' && c.method === 'GET' && ++polls > 1 },
  }).start();
  t.teardown(() => fake.stop());
  const err = await t.throwsAsync(
    runnerFor(fake, { retries: 1 }).run(
      { jobId: 'j', statements: STATEMENTS },
      { signal: new AbortController().signal },
    ),
  );
  t.is(code(err), 'UNAVAILABLE');
  t.deepEqual(fake.lines().slice(-2), [
    `rest PATCH /jobs/${FLINK_JOB_ID}?mode=cancel`,
    'gateway DELETE /v1/sessions/session-1',
  ]);
});

test('run() failing before the job started (a statement fails): nothing is cancelled, the session is closed', async (t) => {
  const fake = await new FakeFlink({
    failStatement: { index: 2, trace: 'org.apache.flink.table.api.ValidationException: no such table' },
  }).start();
  t.teardown(() => fake.stop());
  await t.throwsAsync(
    runnerFor(fake).run({ jobId: 'j', statements: STATEMENTS }, { signal: new AbortController().signal }),
  );
  t.false(fake.lines().some((l) => l.includes('cancel')));
  t.is(fake.lines().at(-1), 'gateway DELETE /v1/sessions/session-1');
});

test('an already aborted signal: nothing is sent', async (t) => {
  const fake = await new FakeFlink().start();
  t.teardown(() => fake.stop());
  const reason = new Error('early');
  const err = await t.throwsAsync(
    runnerFor(fake).run({ jobId: 'j', statements: STATEMENTS }, { signal: AbortSignal.abort(reason) }),
  );
  t.is(err, reason);
  t.deepEqual(fake.calls, []);
});

test('the gateway answering 503 twice, then OK: retried with backoff, and the job succeeds', async (t) => {
  const fake = await new FakeFlink({
    jobStates: ['FINISHED'],
    unavailable: { times: 2, match: (c) => c.server === 'gateway' && c.method === 'POST' },
  }).start();
  t.teardown(() => fake.stop());
  t.deepEqual(
    await runnerFor(fake).run({ jobId: 'j', statements: STATEMENTS }, { signal: new AbortController().signal }),
    { flinkJobId: FLINK_JOB_ID },
  );
  t.deepEqual(fake.lines().slice(0, 3), [
    'gateway POST /v1/sessions',
    'gateway POST /v1/sessions',
    'gateway POST /v1/sessions',
  ]);
  // A statement answered 503 is retried too (the gateway did not take it).
  const fake2 = await new FakeFlink({
    jobStates: ['FINISHED'],
    unavailable: { times: 2, match: (c) => c.path.endsWith('/statements') },
  }).start();
  t.teardown(() => fake2.stop());
  await runnerFor(fake2).run({ jobId: 'j', statements: STATEMENTS }, { signal: new AbortController().signal });
  t.is(fake2.calls.filter((c) => c.path.endsWith('/statements')).length, STATEMENTS.length + 2);
});

test('the gateway down: UNAVAILABLE after the retries, naming the gateway', async (t) => {
  const port = await closedPort();
  const runner = new FlinkRunner({
    gatewayUrl: `http://127.0.0.1:${port}`,
    restUrl: `http://127.0.0.1:${port}`,
    pollIntervalMs: 5,
    retries: 2,
    retryBackoffMs: 5,
    logger: silentLogger,
  });
  const started = Date.now();
  const err = await t.throwsAsync(
    runner.run({ jobId: 'j', statements: STATEMENTS }, { signal: new AbortController().signal }),
  );
  t.is(code(err), 'UNAVAILABLE');
  t.regex(
    err!.message,
    new RegExp(
      `Flink SQL Gateway unavailable: POST http://127\\.0\\.0\\.1:${port}/v1/sessions failed 3 time\\(s\\).*ECONNREFUSED`,
    ),
  );
  t.true(Date.now() - started >= 15, 'backoff 5 + 10 ms');
});

test('the REST API down after the job started: UNAVAILABLE; the session is still closed', async (t) => {
  const fake = await new FakeFlink().start();
  t.teardown(() => fake.stop());
  const port = await closedPort();
  const err = await t.throwsAsync(
    runnerFor(fake, { restUrl: `http://127.0.0.1:${port}`, retries: 1 }).run(
      { jobId: 'j', statements: STATEMENTS },
      { signal: new AbortController().signal },
    ),
  );
  t.is(code(err), 'UNAVAILABLE');
  t.regex(err!.message, /Flink REST API unavailable: GET .*\/jobs\//);
  t.is(fake.lines().at(-1), 'gateway DELETE /v1/sessions/session-1');
});

test('an injected fetch is used for every request', async (t) => {
  const fake = await new FakeFlink({ jobStates: ['FINISHED'] }).start();
  t.teardown(() => fake.stop());
  const urls: string[] = [];
  const recording: typeof fetch = (input, init) => {
    urls.push(`${init?.method ?? 'GET'} ${String(input)}`);
    return fetch(input, init);
  };
  await runnerFor(fake, { fetch: recording }).run(
    { jobId: 'j', statements: STATEMENTS },
    { signal: new AbortController().signal },
  );
  t.is(urls.length, fake.calls.length);
  t.is(urls[0], `POST ${fake.gatewayUrl}/v1/sessions`);
  t.true(urls.includes(`GET ${fake.restUrl}/jobs/${FLINK_JOB_ID}`), 'the trailing slash of restUrl is dropped');
});

// ------------------------------------------------------------- the real connectors' options and semantics

/** The WITH options of a CREATE TABLE statement, lexed. */
function withOptions(statement: string): Record<string, string> {
  const tokens = lex(statement.slice(statement.indexOf(') WITH (')));
  const out: Record<string, string> = {};
  for (let i = 0; i + 2 < tokens.length; i++)
    if (tokens[i]!.kind === 'str' && tokens[i + 1]!.value === '=' && tokens[i + 2]!.kind === 'str')
      out[tokens[i]!.value] = tokens[i + 2]!.value;
  return out;
}

test('every generated table option is an option of its Flink connector, per supported release; an unknown one is refused', async (t) => {
  for (const name of ['kafka-to-postgres', 'postgres-to-mysql', 'mysql-to-kafka', 'datagen-to-kafka']) {
    const sql = readFileSync(new URL(`${name}.sql`, GOLDEN_DIR), 'utf8');
    for (const create of sql.split(';\n').filter((s) => s.includes('CREATE TEMPORARY TABLE'))) {
      const options = withOptions(create);
      const releases = FLINK_CONNECTOR_OPTIONS[options.connector!];
      t.truthy(releases, `${name}: connector ${options.connector}`);
      t.notThrows(() => checkTableOptions(options, 'source'), name);
    }
  }
  const err = t.throws(() =>
    checkTableOptions({ connector: 'jdbc', url: 'jdbc:mysql://h/d', 'admin-url': 'x' }, 'sink'),
  );
  t.is(code(err), 'FAILED_PRECONDITION');
  t.regex(err!.message, /'admin-url' is not an option of the Flink 'jdbc' connector 3\.3/);
});

const kafkaToMysql = (source: Record<string, unknown>, fields: FieldMapping[]): StreamSpec => ({
  streamId: 'k',
  source: { connectorId: 'kafka', options: { brokers: ['k:9092'], topic: 't', clientId: 'c', ...source } },
  sink: { connectorId: 'mysql', options: { url: MYSQL_URL, table: 't', mode: 'upsert', keyColumns: ['id'] } },
  fields,
});

test('Kafka TIME window with startOffsets: Flink starts every partition at the window (timestamp), not unlisted ones at EARLIEST', async (t) => {
  const s = await statementsFor(t, 'j', kafkaToMysql({ startOffsets: '0:5' }, [field('id', 'int')]), time(H0, H1));
  const options = withOptions(s[3]!);
  t.is(options['scan.startup.mode'], 'timestamp');
  t.is(options['scan.startup.timestamp-millis'], String(H0));
  t.is(options['scan.startup.specific-offsets'], undefined);
});

test('Kafka OFFSET window whose bounds name different partitions is refused on Flink (it would skip or over-read one)', async (t) => {
  const err = await t.throwsAsync(
    statementsFor(t, 'j', kafkaToMysql({}, [field('id', 'int')]), offset('0:5,1:7', '0:9')),
  );
  t.is(code(err), 'FAILED_PRECONDITION');
  t.regex(err!.message, /same partitions in both bounds.*lower: 0,1, upper: 0/);
  const same = await statementsFor(t, 'j', kafkaToMysql({}, [field('id', 'int')]), offset('0:5,1:7', '1:9,0:9'));
  t.is(withOptions(same[3]!)['scan.bounded.mode'], 'specific-offsets');
});

test("Kafka format 'raw' has one column on Flink: several mapped fields are refused", async (t) => {
  const err = await t.throwsAsync(
    statementsFor(t, 'j', kafkaToMysql({ format: 'raw' }, [field('id', 'int'), field('v')]), time(H0, H1)),
  );
  t.is(code(err), 'FAILED_PRECONDITION');
  t.regex(err!.message, /format 'raw'.*exactly one column.*2 source fields/);
});

test('a raw Kafka key is written as text: its own STRING column, left out of the value', async (t) => {
  const s = await statementsFor(
    t,
    'j',
    {
      streamId: 'o',
      source: { connectorId: 'datagen', options: {} },
      sink: { connectorId: 'kafka', options: { brokers: ['k:9092'], topic: 'o', clientId: 'c', keyField: 'id' } },
      fields: [field('id', 'int'), field('value', 'float')],
    },
    offset('0', '10'),
  );
  const options = withOptions(s[4]!);
  t.is(options['key.format'], 'raw');
  t.is(options['key.fields'], 'sluice_kafka_key');
  t.is(options['value.fields-include'], 'EXCEPT_KEY');
  t.regex(s[4]!, /`sluice_kafka_key` STRING/);
  t.regex(s[5]!, /CAST\(CAST\(`id` AS BIGINT\) AS STRING\) AS `sluice_kafka_key`/);
});

test('JSON TIMESTAMP fields are read as text and parsed: epoch-ms numbers, ISO text with Z, with a UTC offset or none', async (t) => {
  const s = await statementsFor(t, 'j', kafkaToMysql({}, [field('id', 'int'), field('ts', 'timestamp')]), time(H0, H1));
  t.is(s[1], "SET 'table.local-time-zone' = 'UTC'");
  t.regex(s[3]!, /`ts` STRING/);
  const { epochMs, offset, zulu } = JSON_TIME_PATTERNS;
  const sql = s[5]!;
  const has = (text: string) => t.true(sql.includes(text), text);
  has(`WHEN REGEXP(\`ts\`, '${epochMs}') THEN CAST(TO_TIMESTAMP_LTZ(CAST(\`ts\` AS BIGINT), 3) AS TIMESTAMP(3))`);
  // An offset: the wall time without it, moved by −offset minutes (sign, hours and minutes extracted).
  has(
    `WHEN REGEXP(\`ts\`, '${offset}') THEN TIMESTAMPADD(MINUTE, (CASE WHEN REGEXP_EXTRACT(\`ts\`, '${offset}', 1) = '-' THEN 1 ELSE -1 END)`,
  );
  has(
    `(CAST(REGEXP_EXTRACT(\`ts\`, '${offset}', 2) AS INT) * 60 + CAST(REGEXP_EXTRACT(\`ts\`, '${offset}', 3) AS INT))`,
  );
  has(`CAST(REPLACE(REGEXP_REPLACE(\`ts\`, '${offset}', ''), 'T', ' ') AS TIMESTAMP(3))`);
  has(`ELSE CAST(REPLACE(REGEXP_REPLACE(\`ts\`, '${zulu}', ''), 'T', ' ') AS TIMESTAMP(3)) END`);

  // The same steps on sample values (the patterns are plain regular expressions, the same in Java and
  // JavaScript) give the instant JavaScript's own ISO parser reads: the offset's sign and size are right,
  // and a date or a zone-less wall time is not taken for an offset. Not run on a Flink cluster here.
  const utc = (text: string): number => {
    if (new RegExp(epochMs).test(text)) return Number(text);
    const wall = (v: string) => Date.parse(`${v.replace(' ', 'T')}Z`);
    const m = new RegExp(offset).exec(text);
    if (m)
      return wall(text.replace(new RegExp(offset), '')) + (m[1] === '-' ? 1 : -1) * (+m[2]! * 60 + +m[3]!) * 60_000;
    return wall(text.replace(new RegExp(zulu), ''));
  };
  const cases: [string, string][] = [
    ['2026-01-02T03:04:05.678+02:00', '2026-01-02T01:04:05.678Z'],
    ['2026-01-02T03:04:05-05:30', '2026-01-02T08:34:05.000Z'],
    ['2026-01-02T03:04:05.1+0530', '2026-01-01T21:34:05.100Z'],
    ['2026-01-02T23:30:00-01:00', '2026-01-03T00:30:00.000Z'],
    ['2026-01-02T03:04:05Z', '2026-01-02T03:04:05.000Z'],
    ['2026-01-02 03:04:05.250', '2026-01-02T03:04:05.250Z'],
    ['2026-01-02T03:04:05', '2026-01-02T03:04:05.000Z'],
    ['1767322800000', '2026-01-02T03:00:00.000Z'],
  ];
  for (const [text, iso] of cases) t.is(new Date(utc(text)).toISOString(), iso, text);
  t.false(new RegExp(offset).test('2026-01-02'), 'a date alone has no offset');
});

test('a database URL with a user and no password gets an empty password (Flink wants both or neither)', async (t) => {
  const s = await statementsFor(
    t,
    'j',
    {
      streamId: 'p',
      source: {
        connectorId: 'postgres',
        options: { url: 'postgres://reader@pg:5432/db', table: 'e', keyColumn: 'id' },
      },
      sink: {
        connectorId: 'mysql',
        options: { url: 'mysql://w@my:3306/a', table: 'e', mode: 'upsert', keyColumns: ['id'] },
      },
      fields: [field('id', 'int')],
    },
    offset('0', '10'),
  );
  t.is(withOptions(s[3]!).username, 'reader');
  t.is(withOptions(s[3]!).password, '');
  t.is(withOptions(s[4]!).password, '');
});

test('pairings whose window-replace guarantee cannot hold on Flink are refused: replace-window SQL sinks, the file sink', async (t) => {
  const replace = await t.throwsAsync(
    statementsFor(
      t,
      'j',
      {
        ...kafkaToMysql({}, [field('id', 'int')]),
        sink: { connectorId: 'mysql', options: { url: MYSQL_URL, table: 't' } },
      },
      time(H0, H1),
    ),
  );
  t.is(code(replace), 'FAILED_PRECONDITION');
  t.regex(replace!.message, /mode 'replace-window'.*use mode 'upsert'/);
  const file = await t.throwsAsync(
    statementsFor(
      t,
      'j',
      {
        ...kafkaToMysql({}, [field('id', 'int')]),
        sink: { connectorId: 'file', options: { path: join(tmpdir(), 'out') } },
      },
      time(H0, H1),
    ),
  );
  t.is(code(file), 'FAILED_PRECONDITION');
  t.regex(file!.message, /INSERT OVERWRITE empties the whole directory/);
});
