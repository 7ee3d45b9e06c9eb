import type { AddressInfo } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { ERROR_CODES, SluiceError, setHostPolicy, type Logger, type ScheduleInfo } from 'sluice/sdk';
import { Catalog } from './catalog/domain/catalog.js';
import { catalogGrpc } from './catalog/grpc/adapter.js';
import type { Config } from './core/config.js';
import { join } from 'node:path';
import { createLogger, registerSecretOptions } from './core/logger.js';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import { Authenticator } from './core/auth.js';
import { type ClientSecurity, clientSecurity } from './core/grpc-auth.js';
import { BUNDLED_PLUGINS_DIR } from './core/paths.js';
import { OptionSecrets } from './core/option-secrets.js';
import { SecretBox, dataDirSecretKey } from './core/secret-box.js';
import { type RunningServer, type ServiceBinding, startGrpcServer } from './core/server.js';
import { HookRunner } from './host/hook-runner.js';
import { type PluginSet, loadPlugins } from './host/loader.js';
import type { Clock } from './schedule/domain/clock.js';
import { type Dispatcher, ScheduleService } from './schedule/domain/service.js';
import { GrpcDispatcher } from './schedule/grpc/dispatcher.js';
import { scheduleGrpc } from './schedule/grpc/adapter.js';
import { openSluiceStore } from './store/index.js';
import { restoreFreshness } from './store/metered.js';
import { OperatorService, type SchedulePort } from './operator/domain/service.js';
import type { Runner } from './operator/domain/runner.js';
import { operatorGrpc } from './operator/grpc/adapter.js';
import { GrpcSchedulePort } from './operator/grpc/schedule-port.js';
import { CALLBACK_PATH, createCallbackServer } from './operator/http/callback.js';
import { dashboardUrl } from './operator/http/static-ui.js';
import { EmbeddedRunner } from './operator/runners/embedded.js';
import { PooledRunner } from './operator/runners/pool.js';
import { FlinkRunner } from './operator/runners/flink.js';
import { FlinkJobRunner } from './operator/runners/flink-adapter.js';
import { systemClock } from './schedule/system-clock.js';
import { configureMetrics } from './core/metrics.js';
import { metricsOtlpRequested } from './telemetry/env.js';
import { type MetricsServer, serveMetrics, startMetrics } from './telemetry/metrics.js';

export type ServiceName = 'catalog' | 'schedule' | 'operator';
export const ALL_SERVICES: readonly ServiceName[] = ['catalog', 'schedule', 'operator'];

export interface Sluice {
  readonly server: RunningServer;
  readonly plugins: PluginSet;
  /** The schedule service's use cases, when it runs here (tests drive them directly). */
  readonly schedule?: ScheduleService;
  /** The operator's use cases, when it runs here. */
  readonly operator?: OperatorService;
  /** The HTTP callback's port, when it is on. */
  readonly callbackPort?: number;
  /** host:port of GET /metrics, when SLUICE_METRICS_ADDR is set. */
  readonly metricsAddress?: string;
  close(): Promise<void>;
}

export interface StartOptions {
  readonly config: Config;
  readonly services?: readonly ServiceName[];
  readonly logger?: Logger;
  /** Defaults to the bundled plugins folder; tests point it elsewhere. */
  readonly bundledPluginsDir?: string;
  /** The schedule service's clock; tests drive a ManualClock. */
  readonly clock?: Clock;
}

/** The data folder holds the store (and, in it, every stored option): only the service user reads it. */
function restrictDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** A GrpcSchedulePort made on first use, once the schedule service's address is known. */
class LazySchedulePort implements SchedulePort {
  #inner?: GrpcSchedulePort;
  constructor(
    private readonly address: () => string | undefined,
    private readonly security: ClientSecurity,
  ) {}

  #get(): GrpcSchedulePort {
    const address = this.address();
    // UNAVAILABLE, as for a service that does not answer: the caller may try again later.
    if (!address) throw new SluiceError(ERROR_CODES.UNAVAILABLE, 'the schedule service address is not known yet');
    this.#inner ??= new GrpcSchedulePort(address, undefined, this.security);
    return this.#inner;
  }

  register(info: ScheduleInfo) {
    return this.#get().register(info);
  }

  update(info: ScheduleInfo) {
    return this.#get().update(info);
  }

  unregister(groupId: string) {
    return this.#get().unregister(groupId);
  }

  fireDue(groupId: string, asOf: number) {
    return this.#get().fireDue(groupId, asOf);
  }

  claimWindow(input: Parameters<SchedulePort['claimWindow']>[0]) {
    return this.#get().claimWindow(input);
  }

  close(): void {
    this.#inner?.close();
  }
}

