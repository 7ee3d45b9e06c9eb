import { createRequire } from 'node:module';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, stdSerializers, stdTimeFunctions, type DestinationStream } from 'pino';
import type { Logger } from 'sluice/sdk';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Option names whose values never reach a log line, whatever plugin they belong to. */
const SECRET_KEY = /pass(word|wd)?$|secret|token|credential|api[-_]?key|private[-_]?key|^authorization$/i;
/** Option names plugins mark `writeOnly: true` in their schemas (registerSecretOptions). */
const secretOptions = new Set<string>();
const REDACTED = '[REDACTED]';
/** How deep redaction looks into a log line's fields. */
const MAX_DEPTH = 8;

/** Adds the option names a schema marks `writeOnly: true` (at any depth) to what logs redact. */
export function registerSecretOptions(schema: unknown, depth = 0): void {
  if (typeof schema !== 'object' || schema === null || depth > MAX_DEPTH) return;
  const properties = (schema as { properties?: Record<string, unknown> }).properties;
  if (properties && typeof properties === 'object') {
    for (const [name, sub] of Object.entries(properties)) {
      if ((sub as { writeOnly?: unknown } | null)?.writeOnly === true) secretOptions.add(name);
    }
  }
  for (const value of Object.values(schema)) registerSecretOptions(value, depth + 1);
}

function isSecret(key: string): boolean {
  return secretOptions.has(key) || SECRET_KEY.test(key);
}

/** Copies plain objects and arrays with secret values replaced and `user:password@` cut from URLs; cycle-safe. */
function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string')
    return value.includes('@') ? value.replace(/(\/\/[^/@:\s]*):[^/@\s]*@/g, '$1:***@') : value;
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH || seen.has(value)) return value;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return value;
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = isSecret(k) && v !== undefined ? REDACTED : redact(v, depth + 1, seen);
  return out;
}

/** Errors with their code, details and cause chain (pino's serializer), whatever was thrown. */
function serializeError(err: unknown): unknown {
  if (err instanceof Error) return stdSerializers.err(err);
  return err;
}

export interface LoggerOptions {
  /** Human-readable lines (pino-pretty) instead of JSON: SLUICE_LOG_PRETTY=true, for a terminal only. */
  readonly pretty?: boolean;
}

/**
 * JSON lines on stderr through pino; one line per event, so log shippers need no parsing rules. Inside a
 * span every line carries `trace_id`, `span_id` and `trace_flags` (the OpenTelemetry log field names), so
 * a line joins its trace. Secret options and URL passwords are redacted; BigInts, cycles and throwing
 * values are written, never thrown back at the caller.
 */
export function createLogger(
  level: LogLevel = 'info',
  bindings: Record<string, unknown> = {},
  sink?: (line: string) => void,
  options: LoggerOptions = {},
): Logger & { child(b: Record<string, unknown>): Logger } {
  const destination: DestinationStream = sink
    ? { write: (s: string) => sink(s.endsWith('\n') ? s.slice(0, -1) : s) }
    : options.pretty
      ? (prettyStream() ?? pino.destination({ fd: 2, sync: true }))
      : pino.destination({ fd: 2, sync: true });
  const root = pino(
    {
      level,
      base: null,
      messageKey: 'msg',
      timestamp: stdTimeFunctions.isoTime,
      serializers: { err: serializeError, error: serializeError, cause: serializeError },
      formatters: {
        level: (label) => ({ level: label }),
        log: (fields) => redact(fields) as Record<string, unknown>,
      },
      mixin() {
        const span = trace.getActiveSpan()?.spanContext();
        if (!span || !isSpanContextValid(span)) return {};
        return {
          trace_id: span.traceId,
          span_id: span.spanId,
          trace_flags: `0${span.traceFlags.toString(16)}`.slice(-2),
        };
      },
    },
    destination,
  );
  return wrap(Object.keys(bindings).length > 0 ? root.child(redact(bindings) as Record<string, unknown>) : root);
}

type PinoLike = Pick<ReturnType<typeof pino>, 'debug' | 'info' | 'warn' | 'error'> & {
  child(b: Record<string, unknown>): PinoLike;
};

function wrap(l: PinoLike): Logger & { child(b: Record<string, unknown>): Logger } {
  const emit = (lvl: 'debug' | 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) => {
    try {
      if (fields) l[lvl](fields, message);
      else l[lvl](message);
    } catch (err) {
      // A value pino could not write (a getter that throws): the event is still logged, without its fields.
      l[lvl]({ logError: String(err) }, message);
    }
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (b) => wrap(l.child(redact(b) as Record<string, unknown>)),
  };
}

/** pino-pretty as a synchronous stream on stderr, when installed. */
function prettyStream(): DestinationStream | undefined {
  try {
    // Loaded only when asked for, so JSON output costs nothing of it.
    const req = createRequire(import.meta.url);
    const pretty = req('pino-pretty') as (o: object) => DestinationStream;
    return pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY });
  } catch {
    return undefined;
  }
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
