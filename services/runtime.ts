import type { Logger } from 'sluice/sdk';
import { OperatorServiceService } from '../proto/gen/sluice/operator/v1/operator.js';
import { Catalog } from './catalog/domain/catalog.js';
import { catalogGrpc } from './catalog/grpc/adapter.js';
import type { Config } from './core/config.js';
import { join } from 'node:path';
import { createLogger } from './core/logger.js';
import { BUNDLED_PLUGINS_DIR } from './core/paths.js';
import { type RunningServer, type ServiceBinding, startGrpcServer } from './core/server.js';
import { HookRunner } from './host/hook-runner.js';
import { type PluginSet, loadPlugins } from './host/loader.js';
import type { Clock } from './schedule/domain/clock.js';
import type { ScheduleStore } from './schedule/domain/model.js';
import { type Dispatcher, ScheduleService } from './schedule/domain/service.js';
import { GrpcDispatcher } from './schedule/grpc/dispatcher.js';
import { scheduleGrpc } from './schedule/grpc/adapter.js';
import { openScheduleStore } from './schedule/store/index.js';
import { systemClock } from './schedule/system-clock.js';

export type ServiceName = 'catalog' | 'schedule' | 'operator';
export const ALL_SERVICES: readonly ServiceName[] = ['catalog', 'schedule', 'operator'];

export interface Sluice {
  readonly server: RunningServer;
  readonly plugins: PluginSet;
  /** The schedule service's use cases, when it runs here (tests drive them directly). */
  readonly schedule?: ScheduleService;
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

/** A GrpcDispatcher made on first use, once the operator's address is known. */
class LazyDispatcher implements Dispatcher {
  #inner?: GrpcDispatcher;
  constructor(
    private readonly address: () => string | undefined,
    private readonly logger: Logger,
  ) {}

  #get(): GrpcDispatcher {
    const address = this.address();
    if (!address) throw new Error('the operator address is not known yet');
    this.#inner ??= new GrpcDispatcher({ address, logger: this.logger });
    return this.#inner;
  }

  submit(request: Parameters<Dispatcher['submit']>[0], signal?: AbortSignal) {
    return this.#get().submit(request, signal);
  }

  follow(jobIds: readonly string[], onRunning: () => void, signal?: AbortSignal) {
    return this.#get().follow(jobIds, onRunning, signal);
  }

  close(): void {
    this.#inner?.close();
  }
}

/**
 * The composition root: loads the plugins once, builds each requested service over them and serves
 * them all on one gRPC server. The operator is served by its contract only until its use cases land;
 * its methods answer UNIMPLEMENTED.
 */
export async function startSluice(options: StartOptions): Promise<Sluice> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel, { service: 'sluice' });
  const services = options.services ?? ALL_SERVICES;
  const plugins = await loadPlugins({ bundledDir: options.bundledPluginsDir ?? BUNDLED_PLUGINS_DIR, extraDirs: config.pluginPath });
  for (const p of plugins.problems) logger.warn('plugin left out', { ...p });
  logger.info('plugins loaded', { connectors: [...plugins.connectors.keys()], engines: [...plugins.engines.keys()], problems: plugins.problems.length });

  const hooks = new HookRunner({ timeoutMs: config.hookTimeoutMs, logger });
  const bindings: ServiceBinding[] = [];
  if (services.includes('catalog')) {
    const { definition, implementation } = catalogGrpc(new Catalog(plugins, hooks), logger);
    bindings.push({ name: 'sluice.catalog.v1.CatalogService', definition, implementation: implementation as never });
  }
  let schedule: { service: ScheduleService; store: ScheduleStore; dispatcher: LazyDispatcher } | undefined;
  let bindOperatorLater: ((address: string) => void) | undefined;
  if (services.includes('schedule')) {
    const clock = options.clock ?? systemClock;
    const store = await openScheduleStore({ sqlitePath: join(config.dataDir, 'sluice.db'), ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}) });
    // The operator is this very server unless SLUICE_OPERATOR_ADDR names another; its port is known once bound.
    let operatorAddress = config.operatorAddr;
    const dispatcher = new LazyDispatcher(() => operatorAddress, logger);
    bindOperatorLater = (address) => void (operatorAddress ??= address);
    const service = new ScheduleService({ store, engines: plugins.engines, hooks, clock, dispatcher, logger, owner: config.replicaId });
    const { definition, implementation } = scheduleGrpc(service, clock, logger);
    bindings.push({ name: 'sluice.schedule.v1.ScheduleService', definition, implementation: implementation as never });
    schedule = { service, store, dispatcher };
  }
  if (services.includes('operator')) {
    bindings.push({ name: 'sluice.operator.v1.OperatorService', definition: OperatorServiceService, implementation: {} });
  }
  const server = await startGrpcServer(config.grpcAddr, bindings, logger);
  bindOperatorLater?.(server.address);
  if (schedule) await schedule.service.start();
  return {
    server,
    plugins,
    ...(schedule ? { schedule: schedule.service } : {}),
    async close() {
      await schedule?.service.stop();
      await server.shutdown(config.shutdownGraceMs);
      schedule?.dispatcher.close();
      await schedule?.store.close();
    },
  };
}
