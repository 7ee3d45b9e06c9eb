import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel } from 'node:worker_threads';
import { context, propagation } from '@opentelemetry/api';
import { Piscina } from 'piscina';
import { ERROR_CODES, type ErrorCode, type Logger, SluiceError, hostPolicy } from 'sluice/sdk';
import { silentLogger } from '../../core/logger.js';
import { recordHookMeasurement } from '../../host/hook-runner.js';
import { exportWorkerSpans } from '../../core/worker-spans.js';
import type { JobProgress } from '../domain/model.js';
import type { JobSpec, RunContext, Runner } from '../domain/runner.js';
import type { PluginRef, ServiceMessage, WorkerMessage, WorkerResult, WorkerTask } from './job-worker.js';
import { type FailedAnswer, failedAnswer, failedDetails, isErrorCode } from './thread-errors.js';

export interface PooledRunnerOptions {
  /** Worker threads, started up front; default: the machine's parallelism. */
  readonly threads?: number;
  /**
   * Jobs one thread runs at once (jobs mostly wait on I/O); default 1. Jobs sharing a thread share its
   * fate: a plugin that exits, spins or leaks fails every job on its thread.
   */
  readonly jobsPerThread?: number;
  /**
   * V8 old-generation cap of each worker (MiB): a job that allocates past it fails alone. V8 also paces the
   * thread's full collections by it (the lower the cap, the more often). Default: DEFAULT_HEAP_MB.
   */
  readonly maxHeapMb?: number;
  /**
   * V8 young-generation cap of each worker (MiB; V8 splits it into two semi-spaces and a large-object
   * space, a third each). A batch that is still alive at two scavenges is copied to the old generation,
   * which then grows until a full collection: room enough here lets batches in flight die young.
   * Default: DEFAULT_YOUNG_GENERATION_MB; 0 leaves it to V8.
   */
  readonly maxYoungGenerationMb?: number;
  /** Names of the settings the caps come from, for the error a job gets at a cap (default: the option names). */
  readonly settings?: { readonly maxHeapMb?: string; readonly maxYoungGenerationMb?: string };
  /** Timeout of one plugin hook call inside the worker (ms). Default 30 000. */
  readonly hookTimeoutMs?: number;
  /**
   * How long a worker's event loop may stay blocked (no beat) before its job fails and the thread is
   * stopped (ms): a plugin spinning synchronously. Default 30 000.
   */
  readonly stallTimeoutMs?: number;
  /** Progress is reported at most this often (ms). */
  readonly progressIntervalMs?: number;
  /** Where the lines plugins log inside jobs go (the service's logger); default: nowhere. */
  readonly logger?: Logger;
}

/**
 * The pool's old-generation cap (MiB) unless told otherwise. After each full collection V8 lets the heap
 * grow to its live size times a factor it takes from this cap: 1.3 up to 256 MiB, rising to 2.0 just
 * below 2,048 MiB, and 4.0 from 2,048 MiB (64-bit). At 512 (1.4) a Kafka → file job runs about twice the
 * full collections of 2,000 (2.0) and uses 12-20 % more CPU, but its memory stays flatter from short
 * windows to long ones; docs/runners.md has the figures and how this was chosen.
 */
export const DEFAULT_HEAP_MB = 512;

/** The pool's young-generation cap (MiB) unless told otherwise; see docs/runners.md for how it was chosen. */
export const DEFAULT_YOUNG_GENERATION_MB = 24;

const here = fileURLToPath(import.meta.url);
const WORKER = new URL(`./job-worker${extname(here)}`, import.meta.url).href;

const ref = ({ plugin: _plugin, ...rest }: JobSpec['source']): PluginRef => rest;

function failure(code: ErrorCode, message: string, details: Record<string, unknown> = {}): SluiceError {
  return new SluiceError(code, message, details);
}

/**
 * The embedded runner on every core: each job runs in a worker thread of a pool (piscina), reader,
 * field mapping, encoding and writer together, so that N concurrent windows use N cores and none of it
 * runs on the service's event loop. Each worker has a V8 heap cap. A plugin that calls process.exit
 * (which ends only its thread), spins synchronously (no beat for stallTimeoutMs), or allocates without
 * bound (the heap cap) fails its own job with a clear error; the thread is replaced and the service
 * keeps answering. What a worker cannot bound is in docs/runners.md.
 */