/**
 * A GrpcDispatcher made on first use, once the operator's address is known. Its retries back off to at most the
 * fail-over time: an operator replica that died is replaced (or restarted) within it, so waiting longer between
 * tries only delays the window; the attempts cover about a minute, as the default backoff does.
 */
class LazyDispatcher implements Dispatcher {
  #inner?: GrpcDispatcher;
  constructor(
    private readonly address: () => string | undefined,
    private readonly logger: Logger,
    private readonly security: ClientSecurity,
    private readonly failoverMs: number,
  ) {}

  #get(): GrpcDispatcher {
    const address = this.address();
    // UNAVAILABLE, the Dispatcher's 'may get through later': a window claimed meanwhile is left for take-over.
    if (!address) throw new SluiceError(ERROR_CODES.UNAVAILABLE, 'the operator address is not known yet');
    const maxBackoffMs = Math.min(30_000, this.failoverMs);
    this.#inner ??= new GrpcDispatcher({
      address,
      logger: this.logger,
      security: this.security,
      maxBackoffMs,
      maxAttempts: Math.max(8, Math.ceil(60_000 / maxBackoffMs)),
    });
    return this.#inner;
  }

  async submit(request: Parameters<Dispatcher['submit']>[0], signal?: AbortSignal) {
    return this.#get().submit(request, signal);
  }

  async follow(jobIds: readonly string[], onRunning: () => void, signal?: AbortSignal) {
    return this.#get().follow(jobIds, onRunning, signal);
  }

  close(): void {
    this.#inner?.close();
  }
}

/**
 * The composition root: loads the plugins once, builds each requested service over them and serves
 * them all on one gRPC server (plus the operator's HTTP callback when a token is set). When a step fails
 * (a port in use, say), what the earlier ones opened is closed again before the error is thrown.
 */
export async function startSluice(options: StartOptions): Promise<Sluice> {
  const opened: (() => unknown)[] = [];
  try {
    return await assemble(options, opened);
  } catch (err) {
    for (const close of opened.reverse())
      await Promise.resolve()
        .then(close)
        .catch(() => {});
    throw err;
  }
}

/** Listens with `listen`; a failure is FAILED_PRECONDITION naming the setting and the address. */
async function listenOn<T>(setting: string, addr: string, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    // The reason is in the message; no cause, which the log would print a second time.
    const reason = err instanceof Error ? err.message : String(err);
    throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, `${setting}: cannot listen on ${addr}: ${reason}`, {
      field: setting,
    });
  }
}

