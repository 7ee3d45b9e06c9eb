import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { Authenticator } from '../../core/auth.js';
import type { TlsFiles } from '../../core/grpc-auth.js';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ERROR_CODES, invalidArgument, isSluiceError, type ErrorCode, type Logger } from 'sluice/sdk';
import type { OperatorService, SchedulePort } from '../domain/service.js';
import { type CallbackCredentials, authenticate, principalName } from './inlong-auth.js';
import { decodeSubmit, normalizePath } from './inlong-request.js';
import { bodyKind, parseJsonBody } from './json-body.js';
import { InstanceState } from '../../../proto/gen/sluice/schedule/v1/schedule.js';
import { decodePathPart } from './api-routes.js';
import { createJsonApi, type ApiTargets } from './json-api.js';
import { serveUi, UI_PREFIX } from './static-ui.js';
import { UI_DIR } from '../../core/paths.js';

/** The path InLong's schedulers call; Airflow DAGs, DolphinScheduler tasks and Quartz jobs written for InLong work unchanged. */
export const CALLBACK_PATH = '/inlong/manager/api/group/submitOfflineJob';
/**
 * FireDue over HTTP: `POST /sluice/v1/groups/{groupId}/fire-due` with an optional `{"asOf": <epoch ms>}`
 * (a number, or a string of digits).
 */
export const FIRE_DUE_PATH = /^\/sluice\/v1\/groups\/([^/]+)\/fire-due$/;
const MAX_BODY = 64 * 1024;

/** Domain codes as HTTP statuses, for Sluice's own paths (InLong's path answers 200 with its envelope). */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  [ERROR_CODES.INVALID_ARGUMENT]: 400,
  [ERROR_CODES.NOT_FOUND]: 404,
  [ERROR_CODES.ALREADY_EXISTS]: 409,
  [ERROR_CODES.FAILED_PRECONDITION]: 412,
  [ERROR_CODES.VERSION_CONFLICT]: 409,
  [ERROR_CODES.UNAVAILABLE]: 503,
  [ERROR_CODES.RESOURCE_EXHAUSTED]: 429,
  [ERROR_CODES.UNAUTHENTICATED]: 401,
  [ERROR_CODES.PERMISSION_DENIED]: 403,
  [ERROR_CODES.PLUGIN_TIMEOUT]: 504,
  [ERROR_CODES.PLUGIN_FAILED]: 500,
};

