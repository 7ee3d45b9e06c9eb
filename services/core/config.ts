import { hostname } from 'node:os';
import { delimiter } from 'node:path';
import type { LogLevel } from './logger.js';

/** Every setting, with its environment variable and default (README "Settings" lists the same). */
export interface Config {
  /** SLUICE_GRPC_ADDR: host:port the gRPC server listens on. */
  readonly grpcAddr: string;
  /** SLUICE_PLUGIN_PATH: extra plugin folders, separated by ':' (';' on Windows). */
  readonly pluginPath: readonly string[];
  /** SLUICE_LOG_LEVEL: debug, info, warn, error or silent. */
  readonly logLevel: LogLevel;
  /** SLUICE_LOG_PRETTY: true writes human-readable lines (for a terminal) instead of JSON. */
  readonly logPretty: boolean;
  /** SLUICE_HOOK_TIMEOUT_MS: default timeout of one plugin hook call. */
  readonly hookTimeoutMs: number;
  /** SLUICE_SHUTDOWN_GRACE_MS: how long SIGTERM waits for calls in flight before closing them. */
  readonly shutdownGraceMs: number;
  /** SLUICE_DATA_DIR: where the embedded SQLite store lives (sluice.db). */
  readonly dataDir: string;
  /** SLUICE_DATABASE_URL: a postgres:// URL selects PostgreSQL instead of SQLite (needed for several schedule replicas). */
  readonly databaseUrl?: string;
  /** SLUICE_OPERATOR_ADDR: the operator service the schedule service dispatches to; empty means this process's own server. */
  readonly operatorAddr?: string;
  /** SLUICE_REPLICA_ID: this replica's name in the ledger; replicas must differ, a restarted one should keep its own. */
  readonly replicaId: string;
  /** SLUICE_SCHEDULE_ADDR: the schedule service the operator registers schedules with; empty means this process's own server. */
  readonly scheduleAddr?: string;
  /** SLUICE_RUNNER: the runner of groups that name none (embedded or flink). */
  readonly runner: string;
  /** SLUICE_MAX_RUNNING_JOBS: jobs the embedded runner runs at once in this process. */
  readonly maxRunningJobs: number;
  /** SLUICE_JOB_THREADS: worker threads jobs run in (0: in the service's own thread). */
  readonly jobThreads: number;
  /**
   * SLUICE_FAILOVER_MS: how soon a live replica takes over what a dead one left: windows it had claimed, jobs
   * whose lease it stopped renewing. Also how often replicas look for such work.
   */
  readonly failoverMs: number;
  /** SLUICE_SCHEDULE_RESCAN_MS: how often a schedule replica re-reads every schedule (the safety net of LISTEN/NOTIFY). */
  readonly scheduleRescanMs: number;
  /** SLUICE_JOB_HEAP_MB: V8 heap cap of each job's worker thread (MiB); a job allocating past it fails alone. */
  readonly jobHeapMb: number;
  /** SLUICE_HTTP_ADDR: host:port of the operator's HTTP callback for external schedulers. */
  readonly httpAddr: string;
  /** SLUICE_CALLBACK_TOKEN: the bearer token the HTTP callback requires; without it the callback is off. */
  readonly callbackToken?: string;
  /** SLUICE_FLINK_GATEWAY_URL / SLUICE_FLINK_REST_URL: a Flink SQL Gateway and the cluster's REST API; both enable the flink runner. */
  readonly flinkGatewayUrl?: string;
  readonly flinkRestUrl?: string;
  /** SLUICE_METRICS_ADDR: host:port serving Prometheus metrics at GET /metrics; empty means no endpoint. */
  readonly metricsAddr?: string;
  /** SLUICE_METRICS_MAX_GROUPS: groups that get series of their own; beyond it only aggregates (docs/metrics.md). */
  readonly metricsMaxGroups: number;
  /** SLUICE_PLUGIN_SETTINGS_FILE: a JSON file of plugin settings `{ "<plugin id>": { "<setting>": value } }`; SLUICE_PLUGIN_<ID>_<SETTING> variables win. */
  readonly pluginSettingsFile?: string;
  /** SLUICE_PUBLIC_HTTP_URL: the base URL at which external engines reach Sluice's HTTP server (e.g. http://sluice:8080). */
  readonly publicHttpUrl?: string;
  /**
   * SLUICE_CALLBACK_INLONG_USERS: `user:password[,user:password…]`, the InLong users accepted on InLong's
   * callback path only (query `username`/`password`, or HTTP Basic), as InLong's schedulers send them.
   */
  readonly inlongUsers?: ReadonlyMap<string, string>;
}

