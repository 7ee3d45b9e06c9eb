import { ERROR_CODES, SluiceError, isSluiceError, type Logger } from 'sluice/sdk';
import type { JobProgress, JobState } from '../domain/model.js';

/**
 * Runs a job's Flink SQL on a Flink cluster: the statements go to a Flink SQL Gateway (REST API, one
 * session per job), and the Flink job the INSERT starts is watched through the cluster's REST API until
 * it ends. See the `## flink` section of docs/runners.md.
 *
 * HTTP shapes relied on (Flink docs, "SQL Gateway REST API" v1 and "REST API"):
 *   POST   {gateway}/v1/sessions                                   {properties}           → {sessionHandle}
 *   POST   {gateway}/v1/sessions/{s}/statements                    {statement}            → {operationHandle}
 *   GET    {gateway}/v1/sessions/{s}/operations/{o}/status                                → {status}
 *   GET    {gateway}/v1/sessions/{s}/operations/{o}/result/{token}                        → {resultType, jobID?, results: {data: [{fields}]}, nextResultUri}
 *   POST   {gateway}/v1/sessions/{s}/operations/{o}/cancel                                → {status}
 *   DELETE {gateway}/v1/sessions/{s}                                                      → {status}
 *   GET    {rest}/jobs/{jobId}                                                            → {state, vertices: [{metrics}]}
 *   GET    {rest}/jobs/{jobId}/exceptions                                                 → {exceptionHistory: {entries: [{exceptionName, stacktrace}]}, root-exception?}
 *   PATCH  {rest}/jobs/{jobId}?mode=cancel                                                → 202
 * Errors come as {errors: [message, ...]} with a 4xx/5xx status.
 */

/**
 * Flink job states (JobStatus) and the Sluice job state each means. run() resolves only on FINISHED; it
 * rejects on FAILED and on a CANCELED it did not ask for (someone cancelled the job on Flink), which the
 * operator records as FAILED. A cancel Sluice asks for (ctx.signal) rejects with the signal's reason,
 * which the operator records as CANCELLED. States not listed here are taken as RUNNING (polling goes on).
 */
export const FLINK_JOB_STATES: Readonly<Record<string, JobState>> = {
  INITIALIZING: 'PENDING',
  CREATED: 'PENDING',
  RUNNING: 'RUNNING',
  // Transitional: each ends in one of the final states below (or RUNNING again).
  FAILING: 'RUNNING',
  RESTARTING: 'RUNNING',
  CANCELLING: 'RUNNING',
  RECONCILING: 'RUNNING',
  // Only locally terminal: the JobManager lost leadership, and with HA another one recovers the job.
  SUSPENDED: 'RUNNING',
  FINISHED: 'SUCCEEDED',
  FAILED: 'FAILED',
  CANCELED: 'FAILED',
};

/** The Sluice job state of a Flink job state (unknown states: RUNNING). */
export function sluiceJobState(flinkState: string): JobState {
  return FLINK_JOB_STATES[flinkState] ?? 'RUNNING';
}

export interface FlinkRunnerOptions {
  /** The SQL Gateway's REST endpoint, e.g. http://flink-sql-gateway:8083 (SLUICE_FLINK_GATEWAY_URL). */
  readonly gatewayUrl: string;
  /** The Flink cluster's REST API (JobManager), e.g. http://flink-jobmanager:8081 (SLUICE_FLINK_REST_URL). */
  readonly restUrl: string;
  /** How often operation and job states are polled (ms); default 1000. */
  readonly pollIntervalMs?: number;
  /** Injectable fetch (tests); default globalThis.fetch. */
  readonly fetch?: typeof fetch;
  readonly logger: Logger;
  /** Retries of a request that failed transiently (network error, 502/503/504) before UNAVAILABLE; default 3. */
  readonly retries?: number;
  /** Delay before the first retry, doubled each time (ms); default 250. */
  readonly retryBackoffMs?: number;
  /** Timeout of one HTTP request (ms); default 30000. */
  readonly requestTimeoutMs?: number;
  /** Extra session properties (Flink configuration) for every job's session. */
  readonly sessionProperties?: Readonly<Record<string, string>>;
}

