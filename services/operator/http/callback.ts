import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { Authenticator } from '../../core/auth.js';
import type { TlsFiles } from '../../core/grpc-auth.js';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ERROR_CODES, invalidArgument, isSluiceError, type ErrorCode, type Logger } from 'sluice/sdk';
import type { OperatorService } from '../domain/service.js';

/** The path InLong's schedulers call; Airflow DAGs and DolphinScheduler tasks written for InLong work unchanged. */
export const CALLBACK_PATH = '/inlong/manager/api/group/submitOfflineJob';
const MAX_BODY = 64 * 1024;

/** Domain codes as HTTP statuses, for the callback's JSON errors. */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  [ERROR_CODES.INVALID_ARGUMENT]: 400,
  [ERROR_CODES.NOT_FOUND]: 404,
  [ERROR_CODES.ALREADY_EXISTS]: 409,
  [ERROR_CODES.FAILED_PRECONDITION]: 412,
  [ERROR_CODES.VERSION_CONFLICT]: 409,
  [ERROR_CODES.UNAVAILABLE]: 503,
  [ERROR_CODES.UNAUTHENTICATED]: 401,
  [ERROR_CODES.PERMISSION_DENIED]: 403,
  [ERROR_CODES.PLUGIN_TIMEOUT]: 504,
  [ERROR_CODES.PLUGIN_FAILED]: 500,
};

/** The gRPC request's field names as this JSON body spells them. */
const HTTP_FIELD: Readonly<Record<string, string>> = {
  'request.lower_bound': 'lowerBoundary',
  'request.upper_bound': 'upperBoundary',
  'request.boundary_type': 'boundaryType',
  boundary_type: 'boundaryType',
  group_id: 'groupId',
};

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function fail(res: ServerResponse, status: number, code: string, message: string, fieldErrors?: unknown): void {
  send(res, status, { success: false, code, message, ...(fieldErrors ? { fieldErrors } : {}) });
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A bound: a decimal string or a whole number (InLong schedulers send either). */
function bound(body: Record<string, unknown>, field: 'lowerBoundary' | 'upperBoundary'): string {
  const v = body[field];
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'string' && v !== '') return v;
  throw invalidArgument(field, 'a bound: epoch milliseconds for TIME, a position for OFFSET', v);
}

export interface CallbackOptions {
  readonly service: OperatorService;
  /** Checks the caller's bearer token: the callback needs the operator role. */
  readonly auth: Authenticator;
  /** Serve HTTPS (and require client certificates when a client CA is set). */
  readonly tls?: TlsFiles;
  readonly logger: Logger;
}

/**
 * `POST /inlong/manager/api/group/submitOfflineJob` with `{groupId, boundaryType, lowerBoundary,
 * upperBoundary}`: the same validation and idempotency as the gRPC SubmitOfflineJob, a bearer token
 * required, and a W3C `traceparent` continued.
 */
export function createCallbackServer(options: CallbackOptions): Server {
  const tracer = trace.getTracer('sluice.operator');
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const parent = propagation.extract(context.active(), req.headers);
    // The query string never reaches a span or a log line: InLong clients send credentials there.
    const path = (req.url ?? '').split('?')[0] ?? '';
    void context.with(parent, () =>
      tracer.startActiveSpan(
        `POST ${CALLBACK_PATH}`,
        { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method ?? '', 'url.path': path } },
        async (span) => {
          try {
            await handle(req, res).catch((err: unknown) => {
              options.logger.error('callback failed', { path, err });
              if (!res.headersSent) fail(res, 500, 'UNKNOWN', 'internal error; see the service log');
              else res.destroy();
            });
          } finally {
            span.setAttribute('http.response.status_code', res.statusCode);
            if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
            span.end();
          }
        },
      ),
    );
  };
  const tls = options.tls;
  return tls
    ? createTlsServer(
        {
          cert: readFileSync(tls.certFile),
          key: readFileSync(tls.keyFile),
          ...(tls.clientCaFile
            ? { ca: readFileSync(tls.clientCaFile), requestCert: true, rejectUnauthorized: true }
            : {}),
        },
        listener,
      )
    : createServer(listener);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== CALLBACK_PATH) return fail(res, 404, 'NOT_FOUND', `no such path: ${path}`);
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return fail(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed; use POST`);
    }
    try {
      options.auth.authorize('operator', req.headers.authorization);
    } catch (err) {
      if (!isSluiceError(err)) throw err;
      if (err.code === ERROR_CODES.UNAUTHENTICATED) res.setHeader('www-authenticate', 'Bearer');
      req.resume(); // drain the body the caller may still be sending
      return fail(res, HTTP_STATUS_BY_CODE[err.code], err.code, err.message);
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      req.resume();
      return fail(res, 415, 'INVALID_ARGUMENT', `content-type: expected application/json, got ${JSON.stringify(type)}`);
    }
    let text: string | undefined;
    try {
      text = await readBody(req);
    } catch {
      return; // the caller went away mid-body: nobody to answer
    }
    if (text === undefined) return fail(res, 413, 'INVALID_ARGUMENT', `the body is larger than ${MAX_BODY} bytes`);
    try {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw invalidArgument(
          'body',
          'a JSON object {groupId, boundaryType, lowerBoundary, upperBoundary}',
          text.slice(0, 80),
        );
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw invalidArgument('body', 'a JSON object', body);
      const b = body as Record<string, unknown>;
      if (typeof b.groupId !== 'string' || b.groupId === '') throw invalidArgument('groupId', 'a group id', b.groupId);
      const type = typeof b.boundaryType === 'string' ? b.boundaryType.toUpperCase() : b.boundaryType;
      if (type !== 'TIME' && type !== 'OFFSET')
        throw invalidArgument('boundaryType', '"TIME" or "OFFSET"', b.boundaryType);
      if (b.rerun !== undefined && typeof b.rerun !== 'boolean') throw invalidArgument('rerun', 'a boolean', b.rerun);
      const result = await options.service.submitOfflineJob(
        {
          groupId: b.groupId,
          boundaryType: type,
          lowerBound: bound(b, 'lowerBoundary'),
          upperBound: bound(b, 'upperBoundary'),
          instanceId: typeof b.instanceId === 'string' ? b.instanceId : '',
        },
        b.rerun === true,
      );
      send(res, result.created ? 201 : 200, {
        success: true,
        created: result.created,
        data: result.jobs.map((j) => ({
          jobId: j.jobId,
          groupId: j.groupId,
          streamId: j.streamId,
          instanceId: j.instanceId,
          boundaryType: j.boundaries.boundaryType,
          lowerBoundary: j.boundaries.lowerBound,
          upperBoundary: j.boundaries.upperBound,
          generation: j.generation,
          state: j.state,
          runner: j.runner,
        })),
      });
    } catch (err) {
      if (isSluiceError(err)) {
        const fieldErrors = (
          err.details.fieldErrors ??
          (err.details.field
            ? [{ path: err.details.field, expected: err.details.expected ?? '', received: err.details.received ?? '' }]
            : undefined)
        )?.map((f) => ({ ...f, path: HTTP_FIELD[f.path] ?? f.path }));
        let message = err.message;
        for (const [from, to] of Object.entries(HTTP_FIELD)) message = message.replace(from, to);
        return fail(res, HTTP_STATUS_BY_CODE[err.code], err.code, message, fieldErrors);
      }
      options.logger.error('callback failed', { err });
      return fail(res, 500, 'UNKNOWN', 'internal error; see the service log');
    }
  }
}