export const DEFAULTS = {
  SLUICE_GRPC_ADDR: '127.0.0.1:50051',
  SLUICE_PLUGIN_PATH: '',
  SLUICE_LOG_LEVEL: 'info',
  SLUICE_LOG_PRETTY: 'false',
  SLUICE_HOOK_TIMEOUT_MS: '30000',
  SLUICE_SHUTDOWN_GRACE_MS: '10000',
  SLUICE_DATA_DIR: '.sluice',
  SLUICE_DATABASE_URL: '',
  SLUICE_OPERATOR_ADDR: '',
  SLUICE_REPLICA_ID: '',
  SLUICE_SCHEDULE_ADDR: '',
  SLUICE_RUNNER: 'embedded',
  SLUICE_MAX_RUNNING_JOBS: '4',
  SLUICE_JOB_THREADS: '0',
  SLUICE_FAILOVER_MS: '5000',
  SLUICE_SCHEDULE_RESCAN_MS: '30000',
  SLUICE_JOB_HEAP_MB: '512',
  SLUICE_HTTP_ADDR: '127.0.0.1:8080',
  SLUICE_CALLBACK_TOKEN: '',
  SLUICE_FLINK_GATEWAY_URL: '',
  SLUICE_FLINK_REST_URL: '',
  SLUICE_METRICS_ADDR: '',
  SLUICE_METRICS_MAX_GROUPS: '1000',
  SLUICE_PLUGIN_SETTINGS_FILE: '',
  SLUICE_PUBLIC_HTTP_URL: '',
  SLUICE_CALLBACK_INLONG_USERS: '',
} as const;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n <= 0) {
    throw new ConfigError(`${name}: expected a positive integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function nonNegativeInt(name: string, raw: string): number {
  return raw === '0' ? 0 : positiveInt(name, raw);
}

function hostPort(name: string, raw: string): string {
  if (!/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(raw))
    throw new ConfigError(`${name}: expected host:port, got ${JSON.stringify(raw)}`);
  return raw;
}

/** Reads the settings; throws ConfigError naming the variable, what was expected and what came. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const get = (name: keyof typeof DEFAULTS) => {
    const v = env[name];
    return v === undefined || v === '' ? DEFAULTS[name] : v;
  };
  const grpcAddr = hostPort('SLUICE_GRPC_ADDR', get('SLUICE_GRPC_ADDR'));
  const logLevel = get('SLUICE_LOG_LEVEL');
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) {
    throw new ConfigError(
      `SLUICE_LOG_LEVEL: expected one of debug, info, warn, error, silent, got ${JSON.stringify(logLevel)}`,
    );
  }
  const logPretty = get('SLUICE_LOG_PRETTY');
  if (logPretty !== 'true' && logPretty !== 'false')
    throw new ConfigError(`SLUICE_LOG_PRETTY: expected true or false, got ${JSON.stringify(logPretty)}`);
  const databaseUrl = get('SLUICE_DATABASE_URL');
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(
      `SLUICE_DATABASE_URL: expected a postgres:// or postgresql:// URL, got ${JSON.stringify(databaseUrl.replace(/\/\/[^@/]*@/, '//***@'))}`,
    );
  }
  const operatorAddr = get('SLUICE_OPERATOR_ADDR') && hostPort('SLUICE_OPERATOR_ADDR', get('SLUICE_OPERATOR_ADDR'));
  const scheduleAddr = get('SLUICE_SCHEDULE_ADDR') && hostPort('SLUICE_SCHEDULE_ADDR', get('SLUICE_SCHEDULE_ADDR'));
  const metricsAddr = get('SLUICE_METRICS_ADDR') && hostPort('SLUICE_METRICS_ADDR', get('SLUICE_METRICS_ADDR'));
  const runner = get('SLUICE_RUNNER');
  const flinkGatewayUrl = get('SLUICE_FLINK_GATEWAY_URL');
  const flinkRestUrl = get('SLUICE_FLINK_REST_URL');
  for (const [name, url] of [
    ['SLUICE_FLINK_GATEWAY_URL', flinkGatewayUrl],
    ['SLUICE_FLINK_REST_URL', flinkRestUrl],
  ] as const) {
    if (url && !/^https?:\/\/\S+$/.test(url))
      throw new ConfigError(`${name}: expected an http(s):// URL, got ${JSON.stringify(url)}`);
  }
  if (Boolean(flinkGatewayUrl) !== Boolean(flinkRestUrl)) {
    throw new ConfigError(
      `SLUICE_FLINK_GATEWAY_URL and SLUICE_FLINK_REST_URL: expected both or neither, got only ${flinkGatewayUrl ? 'the gateway' : 'the REST URL'}`,
    );
  }
  const publicHttpUrl = get('SLUICE_PUBLIC_HTTP_URL');
  if (publicHttpUrl && !/^https?:\/\/\S+$/.test(publicHttpUrl))
    throw new ConfigError(`SLUICE_PUBLIC_HTTP_URL: expected an http(s):// URL, got ${JSON.stringify(publicHttpUrl)}`);
  const inlongUsers = parseInlongUsers(get('SLUICE_CALLBACK_INLONG_USERS'));
  if (runner !== 'embedded' && runner !== 'flink')
    throw new ConfigError(`SLUICE_RUNNER: expected embedded or flink, got ${JSON.stringify(runner)}`);
  if (runner === 'flink' && !flinkGatewayUrl)
    throw new ConfigError(
      'SLUICE_RUNNER: expected embedded, or flink together with SLUICE_FLINK_GATEWAY_URL, got "flink" with no gateway',
    );
  return {
    grpcAddr,
    pluginPath: get('SLUICE_PLUGIN_PATH')
      .split(delimiter)
      .filter((p) => p !== ''),
    logLevel: logLevel as LogLevel,
    logPretty: logPretty === 'true',
    hookTimeoutMs: positiveInt('SLUICE_HOOK_TIMEOUT_MS', get('SLUICE_HOOK_TIMEOUT_MS')),
    shutdownGraceMs: positiveInt('SLUICE_SHUTDOWN_GRACE_MS', get('SLUICE_SHUTDOWN_GRACE_MS')),
    dataDir: get('SLUICE_DATA_DIR'),
    ...(databaseUrl ? { databaseUrl } : {}),
    ...(operatorAddr ? { operatorAddr } : {}),
    replicaId: get('SLUICE_REPLICA_ID') || hostname(),
    ...(scheduleAddr ? { scheduleAddr } : {}),
    runner,
    maxRunningJobs: positiveInt('SLUICE_MAX_RUNNING_JOBS', get('SLUICE_MAX_RUNNING_JOBS')),
    jobThreads: nonNegativeInt('SLUICE_JOB_THREADS', get('SLUICE_JOB_THREADS')),
    failoverMs: positiveInt('SLUICE_FAILOVER_MS', get('SLUICE_FAILOVER_MS')),
    scheduleRescanMs: positiveInt('SLUICE_SCHEDULE_RESCAN_MS', get('SLUICE_SCHEDULE_RESCAN_MS')),
    jobHeapMb: positiveInt('SLUICE_JOB_HEAP_MB', get('SLUICE_JOB_HEAP_MB')),
    httpAddr: hostPort('SLUICE_HTTP_ADDR', get('SLUICE_HTTP_ADDR')),
    ...(get('SLUICE_CALLBACK_TOKEN') ? { callbackToken: get('SLUICE_CALLBACK_TOKEN') } : {}),
    ...(flinkGatewayUrl ? { flinkGatewayUrl, flinkRestUrl } : {}),
    ...(metricsAddr ? { metricsAddr } : {}),
    metricsMaxGroups: positiveInt('SLUICE_METRICS_MAX_GROUPS', get('SLUICE_METRICS_MAX_GROUPS')),
    ...(get('SLUICE_PLUGIN_SETTINGS_FILE') ? { pluginSettingsFile: get('SLUICE_PLUGIN_SETTINGS_FILE') } : {}),
    ...(publicHttpUrl ? { publicHttpUrl: publicHttpUrl.replace(/\/+$/, '') } : {}),
    ...(inlongUsers.size > 0 ? { inlongUsers } : {}),
  };
}

/** `user:password[,user:password…]`; the password may hold ':' (the first one splits). Never echoes a password. */
function parseInlongUsers(raw: string): Map<string, string> {
  const users = new Map<string, string>();
  if (raw === '') return users;
  raw.split(',').forEach((entry, i) => {
    const at = entry.indexOf(':');
    const user = at > 0 ? entry.slice(0, at).trim() : '';
    if (user === '' || at === entry.length - 1)
      throw new ConfigError(
        `SLUICE_CALLBACK_INLONG_USERS: expected user:password[,user:password…], got an entry ${i + 1} without ${user === '' ? 'a user name' : `a password (user ${JSON.stringify(user)})`}`,
      );
    if (users.has(user))
      throw new ConfigError(`SLUICE_CALLBACK_INLONG_USERS: expected each user once, got ${JSON.stringify(user)} twice`);
    users.set(user, entry.slice(at + 1));
  });
  return users;
}
