import anyTest, { type TestFn } from 'ava';
import { status } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConnectorRole } from '../proto/gen/sluice/catalog/v1/catalog.js';
import { BoundaryType } from '../proto/gen/sluice/common/v1/common.js';
import { ScheduleServiceClient } from '../proto/gen/sluice/schedule/v1/schedule.js';
import { OperatorServiceClient } from '../proto/gen/sluice/operator/v1/operator.js';
import { credentials } from '@grpc/grpc-js';
import { type Running, call, callError, startTestSluice } from './helpers/sluice.js';
import { healthCheck, reflectionServices } from './helpers/probes.js';
import { MAX_REPORTED_FIELD_ERRORS } from 'sluice/sdk';

const FIXTURES = fileURLToPath(new URL('./fixtures/plugins/', import.meta.url));
const test = anyTest as TestFn<{ s: Running }>;

test.before(async (t) => {
  t.context.s = await startTestSluice({
    SLUICE_PLUGIN_PATH: [join(FIXTURES, 'good'), join(FIXTURES, 'broken')].join(':'),
    SLUICE_HOOK_TIMEOUT_MS: '300',
  });
});
test.after.always(async (t) => t.context.s?.close());

const TIME = BoundaryType.BOUNDARY_TYPE_TIME;
const OFFSET = BoundaryType.BOUNDARY_TYPE_OFFSET;
const window = (lowerBound: string, upperBound: string, boundaryType = TIME) => ({
  boundaryType,
  lowerBound,
  upperBound,
});

test('ListConnectors lists every loaded connector with roles, boundary types and documented schemas', async (t) => {
  const { catalog } = t.context.s;
  const res = await call(catalog.listConnectors.bind(catalog), {
    pageSize: 0,
    pageToken: '',
    role: ConnectorRole.CONNECTOR_ROLE_UNSPECIFIED,
  });
  const loaded = [...t.context.s.sluice.plugins.connectors.keys()].sort();
  t.deepEqual(
    res.connectors.map((c) => c.id),
    loaded,
  );
  for (const id of ['datagen', 'faulty', 'plain-connector']) t.true(loaded.includes(id));
  const datagen = res.connectors.find((c) => c.id === 'datagen')!;
  t.deepEqual(datagen.roles, [ConnectorRole.CONNECTOR_ROLE_SOURCE]);
  t.deepEqual(datagen.boundaryTypes, [TIME, OFFSET]);
  const props = (datagen.sourceOptionsSchema as { properties: Record<string, { description?: string; type: string }> })
    .properties;
  t.is(props.intervalMs!.type, 'integer');
  for (const [name, p] of Object.entries(props)) t.truthy(p.description, `option ${name} is documented`);
  t.true(datagen.reader!.available);
  t.false(datagen.writer!.available);
  t.is(res.nextPageToken, '');
});

