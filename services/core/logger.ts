import type { Logger } from 'sluice/sdk';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

/** JSON-lines logger on stderr; one line per event, so log shippers need no parsing rules. */
export function createLogger(
  level: LogLevel = 'info',
  bindings: Record<string, unknown> = {},
  sink: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Logger & { child(b: Record<string, unknown>): Logger } {
  const min = LEVELS[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>) => (message: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < min) return;
    sink(
      JSON.stringify(
        { time: new Date().toISOString(), level: lvl, msg: message, ...bindings, ...fields },
        errorReplacer,
      ),
    );
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (b) => createLogger(level, { ...bindings, ...b }, sink),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, code: (value as { code?: unknown }).code, stack: value.stack };
  }
  return value;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
