import type { Logger } from 'sluice/sdk';
import { OperatorServiceService } from '../proto/gen/sluice/operator/v1/operator.js';
import { ScheduleServiceService } from '../proto/gen/sluice/schedule/v1/schedule.js';
import { Catalog } from './catalog/domain/catalog.js';
import { catalogGrpc } from './catalog/grpc/adapter.js';
import type { Config } from './core/config.js';
import { createLogger } from './core/logger.js';
import { BUNDLED_PLUGINS_DIR } from './core/paths.js';
import { type RunningServer, type ServiceBinding, startGrpcServer } from './core/server.js';
import { HookRunner } from './host/hook-runner.js';
import { type PluginSet, loadPlugins } from './host/loader.js';

export type ServiceName = 'catalog' | 'schedule' | 'operator';
export const ALL_SERVICES: readonly ServiceName[] = ['catalog', 'schedule', 'operator'];

export interface Sluice {
  readonly server: RunningServer;
  readonly plugins: PluginSet;
  close(): Promise<void>;
}

export interface StartOptions {
  readonly config: Config;
  readonly services?: readonly ServiceName[];
  readonly logger?: Logger;
  /** Defaults to the bundled plugins folder; tests point it elsewhere. */
  readonly bundledPluginsDir?: string;
}

/**
 * The composition root: loads the plugins once, builds each requested service over them and serves
 * them all on one gRPC server. Schedule and operator are served by their contracts only until their
 * use cases land; their methods answer UNIMPLEMENTED.
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
  if (services.includes('schedule')) {
    bindings.push({ name: 'sluice.schedule.v1.ScheduleService', definition: ScheduleServiceService, implementation: {} });
  }
  if (services.includes('operator')) {
    bindings.push({ name: 'sluice.operator.v1.OperatorService', definition: OperatorServiceService, implementation: {} });
  }
  const server = await startGrpcServer(config.grpcAddr, bindings, logger);
  return {
    server,
    plugins,
    async close() {
      await server.shutdown(config.shutdownGraceMs);
    },
  };
}
