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
  /** SLUICE_HOOK_TIMEOUT_MS: default timeout of one plugin hook call. */
  readonly hookTimeoutMs: number;
  /** SLUICE_SHUTDOWN_GRACE_MS: how long SIGTERM waits for calls in flight before closing them. */
  readonly shutdownGraceMs: number;
}

export const DEFAULTS = {
  SLUICE_GRPC_ADDR: '127.0.0.1:50051',
  SLUICE_PLUGIN_PATH: '',
  SLUICE_LOG_LEVEL: 'info',
  SLUICE_HOOK_TIMEOUT_MS: '30000',
  SLUICE_SHUTDOWN_GRACE_MS: '10000',
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

/** Reads the settings; throws ConfigError naming the variable, what was expected and what came. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const get = (name: keyof typeof DEFAULTS) => {
    const v = env[name];
    return v === undefined || v === '' ? DEFAULTS[name] : v;
  };
  const grpcAddr = get('SLUICE_GRPC_ADDR');
  if (!/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(grpcAddr)) {
    throw new ConfigError(`SLUICE_GRPC_ADDR: expected host:port, got ${JSON.stringify(grpcAddr)}`);
  }
  const logLevel = get('SLUICE_LOG_LEVEL');
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) {
    throw new ConfigError(`SLUICE_LOG_LEVEL: expected one of debug, info, warn, error, silent, got ${JSON.stringify(logLevel)}`);
  }
  return {
    grpcAddr,
    pluginPath: get('SLUICE_PLUGIN_PATH').split(delimiter).filter((p) => p !== ''),
    logLevel: logLevel as LogLevel,
    hookTimeoutMs: positiveInt('SLUICE_HOOK_TIMEOUT_MS', get('SLUICE_HOOK_TIMEOUT_MS')),
    shutdownGraceMs: positiveInt('SLUICE_SHUTDOWN_GRACE_MS', get('SLUICE_SHUTDOWN_GRACE_MS')),
  };
}
