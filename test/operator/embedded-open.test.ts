import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BoundedReader, ConnectorPlugin, WindowWriter } from 'sluice/sdk';
import { HookRunner } from '../../services/host/hook-runner.js';
import type { JobSpec } from '../../services/operator/domain/runner.js';
import { EmbeddedRunner } from '../../services/operator/runners/embedded.js';
import { inlineJobSpec } from '../helpers/operator.js';

/** A promise with its resolve, for a plugin that opens when the test says so. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** What the plugins opened and what was done with it. */
interface Seen {
  readerClosed: number;
  writerAborted: number;
  writerCommitted: number;
}

function reader(seen: Seen): BoundedReader {
  return {
    async *batches() {
      yield [{ id: 1 }];
    },
    async close() {
      seen.readerClosed++;
    },
  };
}

function writer(seen: Seen): WindowWriter {
  return {
    async write() {},
    async commit() {
      seen.writerCommitted++;
    },
    async abort() {
      seen.writerAborted++;
    },
  };
}

/** One job of a stream from `source` to `sink`. */
const spec = (source: ConnectorPlugin, sink: ConnectorPlugin): JobSpec =>
  inlineJobSpec({ id: 'late-source', plugin: source }, { id: 'late-sink', plugin: sink });

const context = (signal: AbortSignal) => ({ signal, onProgress: () => {}, onResolved: () => {} });

test('a reader the plugin finishes opening after the job was cancelled is closed when it arrives', async (t) => {
  const seen: Seen = { readerClosed: 0, writerAborted: 0, writerCommitted: 0 };
  const opening = deferred<BoundedReader>();
  // The plugin does not watch its signal: it goes on opening (a connection, a transaction) after the cancellation.
  const source: ConnectorPlugin = { roles: ['source'], openReader: () => opening.promise };
  const sink: ConnectorPlugin = { roles: ['sink'], openWriter: async () => writer(seen) };
  const runner = new EmbeddedRunner({ hooks: new HookRunner({ timeoutMs: 10_000 }), progressIntervalMs: 0 });
  const controller = new AbortController();
  const run = runner.run(spec(source, sink), context(controller.signal));
  await sleep(20);
  const reason = new Error('cancelled');
  controller.abort(reason);
  t.is(await t.throwsAsync(run), reason, 'the run ends at once with the cancellation');
  opening.resolve(reader(seen));
  await sleep(20);
  t.is(seen.readerClosed, 1, 'the late reader was closed');
  t.is(seen.writerCommitted, 0);
});

test('a writer the plugin finishes opening after its hook timed out is aborted when it arrives; the reader is closed', async (t) => {
  const seen: Seen = { readerClosed: 0, writerAborted: 0, writerCommitted: 0 };
  const opening = deferred<WindowWriter>();
  const source: ConnectorPlugin = { roles: ['source'], openReader: async () => reader(seen) };
  const sink: ConnectorPlugin = { roles: ['sink'], openWriter: () => opening.promise };
  const runner = new EmbeddedRunner({ hooks: new HookRunner({ timeoutMs: 50 }), progressIntervalMs: 0 });
  const run = runner.run(spec(source, sink), context(new AbortController().signal));
  await t.throwsAsync(run, { code: 'PLUGIN_TIMEOUT' });
  t.is(seen.readerClosed, 1, 'the reader opened before was closed');
  opening.resolve(writer(seen));
  await sleep(20);
  t.is(seen.writerAborted, 1, 'the late writer was aborted');
  t.is(seen.writerCommitted, 0);
});

test('a writer the plugin finishes opening after the job was cancelled is aborted when it arrives', async (t) => {
  const seen: Seen = { readerClosed: 0, writerAborted: 0, writerCommitted: 0 };
  const opening = deferred<WindowWriter>();
  const source: ConnectorPlugin = { roles: ['source'], openReader: async () => reader(seen) };
  const sink: ConnectorPlugin = { roles: ['sink'], openWriter: () => opening.promise };
  const runner = new EmbeddedRunner({ hooks: new HookRunner({ timeoutMs: 10_000 }), progressIntervalMs: 0 });
  const controller = new AbortController();
  const run = runner.run(spec(source, sink), context(controller.signal));
  await sleep(20);
  controller.abort(new Error('cancelled'));
  await t.throwsAsync(run, { message: 'cancelled' });
  t.is(seen.readerClosed, 1);
  opening.resolve(writer(seen));
  await sleep(20);
  t.is(seen.writerAborted, 1, 'the late writer was aborted');
  t.is(seen.writerCommitted, 0);
});

test('a plugin that fails to open (or has no such hook) leaves nothing to close, and the run says why', async (t) => {
  const seen: Seen = { readerClosed: 0, writerAborted: 0, writerCommitted: 0 };
  const failing: ConnectorPlugin = {
    roles: ['source'],
    openReader: async () => {
      throw new Error('no route to host');
    },
  };
  const sink: ConnectorPlugin = { roles: ['sink'], openWriter: async () => writer(seen) };
  const runner = new EmbeddedRunner({ hooks: new HookRunner({ timeoutMs: 10_000 }), progressIntervalMs: 0 });
  await t.throwsAsync(runner.run(spec(failing, sink), context(new AbortController().signal)), {
    code: 'PLUGIN_FAILED',
    message: /late-source.*openReader/,
  });
  await t.throwsAsync(runner.run(spec({ roles: ['source'] }, sink), context(new AbortController().signal)), {
    code: 'FAILED_PRECONDITION',
    message: "plugin 'late-source' has no hook 'openReader'",
  });
  t.deepEqual(seen, { readerClosed: 0, writerAborted: 0, writerCommitted: 0 });
  // And a run that goes well still commits and closes.
  const source: ConnectorPlugin = { roles: ['source'], openReader: async () => reader(seen) };
  await runner.run(spec(source, sink), context(new AbortController().signal));
  t.deepEqual(seen, { readerClosed: 1, writerAborted: 0, writerCommitted: 1 });
});
