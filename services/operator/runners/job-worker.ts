/**
 * The job worker: runs one job of the pooled runner in a worker thread. It imports the job's two
 * connector plugins (cached per thread), runs the job with the embedded runner, and reports over the
 * job's MessagePort: progress, resolved positions, and a beat every BEAT_MS so that the service sees a
 * plugin that blocks this thread's event loop. A `cancel` message aborts the job as CancelJob does.
 */
import { type MessagePort, threadId } from 'node:worker_threads';
import { ROOT_CONTEXT, context, propagation } from '@opentelemetry/api';
import { pathToFileURL } from 'node:url';
import {
  type ConnectorPlugin,
  type HostPolicy,
  type Logger,
  SluiceError,
  describeValue,
  setHostPolicy,
} from 'sluice/sdk';
import { type HookMeasurement, HookRunner } from '../../host/hook-runner.js';
import type { LoadedPlugin } from '../../host/loader.js';
import type { WorkerSpan } from '../../core/worker-spans.js';
import type { JobSpec } from '../domain/runner.js';
import { EmbeddedRunner } from './embedded.js';
import { type FailedAnswer, failedAnswer, failedDetails, isErrorCode } from './thread-errors.js';

/** How often the worker tells the service that its event loop turns (ms). */
export const BEAT_MS = 250;

/** A loaded plugin as it crosses to the worker: everything but the plugin object, re-imported there. */
export type PluginRef = Omit<LoadedPlugin<ConnectorPlugin>, 'plugin'>;

export interface WorkerTask {
  readonly spec: Omit<JobSpec, 'source' | 'sink'> & { readonly source: PluginRef; readonly sink: PluginRef };
  readonly port: MessagePort;
  readonly hookTimeoutMs: number;
  readonly progressIntervalMs: number;
  /** The host's policy (file roots, allowed hosts), set in this thread before the job's plugins run. */
  readonly policy: HostPolicy;
  /** W3C trace context of the job's span in the service; set only when the service traces. */
  readonly traceCarrier?: Readonly<Record<string, string>>;
}

export type WorkerMessage =
  /** First, before any plugin code runs: the job has a thread now, and which (the pool stops it by this id). */
  | { readonly type: 'start'; readonly threadId: number }
  | { readonly type: 'beat' }
  /**
   * The job ended on its cancel with a sink write still in flight: the pool ends the run now, while this thread
   * waits for the write (and the writer's abort) before it answers the task.
   */
  | { readonly type: 'left-writing' }
  /** The last batch is written: may the sink commit? The service answers with a `commit-answer` (RunContext.beforeCommit). */
  | { readonly type: 'before-commit' }
  | { readonly type: 'progress'; readonly seq: number; readonly progress: unknown }
  | { readonly type: 'resolved'; readonly seq: number; readonly positions: Readonly<Record<string, string>> }
  | { readonly type: 'hook'; readonly measurement: HookMeasurement }
  | {
      readonly type: 'log';
      readonly level: 'debug' | 'info' | 'warn' | 'error';
      readonly message: string;
      readonly fields?: Record<string, unknown>;
    };

/** What the service sends a job's thread over the job's port. */
export type ServiceMessage =
  /** CancelJob or stop: the job ends as its RunContext's signal aborts. */
  | { readonly type: 'cancel' }
  /** The answer to `before-commit`: commit, or do not and fail with this. */
  | { readonly type: 'commit-answer'; readonly failed?: FailedAnswer };

/** The error `failed` stands for: a SluiceError again when it has a known code. */
function errorOf(failed: FailedAnswer): Error {
  if (!isErrorCode(failed.code)) return new Error(failed.message);
  return new SluiceError(failed.code, failed.message, failedDetails(failed));
}

/**
 * What a job returns: why it failed, if it did (a SluiceError's class does not survive the thread
 * boundary), and its last progress and resolved positions. Those went over the job's port too, but
 * messages on two ports keep no order between them: the result can arrive before them, so it repeats
 * them (`seq` tells the service whether it has seen that progress or those positions).
 */
