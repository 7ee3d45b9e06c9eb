import { Server, ServerCredentials, status, type ServerWritableStream, type ServiceError } from '@grpc/grpc-js';
import { BoundaryType } from '../../proto/gen/sluice/common/v1/common.js';
import {
  JobState,
  OperatorServiceService,
  type Job,
  type OperatorServiceServer,
  type OfflineJobRequest,
  type WatchJobRequest,
  type WatchJobResponse,
} from '../../proto/gen/sluice/operator/v1/operator.js';

/** One SubmitOfflineJob call as the fake operator saw it. */
export interface SubmitCall {
  readonly groupId: string;
  /** The window's bounds as numbers (TIME windows: epoch ms). */
  readonly lower: number;
  readonly upper: number;
  readonly instanceId: string;
  readonly rerun: boolean;
  /** Date.now() when the call arrived. */
  readonly at: number;
  /** The job ids answered (the same for the same window unless rerun). */
  readonly jobIds: readonly string[];
  /** False when the window already had jobs and those were returned. */
  readonly created: boolean;
}

export interface FakeOperatorOptions {
  /** How long a job stays RUNNING before it SUCCEEDS, once it is watched (default 100 ms). */
  readonly runMs?: number;
  /**
   * Runs when a call arrives, after it is recorded and before it is answered; the answer waits for it.
   * Tests use it to kill the caller while the call is in flight.
   */
  readonly onSubmit?: (call: SubmitCall) => void | Promise<void>;
}

export interface FakeOperator {
  /** host:port to give SLUICE_OPERATOR_ADDR. */
  readonly address: string;
  /** Every SubmitOfflineJob call, in arrival order. */
  readonly calls: readonly SubmitCall[];
  /** The calls for one group, grouped by window lower bound. */
  callsByWindow(groupId: string): Map<number, SubmitCall[]>;
  /** Resolves once `predicate` holds for the calls so far; rejects after timeoutMs. */
  waitFor(predicate: (calls: readonly SubmitCall[]) => boolean, timeoutMs: number, what: string): Promise<void>;
  close(): Promise<void>;
}

const windowKey = (groupId: string, lower: string, upper: string) => JSON.stringify([groupId, lower, upper]);

/**
 * An in-test OperatorService: SubmitOfflineJob is idempotent on (groupId, lower, upper) (the same job
 * ids come back for the same window, as the real operator promises), WatchJob sends the job as it is and
 * then RUNNING → SUCCEEDED, GetJob answers the job. Other methods answer UNIMPLEMENTED.
 */
