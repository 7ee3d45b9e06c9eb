import { status, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { callMetadata, type ClientSecurity, INSECURE_CLIENT, ON_BEHALF_HEADER } from '../../core/grpc-auth.js';
import { ERROR_CODES, SluiceError, type Logger } from 'sluice/sdk';
import { BoundaryType } from '../../../proto/gen/sluice/common/v1/common.js';
import { JobState, OperatorServiceClient, type Job } from '../../../proto/gen/sluice/operator/v1/operator.js';
import type { Dispatcher } from '../domain/service.js';

const RETRYABLE = new Set([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.ABORTED,
  status.UNKNOWN,
  status.UNIMPLEMENTED,
]);
const FINAL = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

export interface GrpcDispatcherOptions {
  /** host:port of the operator service. */
  readonly address: string;
  readonly logger: Logger;
  /** Channel credentials and the service token (default: plaintext, no token). */
  readonly security?: ClientSecurity;
  /** Attempts of one SubmitOfflineJob before the instance fails (default 8). */
  readonly maxAttempts?: number;
  /** First backoff; doubles up to maxBackoffMs (defaults 500 ms, 30 s). */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Longest wait before a broken WatchJob stream is opened again (default 5 s; never above maxBackoffMs). */
  readonly maxWatchBackoffMs?: number;
  /** Deadline of one call (default 30 s). */
  readonly callTimeoutMs?: number;
}

/** Waits, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The metadata, naming whom the call is for when it is made for someone (an engine's window). */
function withBehalf(md: Metadata, triggeredBy: string | undefined): Metadata {
  if (triggeredBy) md.set(ON_BEHALF_HEADER, triggeredBy);
  return md;
}

/**
 * The error a submission ends with: an operator out of reach or too slow (UNAVAILABLE, DEADLINE_EXCEEDED) becomes
 * the domain's UNAVAILABLE, which the schedule service reads as "may get through later"; the rest stay as they
 * came, refusals. The message is grpc-js's own ("14 UNAVAILABLE: ..."), kept for the instance's error.
 */
function asDispatchError(err: unknown): unknown {
  const code = (err as ServiceError | null)?.code;
  if (code !== status.UNAVAILABLE && code !== status.DEADLINE_EXCEEDED) return err;
  return new SluiceError(ERROR_CODES.UNAVAILABLE, (err as Error).message, {}, { cause: err });
}

/** Sends fired windows to OperatorService over gRPC, retrying with backoff, and follows their jobs with WatchJob. */
export class GrpcDispatcher implements Dispatcher {
  readonly #client: OperatorServiceClient;
  readonly #o: Required<Omit<GrpcDispatcherOptions, 'logger' | 'address' | 'security'>> & { logger: Logger };
  readonly #security: ClientSecurity;

  constructor(options: GrpcDispatcherOptions) {
    this.#security = options.security ?? INSECURE_CLIENT;
    this.#client = new OperatorServiceClient(options.address, this.#security.credentials);
    this.#o = {
      maxAttempts: 8,
      initialBackoffMs: 500,
      maxBackoffMs: 30_000,
      maxWatchBackoffMs: 5000,
      callTimeoutMs: 30_000,
      ...options,
    };
  }

  close(): void {
    this.#client.close();
  }

  async submit(request: Parameters<Dispatcher['submit']>[0], signal?: AbortSignal): Promise<readonly string[]> {
    let backoff = this.#o.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      // Stopped before (or between) the calls: nothing is sent; the row is taken up again at the next start.
      if (signal?.aborted) throw signal.reason;
      try {
        const res = await new Promise<{ jobs: Job[] }>((resolve, reject) => {
          this.#client.submitOfflineJob(
            {
              request: {
                groupId: request.groupId,
                boundaryType:
                  request.boundaryType === 'TIME' ? BoundaryType.BOUNDARY_TYPE_TIME : BoundaryType.BOUNDARY_TYPE_OFFSET,
                lowerBoundary: request.lowerBound,
                upperBoundary: request.upperBound,
                instanceId: request.instanceId,
              },
              rerun: request.rerun,
            },
            withBehalf(callMetadata(this.#security), request.triggeredBy),
            { deadline: Date.now() + this.#o.callTimeoutMs },
            (err, r) => (err ? reject(err) : resolve(r)),
          );
        });
        return res.jobs.map((j) => j.jobId);
      } catch (err) {
        const code = (err as ServiceError).code;
        if (!RETRYABLE.has(code) || attempt >= this.#o.maxAttempts) throw asDispatchError(err);
        this.#o.logger.warn('SubmitOfflineJob failed; retrying', {
          groupId: request.groupId,
          lowerBound: request.lowerBound,
          attempt,
          code,
          // What the operator (or the channel) said: a store that timed out and a replica that is down both come
          // back UNAVAILABLE, and only this tells them apart.
          details: (err as ServiceError).details,
          backoffMs: backoff,
        });
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, this.#o.maxBackoffMs);
      }
    }
  }

  async follow(
    jobIds: readonly string[],
    onRunning: () => void,
    signal?: AbortSignal,
  ): Promise<{ succeeded: boolean; error?: string }> {
    let running = false;
    const outcomes = await Promise.all(
      jobIds.map((jobId) =>
        this.#watch(
          jobId,
          () => {
            if (!running) {
              running = true;
              onRunning();
            }
          },
          signal,
        ),
      ),
    );
    const failed = outcomes.find((j) => j.state !== JobState.JOB_STATE_SUCCEEDED);
    return failed
      ? {
          succeeded: false,
          error: `job ${failed.jobId} ended ${JobState[failed.state]}${failed.error ? `: ${failed.error}` : ''}`,
        }
      : { succeeded: true };
  }

  /**
   * WatchJob until the job ends; a broken stream is opened again after a backoff (it starts with the job
   * as it is). A job the operator does not know ends as FAILED: waiting for it would never end.
   *
   * The backoff starts again from the first step after a stream that delivered the job: that stream reached a
   * live operator, so its break is a new outage (a replica killed), not the same one going on. Kept growing, it
   * reached maxBackoffMs after a few kills and the window heard its job's end that much later, holding its
   * group's parallel slot meanwhile. It is capped lower than a submission's too (maxWatchBackoffMs): opening a
   * watch again costs the operator one read.
   */
  async #watch(jobId: string, onRunning: () => void, signal?: AbortSignal): Promise<Job> {
    const cap = Math.min(this.#o.maxBackoffMs, this.#o.maxWatchBackoffMs);
    let backoff = Math.min(this.#o.initialBackoffMs, cap);
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      let unknown = false;
      let delivered = false;
      const last = await new Promise<Job | undefined>((resolve) => {
        let latest: Job | undefined;
        const stream = this.#client.watchJob({ jobId }, callMetadata(this.#security));
        signal?.addEventListener('abort', () => stream.cancel(), { once: true });
        stream.on('data', (msg: { job?: Job }) => {
          if (!msg.job) return;
          delivered = true;
          latest = msg.job;
          if (msg.job.state === JobState.JOB_STATE_RUNNING) onRunning();
          if (FINAL.has(msg.job.state)) {
            stream.cancel();
            resolve(msg.job);
          }
        });
        stream.on('error', (err: ServiceError) => {
          if (err.code === status.NOT_FOUND) unknown = true;
          else if (err.code !== status.CANCELLED)
            this.#o.logger.warn('WatchJob broke; watching again', { jobId, code: err.code });
          resolve(latest && FINAL.has(latest.state) ? latest : undefined);
        });
        stream.on('end', () => resolve(latest && FINAL.has(latest.state) ? latest : undefined));
      });
      if (last) return last;
      if (unknown)
        return { jobId, state: JobState.JOB_STATE_FAILED, error: 'the operator does not know this job' } as Job;
      if (delivered) backoff = Math.min(this.#o.initialBackoffMs, cap);
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, cap);
    }
  }
}