test('ListConnectors filters by role and pages with a token', async (t) => {
  const { catalog } = t.context.s;
  const sinks = await call(catalog.listConnectors.bind(catalog), {
    pageSize: 0,
    pageToken: '',
    role: ConnectorRole.CONNECTOR_ROLE_SINK,
  });
  const sinkIds = [...t.context.s.sluice.plugins.connectors.values()]
    .filter((c) => c.plugin.roles.includes('sink'))
    .map((c) => c.id)
    .sort();
  t.deepEqual(
    sinks.connectors.map((c) => c.id),
    sinkIds,
  );
  t.true(sinkIds.includes('plain-connector'));
  t.false(sinkIds.includes('datagen'));
  const ids: string[] = [];
  let pageToken = '';
  do {
    const page = await call(catalog.listConnectors.bind(catalog), { pageSize: 2, pageToken, role: 0 });
    t.true(page.connectors.length <= 2);
    ids.push(...page.connectors.map((c) => c.id));
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  t.deepEqual(ids, [...t.context.s.sluice.plugins.connectors.keys()].sort());
  const bad = await callError(catalog.listConnectors.bind(catalog), { pageSize: 2, pageToken: 'not-a-token', role: 0 });
  t.is(bad.code, status.INVALID_ARGUMENT);
  t.is(bad.fieldErrors?.[0]?.path, 'page_token');
});

test('GetConnector returns one connector, with the reader availability its plugin reports', async (t) => {
  const { catalog } = t.context.s;
  const res = await call(catalog.getConnector.bind(catalog), { connectorId: 'plain-connector' });
  t.is(res.connector!.version, '2.3.4');
  t.deepEqual(res.connector!.reader, { available: false, reason: 'install the plain-client library' });
  t.true(res.connector!.writer!.available === false);
  // The folder's name only: where plugins are installed on the host is not the caller's business.
  t.is(res.connector!.pluginPath, 'plain-connector');
});

test('GetConnector of an unknown id is NOT_FOUND', async (t) => {
  const { catalog } = t.context.s;
  const err = await callError(catalog.getConnector.bind(catalog), { connectorId: 'kafkaa' });
  t.is(err.code, status.NOT_FOUND);
  t.is(err.sluiceCode, 'NOT_FOUND');
  t.regex(err.details, /kafkaa/);
});

test('ValidateOptions returns every field error with path, expected and received', async (t) => {
  const { catalog } = t.context.s;
  const res = await call(catalog.validateOptions.bind(catalog), {
    connectorId: 'plain-connector',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options: { limit: 0, colum: 'ts' },
  });
  t.false(res.valid);
  t.deepEqual(
    res.errors.map((e) => [e.path, e.expected, e.received]),
    [
      ['options.table', 'a string (required)', 'nothing'],
      ['options.limit', 'a number >= 1', '0'],
      ['options.colum', 'a known option (table, column, limit)', '"colum"'],
    ],
  );
  const ok = await call(catalog.validateOptions.bind(catalog), {
    connectorId: 'plain-connector',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options: { table: 'orders' },
  });
  t.deepEqual(ok, { valid: true, errors: [] });
});

test('ValidateOptions never echoes a writeOnly option or a URL password, even in a parent object', async (t) => {
  const { catalog } = t.context.s;
  const secret = 'sasl-secret-Qv83-never-shown';
  const res = await call(catalog.validateOptions.bind(catalog), {
    connectorId: 'kafka',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    // A wrong mechanism and an unknown key make errors whose text describes the sasl object holding the password;
    // a password of the wrong type is an error at the secret itself.
    options: { brokers: ['127.0.0.1:9'], topic: 't', sasl: { mechanism: 'nope', username: 'u', password: secret } },
  });
  t.false(res.valid);
  const wrongType = await call(catalog.validateOptions.bind(catalog), {
    connectorId: 'kafka',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options: { brokers: ['127.0.0.1:9'], topic: 't', sasl: { mechanism: 'plain', username: 'u', password: 987654321 } },
  });
  t.false(wrongType.valid);
  const atPassword = wrongType.errors.find((e) => e.path === 'options.sasl.password')!;
  t.is(atPassword.received, '"***"');
  t.true(atPassword.message.includes('***'));
  const url = await call(catalog.validateOptions.bind(catalog), {
    connectorId: 'plain-connector',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options: { table: 'postgres://u:url-pass-Wq71@db.example/x', limit: 'postgres://u:url-pass-Wq71@db.example/x' },
  });
  t.false(url.valid);
  const all = JSON.stringify([res, wrongType, url]);
  t.false(all.includes(secret), all);
  t.false(all.includes('987654321'), all);
  t.false(all.includes('url-pass-Wq71'), all);
});

test('ValidateOptions lists at most MAX_REPORTED_FIELD_ERRORS problems, then one entry counting the rest', async (t) => {
  const { catalog } = t.context.s;
  const options = { table: 'orders', ...Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`typo${i}`, 1])) };
  const res = await call(catalog.validateOptions.bind(catalog), {
    connectorId: 'plain-connector',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options,
  });
  t.false(res.valid);
  t.is(res.errors.length, MAX_REPORTED_FIELD_ERRORS + 1);
  t.is(res.errors[0]!.path, 'options.typo0');
  t.like(res.errors.at(-1), { path: 'options', received: `${30 - MAX_REPORTED_FIELD_ERRORS} more problems` });
});

test("ValidateOptions runs the connector's own checks once the schema passes", async (t) => {
  const { catalog } = t.context.s;
  const own = await call(catalog.validateOptions.bind(catalog), {
    connectorId: 'plain-connector',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options: { table: 'ts' },
  });
  t.deepEqual(
    own.errors.map((e) => e.path),
    ['options.column'],
  );
  const datagen = await call(catalog.validateOptions.bind(catalog), {
    connectorId: 'datagen',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options: { intervalMs: 172_800_000 },
  });
  t.deepEqual(
    datagen.errors.map((e) => [e.path, e.expected]),
    [['options.intervalMs', 'at most 86400000 (one day)']],
  );
});

