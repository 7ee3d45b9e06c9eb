import { ERROR_CODES, SluiceError, defineConnectorPlugin, invalidFields, type Options } from 'sluice/sdk';
import { loadPulsar } from './client.js';
import { parseMessageId } from './message-id.js';
import {
  SOURCE_OPTIONS,
  START_MESSAGE_ID,
  START_PUBLISH_TIME,
  STOP_AT_MESSAGE_ID,
  STOP_AT_PUBLISH_TIME,
  boundedOptions,
  checkSourceOptions,
  readPlan,
  windowOf,
} from './options.js';
import { openBoundedReader } from './reader.js';

/**
 * The Pulsar source: a window is a range of publish times (TIME) or of message ids on one partition
 * (OFFSET), mapped to the Flink Pulsar connector's start/stop cursor options as InLong's
 * PulsarExtractNode does. The embedded reader needs `pulsar-client` (an optional dependency with a
 * native binding over the Pulsar C++ library); it is loaded only when asked for, never when this
 * plugin is imported, so the plugin loads, validates, resolves windows and builds Flink options
 * without it.
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

  flinkTableOptions({ options }) {
    const plan = readPlan(options);
    const w = windowOf(options);
    if (w.type === 'OFFSET') {
      const withBatch = [options[START_MESSAGE_ID], options[STOP_AT_MESSAGE_ID]].find(
        (v) => parseMessageId(String(v))!.batchIndex !== -1,
      );
      if (withBatch !== undefined) {
        throw new SluiceError(
          ERROR_CODES.INVALID_ARGUMENT,
          `pulsar: the Flink Pulsar connector takes message ids as ledgerId:entryId:partition; the bound ${String(withBatch)} points inside a batch, which it cannot express (run this window on the embedded runner, or use entry bounds)`,
          { field: 'boundaries', expected: 'message ids without a batch index', received: String(withBatch) },
        );
      }
    }
    return {
      connector: 'pulsar',
      topics: plan.topic.full,
      'service-url': plan.serviceUrl,
      ...(typeof options.adminUrl === 'string' ? { 'admin-url': options.adminUrl } : {}),
      'source.subscription-name': plan.subscriptionName,
      ...(w.type === 'TIME'
        ? { [START_PUBLISH_TIME]: String(w.start), [STOP_AT_PUBLISH_TIME]: String(w.stop) }
        : {
            [START_MESSAGE_ID]: String(options[START_MESSAGE_ID]),
            [STOP_AT_MESSAGE_ID]: String(options[STOP_AT_MESSAGE_ID]),
          }),
      format: plan.format,
      ...(plan.format === 'json' && plan.ignoreParseErrors ? { 'json.ignore-parse-errors': 'true' } : {}),
    };
  },
});
