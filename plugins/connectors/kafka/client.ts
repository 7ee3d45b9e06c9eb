import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import { ERROR_CODES, SluiceError, isSluiceError, type JsonSchema, type Logger, type Options } from 'sluice/sdk';

/** Options shared by the source and the sink: where the cluster is and how to talk to it. */
export const CONNECTION_OPTIONS: Readonly<Record<string, JsonSchema>> = {
  brokers: {
    type: 'array',
    description: 'Bootstrap servers as host:port (at least one), e.g. ["kafka-1:9092", "kafka-2:9092"].',
    items: {
      type: 'string',
      pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\],]+):[0-9]{1,5}$',
      description: 'One broker, host:port.',
    },
  },
  topic: {
    type: 'string',
    pattern: '^[A-Za-z0-9._-]{1,249}$',
    description: 'The topic (letters, digits, ".", "_", "-"; at most 249 characters). It must exist.',
  },
  clientId: {
    type: 'string',
    minLength: 1,
    default: 'sluice',
    description: 'Kafka client id, shown in broker logs and quotas.',
  },
  connectionTimeoutMs: {
    type: 'integer',
    minimum: 100,
    maximum: 300_000,
    default: 3000,
    description: 'How long to wait for a TCP (and TLS) connection to a broker, in ms.',
  },
  requestTimeoutMs: {
    type: 'integer',
    minimum: 100,
    maximum: 600_000,
    default: 30_000,
    description: 'How long to wait for a broker to answer one request, in ms.',
  },
  retries: {
    type: 'integer',
    minimum: 0,
    maximum: 50,
    default: 3,
    description:
      'Retries of a failed request (exponential backoff from 300 ms, at most 10 s) before the job fails with UNAVAILABLE. Keep connect attempts x connectionTimeoutMs plus backoff below the hook timeout (SLUICE_HOOK_TIMEOUT_MS).',
  },
  ssl: {
    type: 'boolean',
    default: false,
    description: 'Connect with TLS, verifying the brokers against the system CAs.',
  },
  sasl: {
    type: 'object',
    description: 'SASL authentication; omit for none.',
    required: ['mechanism', 'username', 'password'],
    properties: {
      mechanism: { type: 'string', enum: ['plain', 'scram-sha-256', 'scram-sha-512'], description: 'SASL mechanism.' },
      username: { type: 'string', minLength: 1, description: 'SASL user name.' },
      password: {
        type: 'string',
        writeOnly: true,
        description: 'SASL password (secret: stored encrypted, never returned).',
      },
    },
  },
};

