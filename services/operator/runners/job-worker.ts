/**
 * The job worker: runs one job of the pooled runner in a worker thread. It imports the job's two
 * connector plugins (cached per thread), runs the job with the embedded runner, and reports over the
 * job's MessagePort: progress, resolved positions, and a beat every BEAT_MS so that the service sees a
 * plugin that blocks this thread's event loop. A `cancel` message aborts the job as CancelJob does.
 */
import type { MessagePort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { type ConnectorPlugin, isSluiceError } from 'sluice/sdk';
import { type HookMeasurement, HookRunner } from '../../host/hook-runner.js';
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
  | { readonly type: 'progress'; readonly seq: number; readonly progress: unknown }
  | { readonly type: 'resolved'; readonly positions: Readonly<Record<string, string>> }
  | { readonly type: 'hook'; readonly measurement: HookMeasurement };

/**
 * What a job returns: why it failed, if it did (a SluiceError's class does not survive the thread
 * boundary), and its last progress and resolved positions. Those went over the job's port too, but
 * messages on two ports keep no order between them: the result can arrive before them, so it repeats
 * them (`seq` tells the service whether it has seen that progress).
 */
export interface WorkerResult {
  readonly failed?: { readonly code?: string; readonly message: string; readonly details?: unknown };
  readonly progress?: { readonly seq: number; readonly progress: unknown };
  readonly resolved?: Readonly<Record<string, string>>;
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

export default async function runJob(task: WorkerTask): Promise<WorkerResult> {
  const { port } = task;
  const beat = setInterval(() => port.postMessage({ type: 'beat' } satisfies WorkerMessage), BEAT_MS);
  const controller = new AbortController();
  port.on('message', (m: { type?: string }) => {
    if (m?.type === 'cancel') controller.abort(new Error('the job was cancelled'));
  });
  let last: { seq: number; progress: unknown } | undefined;
  let resolved: Readonly<Record<string, string>> | undefined;
  const tail = () => ({ ...(last ? { progress: last } : {}), ...(resolved ? { resolved } : {}) });
  try {
    const [source, sink] = await Promise.all([load(task.spec.source), load(task.spec.sink)]);
    const runner = new EmbeddedRunner({
      // Hook metrics are recorded by the service's thread, which serves /metrics.
      hooks: new HookRunner({
        timeoutMs: task.hookTimeoutMs,
        measure: (measurement) => port.postMessage({ type: 'hook', measurement } satisfies WorkerMessage),
      }),
      progressIntervalMs: task.progressIntervalMs,
    });
    await runner.run(
      { ...task.spec, source, sink },
      {
        signal: controller.signal,
        onProgress: (progress) => {
          last = { seq: (last?.seq ?? 0) + 1, progress };
          port.postMessage({ type: 'progress', ...last } satisfies WorkerMessage);
        },
        onResolved: (positions) => {
          resolved = positions;
          port.postMessage({ type: 'resolved', positions } satisfies WorkerMessage);
        },
      },
    );
    return tail();
  } catch (err) {
    if (isSluiceError(err))
      return { failed: { code: err.code, message: err.message, details: { ...err.details } }, ...tail() };
    return { failed: { message: err instanceof Error ? err.message : String(err) }, ...tail() };
  } finally {
    clearInterval(beat);
    port.close();
  }
}
