import type { Row, WindowWriter } from 'sluice/sdk';
import type { HookRunner } from '../../host/hook-runner.js';
import { offerNativeForm, rowMapper } from '../domain/mapping.js';
import type { JobSpec, RunContext, Runner } from '../domain/runner.js';

export interface EmbeddedRunnerOptions {
  readonly hooks: HookRunner;
  /** Progress is reported at most this often (ms). */
  readonly progressIntervalMs?: number;
}

/** Approximate bytes of a batch: one row measured, times the batch size (measuring every row would cost more than the copy). */
function approxBytes(batch: readonly Row[]): number {
  if (batch.length === 0) return 0;
  try {
    return (
      JSON.stringify(batch[0], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)).length * batch.length
    );
  } catch {
    return 0;
  }
}

/**
 * Runs a job in this process: the source's bounded reader feeds the sink's window-scoped writer one
 * batch at a time. The next batch is read only once the writer has taken the last one, so memory is
 * bounded by the batch size whatever the window's size. On any failure or cancellation the writer
 * aborts: no half-written window.
 */
export class EmbeddedRunner implements Runner {
  readonly name = 'embedded';
  readonly #hooks: HookRunner;
  readonly #interval: number;

  constructor(options: EmbeddedRunnerOptions) {
    this.#hooks = options.hooks;
    this.#interval = options.progressIntervalMs ?? 1000;
  }

  async run(spec: JobSpec, ctx: RunContext): Promise<void> {
    const { job, stream, source, sink } = spec;
    const hooks = this.#hooks;
    const reader = await hooks.call(
      source,
      'openReader',
      { options: spec.boundedSourceOptions, boundaries: job.boundaries },
      { signal: ctx.signal },
    );
    let writer: WindowWriter | undefined;
    let records = 0;
    let bytes = 0;
    let lastReport = 0;
    const report = (force: boolean) => {
      const now = Date.now();
      if (!force && now - lastReport < this.#interval) return;
      lastReport = now;
      ctx.onProgress({ records, bytes, positions: reader.positions?.() ?? {} });
    };
    try {
      if (reader.resolved) ctx.onResolved(reader.resolved());
      writer = await hooks.call(
        sink,
        'openWriter',
        {
          options: stream.sink.options,
          window: { groupId: job.groupId, streamId: job.streamId, jobId: job.jobId, boundaries: job.boundaries },
        },
        { signal: ctx.signal },
      );
      const map = rowMapper(stream.fields);
      // Values the mapping does not read may stay in the source's wire form when the sink takes it.
      offerNativeForm(reader, writer, stream.fields);
      const batches = reader.batches()[Symbol.asyncIterator]();
      for (;;) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        let next: IteratorResult<readonly Row[]>;
        try {
          next = await batches.next();
        } catch (err) {
          throw hooks.wrapError(source, 'openReader.batches', err);
        }
        if (next.done) break;
        const batch = stream.fields.length === 0 ? next.value : next.value.map(map);
        try {
          await writer.write(batch);
        } catch (err) {
          throw hooks.wrapError(sink, 'openWriter.write', err);
        }
        records += batch.length;
        bytes += approxBytes(batch);
        report(false);
      }
      if (ctx.signal.aborted) throw ctx.signal.reason;
      try {
        await writer.commit();
      } catch (err) {
        throw hooks.wrapError(sink, 'openWriter.commit', err);
      }
      if (reader.resolved) ctx.onResolved(reader.resolved());
      report(true);
    } catch (err) {
      await writer?.abort(err).catch(() => {});
      report(true);
      throw err;
    } finally {
      await reader.close().catch(() => {});
    }
  }
}
