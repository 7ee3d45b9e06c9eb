import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { DEFAULT_SECRET_ENV, parseSecretEnv } from 'sluice/sdk';
import { MIN_TOKEN_LENGTH, type Role, parseTokens } from './auth.js';
import type { TlsFiles } from './grpc-auth.js';
import type { LogLevel } from './logger.js';
import { DEFAULT_MAX_WATCH_STREAMS } from './limits.js';
import { parseSecretKey } from './secret-box.js';

/** Who may call, and over what (docs/security.md). */
export interface SecurityConfig {
  /** SLUICE_AUTH_TOKENS, SLUICE_AUTH_TOKENS_FILE and SLUICE_CALLBACK_TOKEN (as operator): token to role. Empty: auth off. */
  readonly tokens: ReadonlyMap<string, Role>;
  /** SLUICE_SERVICE_TOKEN: sent when this process calls another Sluice service (an admin token there). */
  readonly serviceToken?: string;
  /** SLUICE_TLS_CERT / _KEY / _CLIENT_CA / _CA: TLS, and mutual TLS when a client CA is set. */
  readonly tls?: TlsFiles;
  /** SLUICE_INSECURE=1: listen on a non-loopback address without credentials (logged at start). */
  readonly insecure: boolean;
}

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
  /** SLUICE_MAX_WATCH_STREAMS: WatchJob streams this process keeps open at once; one more is RESOURCE_EXHAUSTED. */
  readonly maxWatchStreams: number;
  /**
   * SLUICE_JOB_THREADS: worker threads jobs run in (0: in the service's own thread). Default `cores`: one per
   * core (os.availableParallelism()), never more than SLUICE_MAX_RUNNING_JOBS.
   */
  readonly jobThreads: number;
  /**
   * SLUICE_FAILOVER_MS: how soon a live replica takes over what a dead one left: windows it had claimed, jobs
   * whose lease it stopped renewing. Also how often replicas look for such work.
   */
  readonly failoverMs: number;
  /** SLUICE_SCHEDULE_RESCAN_MS: how often a schedule replica re-reads every schedule (the safety net of LISTEN/NOTIFY). */
  readonly scheduleRescanMs: number;
  /**
   * SLUICE_JOB_HEAP_MB: V8 heap cap of each job's worker thread (MiB); a job allocating past it fails alone.
   * V8 also collects the thread's heap more often the lower the cap (docs/runners.md).
   */
  readonly jobHeapMb: number;
  /**
   * SLUICE_JOB_YOUNG_GEN_MB: V8 young-generation cap of each job's worker thread (MiB): room for the batches
   * in flight to die young instead of being promoted to the old generation (docs/runners.md); 0: V8's default.
   */
  readonly jobYoungGenMb: number;
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
  readonly security: SecurityConfig;
  /** SLUICE_FILE_ROOTS: the folders the file connector may read and write under (absolute; default <data dir>/files). */
  readonly fileRoots: readonly string[];
  /** SLUICE_ALLOWED_HOSTS: hosts connectors may connect to (host, host:port, *.domain, or unix:/path); unset: any. */
  readonly allowedHosts?: readonly string[];
  /** SLUICE_PLUGIN_SETTINGS_FILE: a JSON file of plugin settings `{ "<plugin id>": { "<setting>": value } }`; SLUICE_PLUGIN_<ID>_<SETTING> variables win. */
  readonly pluginSettingsFile?: string;
  /** SLUICE_PUBLIC_HTTP_URL: the base URL at which external engines reach Sluice's HTTP server (e.g. http://sluice:8080). */
  readonly publicHttpUrl?: string;
  /**
   * SLUICE_CALLBACK_INLONG_USERS: `user:password[,user:password…]`, the InLong users accepted on InLong's
   * callback path only (query `username`/`password`, or HTTP Basic), as InLong's schedulers send them.
   */
  readonly inlongUsers?: ReadonlyMap<string, string>;
  /**
   * SLUICE_SECRET_KEY: the AES-256-GCM key secret options are stored under (32 bytes, hex or base64). Unset:
   * a key made on first start in the data folder; required with SLUICE_DATABASE_URL (replicas share it).
   */
  readonly secretKey?: Buffer;
  /**
   * SLUICE_SECRET_ENV: the environment variables `{"secretRef": "env:NAME"}` may name: `NAME`, or `PREFIX*` for
   * every name starting with PREFIX (comma-separated; `none`: no env references). Sluice's own settings never.
   * Undefined when unset: the default, `SLUICE_SECRET_*`.
   */
  readonly secretEnv?: readonly string[];
  /** SLUICE_SECRETS_DIR: the folder `{"secretRef": "file:/path"}` may name files in (symlinks resolved); unset: no file references. */
  readonly secretsDir?: string;
  /** SLUICE_TRACE_URL_TEMPLATE: a trace viewer's URL with `{traceId}` (e.g. Jaeger's), for the dashboard's trace links. */
  readonly traceUrlTemplate?: string;
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
  SLUICE_MAX_WATCH_STREAMS: String(DEFAULT_MAX_WATCH_STREAMS),
  SLUICE_JOB_THREADS: 'cores',
  SLUICE_FAILOVER_MS: '5000',
  SLUICE_SCHEDULE_RESCAN_MS: '30000',
  SLUICE_JOB_HEAP_MB: '512',
  SLUICE_JOB_YOUNG_GEN_MB: '24',
  SLUICE_HTTP_ADDR: '127.0.0.1:8080',
  SLUICE_CALLBACK_TOKEN: '',
  SLUICE_FLINK_GATEWAY_URL: '',
  SLUICE_FLINK_REST_URL: '',
  SLUICE_METRICS_ADDR: '',
  SLUICE_METRICS_MAX_GROUPS: '1000',
  SLUICE_AUTH_TOKENS: '',
  SLUICE_AUTH_TOKENS_FILE: '',
  SLUICE_SERVICE_TOKEN: '',
  SLUICE_TLS_CERT: '',
  SLUICE_TLS_KEY: '',
  SLUICE_TLS_CLIENT_CA: '',
  SLUICE_TLS_CA: '',
  SLUICE_INSECURE: '',
  SLUICE_FILE_ROOTS: '',
  SLUICE_ALLOWED_HOSTS: '',
  SLUICE_PLUGIN_SETTINGS_FILE: '',
  SLUICE_PUBLIC_HTTP_URL: '',
  SLUICE_CALLBACK_INLONG_USERS: '',
  SLUICE_SECRET_KEY: '',
  SLUICE_SECRET_ENV: DEFAULT_SECRET_ENV,
  SLUICE_SECRETS_DIR: '',
  SLUICE_TRACE_URL_TEMPLATE: '',
} as const;