/** The gRPC request's field names as the JSON body spells them. */
const HTTP_FIELD: Readonly<Record<string, string>> = {
  'request.lower_bound': 'lowerBoundary',
  'request.upper_bound': 'upperBoundary',
  'request.boundary_type': 'boundaryType',
  lower_bound: 'lowerBoundary',
  upper_bound: 'upperBoundary',
  boundary_type: 'boundaryType',
  group_id: 'groupId',
  as_of: 'asOf',
};

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** InLong's envelope: `{success, errMsg, data}`; Sluice's `code` and `fieldErrors` ride along (InLong's clients ignore extra fields). */
function fail(res: ServerResponse, status: number, code: string, message: string, fieldErrors?: unknown): void {
  send(res, status, { success: false, errMsg: message, data: null, code, ...(fieldErrors ? { fieldErrors } : {}) });
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

export interface CallbackOptions extends CallbackCredentials {
  readonly service: OperatorService;
  /** The schedule service, for FireDue over HTTP. */
  readonly schedules?: SchedulePort;
  /** The check every entry point shares: a bearer token needs the operator role here. */
  readonly auth?: Authenticator;
  /** Serve HTTPS (and require client certificates when a client CA is set). */
  readonly tls?: TlsFiles;
  readonly logger: Logger;
  /** The JSON API (/sluice/v1/...) and the dashboard (/ui): where their RPCs go. */
  readonly api?: ApiTargets;
  /** SLUICE_TRACE_URL_TEMPLATE, for the dashboard's trace links. */
  readonly traceUrlTemplate?: string;
  /** The dashboard's files (tests point elsewhere); defaults to ui/. */
  readonly uiDir?: string;
}

/**
 * Sluice's HTTP server. `POST /inlong/manager/api/group/submitOfflineJob` takes InLong's
 * OfflineJobRequest as InLong's own callers send it (see docs/inlong.md): a bearer token or an InLong
 * user, bounds in seconds or ms, bounds that must be a window of the group's schedule, and InLong's
 * envelope back. `POST /sluice/v1/groups/{groupId}/fire-due` is FireDue (bearer token only). A W3C
 * `traceparent` is continued; the query string (InLong's credentials) is never recorded.
 */
export function createCallbackServer(options: CallbackOptions): Server {
  const tracer = trace.getTracer('sluice.operator');
  const api = options.api
    ? createJsonApi({
        targets: options.api,
        ...(options.auth ? { auth: options.auth } : {}),
        ...(options.traceUrlTemplate ? { traceUrlTemplate: options.traceUrlTemplate } : {}),
        logger: options.logger,
      })
    : undefined;
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    // Split by hand: `new URL('//inlong/...')` would read `inlong` as a host name.
    const raw = req.url ?? '/';
    const at = raw.indexOf('?');
    const path = normalizePath(at < 0 ? raw : raw.slice(0, at));
    const query = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
    const route =
      path === CALLBACK_PATH
        ? CALLBACK_PATH
        : FIRE_DUE_PATH.test(path)
          ? '/sluice/v1/groups/{groupId}/fire-due'
          : path.startsWith(UI_PREFIX)
            ? UI_PREFIX
            : path.startsWith('/sluice/v1/')
              ? '/sluice/v1'
              : 'unknown';
    const parent = propagation.extract(context.active(), req.headers);
    void context.with(parent, () =>
      tracer.startActiveSpan(
        `${req.method ?? 'POST'} ${route}`,
        { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method ?? '', 'url.path': path } },
        async (span) => {
          try {
            await handle(req, res, query, path).catch((err: unknown) => {
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
  const server = tls
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
  server.on('close', () => api?.close());
  return server;

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
    path: string,
  ): Promise<void> {
    const inlong = path === CALLBACK_PATH;
    const fireDue = FIRE_DUE_PATH.exec(path);
    if (!inlong && !fireDue) {
      if (options.api && (await serveUi(req, res, path, options.uiDir ?? UI_DIR))) return;
      if (api && (await api.handle(req, res, path, query))) return;
      return fail(res, 404, 'NOT_FOUND', `no such path: ${path}`);
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return fail(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed; use POST`);
    }
    // A bearer token goes through the one check every entry point shares (roles included); InLong users
    // are checked on InLong's path only. With no bearer tokens set (InLong users alone) that check lets
    // everyone through, so a bearer token then counts for nothing.
    const bearerSent = /^Bearer /i.test(req.headers.authorization ?? '') && options.auth?.enabled === true;
    if (bearerSent && options.auth) {
      try {
        options.auth.authorize('operator', req.headers.authorization);
      } catch (err) {
        if (!isSluiceError(err)) throw err;
        if (err.code === ERROR_CODES.UNAUTHENTICATED) res.setHeader('www-authenticate', 'Bearer');
        req.resume(); // drain the body the caller may still be sending
        return fail(res, HTTP_STATUS_BY_CODE[err.code], err.code, err.message);
      }
    }
    const principal =
      bearerSent && options.auth ? ({ kind: 'token' } as const) : authenticate(options, req.headers, query, inlong);
    if (!principal) {
      res.setHeader('www-authenticate', inlong ? 'Bearer, Basic realm="sluice"' : 'Bearer');
      return fail(
        res,
        401,
        'UNAUTHENTICATED',
        inlong
          ? 'valid credentials are required: Authorization: Bearer <token>, or an InLong user (username/password in the query, or HTTP Basic)'
          : 'a valid bearer token is required (Authorization: Bearer <token>)',
      );
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
      if (fireDue) return await handleFireDue(res, decodePathPart(fireDue[1]!), text);
      const request = decodeSubmit(
        parseJsonBody(text, 'a JSON object {groupId, boundaryType, lowerBoundary, upperBoundary}'),
      );
      const result = await options.service.submitOfflineJob(
        {
          groupId: request.groupId,
          boundaryType: request.boundaryType,
          lowerBound: request.lowerBound,
          upperBound: request.upperBound,
          instanceId: '',
        },
        request.rerun,
        principalName(principal),
      );
      options.logger.info('window submitted over HTTP', {
        groupId: request.groupId,
        boundaryType: request.boundaryType,
        lowerBound: request.lowerBound,
        upperBound: request.upperBound,
        by: principalName(principal),
        created: result.created,
        instanceId: result.instance?.instanceId,
      });
      const instance = result.instance;
      send(res, 200, {
        success: true,
        errMsg: null,
        data: true,
        created: result.created,
        jobs: result.jobs.map((j) => ({
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
        // The window's ledger row: a window sent before it is due has no jobs yet and runs at dueTime.
        ...(instance
          ? {
              instance: {
                instanceId: instance.instanceId,
                state: (InstanceState[instance.state] ?? '').replace(/^INSTANCE_STATE_/, ''),
                dueTime: instance.window?.dueTime ?? 0,
                triggeredBy: instance.triggeredBy,
              },
            }
          : {}),
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
        for (const [from, to] of Object.entries(HTTP_FIELD)) message = message.replaceAll(from, to);
        // InLong's callers read the envelope, not the status: a refusal is HTTP 200 with success false.
        return fail(res, inlong ? 200 : HTTP_STATUS_BY_CODE[err.code], err.code, message, fieldErrors);
      }
      options.logger.error('HTTP request failed', { path, err });
      return fail(res, 500, 'UNKNOWN', 'internal error; see the service log');
    }
  }

  async function handleFireDue(res: ServerResponse, groupId: string, text: string): Promise<void> {
    if (!options.schedules) return fail(res, 503, 'UNAVAILABLE', 'no schedule service is reachable from here');
    const body = text.trim() === '' ? {} : parseJsonBody(text, 'a JSON object {"asOf": <epoch ms>} or an empty body');
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw invalidArgument('body', 'a JSON object {"asOf": <epoch ms>}', bodyKind(body));
    const given = (body as { asOf?: unknown }).asOf ?? 0;
    // A string of digits too: DolphinScheduler 3.3's HTTP task re-sends every body value as a string.
    const asOf = typeof given === 'string' && /^\d{1,16}$/.test(given) ? Number(given) : given;
    if (typeof asOf !== 'number' || !Number.isSafeInteger(asOf) || asOf < 0)
      throw invalidArgument('asOf', 'epoch milliseconds as a number or a string of digits (0 or absent: now)', given);
    const answer = await options.schedules.fireDue(groupId, asOf);
    send(res, 200, { success: true, errMsg: null, data: answer });
  }
}
