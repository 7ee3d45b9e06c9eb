import { defineConnectorPlugin } from 'sluice/sdk';
import { SINK_OPTIONS, checkOptions, resolveConfig } from './options.js';
import { WindowFileWriter } from './writer.js';

/**
 * The file sink: one file per window in a directory, as JSON lines or CSV. Rows go to a hidden
 * temporary file beside the target (`.<name>.<jobId>.tmp`); commit fsyncs it and renames it over the
 * window's file, so readers see either the old file or the whole new one, and a re-run of the window
 * replaces its file. Abort deletes the temporary file.
 */
export default defineConnectorPlugin({
  roles: ['sink'],
  sinkOptions: SINK_OPTIONS,

  validate({ options }) {
    return checkOptions(options);
  },

  async openWriter({ options, window }, ctx) {
    return WindowFileWriter.open(resolveConfig(options), window, ctx.logger);
  },

  flinkTableOptions({ options }) {
    const config = resolveConfig(options);
    return {
      connector: 'filesystem',
      path: config.path,
      format: config.format === 'csv' ? 'csv' : 'json',
    };
  },
});