/**
 * SLUICE_SECRET_ENV: `NAME` or `PREFIX*` entries, comma-separated; `none`: no env references. Read by the SDK's
 * parseSecretEnv, the one reading of it (plugins that read a variable an option names check it there too).
 */
function readSecretEnv(raw: string): string[] {
  const read = parseSecretEnv(raw);
  if (!read.ok) throw new ConfigError(`SLUICE_SECRET_ENV: ${read.problem}`);
  return [...read.entries];
}

/** SLUICE_SECRETS_DIR: an absolute folder (relative ones are resolved), never the root of the file system. */
export function parseSecretsDir(raw: string): string | undefined {
  if (raw === '') return undefined;
  const dir = resolve(raw);
  if (dirname(dir) === dir)
    throw new ConfigError(
      `SLUICE_SECRETS_DIR: expected a folder holding only the secrets jobs may read, got the root ${JSON.stringify(dir)}`,
    );
  return dir;
}

/** True for 127.0.0.0/8, ::1 and localhost: a listener only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function loadSecurity(get: (name: keyof typeof DEFAULTS) => string, grpcAddr: string): SecurityConfig {
  const tokens = new Map<string, Role>();
  const add = (text: string, source: string) => {
    try {
      for (const [token, role] of parseTokens(text, source)) tokens.set(token, role);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  };
  add(get('SLUICE_AUTH_TOKENS'), 'SLUICE_AUTH_TOKENS');
  const file = get('SLUICE_AUTH_TOKENS_FILE');
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `SLUICE_AUTH_TOKENS_FILE: expected a readable file of token:role lines, got ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code})`,
      );
    }
    add(text, 'SLUICE_AUTH_TOKENS_FILE');
  }
  const callback = get('SLUICE_CALLBACK_TOKEN');
  if (callback) {
    if (callback.length < MIN_TOKEN_LENGTH || /\s/.test(callback))
      throw new ConfigError(
        `SLUICE_CALLBACK_TOKEN: expected a token of at least ${MIN_TOKEN_LENGTH} characters without spaces, got ${callback.length} characters`,
      );
    if (!tokens.has(callback)) tokens.set(callback, 'operator');
  }
  const [cert, key, clientCa, ca] = [
    get('SLUICE_TLS_CERT'),
    get('SLUICE_TLS_KEY'),
    get('SLUICE_TLS_CLIENT_CA'),
    get('SLUICE_TLS_CA'),
  ];
  if (Boolean(cert) !== Boolean(key))
    throw new ConfigError(
      `SLUICE_TLS_CERT and SLUICE_TLS_KEY: expected both or neither, got only ${cert ? 'the certificate' : 'the key'}`,
    );
  if ((clientCa || ca) && !cert)
    throw new ConfigError(
      `${clientCa ? 'SLUICE_TLS_CLIENT_CA' : 'SLUICE_TLS_CA'}: expected together with SLUICE_TLS_CERT and SLUICE_TLS_KEY, got it alone`,
    );
  const insecureRaw = get('SLUICE_INSECURE');
  if (!['', '0', '1'].includes(insecureRaw))
    throw new ConfigError(`SLUICE_INSECURE: expected 1 or 0, got ${JSON.stringify(insecureRaw)}`);
  const insecure = insecureRaw === '1';
  const host = grpcAddr.slice(0, grpcAddr.lastIndexOf(':'));
  if (!isLoopbackHost(host) && tokens.size === 0 && !clientCa && !insecure)
    throw new ConfigError(
      `SLUICE_GRPC_ADDR: expected a loopback address, or credentials (SLUICE_AUTH_TOKENS, SLUICE_AUTH_TOKENS_FILE or SLUICE_TLS_CLIENT_CA) for ${JSON.stringify(host)}, got none; set SLUICE_INSECURE=1 to listen there without them`,
    );
  const serviceToken = get('SLUICE_SERVICE_TOKEN');
  return {
    tokens,
    ...(serviceToken ? { serviceToken } : {}),
    ...(cert
      ? {
          tls: {
            certFile: cert,
            keyFile: key,
            ...(clientCa ? { clientCaFile: clientCa } : {}),
            ...(ca ? { caFile: ca } : {}),
          },
        }
      : {}),
    insecure,
  };
}

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

/** SLUICE_JOB_YOUNG_GEN_MB: MiB, or 0 to leave the young generation's size to V8. */
function youngGenMb(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n))
    throw new ConfigError(
      `SLUICE_JOB_YOUNG_GEN_MB: expected MiB as a non-negative integer (0: V8's default), got ${JSON.stringify(raw)}`,
    );
  return n;
}