test('ValidateOptions rejects a role the connector lacks (source-only asked as sink, sink-only as source), or none', async (t) => {
  const { catalog } = t.context.s;
  const sink = await callError(catalog.validateOptions.bind(catalog), {
    connectorId: 'datagen',
    role: ConnectorRole.CONNECTOR_ROLE_SINK,
    options: {},
  });
  t.is(sink.code, status.INVALID_ARGUMENT);
  t.is(sink.fieldErrors?.[0]?.path, 'role');
  t.regex(sink.details, /datagen.*\(source\)/);
  const source = await callError(catalog.validateOptions.bind(catalog), {
    connectorId: 'file',
    role: ConnectorRole.CONNECTOR_ROLE_SOURCE,
    options: { path: '/nowhere' },
  });
  t.is(source.code, status.INVALID_ARGUMENT);
  t.is(source.fieldErrors?.[0]?.path, 'role');
  t.regex(source.details, /file.*\(sink\)/);
  const resolve = await callError(catalog.resolveBoundaries.bind(catalog), {
    connectorId: 'file',
    options: { path: '/nowhere' },
    boundaries: window('0', '1000'),
  });
  t.is(resolve.code, status.INVALID_ARGUMENT, 'a sink-only connector resolves no window');
  t.is(resolve.fieldErrors?.[0]?.path, 'connector_id');
  const none = await callError(catalog.validateOptions.bind(catalog), {
    connectorId: 'datagen',
    role: ConnectorRole.CONNECTOR_ROLE_UNSPECIFIED,
    options: {},
  });
  t.is(none.code, status.INVALID_ARGUMENT);
  t.is(none.fieldErrors?.[0]?.path, 'role');
});

test('ResolveBoundaries returns the bounded options of a TIME and an OFFSET window', async (t) => {
  const { catalog } = t.context.s;
  const time = await call(catalog.resolveBoundaries.bind(catalog), {
    connectorId: 'datagen',
    options: { intervalMs: 1000 },
    boundaries: window('1700000000500', '1700000010000'),
  });
  t.like(time.boundedOptions, {
    intervalMs: 1000,
    seed: 0,
    'datagen.start-id': 1700000001,
    'datagen.stop-id': 1700000010,
  });
  t.deepEqual(time.boundaries, window('1700000000500', '1700000010000'));
  const offset = await call(catalog.resolveBoundaries.bind(catalog), {
    connectorId: 'datagen',
    options: {},
    boundaries: window('10', '25', OFFSET),
  });
  t.like(offset.boundedOptions, { 'datagen.start-id': 10, 'datagen.stop-id': 25 });
  const empty = await call(catalog.resolveBoundaries.bind(catalog), {
    connectorId: 'datagen',
    options: {},
    boundaries: window('5000', '5000'),
  });
  t.like(empty.boundedOptions, { 'datagen.start-id': 5, 'datagen.stop-id': 5 });
});

test('ResolveBoundaries rejects bad windows with INVALID_ARGUMENT naming the field', async (t) => {
  const { catalog } = t.context.s;
  const cases: [string, ReturnType<typeof window> | undefined, string][] = [
    ['plain-connector', window('1', '2', OFFSET), 'boundaries.boundary_type'],
    ['datagen', window('1', '2', BoundaryType.BOUNDARY_TYPE_UNSPECIFIED), 'boundaries.boundary_type'],
    ['datagen', window('yesterday', '2'), 'boundaries.lower_bound'],
    ['datagen', window('1', '2.5'), 'boundaries.upper_bound'],
    ['datagen', window('-1', '2'), 'boundaries.lower_bound'],
    ['datagen', window('20', '10'), 'boundaries.upper_bound'],
    ['datagen', window('', '10', OFFSET), 'boundaries.lower_bound'],
    ['datagen', undefined, 'boundaries'],
  ];
  for (const [connectorId, boundaries, field] of cases) {
    const err = await callError(catalog.resolveBoundaries.bind(catalog), {
      connectorId,
      options: { table: 't' },
      boundaries,
    });
    t.is(err.code, status.INVALID_ARGUMENT, `${JSON.stringify(boundaries)}`);
    t.is(err.sluiceCode, 'INVALID_ARGUMENT');
    t.is(err.fieldErrors?.[0]?.path, field, `${JSON.stringify(boundaries)}`);
  }
  const lowerGtUpper = await callError(catalog.resolveBoundaries.bind(catalog), {
    connectorId: 'datagen',
    options: {},
    boundaries: window('20', '10'),
  });
  t.is(lowerGtUpper.details, 'boundaries.upper_bound: expected a bound >= the lower bound 20, got "10"');
});

