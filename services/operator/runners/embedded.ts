import type { BoundedReader, Row, WindowWriter } from 'sluice/sdk';
import type { HookRunner } from '../../host/hook-runner.js';
import { batchMapper, offerNativeForm } from '../domain/mapping.js';
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
 * aborts: no half-written window. A cancel (or stop) ends the run at once, also while the source is slow to
 * give a batch or the sink to take one.
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
    let reader: BoundedReader | undefined;
    let writer: WindowWriter | undefined;
    /** The sink's write the run stopped waiting for when it was cancelled: the writer aborts once it settles. */
    let leftWriting: Promise<void> | undefined;
    let records = 0;
    let bytes = 0;
    let lastReport = 0;
    const report = (force: boolean) => {
      const now = Date.now();
      if (!force && now - lastReport < this.#interval) return;
      lastReport = now;
      ctx.onProgress({ records, bytes, positions: reader?.positions?.() ?? {} });
    };
    try {
      // What a plugin finishes opening after the job was cancelled or its hook timed out is closed as it
      // arrives: nobody else holds it (a PostgreSQL reader is a connection inside a transaction).
      reader = await hooks.call(
        source,
        'openReader',
        { options: spec.boundedSourceOptions, boundaries: job.boundaries },
        { signal: ctx.signal, onLate: (late) => late?.close() },
      );
      if (reader.resolved) ctx.onResolved(reader.resolved());
      writer = await hooks.call(
        sink,
        'openWriter',
        {
          options: stream.sink.options,
          window: { groupId: job.groupId, streamId: job.streamId, jobId: job.jobId, boundaries: job.boundaries },
        },
        {
          signal: ctx.signal,
          onLate: (late) => late?.abort(ctx.signal.reason ?? new Error('the writer opened after its job had ended')),
        },
      );
      const map = batchMapper(stream.fields);
      // Values the mapping does not read may stay in the source's wire form when the sink takes it.
      offerNativeForm(reader, writer, stream.fields);
      const batches = reader.batches()[Symbol.asyncIterator]();
      for (;;) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        let next: IteratorResult<readonly Row[]>;
        try {
          // A source slow to give its next batch (or stuck) does not hold up a cancel or a stop: in this thread
          // nothing else could end the run.
          next = await untilAborted(batches.next(), ctx.signal);
        } catch (err) {
          if (ctx.signal.aborted) throw ctx.signal.reason;
          throw hooks.wrapError(source, 'openReader.batches', err);
        }
        if (next.done) break;
        const batch = map(next.value);
        let write: Promise<void> | undefined;
        try {
          // (A plugin's write that answers at once, without a promise, is taken as done.)
          write = Promise.resolve(writer.write(batch));
          // A sink slow to take a batch (or stuck) does not hold up a cancel or a stop either; what the write
          // ends with is not waited for, nor looked at.
          await untilAborted(write, ctx.signal);
        } catch (err) {
          if (ctx.signal.aborted) {
            leftWriting = write;
            throw ctx.signal.reason;
          }
          throw hooks.wrapError(sink, 'openWriter.write', err);
        }
        records += batch.length;
        bytes += approxBytes(batch);
        report(false);
      }
      if (ctx.signal.aborted) throw ctx.signal.reason;
      // Once per run, not per batch: the job may have been cancelled or taken over on another replica since this
      // one's last lease renewal, and a commit now would land a window that is no longer this run's. A cancel or a
      // stop during the read ends the run as during a write.
      if (ctx.beforeCommit) await untilAborted(ctx.beforeCommit(), ctx.signal);
      if (ctx.signal.aborted) throw ctx.signal.reason;
      // Not cut short by a cancel: a commit under way may land, so the run ends with what it did (the job
      // SUCCEEDED), never CANCELLED over a committed window.
      try {
        await writer.commit();
      } catch (err) {
        throw hooks.wrapError(sink, 'openWriter.commit', err);
      }
      if (reader.resolved) ctx.onResolved(reader.resolved());
      report(true);
    } catch (err) {
      if (writer && leftWriting) {
        // Cancelled during a write: the writer aborts once the write has returned, as a writer need not take an
        // abort in the middle of a write (a SQL sink's rollback would land between two statements of it, and
        // the rest of the batch outside the transaction). Nothing commits it meanwhile; the run ends now.
        const aborting = writer;
        const settled = leftWriting
          .then(
            () => aborting.abort(err),
            () => aborting.abort(err),
          )
          .catch(() => {});
        ctx.onLeftover?.(settled);
      } else {
        await writer?.abort(err).catch(() => {});
      }
      if (reader) report(true);
      throw err;
    } finally {
      await reader?.close().catch(() => {});
    }
  }
}

/** `promise`, or a rejection with the signal's reason as soon as it is aborted (the promise is then left to settle). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}
