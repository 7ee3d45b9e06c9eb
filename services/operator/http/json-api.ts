import type { IncomingMessage, ServerResponse } from 'node:http';
import { type DescMessage, ScalarType } from '@bufbuild/protobuf';
import { Client, status, type ServiceError } from '@grpc/grpc-js';
import { ERROR_CODES, describeValue, invalidArgument, isSluiceError, type Logger } from 'sluice/sdk';
import { type Authenticator, roleFor } from '../../core/auth.js';
import { callMetadata, type ClientSecurity } from '../../core/grpc-auth.js';
import { ERROR_CODE_TRAILER, FIELD_ERRORS_TRAILER } from '../../core/grpc-status.js';
import { requestType } from '../../core/request-guard.js';
import { type ApiRoute, matchRoute } from './api-routes.js';
import { bodyKind, parseJsonBody } from './json-body.js';

/** Where the JSON API sends each call: the operator and schedule gRPC services, and how to reach them. */
export interface ApiTargets {
  readonly operatorAddress: () => string | undefined;
  readonly operatorSecurity: ClientSecurity;
  readonly scheduleAddress: () => string | undefined;
  readonly scheduleSecurity: ClientSecurity;
}

export interface JsonApiOptions {
  readonly targets: ApiTargets;
  /** Checks the caller's bearer token with the role its RPC needs, as gRPC does. */
  readonly auth?: Authenticator;
  /** SLUICE_TRACE_URL_TEMPLATE, handed to the dashboard. */
  readonly traceUrlTemplate?: string;
  readonly logger: Logger;
}

const MAX_BODY = 64 * 1024;
const CALL_TIMEOUT_MS = 30_000;
/** The dashboard's own settings (no RPC behind it): viewer role, like any read. */
export const DASHBOARD_SETTINGS_PATH = '/sluice/v1/dashboard';

const HTTP_BY_GRPC: Partial<Record<status, number>> = {
  [status.INVALID_ARGUMENT]: 400,
  [status.NOT_FOUND]: 404,
  [status.ALREADY_EXISTS]: 409,
  [status.ABORTED]: 409,
  [status.FAILED_PRECONDITION]: 412,
  [status.UNAUTHENTICATED]: 401,
  [status.PERMISSION_DENIED]: 403,
  [status.UNAVAILABLE]: 503,
  [status.DEADLINE_EXCEEDED]: 504,
  [status.RESOURCE_EXHAUSTED]: 429,
};

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** The error body of every Sluice HTTP path: `{success: false, errMsg, code, fieldErrors?}`. */
function fail(res: ServerResponse, httpStatus: number, code: string, message: string, fieldErrors?: unknown): void {
  send(res, httpStatus, { success: false, errMsg: message, data: null, code, ...(fieldErrors ? { fieldErrors } : {}) });
}

/**
 * Sluice's JSON API (`/sluice/v1/...`, docs/http-api.md): each path is one RPC of the operator or
 * schedule service, called over gRPC with this process's own credentials once the caller's bearer
 * token passed the same role check gRPC makes. Requests and answers are the RPC messages in the proto3
 * JSON mapping, so the dashboard sees exactly what gRPC clients see (masked secrets included).
 * Returns false when the path is not one of its own.
 */