export interface FlinkJob {
  readonly jobId: string;
  /** SET and CREATE statements, then the INSERT that starts the Flink job, last (flinkStatements()). */
  readonly statements: readonly string[];
}

export interface FlinkRunContext {
  /** Aborted on CancelJob or shutdown: the Flink job is cancelled, the session closed, and run() rejects with the reason. */
  readonly signal: AbortSignal;
  /** Approximate progress, from the Flink job's vertex metrics; positions are empty (Flink reads the window itself). */
  onProgress?(p: JobProgress): void;
  /** The Flink job id, as soon as the INSERT has started the job. */
  onFlinkJob?(flinkJobId: string): void;
}

/** How a request may be retried: GETs and DELETEs on any transient failure; a statement only when it surely did not arrive. */
type RetryMode = 'idempotent' | 'unsent';

interface RequestInit2 {
  readonly method: 'GET' | 'POST' | 'DELETE' | 'PATCH';
  readonly body?: unknown;
  readonly retry: RetryMode | 'none';
  readonly signal?: AbortSignal;
}

/** A non-2xx answer that is not retried: its status and Flink's error messages. */
class FlinkHttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: readonly string[],
    readonly url: string,
  ) {
    super(`HTTP ${status} from ${url}: ${summarize(errors)}`);
  }
}

const JOB_ID = /^[0-9a-f]{32}$/;
/** Session and operation handles (UUIDs in Flink): they go into URL paths as they are. */
const isHandle = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(v);
const OPERATION_RUNNING = new Set(['INITIALIZED', 'PENDING', 'RUNNING']);
/** Network errors raised before the request was sent: retrying cannot run a statement twice. */
const UNSENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const MAX_MESSAGE = 600;

