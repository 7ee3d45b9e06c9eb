import { createRequire } from 'node:module';

/**
 * The part of the `pulsar-client` API (the Apache Pulsar Node.js client, 1.x) this connector uses.
 * Declared here because the package is optional: it may be absent, or present without its native
 * binding, and the plugin must still load and type-check.
 */
export interface PulsarApi {
  readonly Client: new (config: PulsarClientConfig) => PulsarClient;
  readonly MessageId: {
    earliest(): PulsarMessageId;
    deserialize(data: Buffer): PulsarMessageId;
  };
  readonly AuthenticationToken?: new (params: { token: string }) => PulsarAuthentication;
}

/** An authentication object of pulsar-client (AuthenticationToken ...): opaque, no members of its own. */
export type PulsarAuthentication = object;

export interface PulsarClientConfig {
  serviceUrl: string;
  operationTimeoutSeconds?: number;
  authentication?: PulsarAuthentication;
  log?: (level: number, file: string, line: number, message: string) => void;
}

export interface PulsarClient {
  createReader(config: PulsarReaderConfig): Promise<PulsarReader>;
  /** The partitions' topic names; a non-partitioned topic gives itself. */
  getPartitionsForTopic(topic: string): Promise<string[]>;
  close(): Promise<null>;
}

export interface PulsarReaderConfig {
  topic: string;
  startMessageId: PulsarMessageId;
  receiverQueueSize?: number;
  readerName?: string;
  subscriptionRolePrefix?: string;
}

export interface PulsarReader {
  /** Rejects with `Failed to receive message: <result>` (e.g. `TimeOut`) when no message arrives within `timeout` ms. */
  readNext(timeout?: number): Promise<PulsarMessage>;
  /**
   * Whether a message is left before the topic's last message id. Synchronous in pulsar-client: when
   * caught up it asks the broker and blocks the event loop until the answer (at most
   * operationTimeoutSeconds). Throws `Failed to check if next message is available: <result>`.
   */
  hasNext(): boolean;
  /** Whether the reader's connection to its broker is up (no broker round trip). */
  isConnected(): boolean;
  seekTimestamp(timestamp: number): Promise<null>;
  close(): Promise<null>;
}

export interface PulsarMessage {
  getData(): Buffer;
  getMessageId(): PulsarMessageId;
  getPublishTimestamp(): number;
  getEventTimestamp(): number;
  getPartitionKey(): string;
  /** Typed as an object, but pulsar-client 1.x builds it as an Array with string keys: copy before use. */
  getProperties(): { [key: string]: string };
}

export interface PulsarMessageId {
  serialize(): Buffer;
  toString(): string;
}

export type PulsarLoad =
  { readonly ok: true; readonly api: PulsarApi } | { readonly ok: false; readonly reason: string };

let cached: PulsarLoad | undefined;

/** What to do about a missing client, for people. */
export function unavailableReason(error: string): string {
  return (
    `pulsar-client could not be loaded (${error}): install the Apache Pulsar C++ client library ` +
    '(libpulsar, e.g. the apache-pulsar-client and apache-pulsar-client-dev packages from pulsar.apache.org), ' +
    'then run "npm install pulsar-client" or, when it is installed, "npm rebuild pulsar-client" to build its native binding'
  );
}

/**
 * Loads `pulsar-client` once and caches the outcome (success or the reason of failure). It is
 * loaded synchronously with require, inside try/catch, never at import time of this plugin: the
 * availability hook is synchronous in the SDK, and pulsar-client is a CommonJS package whose entry
 * loads its native addon synchronously anyway. A failure (package absent, addon not built, libpulsar
 * missing) becomes a reason, never an exception.
 */
export function loadPulsar(): PulsarLoad {
  if (cached) return cached;
  try {
    const required = createRequire(import.meta.url)('pulsar-client') as Partial<PulsarApi> & {
      default?: Partial<PulsarApi>;
    };
    const api = typeof required.Client === 'function' ? required : required.default;
    if (!api || typeof api.Client !== 'function' || typeof api.MessageId?.deserialize !== 'function') {
      throw new Error('the module has no Client or MessageId export');
    }
    cached = { ok: true, api: api as PulsarApi };
  } catch (err) {
    const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);
    cached = { ok: false, reason: unavailableReason(message) };
  }
  return cached;
}