export interface ConnectionConfig {
  readonly brokers: string[];
  readonly topic: string;
  readonly clientId: string;
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly retries: number;
  readonly ssl: boolean;
  readonly sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

/** The connection part of (schema-checked, defaults-filled) options. */
export function connectionConfig(options: Options): ConnectionConfig {
  const sasl = options.sasl as ConnectionConfig['sasl'] | undefined;
  return {
    brokers: [...(options.brokers as string[])],
    topic: options.topic as string,
    clientId: (options.clientId as string | undefined) ?? 'sluice',
    connectionTimeoutMs: (options.connectionTimeoutMs as number | undefined) ?? 3000,
    requestTimeoutMs: (options.requestTimeoutMs as number | undefined) ?? 30_000,
    retries: (options.retries as number | undefined) ?? 3,
    ssl: (options.ssl as boolean | undefined) ?? false,
    ...(sasl ? { sasl } : {}),
  };
}

/** kafkajs log lines go to the hook's logger (kafkajs INFO is chatty: it becomes debug). */
function logCreator(logger: Logger) {
  return () => (entry: LogEntry) => {
    const { message, ...fields } = entry.log;
    const line = `kafkajs ${entry.namespace}: ${message}`;
    const extra = { ...fields, namespace: entry.namespace };
    if (entry.level === logLevel.ERROR) logger.error(line, extra);
    else if (entry.level === logLevel.WARN) logger.warn(line, extra);
    else logger.debug(line, extra);
  };
}

export function createKafka(cfg: ConnectionConfig, logger: Logger): Kafka {
  const config: KafkaConfig = {
    brokers: cfg.brokers,
    clientId: cfg.clientId,
    connectionTimeout: cfg.connectionTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs,
    retry: { retries: cfg.retries, initialRetryTime: 300, maxRetryTime: 10_000 },
    logLevel: logLevel.WARN,
    logCreator: logCreator(logger),
    ...(cfg.ssl ? { ssl: true } : {}),
    ...(cfg.sasl ? { sasl: cfg.sasl as SASLOptions } : {}),
  };
  return new Kafka(config);
}

const UNAVAILABLE_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSTimeout',
  'KafkaJSLockTimeout',
  'KafkaJSNumberOfRetriesExceeded',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

interface KafkaLikeError {
  name?: string;
  message?: string;
  code?: unknown;
  type?: string;
  retriable?: boolean;
  cause?: unknown;
  originalError?: unknown;
}

/** The errors of a chain, outermost first (kafkajs nests them in cause / originalError). */
function chain(err: unknown): KafkaLikeError[] {
  const out: KafkaLikeError[] = [];
  let e: unknown = err;
  while (typeof e === 'object' && e !== null && out.length < 8 && !out.includes(e as KafkaLikeError)) {
    out.push(e as KafkaLikeError);
    e = (e as KafkaLikeError).cause ?? (e as KafkaLikeError).originalError;
  }
  return out;
}

/**
 * A kafkajs failure as a Sluice error: brokers that cannot be reached (or time out) → UNAVAILABLE, an
 * unknown topic → NOT_FOUND, rejected credentials or permissions → FAILED_PRECONDITION. `what` says what
 * was being done ("reading topic x from 127.0.0.1:9092"), any other kafkajs error → UNAVAILABLE. Sluice
 * errors, and errors not from kafkajs (bugs: the hook runner reports them as PLUGIN_FAILED), pass through.
 */
export function kafkaError(err: unknown, what: string): unknown {
  if (isSluiceError(err)) return err;
  const errors = chain(err);
  // Outer kafkajs errors often repeat the inner message: keep each text once.
  const texts: string[] = [];
  for (const e of errors) if (e.message && !texts.some((t) => t.includes(e.message!))) texts.push(e.message);
  const message = texts.join(': ') || String(err);
  const has = (pred: (e: KafkaLikeError) => boolean) => errors.some(pred);
  if (has((e) => e.type === 'UNKNOWN_TOPIC_OR_PARTITION')) {
    return new SluiceError(ERROR_CODES.NOT_FOUND, `${what}: the topic does not exist (${message})`, {}, { cause: err });
  }
  if (
    has(
      (e) =>
        e.name === 'KafkaJSSASLAuthenticationError' ||
        /AUTHORIZATION_FAILED|SASL_AUTHENTICATION_FAILED/.test(e.type ?? ''),
    )
  ) {
    return new SluiceError(
      ERROR_CODES.FAILED_PRECONDITION,
      `${what}: the brokers refused the credentials or permissions (${message})`,
      {},
      { cause: err },
    );
  }
  if (has((e) => UNAVAILABLE_NAMES.has(e.name ?? '') || NETWORK_CODES.has(String(e.code)) || e.retriable === true)) {
    return new SluiceError(ERROR_CODES.UNAVAILABLE, `${what}: Kafka is unavailable (${message})`, {}, { cause: err });
  }
  if (has((e) => (e.name ?? '').startsWith('KafkaJS'))) {
    return new SluiceError(ERROR_CODES.UNAVAILABLE, `${what}: ${message}`, {}, { cause: err });
  }
  return err;
}

/** Runs `fn` and turns what it throws into a Sluice error. */
export async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw kafkaError(err, what);
  }
}
