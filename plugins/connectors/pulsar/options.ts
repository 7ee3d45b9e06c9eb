import {
  type Boundaries,
  type FieldError,
  type JsonSchema,
  type Options,
  ERROR_CODES,
  SluiceError,
  applyDefaults,
  checkAllowedHost,
  describeSecretEnv,
  fieldError,
  invalidArgument,
  isSecretEnvAllowed,
} from 'sluice/sdk';
import {
  MESSAGE_ID_FORMAT,
  type MessageIdParts,
  compareMessageIds,
  formatMessageId,
  parseMessageId,
} from './message-id.js';

/** The bounded-option keys, named as the Flink Pulsar connector (and InLong's PulsarExtractNode) name them. */
export const START_PUBLISH_TIME = 'source.start.publish-time';
export const STOP_AT_PUBLISH_TIME = 'source.stop.at-publish-time';
export const START_MESSAGE_ID = 'source.start.message-id';
export const STOP_AT_MESSAGE_ID = 'source.stop.at-message-id';

export const SOURCE_OPTIONS: JsonSchema = {
  type: 'object',
  required: ['serviceUrl', 'topic'],
  properties: {
    serviceUrl: {
      type: 'string',
      pattern: '^pulsar(\\+ssl)?://\\S+$',
      description:
        'Broker service URL, pulsar://host:port (pulsar+ssl:// for TLS; several hosts as pulsar://h1:6650,h2:6650). Flink: service-url.',
      examples: ['pulsar://localhost:6650'],
    },
    adminUrl: {
      type: 'string',
      pattern: '^https?://\\S+$',
      description:
        'HTTP admin URL (http://host:8080). Accepted for compatibility and unused: the embedded reader needs only serviceUrl, and the source does not run on Flink.',
      examples: ['http://localhost:8080'],
    },
    topic: {
      type: 'string',
      minLength: 1,
      description:
        'Topic to read: persistent://tenant/namespace/topic, tenant/namespace/topic, or a short name in public/default. A partitioned topic is read partition by partition (TIME windows) or on the partition an OFFSET bound names. non-persistent topics keep nothing to read back and are refused. Flink: topics.',
      examples: ['persistent://public/default/orders'],
    },
    subscriptionName: {
      type: 'string',
      pattern: '^[A-Za-z0-9._-]+$',
      description:
        "Subscription name. Default: sluice-<topic's local name> (derived, so every window of a topic uses the same one). The embedded reader uses it as the prefix of its non-durable reader subscription; Flink: source.subscription-name.",
    },
    format: {
      type: 'string',
      enum: ['json', 'raw'],
      default: 'json',
      description:
        'json: each message is a JSON document; an object becomes the row, any other value the row {value}. raw: the row {value} holds the payload as UTF-8 text. Flink: format (json or raw).',
    },
    ignoreParseErrors: {
      type: 'boolean',
      default: false,
      description:
        'json only: skip messages that are not valid JSON instead of failing the job (logged with their message id). Flink: json.ignore-parse-errors.',
    },
    metadata: {
      type: 'boolean',
      default: false,
      description:
        'Add a _pulsar field to each row: {messageId, publishTime, eventTime, key, properties}. Embedded reader only (Flink declares metadata columns in the table DDL instead).',
    },
    batchSize: {
      type: 'integer',
      minimum: 1,
      maximum: 100_000,
      default: 500,
      description: 'Rows per batch handed to the sink.',
    },
    readTimeoutMs: {
      type: 'integer',
      minimum: 10,
      maximum: 600_000,
      default: 1000,
      description:
        'How long one readNext waits for a message before the reader asks the broker whether any is left (hasNext); each partition read ends after one such wait.',
    },
    stallTimeoutMs: {
      type: 'integer',
      minimum: 100,
      maximum: 3_600_000,
      default: 60_000,
      description:
        'When the broker says messages are left but none arrives for this long: on a connected reader the rest are marker entries and the read ends; with no broker connection the job fails (UNAVAILABLE). The reader never waits forever.',
    },
    operationTimeoutSeconds: {
      type: 'integer',
      minimum: 1,
      maximum: 3600,
      default: 30,
      description: "Timeout of the client's broker operations (lookup, creating the reader, seek), in seconds.",
    },
    // Any variable name here; which variables may be read is SLUICE_SECRET_ENV's, as for secret references
    // (checkSourceOptions, and the reader again before it reads one): any variable would let whoever may create a
    // group send SLUICE_AUTH_TOKENS (say) to a serviceUrl of theirs.
    authTokenEnv: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      description:
        'Name of an environment variable of the Sluice process that holds a Pulsar JWT token (token authentication): one SLUICE_SECRET_ENV allows, as for secret references (default: SLUICE_SECRET_ and a name, never SLUICE_SECRET_KEY or SLUICE_SECRET_ENV), and never a Sluice setting. The token itself is never an option, so it is never stored with the group. Embedded reader only.',
      examples: ['SLUICE_SECRET_PULSAR_TOKEN'],
    },
  },
};