export class PooledRunner implements Runner {
  readonly name = 'embedded';
  readonly #pool: Piscina;
  readonly #hookTimeoutMs: number;
  readonly #stallTimeoutMs: number;
  readonly #progressIntervalMs: number;
  readonly #maxHeapMb: number;
  readonly #maxYoungMb: number;
  readonly #heapSetting: string;
  readonly #logger: Logger;

  constructor(options: PooledRunnerOptions = {}) {
    const threads = options.threads ?? availableParallelism();
    this.#maxHeapMb = options.maxHeapMb ?? DEFAULT_HEAP_MB;
    this.#maxYoungMb = options.maxYoungGenerationMb ?? DEFAULT_YOUNG_GENERATION_MB;
    this.#heapSetting = options.settings?.maxHeapMb ?? 'maxHeapMb';
    this.#logger = options.logger ?? silentLogger;
    this.#hookTimeoutMs = options.hookTimeoutMs ?? 30_000;
    this.#stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    this.#progressIntervalMs = options.progressIntervalMs ?? 1000;
    this.#pool = new Piscina({
      filename: WORKER,
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: options.jobsPerThread ?? 1,
      idleTimeout: 30_000,
      // An idle thread's event loop keeps turning: its timers run (the PostgreSQL connections a thread keeps
      // close after 10 s idle) and what a job left behind fails there, not in the thread's next job.
      atomics: 'disabled',
      resourceLimits: {
        maxOldGenerationSizeMb: this.#maxHeapMb,
        ...(this.#maxYoungMb > 0 ? { maxYoungGenerationSizeMb: this.#maxYoungMb } : {}),
      },
    });
    // A thread that fails with no job on it (something a finished job left running) is replaced by the pool.
    this.#pool.on('error', (err: unknown) =>
      this.#logger.error('a job thread failed between jobs; it is replaced', { err }),
    );
  }

  /** Stops the thread (every job on it fails, and the pool starts another). */
  #stopThread(threadId: number | undefined): void {
    if (threadId === undefined) return;
    void this.#pool.threads.find((w) => w.threadId === threadId)?.terminate();
  }

  async run(spec: JobSpec, ctx: RunContext): Promise<void> {
    // Cancelled before it had a thread: nothing ran, nothing to roll back.
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const { port1, port2 } = new MessageChannel();
    let stalled = false;
    /** The job's thread, once it has one (a job may wait in the pool's queue first). */
    let threadId: number | undefined;
    let lastBeat = Date.now();
    let progressSeen = 0;
    let resolvedSeen = 0;
    /** Resolves when the worker says the cancelled job left a sink write in flight: the run ends then. */
    let leftWriting!: () => void;
    const endedWriting = new Promise<undefined>((resolve) => {
      leftWriting = () => resolve(undefined);
    });
    const jobContext = context.active();
    port1.on('message', (m: WorkerMessage) => {
      lastBeat = Date.now();
      if (m.type === 'start') {
        threadId = m.threadId;
        // Cancelled while it waited for a thread: it stops at its first hook.
        if (ctx.signal.aborted) port1.postMessage({ type: 'cancel' } satisfies ServiceMessage);
      } else if (m.type === 'progress') {
        if (m.seq <= progressSeen) return;
        progressSeen = m.seq;
        ctx.onProgress(m.progress as JobProgress);
      } else if (m.type === 'resolved') {
        if (m.seq <= resolvedSeen) return;
        resolvedSeen = m.seq;
        ctx.onResolved(m.positions);
      } else if (m.type === 'left-writing') {
        leftWriting();
      } else if (m.type === 'before-commit') {
        // Answered on the job's port whenever the service has decided; an answer after the run ended (its thread
        // stopped, the port closed) goes nowhere. A cancel meanwhile reaches the thread as usual.
        const answer = (failed?: FailedAnswer) =>
          port1.postMessage({ type: 'commit-answer', ...(failed ? { failed } : {}) } satisfies ServiceMessage);
        void (ctx.beforeCommit?.() ?? Promise.resolve()).then(
          () => answer(),
          (err: unknown) => answer(failedAnswer(err)),
        );
      } else if (m.type === 'hook') {
        recordHookMeasurement(m.measurement);
      } else if (m.type === 'log') {
        // In the job's context, so the line carries the job's trace ids like a line logged in this thread.
        context.with(jobContext, () => this.#logger[m.level](m.message, m.fields));
      }
    });
    // Cancel: the worker ends the job at once, also during a write (the writer rolls back once the write has
    // returned); a thread that does not end it in time (its event loop blocked), or whose write does not return in
    // time, is stopped.
    // The pool gets no abort signal: piscina gives a job that has one a thread of its own, which would leave
    // jobsPerThread at 1. Stopping the thread by its id does what that signal did.
    let cancelTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      port1.postMessage({ type: 'cancel' } satisfies ServiceMessage);
      cancelTimer = setTimeout(() => this.#stopThread(threadId), this.#stallTimeoutMs).unref();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const watchdog = setInterval(
      () => {
        // Beats start once the job has a thread; until then the pool's queue holds it.
        if (threadId !== undefined && Date.now() - lastBeat > this.#stallTimeoutMs) {
          stalled = true;
          this.#stopThread(threadId);
        }
      },
      Math.min(1000, this.#stallTimeoutMs / 4),
    );
    // Empty unless the service traces (no propagator is set otherwise): then the worker traces too.
    const traceCarrier: Record<string, string> = {};
    propagation.inject(context.active(), traceCarrier);
    const task: WorkerTask = {
      spec: { ...spec, source: ref(spec.source), sink: ref(spec.sink) },
      port: port2,
      hookTimeoutMs: this.#hookTimeoutMs,
      progressIntervalMs: this.#progressIntervalMs,
      // The host's file roots and allowed hosts hold in the worker too (its globals start empty).
      policy: hostPolicy(),
      ...(Object.keys(traceCarrier).length > 0 ? { traceCarrier } : {}),
    };
    let result: WorkerResult | undefined;
    const answer = this.#pool.run(task, { transferList: [port2] }) as Promise<WorkerResult | undefined>;
    let leftover = false;
    try {
      const first = await Promise.race([answer.then((r) => ({ r })), endedWriting]);
      if (first === undefined) {
        // Cancelled during a sink write: the job ends now. Its thread waits for the write and the writer's abort;
        // the cancel's timer stops it if that takes longer than the stall timeout, and what the write holds (a
        // connection, a transaction, a window lock) goes with the thread.
        leftover = true;
        void answer
          .catch(() => undefined)
          .finally(() => {
            clearTimeout(cancelTimer);
            port1.close();
          });
        throw ctx.signal.reason;
      }
      result = first.r;
    } catch (err) {
      if (leftover) throw err;
      throw this.#threadFailure(spec, err, stalled, ctx.signal.aborted ? ctx.signal.reason : undefined);
    } finally {
      clearInterval(watchdog);
      ctx.signal.removeEventListener('abort', onAbort);
      if (!leftover) {
        clearTimeout(cancelTimer);
        port1.close();
      }
    }
    exportWorkerSpans(result?.spans);
    // The result may overtake the port's last messages (two channels keep no order): what they said, once.
    if (result?.resolved && result.resolved.seq > resolvedSeen) ctx.onResolved(result.resolved.positions);
    if (result?.progress && result.progress.seq > progressSeen) ctx.onProgress(result.progress.progress as JobProgress);
    if (result?.failed) {
      const { code, message } = result.failed;
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw failure(isErrorCode(code) ? code : ERROR_CODES.PLUGIN_FAILED, message, failedDetails(result.failed));
    }
  }

  /** Why a job's thread ended without an answer, in words a user can act on. */
  #threadFailure(spec: JobSpec, err: unknown, stalled: boolean, cancelled: unknown): unknown {
    const plugins = `source '${spec.source.id}', sink '${spec.sink.id}'`;
    if (stalled)
      return failure(
        ERROR_CODES.PLUGIN_TIMEOUT,
        `job ${spec.job.jobId}: its worker's event loop was blocked for more than ${this.#stallTimeoutMs} ms (${plugins}); the worker was stopped`,
      );
    // Cancelled, and its thread stopped because the job did not end in time: the cancel is the outcome.
    if (cancelled !== undefined) return cancelled;
    const code = (err as { code?: unknown })?.code;
    const text = err instanceof Error ? err.message : String(err);
    if (code === 'ERR_WORKER_OUT_OF_MEMORY')
      return failure(
        ERROR_CODES.PLUGIN_FAILED,
        `job ${spec.job.jobId}: its worker ran out of memory at the heap cap of ${this.#maxHeapMb} MiB (${this.#heapSetting}: raise it, or make the connectors' batches smaller) (${plugins}): ${text}`,
        { heapCapMb: this.#maxHeapMb, setting: this.#heapSetting },
      );
    return failure(ERROR_CODES.PLUGIN_FAILED, `job ${spec.job.jobId}: its worker ended (${plugins}): ${text}`);
  }

  /** Stops the workers (jobs still running fail). */
  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}
