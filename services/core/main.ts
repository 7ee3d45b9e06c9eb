import type { ServiceName } from '../runtime.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { exitOnOldNode } from './node-version.js';

/**
 * Runs services as a process: reads the settings, starts, and on SIGTERM or SIGINT drains calls in
 * flight, flushes traces and exits 0. A bad setting exits 2 with the variable named.
 */
export async function runMain(services: readonly ServiceName[]): Promise<void> {
  exitOnOldNode();
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel, { service: services.length === 1 ? services[0] : 'sluice' }, undefined, {
    pretty: config.logPretty,
  });
  // A closed log pipe (the parent went away) must not turn every log line into another error.
  process.stderr.on('error', () => {});
  // A plugin's stray promise or callback must not take the service down; it is logged instead.
  process.on('unhandledRejection', (reason) => logger.error('unhandled rejection (kept running)', { err: reason }));
  process.on('uncaughtException', (err) => logger.error('uncaught exception (kept running)', { err }));

  // Signals are handled from the first moment: one that arrives while starting stops the service
  // as soon as it is up, instead of killing it half-started.
  let stopping = false;
  const { startSluice } = await import('../runtime.js');
  const starting = startSluice({ config, services, logger });
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    const sluice = await starting;
    await sluice.close();
    const { currentTelemetry } = await import('../telemetry/sdk.js');
    const { currentMetrics } = await import('../telemetry/metrics.js');
    await Promise.all([currentTelemetry()?.shutdown(), currentMetrics()?.shutdown()]);
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  try {
    await starting;
  } catch (err) {
    logger.error('could not start', { err });
    process.exit(1);
  }
}