function nonNegativeInt(name: string, raw: string): number {
  return raw === '0' ? 0 : positiveInt(name, raw);
}

/** `cores`: one thread per core, as many as jobs may run at once at most; else a count (0: no threads). */
function jobThreads(raw: string, maxRunningJobs: number): number {
  if (raw === 'cores') return Math.max(1, Math.min(availableParallelism(), maxRunningJobs));
  if (!/^\d+$/.test(raw))
    throw new ConfigError(`SLUICE_JOB_THREADS: expected 'cores' or a non-negative integer, got ${JSON.stringify(raw)}`);
  return nonNegativeInt('SLUICE_JOB_THREADS', raw);
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
  const traceUrlTemplate = get('SLUICE_TRACE_URL_TEMPLATE');
  if (traceUrlTemplate && !/^https?:\/\/\S*\{traceId\}\S*$/.test(traceUrlTemplate))
    throw new ConfigError(
      `SLUICE_TRACE_URL_TEMPLATE: expected an http(s):// URL holding {traceId}, got ${JSON.stringify(traceUrlTemplate)}`,
    );
  const inlongUsers = parseInlongUsers(get('SLUICE_CALLBACK_INLONG_USERS'));
  if (runner !== 'embedded' && runner !== 'flink')
    throw new ConfigError(`SLUICE_RUNNER: expected embedded or flink, got ${JSON.stringify(runner)}`);
  if (runner === 'flink' && !flinkGatewayUrl)
    throw new ConfigError(
      'SLUICE_RUNNER: expected embedded, or flink together with SLUICE_FLINK_GATEWAY_URL, got "flink" with no gateway',
    );
  const dataDir = get('SLUICE_DATA_DIR');
  const fileRoots = (get('SLUICE_FILE_ROOTS') || join(dataDir, 'files'))
    .split(delimiter)
    .filter((p) => p !== '')
    .map((p) => resolve(p));
  const secretKeyText = get('SLUICE_SECRET_KEY');
  const secretKey = secretKeyText ? parseSecretKey(secretKeyText) : undefined;
  if (secretKeyText && !secretKey)
    throw new ConfigError(
      `SLUICE_SECRET_KEY: expected 32 bytes as 64 hex digits or as base64, got ${secretKeyText.length} characters that are neither (make one with: openssl rand -hex 32)`,
    );
  if (databaseUrl && !secretKey)
    throw new ConfigError(
      'SLUICE_SECRET_KEY: expected a key (32 bytes, hex or base64) with SLUICE_DATABASE_URL, got none: replicas sharing a PostgreSQL store must share the key secret options are stored under (make one with: openssl rand -hex 32)',
    );
  const secretEnv = readSecretEnv(get('SLUICE_SECRET_ENV'));
  const secretsDir = parseSecretsDir(get('SLUICE_SECRETS_DIR'));
  const allowedHosts = get('SLUICE_ALLOWED_HOSTS')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  return {
    grpcAddr,
    pluginPath: get('SLUICE_PLUGIN_PATH')
      .split(delimiter)
      .filter((p) => p !== ''),
    logLevel: logLevel as LogLevel,
    logPretty: logPretty === 'true',
    hookTimeoutMs: positiveInt('SLUICE_HOOK_TIMEOUT_MS', get('SLUICE_HOOK_TIMEOUT_MS')),
    shutdownGraceMs: positiveInt('SLUICE_SHUTDOWN_GRACE_MS', get('SLUICE_SHUTDOWN_GRACE_MS')),
    dataDir,
    ...(databaseUrl ? { databaseUrl } : {}),
    ...(operatorAddr ? { operatorAddr } : {}),
    replicaId: get('SLUICE_REPLICA_ID') || hostname(),
    ...(scheduleAddr ? { scheduleAddr } : {}),
    runner,
    maxRunningJobs: positiveInt('SLUICE_MAX_RUNNING_JOBS', get('SLUICE_MAX_RUNNING_JOBS')),
    maxWatchStreams: positiveInt('SLUICE_MAX_WATCH_STREAMS', get('SLUICE_MAX_WATCH_STREAMS')),
    jobThreads: jobThreads(
      get('SLUICE_JOB_THREADS'),
      positiveInt('SLUICE_MAX_RUNNING_JOBS', get('SLUICE_MAX_RUNNING_JOBS')),
    ),
    failoverMs: positiveInt('SLUICE_FAILOVER_MS', get('SLUICE_FAILOVER_MS')),
    scheduleRescanMs: positiveInt('SLUICE_SCHEDULE_RESCAN_MS', get('SLUICE_SCHEDULE_RESCAN_MS')),
    jobHeapMb: positiveInt('SLUICE_JOB_HEAP_MB', get('SLUICE_JOB_HEAP_MB')),
    jobYoungGenMb: youngGenMb(get('SLUICE_JOB_YOUNG_GEN_MB')),
    httpAddr: hostPort('SLUICE_HTTP_ADDR', get('SLUICE_HTTP_ADDR')),
    ...(get('SLUICE_CALLBACK_TOKEN') ? { callbackToken: get('SLUICE_CALLBACK_TOKEN') } : {}),
    ...(flinkGatewayUrl ? { flinkGatewayUrl, flinkRestUrl } : {}),
    ...(metricsAddr ? { metricsAddr } : {}),
    metricsMaxGroups: positiveInt('SLUICE_METRICS_MAX_GROUPS', get('SLUICE_METRICS_MAX_GROUPS')),
    security: loadSecurity(get, grpcAddr),
    fileRoots,
    ...(allowedHosts.length > 0 ? { allowedHosts } : {}),
    ...(get('SLUICE_PLUGIN_SETTINGS_FILE') ? { pluginSettingsFile: get('SLUICE_PLUGIN_SETTINGS_FILE') } : {}),
    ...(publicHttpUrl ? { publicHttpUrl: publicHttpUrl.replace(/\/+$/, '') } : {}),
    ...(inlongUsers.size > 0 ? { inlongUsers } : {}),
    ...(secretKey ? { secretKey } : {}),
    ...(env.SLUICE_SECRET_ENV ? { secretEnv } : {}),
    ...(secretsDir ? { secretsDir } : {}),
    ...(traceUrlTemplate ? { traceUrlTemplate } : {}),
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