export function createJsonApi(options: JsonApiOptions) {
  const clients = new Map<string, Client>();
  const clientFor = (address: string, security: ClientSecurity): Client => {
    let c = clients.get(address);
    if (!c) {
      c = new Client(address, security.credentials);
      clients.set(address, c);
    }
    return c;
  };

  async function handle(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams) {
    if (path === DASHBOARD_SETTINGS_PATH) {
      if (!authorized(req, res, 'viewer')) return true;
      send(res, 200, { traceUrlTemplate: options.traceUrlTemplate ?? '' });
      return true;
    }
    let match: ReturnType<typeof matchRoute>;
    try {
      match = matchRoute(path);
    } catch (err) {
      if (!isSluiceError(err)) throw err;
      req.resume();
      fail(res, 400, err.code, err.message, [
        { path: err.details.field, expected: err.details.expected, received: err.details.received },
      ]);
      return true;
    }
    if (!match) return false;
    const route = match.routes.find((r) => r.method === req.method);
    if (!route) {
      req.resume();
      res.setHeader('allow', match.routes.map((r) => r.method).join(', '));
      fail(res, 405, 'METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on ${path}`);
      return true;
    }
    if (!authorized(req, res, roleFor(route.rpc.definition.path))) {
      req.resume();
      return true;
    }
    let fields: Record<string, unknown>;
    try {
      fields = { ...(await requestFields(req, route, query)), ...match.params };
    } catch (err) {
      if (isSluiceError(err)) {
        const f = err.details;
        fail(res, httpStatusOf(err), err.code, err.message, [
          { path: f.field, expected: f.expected, received: f.received },
        ]);
        return true;
      }
      throw err;
    }
    const target =
      route.rpc.service === 'operator'
        ? { address: options.targets.operatorAddress(), security: options.targets.operatorSecurity }
        : { address: options.targets.scheduleAddress(), security: options.targets.scheduleSecurity };
    if (!target.address) {
      fail(res, 503, 'UNAVAILABLE', `the ${route.rpc.service} service is not reachable from here`);
      return true;
    }
    const client = clientFor(target.address, target.security);
    const request = route.rpc.fromJSON(fields);
    const mistyped = badInteger(fields, requestType(route.rpc.definition.path)) ?? mistypedField(fields, request);
    if (mistyped) {
      fail(res, 400, 'INVALID_ARGUMENT', `${mistyped.path}: expected ${mistyped.expected}, got ${mistyped.received}`, [
        mistyped,
      ]);
      return true;
    }
    try {
      const answer = await new Promise<unknown>((resolve, reject) =>
        client.makeUnaryRequest(
          route.rpc.definition.path,
          (v: unknown) => route.rpc.definition.requestSerialize(v as never),
          (b: Buffer) => route.rpc.definition.responseDeserialize(b),
          request,
          callMetadata(target.security),
          { deadline: Date.now() + CALL_TIMEOUT_MS },
          (err, value) => (err ? reject(err) : resolve(value)),
        ),
      );
      send(res, 200, route.rpc.toJSON(answer as never));
    } catch (err) {
      const e = err as ServiceError;
      const code = String(e.metadata?.get(ERROR_CODE_TRAILER)[0] ?? status[e.code] ?? 'UNKNOWN');
      const rawFields = e.metadata?.get(FIELD_ERRORS_TRAILER)[0];
      let fieldErrors: unknown;
      try {
        fieldErrors = rawFields === undefined ? undefined : JSON.parse(String(rawFields));
      } catch {
        fieldErrors = undefined;
      }
      if (e.code === status.UNKNOWN || e.code === status.INTERNAL)
        options.logger.warn('JSON API call failed', { path, rpc: route.rpc.definition.path, err: e.details });
      fail(res, HTTP_BY_GRPC[e.code] ?? 500, code, e.details || 'the call failed', fieldErrors);
    }
    return true;
  }

  function authorized(req: IncomingMessage, res: ServerResponse, needed: ReturnType<typeof roleFor>): boolean {
    // No bearer tokens configured (the server is on for InLong's users alone): the API stays closed
    // rather than open to anyone who reaches the port.
    if (!options.auth?.enabled) {
      res.setHeader('www-authenticate', 'Bearer');
      fail(res, 401, 'UNAUTHENTICATED', 'the JSON API needs bearer tokens: set SLUICE_AUTH_TOKENS');
      return false;
    }
    try {
      options.auth.authorize(needed, req.headers.authorization);
      return true;
    } catch (err) {
      if (!isSluiceError(err)) throw err;
      if (err.code === ERROR_CODES.UNAUTHENTICATED) res.setHeader('www-authenticate', 'Bearer');
      fail(res, err.code === ERROR_CODES.UNAUTHENTICATED ? 401 : 403, err.code, err.message);
      return false;
    }
  }

  return {
    handle,
    close(): void {
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}

/** Integer scalar types of the proto: the values each holds (64-bit ones: what is exact in JavaScript). */
const INT32: readonly [number, number] = [-(2 ** 31), 2 ** 31 - 1];
const UINT32: readonly [number, number] = [0, 2 ** 32 - 1];
const INT64: readonly [number, number] = [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
const UINT64: readonly [number, number] = [0, Number.MAX_SAFE_INTEGER];
const INTEGER_RANGE: Partial<Record<ScalarType, readonly [number, number]>> = {
  [ScalarType.INT32]: INT32,
  [ScalarType.SINT32]: INT32,
  [ScalarType.SFIXED32]: INT32,
  [ScalarType.UINT32]: UINT32,
  [ScalarType.FIXED32]: UINT32,
  [ScalarType.INT64]: INT64,
  [ScalarType.SINT64]: INT64,
  [ScalarType.SFIXED64]: INT64,
  [ScalarType.UINT64]: UINT64,
  [ScalarType.FIXED64]: UINT64,
};

type FieldProblem = { path: string; expected: string; received: string };

/** One JSON value of an integer field: a number or a numeric string (proto3 JSON), whole and in range. */
function badIntegerValue(value: unknown, range: readonly [number, number], path: string): FieldProblem | undefined {
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /\S/.test(value) && value.length <= 64
        ? Number(value)
        : Number.NaN;
  if (Number.isInteger(n) && n >= range[0] && n <= range[1]) return undefined;
  // No number at all (what the type check below said before integers were checked), or a number the field cannot hold.
  const expected = Number.isNaN(n) ? 'a number' : `an integer from ${range[0]} to ${range[1]}`;
  return { path, expected, received: describeValue(value) };
}

/**
 * An integer field (as the request's message declares it; under its camelCase or its snake_case name, which
 * fromJSON both reads) whose JSON value is not a whole number in the field's range: fromJSON would pass 1.5 or
 * 1e19 on, and the request's serializer then failed (the caller got 500). Nested message fields are looked into.
 */
function badInteger(
  fields: Record<string, unknown>,
  desc: DescMessage | undefined,
  prefix = '',
  depth = 0,
): FieldProblem | undefined {
  if (!desc || depth > 8) return undefined;
  for (const f of desc.fields) {
    for (const key of new Set([f.jsonName, f.name, f.localName])) {
      if (!Object.hasOwn(fields, key)) continue;
      const value = fields[key];
      if (value === null || value === undefined) continue;
      const path = `${prefix}${key}`;
      if (f.fieldKind === 'scalar' || (f.fieldKind === 'list' && f.listKind === 'scalar')) {
        const range = INTEGER_RANGE[f.scalar];
        if (!range) continue;
        if (f.fieldKind === 'scalar') {
          const bad = badIntegerValue(value, range, path);
          if (bad) return bad;
        } else if (Array.isArray(value)) {
          for (const [i, item] of value.entries()) {
            const bad = badIntegerValue(item, range, `${path}[${i}]`);
            if (bad) return bad;
          }
        } else return { path, expected: 'a list of integers', received: describeValue(value) };
      } else if (
        f.fieldKind === 'message' &&
        !f.message.typeName.startsWith('google.') &&
        typeof value === 'object' &&
        !Array.isArray(value)
      ) {
        const bad = badInteger(value as Record<string, unknown>, f.message, `${path}.`, depth + 1);
        if (bad) return bad;
      }
    }
  }
  return undefined;
}

/**
 * A top-level field whose JSON value does not fit the message's field. The generated fromJSON reads a number
 * with Number() (NaN from "abc" or {}, and the call then failed inside the serializer), a boolean with
 * Boolean() (true from "false"), and an unknown enum name as -1; proto3 JSON allows none of these.
 */
function mistypedField(
  fields: Record<string, unknown>,
  request: unknown,
): { path: string; expected: string; received: string } | undefined {
  const message = request as Record<string, unknown>;
  for (const [key, value] of Object.entries(fields)) {
    const read = message[key];
    const received = describeValue(value); // at most 120 characters
    if (typeof read === 'boolean' && typeof value !== 'boolean')
      return { path: key, expected: 'true or false', received };
    if (typeof read !== 'number') continue;
    if (!Number.isFinite(read)) return { path: key, expected: 'a number', received };
    // A name that is not a number: an enum's, which fromJSON reads as -1 when it does not know it.
    if (read === -1 && typeof value === 'string' && !/^\s*-?\d/.test(value))
      return { path: key, expected: 'one of the names the API documents', received };
  }
  return undefined;
}

/** The HTTP status of a body refused before it is read as JSON: as the InLong callback answers them. */
const BODY_STATUS = new WeakMap<Error, number>();

function withStatus(err: Error, httpStatus: number): Error {
  BODY_STATUS.set(err, httpStatus);
  return err;
}

/** 413 for a body too large, 415 for one that is not JSON, else 400: INVALID_ARGUMENT all three. */
function httpStatusOf(err: Error): number {
  return BODY_STATUS.get(err) ?? 400;
}

/** The request's fields: the route's query parameters (lists split at commas), and for POST the JSON body. */
async function requestFields(
  req: IncomingMessage,
  route: ApiRoute,
  query: URLSearchParams,
): Promise<Record<string, unknown>> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of query) {
    if (!route.query?.includes(key)) {
      throw invalidArgument(
        `query.${key}`,
        route.query?.length ? `one of ${route.query.join(', ')}` : 'no query parameters',
        key,
      );
    }
    fields[key] = route.arrays?.includes(key) ? value.split(',').filter((v) => v !== '') : value;
  }
  if (route.method !== 'POST') return fields;
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY)
      throw withStatus(invalidArgument('body', `at most ${MAX_BODY} bytes`, `more than ${MAX_BODY} bytes`), 413);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return fields;
  if (type !== 'application/json') throw withStatus(invalidArgument('content-type', 'application/json', type), 415);
  const body = parseJsonBody(text, 'a JSON object');
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalidArgument('body', 'a JSON object', bodyKind(body));
  return { ...fields, ...(body as Record<string, unknown>) };
}
