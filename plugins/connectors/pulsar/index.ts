import { ERROR_CODES, SluiceError, defineConnectorPlugin, invalidFields, type Options } from 'sluice/sdk';
import { loadPulsar } from './client.js';
import { SOURCE_OPTIONS, boundedOptions, checkSourceOptions, readPlan } from './options.js';
import { openBoundedReader } from './reader.js';

/**
 * The Pulsar source: a window is a range of publish times (TIME) or of message ids on one partition
 * (OFFSET). It runs on the embedded runner only: the Flink Pulsar connector (4.1) cannot bound a
 * table, so flinkTableOptions refuses (docs/connectors/pulsar.md). The embedded reader needs `pulsar-client` (an optional dependency with a
 * native binding over the Pulsar C++ library); it is loaded only when asked for, never when this
 * plugin is imported, so the plugin loads, validates and resolves windows without it.
 */
export default defineConnectorPlugin({
  roles: ['source'],
  boundaryTypes: ['TIME', 'OFFSET'],
  sourceOptions: SOURCE_OPTIONS,

  validate({ options }) {
    return checkSourceOptions(options);
  },

  fillInBoundaries({ options, boundaries }): Options {
    return boundedOptions(options, boundaries);
  },

  availability() {
    const load = loadPulsar();
    return { reader: load.ok ? { available: true } : { available: false, reason: load.reason } };
  },

  async openReader({ options }, ctx) {
    const errors = checkSourceOptions(options);
    if (errors.length > 0) throw invalidFields(errors, 'options of the pulsar source are invalid');
    const plan = readPlan(options);
    const load = loadPulsar();
    if (!load.ok)
      throw new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `the embedded Pulsar reader cannot run in this process: ${load.reason}`,
      );
    return openBoundedReader(load.api, plan, ctx.logger);
  },

  flinkTableOptions() {
    // flink-connector-pulsar 4.1: its table source builds the source with an unbounded stop cursor (a
    // batch job refuses it), and `admin-url` is no table option of it. No Flink table bounds a window.
    throw new SluiceError(
      ERROR_CODES.FAILED_PRECONDITION,
      'pulsar: the Flink Pulsar connector (4.1) reads a table as an unbounded source, which Flink batch jobs cannot run, so no Flink table bounds a window; run Pulsar streams on the embedded runner',
    );
  },
});