/** A topic name split into its parts. */
export interface TopicName {
  readonly full: string;
  readonly tenant: string;
  readonly namespace: string;
  readonly local: string;
}

const PART = /^[A-Za-z0-9_=:.-]+$/;

/** The full persistent topic name, or undefined when the text is not a topic name this connector reads. */
export function parseTopic(text: string): TopicName | undefined {
  let rest = text;
  if (rest.startsWith('persistent://')) rest = rest.slice('persistent://'.length);
  else if (rest.includes('://')) return undefined;
  const parts = rest.split('/');
  const [tenant, namespace, local] =
    parts.length === 1 ? ['public', 'default', parts[0]!] : parts.length === 3 ? parts : [];
  if (!tenant || !namespace || !local || !PART.test(tenant) || !PART.test(namespace) || /\s/.test(local))
    return undefined;
  return { full: `persistent://${tenant}/${namespace}/${local}`, tenant, namespace, local };
}

/** The subscription name: the option, or `sluice-<local name>` with characters outside [A-Za-z0-9._-] as `_`. */
export function subscriptionNameOf(options: Options, topic: TopicName): string {
  return typeof options.subscriptionName === 'string'
    ? options.subscriptionName
    : `sluice-${topic.local.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

/** Cross-field and format checks beyond the schema. */
/** Field errors for service URL hosts SLUICE_ALLOWED_HOSTS does not allow (pulsar://h1:6650,h2:6650 lists several). */
export function checkServiceHosts(serviceUrl: unknown): FieldError[] {
  if (typeof serviceUrl !== 'string') return [];
  const m = /^pulsar(\+ssl)?:\/\/([^/?#]*)/.exec(serviceUrl);
  if (!m) return [];
  const defaultPort = m[1] ? 6651 : 6650;
  return m[2]!.split(',').flatMap((hostPort) => {
    const hp = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPort) ?? /^([^:]*)(?::(\d+))?$/.exec(hostPort);
    const refused = hp
      ? checkAllowedHost(hp[1]!, 'options.serviceUrl', hp[2] ? Number(hp[2]) : defaultPort)
      : undefined;
    return refused ? [refused] : [];
  });
}

/**
 * A field error when authTokenEnv names a variable SLUICE_SECRET_ENV does not allow (or a Sluice setting), or
 * undefined. The name is echoed, never the variable's value.
 */
export function checkAuthTokenEnv(name: unknown): FieldError | undefined {
  if (typeof name !== 'string' || isSecretEnvAllowed(name)) return undefined;
  return fieldError('options.authTokenEnv', describeSecretEnv(), name);
}

export function checkSourceOptions(options: Options): FieldError[] {
  const errors: FieldError[] = [...checkServiceHosts(options.serviceUrl)];
  const tokenEnv = checkAuthTokenEnv(options.authTokenEnv);
  if (tokenEnv) errors.push(tokenEnv);
  const topic = options.topic;
  if (typeof topic === 'string') {
    if (topic.startsWith('non-persistent://')) {
      errors.push(
        fieldError(
          'options.topic',
          'a persistent topic (a non-persistent topic keeps no messages to read a past window from)',
          topic,
        ),
      );
    } else if (!parseTopic(topic)) {
      errors.push(
        fieldError(
          'options.topic',
          'persistent://tenant/namespace/topic, tenant/namespace/topic or a short topic name',
          topic,
        ),
      );
    }
  }
  if (options.format === 'raw' && options.ignoreParseErrors === true) {
    errors.push(
      fieldError('options.ignoreParseErrors', 'false with format "raw" (raw payloads are never parsed)', true),
    );
  }
  const read = options.readTimeoutMs;
  const stall = options.stallTimeoutMs;
  if (typeof read === 'number' && typeof stall === 'number' && read > stall) {
    errors.push(fieldError('options.readTimeoutMs', `at most stallTimeoutMs (${stall})`, read));
  }
  return errors;
}

const EPOCH_MS = /^(0|[1-9]\d*)$/;

function parseTime(field: string, raw: string): number {
  const n = Number(raw);
  if (!EPOCH_MS.test(raw) || !Number.isSafeInteger(n))
    throw invalidArgument(field, 'epoch milliseconds as a non-negative integer', raw);
  return n;
}

function parseId(field: string, raw: string): MessageIdParts {
  const id = parseMessageId(raw);
  if (!id) throw invalidArgument(field, MESSAGE_ID_FORMAT, raw);
  return id;
}

/**
 * InLong's PulsarExtractNode.fillInBoundaries, with OFFSET windows too: the window's bounds become the
 * Flink Pulsar connector's start and stop cursor options. Pure: same input, same output; the input
 * is not changed. TIME: publish times in epoch ms, [start, stop). OFFSET: message ids on one
 * partition, [start, stop), in canonical text form.
 */
export function boundedOptions(options: Options, boundaries: Boundaries): Options {
  if (boundaries.boundaryType === 'TIME') {
    const start = parseTime('boundaries.lower_bound', boundaries.lowerBound);
    const stop = parseTime('boundaries.upper_bound', boundaries.upperBound);
    if (start > stop)
      throw invalidArgument('boundaries.upper_bound', `a bound >= the lower bound ${start}`, boundaries.upperBound);
    return { ...options, [START_PUBLISH_TIME]: String(start), [STOP_AT_PUBLISH_TIME]: String(stop) };
  }
  if (boundaries.boundaryType === 'OFFSET') {
    const start = parseId('boundaries.lower_bound', boundaries.lowerBound);
    const stop = parseId('boundaries.upper_bound', boundaries.upperBound);
    if (start.partition !== stop.partition) {
      throw invalidArgument(
        'boundaries.upper_bound',
        `a message id on the partition of the lower bound (${start.partition})`,
        boundaries.upperBound,
      );
    }
    if (compareMessageIds(start, stop) > 0) {
      throw invalidArgument(
        'boundaries.upper_bound',
        `a message id at or after the lower bound ${formatMessageId(start)}`,
        boundaries.upperBound,
      );
    }
    return { ...options, [START_MESSAGE_ID]: formatMessageId(start), [STOP_AT_MESSAGE_ID]: formatMessageId(stop) };
  }
  throw invalidArgument('boundaries.boundary_type', 'TIME or OFFSET', boundaries.boundaryType);
}

/** What a bounded reader reads, from the options fillInBoundaries returned. */
export type ReadWindow =
  | { readonly type: 'TIME'; readonly start: number; readonly stop: number }
  | { readonly type: 'OFFSET'; readonly start: MessageIdParts; readonly stop: MessageIdParts };

export interface ReadPlan {
  readonly serviceUrl: string;
  readonly topic: TopicName;
  readonly subscriptionName: string;
  readonly format: 'json' | 'raw';
  readonly ignoreParseErrors: boolean;
  readonly metadata: boolean;
  readonly batchSize: number;
  readonly readTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly operationTimeoutSeconds: number;
  readonly authTokenEnv?: string;
  readonly window: ReadWindow;
}

function notBounded(): SluiceError {
  return new SluiceError(
    ERROR_CODES.FAILED_PRECONDITION,
    `pulsar: the options carry no window (${START_PUBLISH_TIME}/${STOP_AT_PUBLISH_TIME} or ${START_MESSAGE_ID}/${STOP_AT_MESSAGE_ID}); give the options fillInBoundaries returned`,
  );
}

/** The window the bounded options describe; throws when they describe none (an unbounded read is never started). */
export function windowOf(options: Options): ReadWindow {
  const str = (key: string) => (typeof options[key] === 'string' ? (options[key] as string) : undefined);
  const [ts, te, ms, me] = [
    str(START_PUBLISH_TIME),
    str(STOP_AT_PUBLISH_TIME),
    str(START_MESSAGE_ID),
    str(STOP_AT_MESSAGE_ID),
  ];
  if (ts !== undefined && te !== undefined)
    return { type: 'TIME', start: parseTime(START_PUBLISH_TIME, ts), stop: parseTime(STOP_AT_PUBLISH_TIME, te) };
  if (ms !== undefined && me !== undefined)
    return { type: 'OFFSET', start: parseId(START_MESSAGE_ID, ms), stop: parseId(STOP_AT_MESSAGE_ID, me) };
  throw notBounded();
}

/** The reader's plan: the options with defaults, checked, and the window they are bounded to. */
export function readPlan(options: Options): ReadPlan {
  const o = applyDefaults(SOURCE_OPTIONS, options);
  const topic = typeof o.topic === 'string' ? parseTopic(o.topic) : undefined;
  if (!topic)
    throw invalidArgument(
      'options.topic',
      'persistent://tenant/namespace/topic, tenant/namespace/topic or a short topic name',
      o.topic,
    );
  if (typeof o.serviceUrl !== 'string' || !/^pulsar(\+ssl)?:\/\/\S+$/.test(o.serviceUrl)) {
    throw invalidArgument('options.serviceUrl', 'pulsar://host:port', o.serviceUrl);
  }
  // Checked again when connecting: the policy may be stricter than when the group was made.
  const refused = checkServiceHosts(o.serviceUrl)[0];
  if (refused)
    throw new SluiceError(
      ERROR_CODES.FAILED_PRECONDITION,
      `connecting to ${refused.received} is not allowed: ${refused.expected}`,
      {
        field: refused.path,
        expected: refused.expected,
        received: refused.received,
      },
    );
  return {
    serviceUrl: o.serviceUrl,
    topic,
    subscriptionName: subscriptionNameOf(o, topic),
    format: o.format === 'raw' ? 'raw' : 'json',
    ignoreParseErrors: o.ignoreParseErrors === true,
    metadata: o.metadata === true,
    batchSize: o.batchSize as number,
    readTimeoutMs: o.readTimeoutMs as number,
    stallTimeoutMs: o.stallTimeoutMs as number,
    operationTimeoutSeconds: o.operationTimeoutSeconds as number,
    ...(typeof o.authTokenEnv === 'string' ? { authTokenEnv: o.authTokenEnv } : {}),
    window: windowOf(o),
  };
}
