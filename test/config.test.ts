import test from 'ava';
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError, loadConfig } from '../services/core/config.js';
import { DEFAULT_HEAP_MB, DEFAULT_YOUNG_GENERATION_MB } from '../services/operator/runners/pool.js';
import { DEFAULT_MAX_WATCH_STREAMS } from '../services/core/limits.js';

test('defaults apply when nothing is set', (t) => {
  t.deepEqual(loadConfig({}), {
    grpcAddr: '127.0.0.1:50051',
    pluginPath: [],
    logLevel: 'info',
    logPretty: false,
    hookTimeoutMs: 30000,
    shutdownGraceMs: 10000,
    dataDir: '.sluice',
    replicaId: hostname(),
    runner: 'embedded',
    maxRunningJobs: 4,
    jobThreads: Math.min(availableParallelism(), 4),
    failoverMs: 5000,
    scheduleRescanMs: 30000,
    // The service's defaults are the pool's (docs/runners.md says how they were chosen).
    jobHeapMb: DEFAULT_HEAP_MB,
    jobYoungGenMb: DEFAULT_YOUNG_GENERATION_MB,
    httpAddr: '127.0.0.1:8080',
    metricsMaxGroups: 1000,
    maxWatchStreams: DEFAULT_MAX_WATCH_STREAMS,
    security: { tokens: new Map(), insecure: false },
    fileRoots: [resolve('.sluice/files')],
  });
});

test('settings are read from the environment', (t) => {
  const c = loadConfig({
    SLUICE_GRPC_ADDR: '[::1]:6000',
    SLUICE_PLUGIN_PATH: '/opt/a::/opt/b',
    SLUICE_LOG_LEVEL: 'debug',
    SLUICE_HOOK_TIMEOUT_MS: '500',
  });
  t.is(c.grpcAddr, '[::1]:6000');
  t.deepEqual(c.pluginPath, ['/opt/a', '/opt/b']);
  t.is(c.logLevel, 'debug');
  t.is(c.hookTimeoutMs, 500);
  t.is(loadConfig({ SLUICE_JOB_YOUNG_GEN_MB: '96' }).jobYoungGenMb, 96);
  t.is(loadConfig({ SLUICE_JOB_YOUNG_GEN_MB: '0' }).jobYoungGenMb, 0);
});

test('job threads: one per core by default, never more than the jobs that may run at once; 0 keeps jobs in the service thread', (t) => {
  t.is(loadConfig({ SLUICE_MAX_RUNNING_JOBS: '64' }).jobThreads, availableParallelism());
  t.is(loadConfig({ SLUICE_MAX_RUNNING_JOBS: '1' }).jobThreads, 1);
  t.is(loadConfig({ SLUICE_JOB_THREADS: 'cores', SLUICE_MAX_RUNNING_JOBS: '64' }).jobThreads, availableParallelism());
  t.is(loadConfig({ SLUICE_JOB_THREADS: '0' }).jobThreads, 0);
  t.is(loadConfig({ SLUICE_JOB_THREADS: '3' }).jobThreads, 3);
});

test('a bad value names the variable, what was expected and what came', (t) => {
  const cases: [NodeJS.ProcessEnv, string][] = [
    [{ SLUICE_GRPC_ADDR: 'localhost' }, 'SLUICE_GRPC_ADDR: expected host:port, got "localhost"'],
    [{ SLUICE_LOG_LEVEL: 'loud' }, 'SLUICE_LOG_LEVEL: expected one of debug, info, warn, error, silent, got "loud"'],
    [{ SLUICE_HOOK_TIMEOUT_MS: '0' }, 'SLUICE_HOOK_TIMEOUT_MS: expected a positive integer, got "0"'],
    [{ SLUICE_SHUTDOWN_GRACE_MS: '1e3' }, 'SLUICE_SHUTDOWN_GRACE_MS: expected a positive integer, got "1e3"'],
    [
      { SLUICE_DATABASE_URL: 'mysql://root:secret@db/x' },
      'SLUICE_DATABASE_URL: expected a postgres:// or postgresql:// URL, got "mysql://***@db/x"',
    ],
    [{ SLUICE_OPERATOR_ADDR: 'operator' }, 'SLUICE_OPERATOR_ADDR: expected host:port, got "operator"'],
    [{ SLUICE_RUNNER: 'spark' }, 'SLUICE_RUNNER: expected embedded or flink, got "spark"'],
    [
      { SLUICE_RUNNER: 'flink' },
      'SLUICE_RUNNER: expected embedded, or flink together with SLUICE_FLINK_GATEWAY_URL, got "flink" with no gateway',
    ],
    [
      { SLUICE_FLINK_GATEWAY_URL: 'http://gw:8083' },
      'SLUICE_FLINK_GATEWAY_URL and SLUICE_FLINK_REST_URL: expected both or neither, got only the gateway',
    ],
    [{ SLUICE_MAX_RUNNING_JOBS: '-2' }, 'SLUICE_MAX_RUNNING_JOBS: expected a positive integer, got "-2"'],
    [{ SLUICE_JOB_HEAP_MB: '0' }, 'SLUICE_JOB_HEAP_MB: expected a positive integer, got "0"'],
    [
      { SLUICE_JOB_YOUNG_GEN_MB: '-1' },
      `SLUICE_JOB_YOUNG_GEN_MB: expected MiB as a non-negative integer (0: V8's default), got "-1"`,
    ],
    [{ SLUICE_JOB_THREADS: 'all' }, `SLUICE_JOB_THREADS: expected 'cores' or a non-negative integer, got "all"`],
  ];
  for (const [env, message] of cases) {
    const err = t.throws(() => loadConfig(env), { instanceOf: ConfigError });
    t.is(err?.message, message);
  }
});

test('InLong users are user:password pairs; a bad entry names the variable, never a password', (t) => {
  const config = loadConfig({
    SLUICE_CALLBACK_INLONG_USERS: 'admin:inlong,ops:a:b',
    SLUICE_PUBLIC_HTTP_URL: 'http://sluice:8080/',
  });
  t.deepEqual(
    [...config.inlongUsers!],
    [
      ['admin', 'inlong'],
      ['ops', 'a:b'],
    ],
  );
  t.is(config.publicHttpUrl, 'http://sluice:8080');
  for (const raw of ['admin', ':pw', 'admin:', 'admin:x,admin:y']) {
    const err = t.throws(() => loadConfig({ SLUICE_CALLBACK_INLONG_USERS: raw }), { instanceOf: ConfigError });
    t.regex(err.message, /^SLUICE_CALLBACK_INLONG_USERS: expected/);
    t.false(/\bx\b|\by\b|pw/.test(err.message), raw);
  }
  t.throws(() => loadConfig({ SLUICE_PUBLIC_HTTP_URL: 'sluice:8080' }), { message: /SLUICE_PUBLIC_HTTP_URL/ });
});
