import test from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../../services/catalog/domain/catalog.js';
import { silentLogger } from '../../services/core/logger.js';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { loadPlugins } from '../../services/host/loader.js';
import type { Runner } from '../../services/operator/domain/runner.js';
import { OperatorService } from '../../services/operator/domain/service.js';
import { EmbeddedRunner } from '../../services/operator/runners/embedded.js';
import { FlinkRunner } from '../../services/operator/runners/flink.js';
import { FlinkJobRunner } from '../../services/operator/runners/flink-adapter.js';
import { SqliteStore } from '../../services/store/sqlite.js';
import { FakeFlink } from '../helpers/fake-flink.js';
import { FakeSchedules, datagenToFile, jobWhen, schedule } from '../helpers/operator.js';
import { startTestSluice } from '../helpers/sluice.js';

test('a group on the flink runner submits its window as Flink SQL and follows the Flink job to its end', async (t) => {
  const fake = await new FakeFlink().start();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-flink-op-'));
  const store = await SqliteStore.open(join(dir, 'sluice.db'));
  await store.migrate();
  const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
  const hooks = new HookRunner();
  const flink = new FlinkJobRunner(
    new FlinkRunner({ gatewayUrl: fake.gatewayUrl, restUrl: fake.restUrl, pollIntervalMs: 5, logger: silentLogger }),
    hooks,
  );
  const schedules = new FakeSchedules();
  const service = new OperatorService({
    store,
    catalog: new Catalog(plugins, hooks),
    connectors: plugins.connectors,
    schedules,
    runners: new Map<string, Runner>([
      ['embedded', new EmbeddedRunner({ hooks })],
      ['flink', flink],
    ]),
    defaultRunner: 'embedded',
    maxRunningJobs: 2,
    owner: 'op',
    logger: silentLogger,
  });
  schedules.operator = service;
  t.teardown(async () => {
    await service.stop();
    await store.close();
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await service.start();
  const input = datagenToFile('g-flink', dir, { runner: 'flink' });
  await service.createGroup({
    ...input,
    streams: [
      {
        ...input.streams[0]!,
        // A SQL sink in upsert mode with a window column: every row carries the window's id.
        sink: {
          connectorId: 'mysql',
          options: {
            url: 'mysql://writer:pw@mysql.internal:3306/analytics',
            table: 'gen',
            mode: 'upsert',
            keyColumns: ['id'],
            windowColumn: 'sluice_window',
          },
        },
        fields: [
          { sourceField: 'id', targetField: 'id', cast: 'int' },
          { sourceField: 'value', targetField: 'v', cast: 'float' },
        ],
      },
    ],
  });
  await service.approveGroup('g-flink', 0);
  const { jobs } = await service.submitOfflineJob(
    { groupId: 'g-flink', boundaryType: 'OFFSET', lowerBound: '100', upperBound: '200', instanceId: '' },
    false,
  );
  await service.idle();
  const job = await service.getJob(jobs[0]!.jobId);
  t.is(job.runner, 'flink');
  t.is(job.state, 'SUCCEEDED', job.error);
  const statements = fake.calls
    .filter((c) => c.path.endsWith('/statements'))
    .map((c) => (c.body as { statement: string }).statement);
  t.is(statements[0], "SET 'execution.runtime-mode' = 'batch'");
  t.regex(statements[statements.length - 1]!, /^INSERT INTO/);
  t.true(
    statements.some((s) => s.includes("'connector' = 'datagen'") && s.includes("'number-of-rows' = '100'")),
    statements.join('\n'),
  );
  t.true(
    statements.some((s) => s.includes("'g-flink/s1/OFFSET:100:200' AS `sluice_window`")),
    statements.join('\n'),
  );
  t.true(
    fake.calls.some((c) => c.method === 'DELETE' && /^\/v1\/sessions\//.test(c.path)),
    'the session is closed',
  );
});

test('SLUICE_RUNNER=flink with the Flink URLs: a started Sluice runs groups that name no runner on Flink', async (t) => {
  const fake = await new FakeFlink({ jobStates: ['RUNNING', 'FINISHED'] }).start();
  const s = await startTestSluice({
    SLUICE_RUNNER: 'flink',
    SLUICE_FLINK_GATEWAY_URL: fake.gatewayUrl,
    SLUICE_FLINK_REST_URL: fake.restUrl,
  });
  const dir = await mkdtemp(join(tmpdir(), 'sluice-flink-start-'));
  t.teardown(async () => {
    await s.close();
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const operator = s.sluice.operator!;
  // Windows of next year: nothing fires on its own while the test submits one.
  const nextYear = Date.UTC(new Date().getUTCFullYear() + 1, 0, 1);
  const input = datagenToFile('g-default-flink', dir, {
    runner: '',
    schedule: { ...schedule('g-default-flink'), startTime: nextYear, endTime: nextYear + 86_400_000 },
  });
  await operator.createGroup({
    ...input,
    streams: [
      {
        ...input.streams[0]!,
        // The file sink is refused on Flink (it cannot replace a window's file): a Kafka sink instead.
        sink: { connectorId: 'kafka', options: { brokers: ['kafka-1:9092'], topic: 'gen', clientId: 'sluice' } },
        fields: [{ sourceField: 'id', targetField: 'id', cast: 'int' }],
      },
    ],
  });
  await operator.approveGroup('g-default-flink', 0);
  const { jobs } = await operator.submitOfflineJob(
    { groupId: 'g-default-flink', boundaryType: 'OFFSET', lowerBound: '0', upperBound: '10', instanceId: '' },
    false,
  );
  const job = await jobWhen(operator, jobs[0]!.jobId, undefined, 60_000);
  t.is(job.runner, 'flink');
  t.is(job.state, 'SUCCEEDED', job.error);
  t.true(
    fake.calls.some(
      (c) => c.path.endsWith('/statements') && /^INSERT INTO/.test((c.body as { statement: string }).statement),
    ),
    'the window went to the SQL Gateway',
  );
  t.deepEqual(
    (await readdir(dir)).filter((f) => f.endsWith('.jsonl')),
    [],
    'the embedded runner wrote nothing',
  );
});