export interface WorkerResult {
  readonly failed?: FailedAnswer;
  readonly progress?: { readonly seq: number; readonly progress: unknown };
  readonly resolved?: { readonly seq: number; readonly positions: Readonly<Record<string, string>> };
  /** The job's spans, when the service traces (see services/core/worker-spans.ts). */
  readonly spans?: readonly WorkerSpan[];
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
  setHostPolicy(task.policy);
  if (!task.traceCarrier) return run(task);
  // The service traces: this job's spans join its trace and go back with the result. Loaded only then,
  // so an untraced service never loads the tracing SDK into its workers.
  const tracing = await import('../../telemetry/worker.js');
  tracing.startWorkerTracing();
  const parent = propagation.extract(ROOT_CONTEXT, task.traceCarrier);
  const result = await context.with(parent, () => run(task));
  const spans = tracing.drainWorkerSpans();
  return spans.length > 0 ? { ...result, spans } : result;
}

async function run(task: WorkerTask): Promise<WorkerResult> {
  const { port } = task;
  // Before the plugins are loaded or called: a plugin that blocks this thread at once is seen as stalled.
  port.postMessage({ type: 'start', threadId } satisfies WorkerMessage);
  const beat = setInterval(() => port.postMessage({ type: 'beat' } satisfies WorkerMessage), BEAT_MS);
  const controller = new AbortController();
  /** The service's answer to `before-commit`, while the run awaits it. */
  let commitAnswer: { resolve: () => void; reject: (err: Error) => void } | undefined;
  port.on('message', (m: ServiceMessage) => {
    if (m?.type === 'cancel') controller.abort(new Error('the job was cancelled'));
    else if (m?.type === 'commit-answer' && commitAnswer) {
      const { resolve, reject } = commitAnswer;
      commitAnswer = undefined;
      if (m.failed) reject(errorOf(m.failed));
      else resolve();
    }
  });
  // The service closed the job's port (its run ended without this thread): no answer will come, and none is a yes.
  port.on('close', () => commitAnswer?.reject(new Error('the job ended before the service allowed its commit')));
  let last: { seq: number; progress: unknown } | undefined;
  let resolved: { seq: number; positions: Readonly<Record<string, string>> } | undefined;
  /** The write a cancel left in flight, and the writer's abort after it. */
  let leftover: Promise<void> | undefined;
  const tail = () => ({ ...(last ? { progress: last } : {}), ...(resolved ? { resolved } : {}) });
  try {
    const [source, sink] = await Promise.all([load(task.spec.source), load(task.spec.sink)]);
    const runner = new EmbeddedRunner({
      // Hook metrics are recorded by the service's thread, which serves /metrics.
      hooks: new HookRunner({
        timeoutMs: task.hookTimeoutMs,
        measure: (measurement) => port.postMessage({ type: 'hook', measurement } satisfies WorkerMessage),
        logger: portLogger(port),
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
          resolved = { seq: (resolved?.seq ?? 0) + 1, positions };
          port.postMessage({ type: 'resolved', ...resolved } satisfies WorkerMessage);
        },
        onLeftover: (settled) => {
          leftover = settled;
        },
        // A cancel or stop meanwhile needs no answer: the runner awaits this together with its signal.
        beforeCommit: () =>
          new Promise<void>((resolve, reject) => {
            commitAnswer = { resolve, reject };
            port.postMessage({ type: 'before-commit' } satisfies WorkerMessage);
          }),
      },
    );
    return tail();
  } catch (err) {
    if (leftover) {
      // The task stays this thread's until the write has returned: a thread stuck in it is stopped (pool.ts).
      port.postMessage({ type: 'left-writing' } satisfies WorkerMessage);
      await leftover;
    }
    return { failed: failedAnswer(err), ...tail() };
  } finally {
    clearInterval(beat);
    port.close();
  }
}

/**
 * What plugins log inside a job goes to the service's logger (pool.ts), which redacts secrets, adds the
 * trace ids of the job and writes where the service writes. Fields that cannot cross the thread boundary
 * (functions, class instances with hidden state) are sent as text.
 */
function portLogger(port: MessagePort): Logger {
  const send =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (message: string, fields?: Record<string, unknown>): void => {
      try {
        port.postMessage({ type: 'log', level, message, ...(fields ? { fields } : {}) } satisfies WorkerMessage);
      } catch {
        port.postMessage({
          type: 'log',
          level,
          message,
          fields: { fields: describeValue(fields) },
        } satisfies WorkerMessage);
      }
    };
  return { debug: send('debug'), info: send('info'), warn: send('warn'), error: send('error') };
}