test('ResolveBoundaries validates the options first and returns every field error', async (t) => {
  const { catalog } = t.context.s;
  const err = await callError(catalog.resolveBoundaries.bind(catalog), {
    connectorId: 'datagen',
    options: { intervalMs: 'fast', seeed: 1 },
    boundaries: window('0', '10'),
  });
  t.is(err.code, status.INVALID_ARGUMENT);
  t.deepEqual(
    err.fieldErrors?.map((f) => f.path),
    ['options.intervalMs', 'options.seeed'],
  );
});

test('ResolveBoundaries: NOT_FOUND for an unknown connector, INVALID_ARGUMENT for a sink-only or missing one', async (t) => {
  const { catalog } = t.context.s;
  t.is(
    (
      await callError(catalog.resolveBoundaries.bind(catalog), {
        connectorId: 'nope',
        options: {},
        boundaries: window('0', '1'),
      })
    ).code,
    status.NOT_FOUND,
  );
  const missing = await callError(catalog.resolveBoundaries.bind(catalog), {
    connectorId: '',
    options: {},
    boundaries: window('0', '1'),
  });
  t.is(missing.code, status.INVALID_ARGUMENT);
  t.is(missing.fieldErrors?.[0]?.path, 'connector_id');
});

test('a misbehaving plugin is contained: its failure is mapped, and the service keeps serving', async (t) => {
  const { catalog } = t.context.s;
  const resolve = (mode: string) =>
    callError(catalog.resolveBoundaries.bind(catalog), {
      connectorId: 'faulty',
      options: { mode },
      boundaries: window('0', '10'),
    });
  const thrown = await resolve('throw');
  t.is(thrown.code, status.INTERNAL);
  t.is(thrown.sluiceCode, 'PLUGIN_FAILED');
  // What the plugin threw stays in the log: the caller learns the plugin and the hook.
  t.is(thrown.details, "plugin 'faulty' hook 'fillInBoundaries' failed; the service log has the details");
  const slow = await resolve('slow');
  t.is(slow.code, status.DEADLINE_EXCEEDED);
  t.is(slow.sluiceCode, 'PLUGIN_TIMEOUT');
  const rejected = await resolve('reject');
  t.is(rejected.code, status.INVALID_ARGUMENT);
  t.is(rejected.fieldErrors?.[0]?.path, 'options.mode');
  t.regex(rejected.details, /^plugin 'faulty' fillInBoundaries: options.mode: expected/);
  const mutated = await resolve('mutate');
  t.is(mutated.sluiceCode, 'PLUGIN_FAILED', 'inputs are frozen');
  t.is((await resolve('not-object')).sluiceCode, 'PLUGIN_FAILED');
  const ok = await call(catalog.resolveBoundaries.bind(catalog), {
    connectorId: 'faulty',
    options: { mode: 'ok' },
    boundaries: window('0', '10'),
  });
  t.like(ok.boundedOptions, { lower: '0', upper: '10' });
});

test('ListEngines lists the engine plugins', async (t) => {
  const { catalog } = t.context.s;
  const res = await call(catalog.listEngines.bind(catalog), { pageSize: 0, pageToken: '' });
  t.deepEqual(
    res.engines.map((e) => [e.id, e.version]),
    [
      ['airflow', '0.1.0'],
      ['builtin', '0.1.0'],
      ['dolphinscheduler', '0.1.0'],
      ['plain-engine', '0.0.1'],
    ],
  );
  // No SLUICE_PLUGIN_AIRFLOW_URL here: listed, unavailable, saying which setting is missing.
  const airflow = res.engines.find((e) => e.id === 'airflow')!;
  t.false(airflow.availability?.available);
  t.regex(airflow.availability?.reason ?? '', /SLUICE_PLUGIN_AIRFLOW_URL/);
  const ds = res.engines.find((e) => e.id === 'dolphinscheduler')!;
  t.false(ds.availability?.available);
  t.regex(ds.availability?.reason ?? '', /SLUICE_PLUGIN_DOLPHINSCHEDULER_URL/);
  t.is(ds.remote, '', 'no live check without a URL');
});