/** The most telling line of a Java stack trace: the last `Caused by:`, else the first line. */
export function rootCause(trace: string): string {
  const lines = trace.split(/\r?\n/).map((l) => l.trim());
  const causes = lines.filter((l) => l.startsWith('Caused by: ')).map((l) => l.slice('Caused by: '.length));
  const line =
    causes.at(-1) ?? lines.find((l) => l !== '' && l !== 'Internal server error.' && !l.startsWith('at ')) ?? '';
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE - 3)}...` : line;
}

function summarize(errors: readonly string[]): string {
  const all = errors.join('\n');
  return rootCause(all) || 'no message';
}

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && typeof e === 'object' && e !== null; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function describe(err: unknown): string {
  if (err instanceof FlinkHttpError) return err.message;
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return code ? `${message} (${code})` : message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Progress from GET /jobs/{id}: the largest record and byte counts any vertex exchanged (0 when the whole job is one chained vertex). */
function progressOf(info: Record<string, unknown>): JobProgress {
  let records = 0;
  let bytes = 0;
  const vertices = Array.isArray(info.vertices) ? (info.vertices as unknown[]) : [];
  for (const v of vertices) {
    const m = (v as { metrics?: Record<string, unknown> } | null)?.metrics ?? {};
    records = Math.max(records, num(m['read-records']), num(m['write-records']));
    bytes = Math.max(bytes, num(m['read-bytes']), num(m['write-bytes']));
  }
  return { records, bytes, positions: {} };
}

/** Option keys whose values are secrets (JDBC password, Kafka JAAS config, tokens). */
const SECRET_KEY = /password|secret|token|jaas/i;

/** The secret values in the statements' WITH options, to keep them out of error messages (Flink may echo SQL). */
export function secretsOf(statements: readonly string[]): string[] {
  const secrets = new Set<string>();
  for (const s of statements) {
    for (const m of s.matchAll(/'((?:[^']|'')*)' = '((?:[^']|'')*)'/g)) {
      if (!SECRET_KEY.test(m[1]!)) continue;
      const value = m[2]!.replaceAll("''", "'");
      secrets.add(value);
      secrets.add(m[2]!);
      for (const inner of value.matchAll(/password="((?:[^"\\]|\\.)*)"/g)) secrets.add(inner[1]!);
    }
  }
  return [...secrets].filter((v) => v.length >= 3).sort((a, b) => b.length - a.length);
}

function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.replaceAll(secret, '***');
  return out;
}

function statementKind(statement: string): string {
  return (/^\s*([A-Za-z][A-Za-z ]*[A-Za-z])/.exec(statement)?.[1] ?? 'statement').replace(/\s+/g, ' ').toUpperCase();
}

/** What run() knows of the job so far, for cleanup on cancellation or failure. */
interface RunState {
  session?: string;
  /** The INSERT's operation, until it has given the job id. */
  insertOperation?: string;
  flinkJobId?: string;
  /** The Flink job reached a final state. */
  final?: boolean;
}

/** Runs jobs' Flink SQL through a Flink SQL Gateway and watches the Flink jobs through the cluster's REST API. */
export class FlinkRunner {
  readonly name = 'flink';
  readonly #gateway: string;
  readonly #rest: string;
  readonly #poll: number;
  readonly #fetch: typeof fetch;
  readonly #logger: Logger;
  readonly #retries: number;
  readonly #backoff: number;
  readonly #timeout: number;
  readonly #sessionProperties: Readonly<Record<string, string>>;

  constructor(options: FlinkRunnerOptions) {
    this.#gateway = options.gatewayUrl.replace(/\/+$/, '');
    this.#rest = options.restUrl.replace(/\/+$/, '');
    this.#poll = options.pollIntervalMs ?? 1000;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#logger = options.logger;
    this.#retries = options.retries ?? 3;
    this.#backoff = options.retryBackoffMs ?? 250;
    this.#timeout = options.requestTimeoutMs ?? 30_000;
    this.#sessionProperties = options.sessionProperties ?? {};
  }

  /**
   * Opens a session, runs the statements in order (each to FINISHED before the next), takes the Flink job
   * id from the last one (the INSERT) and polls the job until it ends. Resolves on FINISHED. Rejects with
   * FAILED_PRECONDITION when a statement fails or the job FAILED / was CANCELED (with Flink's root cause),
   * UNAVAILABLE when the gateway or REST API cannot be reached after retries, or the signal's reason when
   * aborted (after cancelling the Flink job). The session is always closed.
   */
  async run(job: FlinkJob, ctx: FlinkRunContext): Promise<{ flinkJobId: string }> {
    const { signal } = ctx;
    if (signal.aborted) throw signal.reason;
    if (job.statements.length === 0)
      throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, `job ${job.jobId} has no Flink statements`);
    const state: RunState = {};
    const log = (message: string, fields: Record<string, unknown> = {}) =>
      this.#logger.info(message, { jobId: job.jobId, ...fields });
    try {
      const opened = await this.#request<{ sessionHandle?: unknown }>('gateway', '/v1/sessions', {
        method: 'POST',
        body: { sessionName: `sluice-${job.jobId}`, properties: { ...this.#sessionProperties } },
        retry: 'idempotent',
        signal,
      });
      if (!isHandle(opened.sessionHandle)) throw this.#protocol('POST /v1/sessions answered without a sessionHandle');
      state.session = opened.sessionHandle;
      log('flink session opened', { session: state.session });

      const n = job.statements.length;
      for (const [i, statement] of job.statements.entries()) {
        const what = `statement ${i + 1} of ${n} (${statementKind(statement)})`;
        const submitted = await this.#request<{ operationHandle?: unknown }>(
          'gateway',
          `/v1/sessions/${state.session}/statements`,
          {
            method: 'POST',
            body: { statement },
            retry: 'unsent',
            signal,
          },
        );
        if (!isHandle(submitted.operationHandle))
          throw this.#protocol(`${what} was answered without an operationHandle`);
        const op = submitted.operationHandle;
        if (i === n - 1) state.insertOperation = op;
        await this.#awaitOperation(state.session, op, what, signal);
      }
      const flinkJobId = await this.#jobIdOf(state.session, state.insertOperation!, signal);
      state.flinkJobId = flinkJobId;
      state.insertOperation = undefined;
      log('flink job submitted', { flinkJobId });
      ctx.onFlinkJob?.(flinkJobId);

      await this.#watch(flinkJobId, state, ctx);
      return { flinkJobId };
    } catch (err) {
      if (signal.aborted) {
        await this.#cancel(state, job.jobId);
        throw signal.reason;
      }
      // A job left running would race a retry of the same window: stop it (best effort).
      if (state.flinkJobId && !state.final) await this.#cancel(state, job.jobId);
      // Flink's messages may quote the SQL, whose table options hold passwords: those never leave here.
      const secrets = secretsOf(job.statements);
      // A non-2xx answer that retrying cannot fix (e.g. the gateway's 500 for an unknown session).
      if (err instanceof FlinkHttpError)
        throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, redact(`Flink: ${err.message}`, secrets));
      if (isSluiceError(err)) {
        const message = redact(err.message, secrets);
        if (message !== err.message) throw new SluiceError(err.code, message, err.details);
      }
      throw err;
    } finally {
      if (state.session) await this.#closeSession(state.session, job.jobId);
    }
  }

  /** Polls a statement's operation until FINISHED; FAILED_PRECONDITION with Flink's message when it fails. */
  async #awaitOperation(session: string, op: string, what: string, signal: AbortSignal): Promise<void> {
    for (;;) {
      const { status } = await this.#request<{ status?: unknown }>(
        'gateway',
        `/v1/sessions/${session}/operations/${op}/status`,
        { method: 'GET', retry: 'idempotent', signal },
      );
      const s = String(status ?? '');
      if (s === 'FINISHED') return;
      if (s === 'ERROR') {
        throw new SluiceError(
          ERROR_CODES.FAILED_PRECONDITION,
          `Flink SQL Gateway: ${what} failed: ${await this.#operationError(session, op, signal)}`,
        );
      }
      if (!OPERATION_RUNNING.has(s))
        throw new SluiceError(
          ERROR_CODES.FAILED_PRECONDITION,
          `Flink SQL Gateway: ${what} ended ${s || 'without a status'}`,
        );
      await sleep(this.#poll, signal);
    }
  }

  /** Fetching the results of a failed operation answers with its exception: the root cause of it. */
  async #operationError(session: string, op: string, signal: AbortSignal): Promise<string> {
    try {
      await this.#request('gateway', `/v1/sessions/${session}/operations/${op}/result/0`, {
        method: 'GET',
        retry: 'none',
        signal,
      });
      return 'no error message';
    } catch (err) {
      if (signal.aborted) throw err;
      return err instanceof FlinkHttpError ? summarize(err.errors) : describe(err);
    }
  }

  /** The Flink job id from the INSERT's results: `jobID` (Flink 1.17+), or the one row's one field ("job id", Flink 1.16). */
  async #jobIdOf(session: string, op: string, signal: AbortSignal): Promise<string> {
    let token = 0;
    for (;;) {
      const body = await this.#request<Record<string, unknown>>(
        'gateway',
        `/v1/sessions/${session}/operations/${op}/result/${token}`,
        { method: 'GET', retry: 'idempotent', signal },
      );
      if (typeof body.jobID === 'string' && JOB_ID.test(body.jobID)) return body.jobID;
      const resultType = String(body.resultType ?? '');
      if (resultType === 'NOT_READY') {
        await sleep(this.#poll, signal);
        continue;
      }
      const data = (body.results as { data?: unknown } | undefined)?.data;
      const field = Array.isArray(data) ? (data[0] as { fields?: unknown[] } | undefined)?.fields?.[0] : undefined;
      if (typeof field === 'string' && JOB_ID.test(field)) return field;
      const next = typeof body.nextResultUri === 'string' ? /\/result\/(\d+)/.exec(body.nextResultUri)?.[1] : undefined;
      if (resultType === 'EOS' || next === undefined || Number(next) === token) {
        throw new SluiceError(
          ERROR_CODES.FAILED_PRECONDITION,
          'Flink SQL Gateway: the last statement started no Flink job (its result holds no job id); it must be the INSERT',
        );
      }
      token = Number(next);
    }
  }

  /** Polls GET /jobs/{id} until a final state. */
  async #watch(flinkJobId: string, state: RunState, ctx: FlinkRunContext): Promise<void> {
    let lastState = '';
    let lastProgress = '';
    for (;;) {
      let info: Record<string, unknown>;
      try {
        info = await this.#request<Record<string, unknown>>('rest', `/jobs/${flinkJobId}`, {
          method: 'GET',
          retry: 'idempotent',
          signal: ctx.signal,
        });
      } catch (err) {
        if (err instanceof FlinkHttpError && err.status === 404) {
          throw new SluiceError(
            ERROR_CODES.FAILED_PRECONDITION,
            `the Flink REST API at ${this.#rest} does not know job ${flinkJobId}, which the SQL Gateway started (is it the REST API of the cluster the gateway submits to?)`,
          );
        }
        throw err;
      }
      const flinkState = String(info.state ?? '');
      if (flinkState !== lastState) {
        this.#logger.info('flink job state', { flinkJobId, state: flinkState });
        lastState = flinkState;
      }
      const progress = progressOf(info);
      const key = `${progress.records}/${progress.bytes}`;
      if (ctx.onProgress && key !== lastProgress) {
        lastProgress = key;
        ctx.onProgress(progress);
      }
      const mapped = sluiceJobState(flinkState);
      if (mapped === 'SUCCEEDED') {
        state.final = true;
        return;
      }
      if (mapped === 'FAILED') {
        state.final = true;
        if (flinkState === 'CANCELED') {
          throw new SluiceError(
            ERROR_CODES.FAILED_PRECONDITION,
            `Flink job ${flinkJobId} was CANCELED outside Sluice; the window was not (fully) written`,
          );
        }
        throw new SluiceError(
          ERROR_CODES.FAILED_PRECONDITION,
          `Flink job ${flinkJobId} ${flinkState}: ${await this.#failureOf(flinkJobId, ctx.signal)}`,
        );
      }
      await sleep(this.#poll, ctx.signal);
    }
  }

  /** The root exception of a failed job (GET /jobs/{id}/exceptions), or a note that it is not available. */
  async #failureOf(flinkJobId: string, signal: AbortSignal): Promise<string> {
    try {
      const body = await this.#request<Record<string, unknown>>('rest', `/jobs/${flinkJobId}/exceptions`, {
        method: 'GET',
        retry: 'idempotent',
        signal,
      });
      const entries = (body.exceptionHistory as { entries?: unknown } | undefined)?.entries;
      const first = Array.isArray(entries)
        ? (entries[0] as { exceptionName?: unknown; stacktrace?: unknown } | undefined)
        : undefined;
      if (first) {
        const fromTrace = typeof first.stacktrace === 'string' ? rootCause(first.stacktrace) : '';
        if (fromTrace) return fromTrace;
        if (typeof first.exceptionName === 'string') return first.exceptionName;
      }
      // Before Flink 2.0, and when the history is empty: the deprecated root-exception field.
      if (typeof body['root-exception'] === 'string' && body['root-exception'] !== '')
        return rootCause(body['root-exception']);
      return 'Flink reported no exception (see the job in the Flink web UI)';
    } catch (err) {
      if (signal.aborted) throw err;
      return `the root exception could not be read (${describe(err)})`;
    }
  }

  /** Best effort, never throws: cancels the Flink job (or, before it is known, the INSERT's operation). */
  async #cancel(state: RunState, jobId: string): Promise<void> {
    try {
      if (!state.flinkJobId && state.session && state.insertOperation) {
        // The INSERT may have started the job already: if it has, cancel the job, not the operation.
        const { status } = await this.#request<{ status?: unknown }>(
          'gateway',
          `/v1/sessions/${state.session}/operations/${state.insertOperation}/status`,
          { method: 'GET', retry: 'none' },
        );
        if (status === 'FINISHED') {
          state.flinkJobId = await this.#jobIdOf(
            state.session,
            state.insertOperation,
            AbortSignal.timeout(this.#timeout),
          );
        } else {
          await this.#request('gateway', `/v1/sessions/${state.session}/operations/${state.insertOperation}/cancel`, {
            method: 'POST',
            retry: 'none',
          });
          this.#logger.info('flink statement cancelled', { jobId });
          return;
        }
      }
      if (state.flinkJobId) {
        await this.#request('rest', `/jobs/${state.flinkJobId}?mode=cancel`, { method: 'PATCH', retry: 'idempotent' });
        this.#logger.info('flink job cancelled', { jobId, flinkJobId: state.flinkJobId });
      }
    } catch (err) {
      this.#logger.warn('could not cancel the flink job', {
        jobId,
        flinkJobId: state.flinkJobId,
        error: describe(err),
      });
    }
  }

  /** Closes the session (and with it the job's temporary tables); never throws. */
  async #closeSession(session: string, jobId: string): Promise<void> {
    try {
      await this.#request('gateway', `/v1/sessions/${session}`, { method: 'DELETE', retry: 'idempotent' });
      this.#logger.info('flink session closed', { jobId, session });
    } catch (err) {
      this.#logger.warn('could not close the flink session (the gateway expires idle sessions)', {
        jobId,
        session,
        error: describe(err),
      });
    }
  }

  #protocol(message: string): SluiceError {
    return new SluiceError(ERROR_CODES.FAILED_PRECONDITION, `Flink SQL Gateway at ${this.#gateway}: ${message}`);
  }

  /**
   * One HTTP exchange with JSON in and out. Transient failures (network errors, 502, 503, 504, a timeout)
   * are retried with exponential backoff as the mode allows, then reported as UNAVAILABLE; other non-2xx
   * answers throw FlinkHttpError. A request without a signal (cleanup) still has its own timeout.
   */
  async #request<T = unknown>(target: 'gateway' | 'rest', path: string, init: RequestInit2): Promise<T> {
    const base = target === 'gateway' ? this.#gateway : this.#rest;
    const url = `${base}${path}`;
    const label = `${init.method} ${url}`;
    const attempts = init.retry === 'none' ? 1 : this.#retries + 1;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (init.signal?.aborted) throw init.signal.reason;
      const timeout = AbortSignal.timeout(this.#timeout);
      const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
      let transient: boolean;
      try {
        const response = await this.#fetch(url, {
          method: init.method,
          headers:
            init.body === undefined
              ? { accept: 'application/json' }
              : { accept: 'application/json', 'content-type': 'application/json' },
          body: init.body === undefined ? undefined : JSON.stringify(init.body),
          signal,
        });
        const text = await response.text();
        if (response.ok) {
          if (text.trim() === '') return {} as T;
          try {
            return JSON.parse(text) as T;
          } catch {
            throw this.#protocol(`${label} answered ${response.status} with a body that is not JSON`);
          }
        }
        const errors = parseErrors(text);
        lastError = new FlinkHttpError(response.status, errors, url);
        transient =
          response.status === 503 ||
          (init.retry === 'idempotent' && (response.status === 502 || response.status === 504));
        if (!transient) throw lastError;
      } catch (err) {
        if (init.signal?.aborted) throw init.signal.reason;
        if (err === lastError || isSluiceError(err)) throw err;
        lastError = err;
        const code = errorCode(err);
        // A statement may have reached the gateway unless the connection was never made.
        transient =
          init.retry === 'idempotent' ||
          (init.retry === 'unsent' && code !== undefined && UNSENT_CODES.has(code) && !timeout.aborted);
        if (!transient) {
          throw new SluiceError(
            ERROR_CODES.UNAVAILABLE,
            `${target === 'gateway' ? 'Flink SQL Gateway' : 'Flink REST API'}: ${label} failed: ${describe(err)}`,
            {},
            { cause: err },
          );
        }
      }
      if (attempt < attempts) {
        const delay = this.#backoff * 2 ** (attempt - 1);
        this.#logger.warn('flink request failed; retrying', {
          request: label,
          attempt,
          delayMs: delay,
          error: describe(lastError),
        });
        await sleep(delay, init.signal);
      }
    }
    throw new SluiceError(
      ERROR_CODES.UNAVAILABLE,
      `${target === 'gateway' ? 'Flink SQL Gateway' : 'Flink REST API'} unavailable: ${label} failed ${attempts} time(s), last: ${describe(lastError)}`,
      {},
      { cause: lastError },
    );
  }
}

/** Flink's error body, {errors: [...]}, or the text as it is. */
function parseErrors(text: string): string[] {
  try {
    const body = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(body.errors)) return body.errors.map(String);
  } catch {
    // not JSON
  }
  return text.trim() === '' ? [] : [text.slice(0, 2000)];
}
