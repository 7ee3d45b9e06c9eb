/**
 * The job worker: runs one job of the pooled runner in a worker thread. It imports the job's two
 * connector plugins (cached per thread), runs the job with the embedded runner, and reports over the
 * job's MessagePort: progress, resolved positions, and a beat every BEAT_MS so that the service sees a
 * plugin that blocks this thread's event loop. A `cancel` message aborts the job as CancelJob does.
 */
import type { MessagePort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { type ConnectorPlugin, isSluiceError } from 'sluice/sdk';
import { HookRunner } from '../../host/hook-runner.js';
import type { LoadedPlugin } from '../../host/loader.js';
import type { JobSpec } from '../domain/runner.js';
import { EmbeddedRunner } from './embedded.js';

/** How often the worker tells the service that its event loop turns (ms). */
export const BEAT_MS = 250;

/** A loaded plugin as it crosses to the worker: everything but the plugin object, re-imported there. */
export type PluginRef = Omit<LoadedPlugin<ConnectorPlugin>, 'plugin'>;

export interface WorkerTask {
  readonly spec: Omit<JobSpec, 'source' | 'sink'> & { readonly source: PluginRef; readonly sink: PluginRef };
  readonly port: MessagePort;
  readonly hookTimeoutMs: number;
  readonly progressIntervalMs: number;
}

export type WorkerMessage =
  | { readonly type: 'beat' }
  | { readonly type: 'progress'; readonly progress: unknown }
  | { readonly type: 'resolved'; readonly positions: Readonly<Record<string, string>> };

/** What a failed job returns (a SluiceError's class does not survive the thread boundary). */
export interface WorkerFailure {
  readonly failed: { readonly code?: string; readonly message: string; readonly details?: unknown };
}

const imported = new Map<string, Promise<ConnectorPlugin>>();

async function load(ref: PluginRef): Promise<LoadedPlugin<ConnectorPlugin>> {
  let plugin = imported.get(ref.entry);
  if (!plugin) {
    plugin = import(pathToFileURL(ref.entry).href).then((m: { default: ConnectorPlugin }) => m.default);
    imported.set(ref.entry, plugin);
  }
  return { ...ref, plugin: await plugin };
}

export default async function runJob(task: WorkerTask): Promise<WorkerFailure | undefined> {
  const { port } = task;
  const beat = setInterval(() => port.postMessage({ type: 'beat' } satisfies WorkerMessage), BEAT_MS);
  const controller = new AbortController();
  port.on('message', (m: { type?: string }) => {
    if (m?.type === 'cancel') controller.abort(new Error('the job was cancelled'));
  });
  try {
    const [source, sink] = await Promise.all([load(task.spec.source), load(task.spec.sink)]);
    const runner = new EmbeddedRunner({
      hooks: new HookRunner({ timeoutMs: task.hookTimeoutMs }),
      progressIntervalMs: task.progressIntervalMs,
    });
    await runner.run(
      { ...task.spec, source, sink },
      {
        signal: controller.signal,
        onProgress: (progress) => port.postMessage({ type: 'progress', progress } satisfies WorkerMessage),
        onResolved: (positions) => port.postMessage({ type: 'resolved', positions } satisfies WorkerMessage),
      },
    );
    return undefined;
  } catch (err) {
    if (isSluiceError(err)) return { failed: { code: err.code, message: err.message, details: { ...err.details } } };
    return { failed: { message: err instanceof Error ? err.message : String(err) } };
  } finally {
    clearInterval(beat);
    port.close();
  }
}