test('ListPluginProblems reports each broken plugin by its path under the plugin folder, never where it is installed', async (t) => {
  const { catalog } = t.context.s;
  const res = await call(catalog.listPluginProblems.bind(catalog), {});
  const byCode = new Map<string, number>();
  for (const p of res.problems) byCode.set(p.code, (byCode.get(p.code) ?? 0) + 1);
  t.is(res.problems.length, 24);
  t.is(byCode.get('IMPORT_FAILED'), 2);
  const dup = res.problems.find((p) => p.code === 'DUPLICATE_ID')!;
  t.is(dup.pluginId, 'datagen');
  t.is(dup.path, 'duplicate-id');
  t.true(dup.message.includes('duplicate-id'), dup.message);
  for (const p of res.problems) {
    t.false(isAbsolute(p.path), p.path);
    t.true(existsSync(join(FIXTURES, 'broken', p.path.split('/')[0]!)), p.path);
    t.not(p.expected, '');
    t.not(p.found, '');
  }
  // Not in a field, not in a text: the absolute folders stay in the service log.
  const all = JSON.stringify(res);
  t.false(all.includes(FIXTURES.replace(/\/$/, '')), all);
  t.false(all.includes(fileURLToPath(new URL('..', import.meta.url))), all);
});

test('health and reflection are served for every service', async (t) => {
  const { address } = t.context.s;
  t.is(await healthCheck(address, ''), 'SERVING');
  for (const name of [
    'sluice.catalog.v1.CatalogService',
    'sluice.schedule.v1.ScheduleService',
    'sluice.operator.v1.OperatorService',
  ]) {
    t.is(await healthCheck(address, name), 'SERVING');
  }
  const unknown = await healthCheck(address, 'sluice.nothing.v1.Nothing').catch((err: { code: number }) => err.code);
  t.is(unknown, status.NOT_FOUND);
  t.deepEqual(await reflectionServices(address), [
    'grpc.health.v1.Health',
    'sluice.catalog.v1.CatalogService',
    'sluice.operator.v1.OperatorService',
    'sluice.schedule.v1.ScheduleService',
  ]);
});

test('the schedule and operator services answer on the same server', async (t) => {
  const { address } = t.context.s;
  const schedule = new ScheduleServiceClient(address, credentials.createInsecure());
  const operator = new OperatorServiceClient(address, credentials.createInsecure());
  t.is((await callError(schedule.getSchedule.bind(schedule), { groupId: 'no-such-group' })).code, status.NOT_FOUND);
  t.is((await callError(operator.getGroup.bind(operator), { groupId: 'no-such-group' })).code, status.NOT_FOUND);
  schedule.close();
  operator.close();
});

test('a reflection client that knows no .proto file (buf curl, as grpcurl) can call the catalog', async (t) => {
  const { address } = t.context.s;
  const buf = fileURLToPath(new URL('../node_modules/.bin/buf', import.meta.url));
  const curl = (method: string, body: unknown) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        buf,
        [
          'curl',
          '--protocol',
          'grpc',
          '--http2-prior-knowledge',
          '-d',
          JSON.stringify(body),
          `http://${address}/${method}`,
        ],
        { timeout: 20_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const ok = await curl('sluice.catalog.v1.CatalogService/GetConnector', { connector_id: 'datagen' });
  t.is(ok.code, 0, ok.stderr);
  t.like(JSON.parse(ok.stdout), {
    connector: {
      id: 'datagen',
      roles: ['CONNECTOR_ROLE_SOURCE'],
      boundaryTypes: ['BOUNDARY_TYPE_TIME', 'BOUNDARY_TYPE_OFFSET'],
    },
  });
  const health = await curl('grpc.health.v1.Health/Check', { service: 'sluice.catalog.v1.CatalogService' });
  t.deepEqual(JSON.parse(health.stdout), { status: 'SERVING' });
  const missing = await curl('sluice.catalog.v1.CatalogService/GetConnector', { connector_id: 'nope' });
  t.not(missing.code, 0);
  t.like(JSON.parse(missing.stdout || missing.stderr), { code: 'not_found', message: "connector 'nope' not found" });
});
