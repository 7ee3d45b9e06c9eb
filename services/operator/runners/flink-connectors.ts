import { ERROR_CODES, SluiceError } from 'sluice/sdk';

/**
 * The table options each Flink SQL connector the runner generates for accepts, per connector release
 * (read from the connectors' own option classes: KafkaConnectorOptions of flink-connector-kafka 3.3 and
 * 4.0, JdbcConnectorOptions of flink-connector-jdbc 3.3 and 4.0, FileSystemConnectorOptions and
 * DataGenConnectorOptions of Flink 1.19 / 1.20 / 2.x). A key Flink's factory does not know fails the
 * CREATE TABLE ("Unsupported options"), so generated tables are checked against these lists first.
 * Keys under a prefix (`properties.`, a format's own `json.` ...) are accepted as a prefix.
 */

const KAFKA = [
  'connector',
  'topic',
  'topic-pattern',
  'properties.bootstrap.servers',
  'properties.group.id',
  'format',
  'key.format',
  'key.fields',
  'key.fields-prefix',
  'value.format',
  'value.fields-include',
  'scan.startup.mode',
  'scan.startup.specific-offsets',
  'scan.startup.timestamp-millis',
  'scan.bounded.mode',
  'scan.bounded.specific-offsets',
  'scan.bounded.timestamp-millis',
  'scan.topic-partition-discovery.interval',
  'sink.partitioner',
  'sink.delivery-guarantee',
  'sink.transactional-id-prefix',
  'sink.parallelism',
];

const JDBC = [
  'connector',
  'url',
  'table-name',
  'driver',
  'username',
  'password',
  'connection.max-retry-timeout',
  'scan.partition.column',
  'scan.partition.num',
  'scan.partition.lower-bound',
  'scan.partition.upper-bound',
  'scan.fetch-size',
  'scan.auto-commit',
  'lookup.cache',
  'lookup.max-retries',
  'sink.buffer-flush.max-rows',
  'sink.buffer-flush.interval',
  'sink.max-retries',
  'sink.parallelism',
];

const DATAGEN = ['connector', 'rows-per-second', 'number-of-rows', 'scan.parallelism'];
const FILESYSTEM = ['connector', 'path', 'format', 'partition.default-name', 'sink.rolling-policy.file-size'];

/** Prefixes whose keys go through to a client or a format as they are. */
const PREFIXES: Readonly<Record<string, readonly string[]>> = {
  kafka: ['properties.', 'json.', 'key.json.', 'value.json.', 'raw.', 'key.raw.', 'value.raw.'],
  jdbc: [],
  datagen: ['fields.'],
  filesystem: ['json.', 'csv.'],
};

/** Connector releases the runner generates SQL for, and the option keys of each. */
export const FLINK_CONNECTOR_OPTIONS: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  kafka: { '3.3': KAFKA, '4.0': KAFKA },
  jdbc: { '3.3': JDBC, '4.0': JDBC },
  datagen: { '1.19': DATAGEN, '1.20': DATAGEN, '2.x': DATAGEN },
  filesystem: { '1.19': FILESYSTEM, '1.20': FILESYSTEM, '2.x': FILESYSTEM },
};

/**
 * Connectors Sluice refuses on Flink, with the reason: their Flink tables cannot hold a window's
 * guarantee. `pulsar`: the table source of flink-connector-pulsar 4.1 builds its source with an
 * unbounded stop cursor, which batch mode refuses, and it has no `admin-url` option.
 */
export const REFUSED_CONNECTORS: Readonly<Record<string, string>> = {
  pulsar:
    "the Flink Pulsar connector (4.1) reads a table as an unbounded source (its table source sets an unbounded stop cursor), which Flink's batch mode cannot run; run Pulsar streams on the embedded runner",
};

/**
 * Throws FAILED_PRECONDITION when the table's connector is refused on Flink, or a key is not an option
 * of every supported release of it.
 */
export function checkTableOptions(options: Readonly<Record<string, string>>, which: 'source' | 'sink'): void {
  const connector = options.connector ?? '';
  const refused = REFUSED_CONNECTORS[connector];
  if (refused !== undefined)
    throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, `the ${which} cannot run on Flink: ${refused}`);
  const releases = FLINK_CONNECTOR_OPTIONS[connector];
  if (!releases) return;
  const prefixes = PREFIXES[connector] ?? [];
  for (const [release, keys] of Object.entries(releases)) {
    for (const key of Object.keys(options)) {
      if (keys.includes(key) || prefixes.some((p) => key.startsWith(p))) continue;
      throw new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `the ${which} table option '${key}' is not an option of the Flink '${connector}' connector ${release}`,
      );
    }
  }
}
