import { defineConnectorPlugin, fieldError, type FieldError, type Options } from 'sluice/sdk';
import { CONNECTION_OPTIONS, checkBrokers, connectionConfig } from './client.js';
import { K, OFFSET_LIST_EXPECTED, boundedOptions, formatOffsetList, parseOffsetList } from './offsets.js';
import { openKafkaReader } from './reader.js';
import { openKafkaWriter } from './writer.js';

/**
 * Kafka as a bounded source and an at-least-once sink. A window resolves to per-partition offsets
 * [start, stop): TIME bounds by message timestamp (Flink's `scan.bounded.mode=timestamp` rule), OFFSET
 * bounds as `partition:offset` lists. See docs/connectors/kafka.md.
 */

const { brokers, topic, clientId, connectionTimeoutMs, requestTimeoutMs, retries, ssl, sasl } = CONNECTION_OPTIONS;

function checkConnection(options: Options): FieldError[] {
  const errors: FieldError[] = [];
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) {
    errors.push(fieldError('options.brokers', 'at least one broker as host:port', options.brokers));
  }
  errors.push(...checkBrokers(options.brokers));
  return errors;
}

export default defineConnectorPlugin({
  roles: ['source', 'sink'],
  boundaryTypes: ['TIME', 'OFFSET'],
  sourceOptions: {
    type: 'object',
    required: ['brokers', 'topic'],
    properties: {
      brokers: brokers!,
      topic: topic!,
      format: {
        type: 'string',
        enum: ['json', 'raw'],
        default: 'json',
        description:
          'json: each value is a JSON object whose fields become the row (tombstones are skipped). raw: rows {key, value, topic, partition, offset, timestamp, headers} with key, value and headers as UTF-8 strings.',
      },
      metadataColumns: {
        type: 'boolean',
        default: false,
        description:
          'With format json: add _topic, _partition, _offset (string), _timestamp (epoch ms) and _key to each row.',
      },
      startOffsets: {
        type: 'string',
        description:
          'TIME windows only: explicit start offsets, partition:offset pairs (e.g. the previous window\'s resolved stop, "0:20,1:25"), so that windows chain with no gap and no overlap. Partitions not listed start by timestamp.',
        examples: ['0:20,1:25'],
      },
      batchSize: {
        type: 'integer',
        minimum: 1,
        maximum: 100_000,
        default: 500,
        description: 'Most rows per batch handed to the sink.',
      },
      clientId: clientId!,
      connectionTimeoutMs: connectionTimeoutMs!,
      requestTimeoutMs: requestTimeoutMs!,
      retries: retries!,
      ssl: ssl!,
      sasl: sasl!,
    },
  },
  sinkOptions: {
    type: 'object',
    required: ['brokers', 'topic'],
    properties: {
      brokers: brokers!,
      topic: topic!,
      keyField: {
        type: 'string',
        minLength: 1,
        description:
          'Row field whose value becomes the message key (strings as is, other values as text); no key when omitted or when the row lacks it.',
      },
      acks: {
        type: 'integer',
        enum: [-1, 1],
        default: -1,
        description: 'Acknowledgements a send waits for: -1 all in-sync replicas, 1 the leader only.',
      },
      commitMarker: {
        type: 'boolean',
        default: true,
        description:
          'On commit, add one marker message (header sluice-commit) naming the job and its message count, so that consumers can keep only committed, latest output per window. The Kafka source skips markers.',
      },
      clientId: clientId!,
      connectionTimeoutMs: connectionTimeoutMs!,
      requestTimeoutMs: requestTimeoutMs!,
      retries: retries!,
      ssl: ssl!,
      sasl: sasl!,
    },
  },

  validate({ role, options }) {
    const errors = checkConnection(options);
    if (role === 'source' && options.startOffsets !== undefined) {
      try {
        parseOffsetList('options.startOffsets', options.startOffsets);
      } catch {
        errors.push(fieldError('options.startOffsets', OFFSET_LIST_EXPECTED, options.startOffsets));
      }
    }
    if (role === 'source' && options.metadataColumns === true && options.format === 'raw') {
      errors.push(
        fieldError('options.metadataColumns', 'false with format "raw" (raw rows carry the metadata already)', true),
      );
    }
    return errors;
  },

  // "1:12, 0:10" and "0:10,1:12" are one window: partitions ascending, no spaces.
  canonicalBoundaries({ boundaries }) {
    if (boundaries.boundaryType !== 'OFFSET') return boundaries;
    return {
      boundaryType: 'OFFSET',
      lowerBound: formatOffsetList(parseOffsetList('boundaries.lower_bound', boundaries.lowerBound)),
      upperBound: formatOffsetList(parseOffsetList('boundaries.upper_bound', boundaries.upperBound)),
    };
  },

  fillInBoundaries({ options, boundaries }): Options {
    return boundedOptions(options, boundaries);
  },

  openReader({ options }, ctx) {
    return openKafkaReader(options, ctx);
  },

  openWriter({ options, window }, ctx) {
    return openKafkaWriter(options, window, ctx);
  },

  flinkTableOptions({ role, options }) {
    const cfg = connectionConfig(options);
    const out: Record<string, string> = {
      connector: 'kafka',
      topic: cfg.topic,
      'properties.bootstrap.servers': cfg.brokers.join(','),
      'properties.client.id': cfg.clientId,
    };
    if (cfg.ssl || cfg.sasl) {
      out['properties.security.protocol'] = cfg.sasl ? (cfg.ssl ? 'SASL_SSL' : 'SASL_PLAINTEXT') : 'SSL';
    }
    if (cfg.sasl) {
      const plain = cfg.sasl.mechanism === 'plain';
      out['properties.sasl.mechanism'] = plain ? 'PLAIN' : cfg.sasl.mechanism.toUpperCase();
      const module = plain
        ? 'org.apache.kafka.common.security.plain.PlainLoginModule'
        : 'org.apache.kafka.common.security.scram.ScramLoginModule';
      out['properties.sasl.jaas.config'] =
        `${module} required username=${JSON.stringify(cfg.sasl.username)} password=${JSON.stringify(cfg.sasl.password)};`;
    }
    if (role === 'sink') {
      out.format = 'json';
      out['sink.delivery-guarantee'] = 'at-least-once';
      if (options.keyField !== undefined) {
        // Flink: the key comes from a table column; 'raw' writes its text as the key, as this sink does.
        out['key.format'] = 'raw';
        out['key.fields'] = options.keyField as string;
        out['value.format'] = 'json';
        out['value.fields-include'] = 'ALL';
        delete out.format;
      }
      return out;
    }
    out.format = ((options.format as string | undefined) ?? 'json') === 'raw' ? 'raw' : 'json';
    out['scan.startup.mode'] = options[K.startupMode] as string;
    if (options[K.startupMode] === 'timestamp')
      out['scan.startup.timestamp-millis'] = options[K.startupTimestamp] as string;
    else out['scan.startup.specific-offsets'] = options[K.startupOffsets] as string;
    out['scan.bounded.mode'] = options[K.boundedMode] as string;
    if (options[K.boundedMode] === 'timestamp')
      out['scan.bounded.timestamp-millis'] = options[K.boundedTimestamp] as string;
    else out['scan.bounded.specific-offsets'] = options[K.boundedOffsets] as string;
    return out;
  },
});