/** startSluice's steps; each thing opened is added to `opened` as the way to close it. */
async function assemble(options: StartOptions, opened: (() => unknown)[]): Promise<Sluice> {
  const { config } = options;
  const logger =
    options.logger ?? createLogger(config.logLevel, { service: 'sluice' }, undefined, { pretty: config.logPretty });
  const services = options.services ?? ALL_SERVICES;
  // Metrics first: instruments made by the services below bind to the provider that is global when they are made.
  configureMetrics({ maxGroups: config.metricsMaxGroups });
  if (config.metricsAddr || metricsOtlpRequested(process.env)) await startMetrics();
  let metricsServer: MetricsServer | undefined;
  if (config.metricsAddr) {
    metricsServer = await serveMetrics(config.metricsAddr);
    opened.push(() => metricsServer?.close());
    logger.info('metrics listening', { address: metricsServer.address, path: '/metrics' });
  }
  const plugins = await loadPlugins({
    bundledDir: options.bundledPluginsDir ?? BUNDLED_PLUGINS_DIR,
    extraDirs: config.pluginPath,
    settings: { env: process.env, ...(config.pluginSettingsFile ? { file: config.pluginSettingsFile } : {}) },
  });
  // Options a plugin marks writeOnly (passwords, keys) never reach a log line.
  for (const c of plugins.connectors.values()) {
    registerSecretOptions(c.plugin.sourceOptions);
    registerSecretOptions(c.plugin.sinkOptions);
  }
  for (const p of plugins.problems) logger.warn('plugin left out', { ...p });
  logger.info('plugins loaded', {
    connectors: [...plugins.connectors.keys()],
    engines: [...plugins.engines.keys()],
    problems: plugins.problems.length,
  });

  // One check for every entry point. Calls this process makes to its own server carry a token made
  // here at start; calls to other processes carry SLUICE_SERVICE_TOKEN.
  const { security } = config;
  const mutualTls = security.tls?.clientCaFile !== undefined;
  const internalToken = randomBytes(32).toString('base64url');
  const authOn = security.tokens.size > 0 || mutualTls;
  const auth = new Authenticator(authOn ? new Map([...security.tokens, [internalToken, 'admin']]) : new Map(), {
    // mTLS alone (no tokens): the client CA is the authority, a verified certificate is admin.
    ...(mutualTls && security.tokens.size === 0 ? { certificateRole: 'admin' as const } : {}),
  });
  if (security.insecure && !authOn)
    logger.warn('SLUICE_INSECURE=1: serving without authentication; anyone who reaches the port can do anything', {
      grpcAddr: config.grpcAddr,
    });
  const selfClient = clientSecurity(security.tls, authOn ? internalToken : undefined);
  const remoteClient = clientSecurity(security.tls, security.serviceToken);

  setHostPolicy({ fileRoots: config.fileRoots, ...(config.allowedHosts ? { allowedHosts: config.allowedHosts } : {}) });

  const hooks = new HookRunner({ timeoutMs: config.hookTimeoutMs, logger });
  const catalog = new Catalog(plugins, hooks);
  const bindings: ServiceBinding[] = [];
  if (services.includes('catalog')) {
    const { definition, implementation } = catalogGrpc(catalog, logger);
    bindings.push({ name: 'sluice.catalog.v1.CatalogService', definition, implementation: implementation as never });
  }
  // Schedules, the ledger, groups and jobs share one store (one SQLite file, or one PostgreSQL database).
  if ((services.includes('schedule') || services.includes('operator')) && !config.databaseUrl)
    restrictDataDir(config.dataDir);
  // Secret options are sealed under SLUICE_SECRET_KEY, or (one process on SQLite) a key made in the data folder.
  const secrets = services.includes('operator')
    ? new OptionSecrets(new SecretBox(config.secretKey ?? dataDirSecretKey(config.dataDir)))
    : undefined;
  const store =
    services.includes('schedule') || services.includes('operator')
      ? await openSluiceStore({
          sqlitePath: join(config.dataDir, 'sluice.db'),
          logger,
          ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
        })
      : undefined;
  if (store) opened.push(() => store.close());
  // Services in this process call each other through this very server unless told otherwise; its port is known once bound.
  const self: { address?: string } = {};
  let schedule: { service: ScheduleService; dispatcher: LazyDispatcher } | undefined;
  if (services.includes('schedule') && store) {
    const clock = options.clock ?? systemClock;
    const dispatcher = new LazyDispatcher(
      () => config.operatorAddr ?? self.address,
      logger,
      config.operatorAddr ? remoteClient : selfClient,
      config.failoverMs,
    );
    const service = new ScheduleService({
      store,
      engines: plugins.engines,
      hooks,
      clock,
      dispatcher,
      logger,
      owner: config.replicaId,
      leaseMs: config.failoverMs,
      rescanMs: config.scheduleRescanMs,
    });
    // Data freshness from the ledger, so that it is not empty after a restart until a window succeeds.
    if (config.metricsAddr || metricsOtlpRequested(process.env))
      logger.debug('data freshness restored', { groups: await restoreFreshness(store, config.metricsMaxGroups) });
    const { definition, implementation } = scheduleGrpc(service, clock, logger);
    bindings.push({ name: 'sluice.schedule.v1.ScheduleService', definition, implementation: implementation as never });
    schedule = { service, dispatcher };
  }
  let pool: PooledRunner | undefined;
  let operator: { service: OperatorService; schedules: LazySchedulePort; callback?: HttpServer } | undefined;
  if (services.includes('operator') && store) {
    const schedules = new LazySchedulePort(
      () => config.scheduleAddr ?? self.address,
      config.scheduleAddr ? remoteClient : selfClient,
    );
    // SLUICE_JOB_THREADS > 0: jobs run in worker threads (started up front: a thread's first job would
    // otherwise pay for loading the plugins), each under a heap cap; 0: in this thread.
    const threads = config.jobThreads;
    pool =
      threads > 0
        ? new PooledRunner({
            threads,
            jobsPerThread: Math.ceil(config.maxRunningJobs / threads),
            maxHeapMb: config.jobHeapMb,
            maxYoungGenerationMb: config.jobYoungGenMb,
            settings: { maxHeapMb: 'SLUICE_JOB_HEAP_MB', maxYoungGenerationMb: 'SLUICE_JOB_YOUNG_GEN_MB' },
            hookTimeoutMs: config.hookTimeoutMs,
            stallTimeoutMs: config.hookTimeoutMs,
            logger,
          })
        : undefined;
    if (pool) opened.push(() => pool?.close());
    const runners = new Map<string, Runner>([['embedded', pool ?? new EmbeddedRunner({ hooks })]]);
    if (config.flinkGatewayUrl && config.flinkRestUrl) {
      runners.set(
        'flink',
        new FlinkJobRunner(
          new FlinkRunner({ gatewayUrl: config.flinkGatewayUrl, restUrl: config.flinkRestUrl, logger }),
          hooks,
        ),
      );
    }
    const service = new OperatorService({
      store,
      catalog,
      connectors: plugins.connectors,
      schedules,
      runners,
      defaultRunner: config.runner,
      maxRunningJobs: config.maxRunningJobs,
      owner: config.replicaId,
      leaseMs: config.failoverMs,
      logger,
      ...(secrets ? { secrets } : {}),
    });
    const { definition, implementation } = operatorGrpc(service, logger, { maxWatchStreams: config.maxWatchStreams });
    bindings.push({ name: 'sluice.operator.v1.OperatorService', definition, implementation: implementation as never });
    operator = { service, schedules };
  }
  const server = await listenOn('SLUICE_GRPC_ADDR', config.grpcAddr, () =>
    startGrpcServer(config.grpcAddr, bindings, logger, {
      auth,
      ...(security.tls ? { tls: security.tls } : {}),
    }),
  );
  opened.push(() => server.shutdown(0));
  self.address = server.address;
  if (schedule) {
    opened.push(() => schedule?.dispatcher.close());
    opened.push(() => schedule?.service.stop());
    await schedule.service.start();
  }
  if (operator) {
    opened.push(() => operator?.schedules.close());
    opened.push(() => operator?.service.stop());
    await operator.service.start();
    if (security.tokens.size > 0 || config.inlongUsers) {
      const callback = createCallbackServer({
        service: operator.service,
        schedules: operator.schedules,
        auth: new Authenticator(security.tokens),
        ...(config.inlongUsers ? { inlongUsers: config.inlongUsers } : {}),
        logger,
        // The JSON API and the dashboard call the RPCs: the operator's on this server, the schedule's where it runs.
        api: {
          operatorAddress: () => self.address,
          operatorSecurity: selfClient,
          scheduleAddress: () => config.scheduleAddr ?? self.address,
          scheduleSecurity: config.scheduleAddr ? remoteClient : selfClient,
        },
        ...(config.traceUrlTemplate ? { traceUrlTemplate: config.traceUrlTemplate } : {}),
        ...(security.tls ? { tls: security.tls } : {}),
      });
      const [host, port] = [
        config.httpAddr.slice(0, config.httpAddr.lastIndexOf(':')).replace(/^\[|\]$/g, ''),
        Number(config.httpAddr.slice(config.httpAddr.lastIndexOf(':') + 1)),
      ];
      await listenOn(
        'SLUICE_HTTP_ADDR',
        config.httpAddr,
        () =>
          new Promise<void>((resolve, reject) => callback.once('error', reject).listen(port, host, () => resolve())),
      );
      opened.push(() => new Promise((resolve) => callback.close(resolve)));
      const bound = callback.address() as AddressInfo;
      logger.info('HTTP server listening', {
        address: `${host}:${bound.port}`,
        callback: CALLBACK_PATH,
        dashboard: dashboardUrl({ host, port: bound.port, tls: security.tls !== undefined }, config.publicHttpUrl),
      });
      operator.callback = callback;
    } else {
      logger.info(
        'HTTP server off (dashboard, JSON API and callback): set SLUICE_AUTH_TOKENS, SLUICE_CALLBACK_TOKEN or SLUICE_CALLBACK_INLONG_USERS to serve them, so that external schedulers can submit windows and call FireDue over HTTP',
      );
    }
  }
  if (store && !config.databaseUrl) chmodSync(join(config.dataDir, 'sluice.db'), 0o600);
  return {
    server,
    plugins,
    ...(schedule ? { schedule: schedule.service } : {}),
    ...(operator ? { operator: operator.service } : {}),
    ...(operator?.callback ? { callbackPort: (operator.callback.address() as AddressInfo).port } : {}),
    ...(metricsServer ? { metricsAddress: metricsServer.address } : {}),
    async close() {
      await schedule?.service.stop();
      await operator?.service.stop();
      await pool?.close();
      await new Promise<void>((resolve) => (operator?.callback ? operator.callback.close(() => resolve()) : resolve()));
      await server.shutdown(config.shutdownGraceMs);
      schedule?.dispatcher.close();
      operator?.schedules.close();
      await store?.close();
      await metricsServer?.close();
    },
  };
}