export async function startFakeOperator(options: FakeOperatorOptions = {}): Promise<FakeOperator> {
  const runMs = options.runMs ?? 100;
  const calls: SubmitCall[] = [];
  const jobs = new Map<string, Job>();
  const byWindow = new Map<string, string[]>();
  /** Listeners of job changes, by job id. */
  const watchers = new Map<string, Set<(job: Job) => void>>();
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<() => void>();
  let seq = 0;

  const setState = (jobId: string, state: JobState) => {
    const job = jobs.get(jobId);
    if (!job || job.state === state) return;
    const now = Date.now();
    const next: Job = {
      ...job,
      state,
      ...(state === JobState.JOB_STATE_RUNNING ? { startedAt: now } : {}),
      ...(state === JobState.JOB_STATE_SUCCEEDED ? { finishedAt: now } : {}),
    };
    jobs.set(jobId, next);
    for (const w of watchers.get(jobId) ?? []) w(next);
  };

  /** A job starts when first watched, and succeeds runMs later. */
  const start = (jobId: string) => {
    if (jobs.get(jobId)?.state !== JobState.JOB_STATE_PENDING) return;
    setState(jobId, JobState.JOB_STATE_RUNNING);
    const timer = setTimeout(() => {
      timers.delete(timer);
      setState(jobId, JobState.JOB_STATE_SUCCEEDED);
    }, runMs);
    timers.add(timer);
  };

  const newJob = (request: OfflineJobRequest): Job => {
    const jobId = `job-${++seq}`;
    const job: Job = {
      jobId,
      groupId: request.groupId,
      streamId: 'stream-1',
      instanceId: request.instanceId,
      boundaries: {
        boundaryType: request.boundaryType,
        lowerBound: request.lowerBoundary,
        upperBound: request.upperBoundary,
      },
      state: JobState.JOB_STATE_PENDING,
      runner: 'fake',
      attempt: 1,
      resolvedSourceOptions: undefined,
      resolvedPositions: undefined,
      progress: undefined,
      error: '',
      createdAt: Date.now(),
      startedAt: 0,
      finishedAt: 0,
      traceId: '',
    };
    jobs.set(jobId, job);
    return job;
  };

  const notFound = (jobId: string): Partial<ServiceError> => ({
    code: status.NOT_FOUND,
    details: `job '${jobId}' not found`,
  });
  const unimplemented = (_call: unknown, callback: (err: Partial<ServiceError> | null) => void) =>
    callback({ code: status.UNIMPLEMENTED, details: 'not in the fake operator' });

  const implementation: OperatorServiceServer = {
    createGroup: unimplemented,
    updateGroup: unimplemented,
    approveGroup: unimplemented,
    deleteGroup: unimplemented,
    getGroup: unimplemented,
    listGroups: unimplemented,
    listJobs: unimplemented,
    cancelJob: unimplemented,
    submitOfflineJob(call, callback) {
      const at = Date.now();
      const request = call.request.request;
      if (!request || request.groupId === '' || request.boundaryType !== BoundaryType.BOUNDARY_TYPE_TIME) {
        callback({ code: status.INVALID_ARGUMENT, details: 'a TIME window of a group is expected' });
        return;
      }
      const key = windowKey(request.groupId, request.lowerBoundary, request.upperBoundary);
      const existing = byWindow.get(key);
      const created = existing === undefined || call.request.rerun;
      const jobIds = created ? [newJob(request).jobId] : existing;
      byWindow.set(key, jobIds);
      const record: SubmitCall = {
        groupId: request.groupId,
        lower: Number(request.lowerBoundary),
        upper: Number(request.upperBoundary),
        instanceId: request.instanceId,
        rerun: call.request.rerun,
        at,
        jobIds,
        created,
      };
      calls.push(record);
      for (const w of [...waiters]) w();
      void Promise.resolve(options.onSubmit?.(record)).then(
        () => callback(null, { jobs: jobIds.map((id) => jobs.get(id)!), created, instance: undefined }),
        (err: unknown) => callback({ code: status.INTERNAL, details: String(err) }),
      );
    },
    getJob(call, callback) {
      const job = jobs.get(call.request.jobId);
      if (job) callback(null, { job });
      else callback(notFound(call.request.jobId));
    },
    watchJob(call: ServerWritableStream<WatchJobRequest, WatchJobResponse>) {
      const { jobId } = call.request;
      const job = jobs.get(jobId);
      if (!job) {
        call.emit('error', notFound(jobId));
        return;
      }
      const final = (j: Job) =>
        j.state === JobState.JOB_STATE_SUCCEEDED ||
        j.state === JobState.JOB_STATE_FAILED ||
        j.state === JobState.JOB_STATE_CANCELLED;
      // The job as it is now, then every change until it ends.
      call.write({ job });
      if (final(job)) {
        call.end();
        return;
      }
      const listeners = watchers.get(jobId) ?? new Set<(job: Job) => void>();
      watchers.set(jobId, listeners);
      const listener = (j: Job) => {
        if (call.cancelled) return;
        call.write({ job: j });
        if (final(j)) {
          listeners.delete(listener);
          call.end();
        }
      };
      listeners.add(listener);
      call.on('cancelled', () => listeners.delete(listener));
      start(jobId);
    },
  };
  const server = new Server();
  server.addService(OperatorServiceService, implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });

  return {
    address: `127.0.0.1:${port}`,
    calls,
    callsByWindow(groupId) {
      const out = new Map<number, SubmitCall[]>();
      for (const c of calls) {
        if (c.groupId !== groupId) continue;
        const list = out.get(c.lower) ?? [];
        list.push(c);
        out.set(c.lower, list);
      }
      return out;
    },
    waitFor(predicate, timeoutMs, what) {
      if (predicate(calls)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(calls)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `fake operator: ${what} did not happen within ${timeoutMs} ms (${calls.length} calls: ${calls.map((c) => c.lower).join(', ')})`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
      });
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
