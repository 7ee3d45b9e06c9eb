import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  ERROR_CODES,
  MAX_REPORTED_FIELD_ERRORS,
  SluiceError,
  isSluiceError,
  type ErrorCode,
  type FieldError,
  type Logger,
} from 'sluice/sdk';
import { MAX_FIELD_ERROR_PART_BYTES, MAX_FIELD_ERRORS_TRAILER_BYTES, MAX_STATUS_MESSAGE_BYTES } from './limits.js';

/** The one mapping from domain error codes to gRPC status codes (docs/errors.md mirrors it). */
export const GRPC_STATUS_BY_CODE: Readonly<Record<ErrorCode, status>> = {
  [ERROR_CODES.INVALID_ARGUMENT]: status.INVALID_ARGUMENT,
  [ERROR_CODES.NOT_FOUND]: status.NOT_FOUND,
  [ERROR_CODES.ALREADY_EXISTS]: status.ALREADY_EXISTS,
  [ERROR_CODES.FAILED_PRECONDITION]: status.FAILED_PRECONDITION,
  [ERROR_CODES.VERSION_CONFLICT]: status.ABORTED,
  [ERROR_CODES.UNAVAILABLE]: status.UNAVAILABLE,
  [ERROR_CODES.RESOURCE_EXHAUSTED]: status.RESOURCE_EXHAUSTED,
  [ERROR_CODES.UNAUTHENTICATED]: status.UNAUTHENTICATED,
  [ERROR_CODES.PERMISSION_DENIED]: status.PERMISSION_DENIED,
  [ERROR_CODES.PLUGIN_TIMEOUT]: status.DEADLINE_EXCEEDED,
  [ERROR_CODES.PLUGIN_FAILED]: status.INTERNAL,
};

/** Trailer carrying the domain code, so clients can branch on it without parsing messages. */
export const ERROR_CODE_TRAILER = 'sluice-error-code';
/** Trailer carrying the field errors as JSON, for INVALID_ARGUMENT. */
export const FIELD_ERRORS_TRAILER = 'sluice-field-errors';

/**
 * JSON a metadata value can carry: header values are printable ASCII, so anything else is written as a
 * \uXXXX escape (a trailer grpc-js refuses would leave the call without any status).
 */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Bytes one character of a string takes in asciiJson's output. */
function jsonCost(c: number): number {
  if (c === 0x22 || c === 0x5c) return 2;
  if (c >= 0x20 && c < 0x7f) return 1;
  return c > 0xffff ? 12 : 6;
}

/** Characters grpc-js sends as they are in `grpc-message` (encodeURI leaves them); any other is percent-encoded. */
const URI_AS_IS = /[A-Za-z0-9\-_.!~*'();/?:@&=+$,#]/;

/** Bytes one character of the status message takes once grpc-js has percent-encoded it (encodeURI). */
function uriCost(ch: string): number {
  const c = ch.codePointAt(0)!;
  if (c < 0x80) return URI_AS_IS.test(ch) ? 1 : 3;
  return 3 * Buffer.byteLength(ch);
}

/**
 * The text within `budget` bytes as `cost` counts them, cut with "..." when longer. A lone surrogate becomes
 * U+FFFD: encodeURI throws on one, and grpc-js would end the call without a status.
 */
function cut(text: string, budget: number, cost: (ch: string) => number): string {
  let used = 0;
  let keep = -1;
  let out = '';
  for (const raw of text) {
    const c = raw.codePointAt(0)!;
    const ch = c >= 0xd800 && c <= 0xdfff ? '\ufffd' : raw;
    used += cost(ch);
    if (keep < 0 && used > budget - 3) keep = out.length;
    if (used > budget) return `${out.slice(0, keep)}...`;
    out += ch;
  }
  return out;
}

/** The status message as sent: at most MAX_STATUS_MESSAGE_BYTES once percent-encoded. */
export function statusMessage(message: string): string {
  return cut(message, MAX_STATUS_MESSAGE_BYTES, uriCost);
}

/** Longest path of the entry counting the field errors left out. */
const REST_PATH_BYTES = 200;

/** The dotted path every one of `paths` starts with ('' when they share none). */
function commonPath(paths: readonly string[]): string {
  const split = paths.map((p) => p.split('.'));
  const first = split[0] ?? [];
  let n = 0;
  while (n < first.length && split.every((p) => p[n] === first[n])) n++;
  return first.slice(0, n).join('.');
}

/**
 * The `sluice-field-errors` trailer: the field errors as ASCII-only JSON of at most MAX_FIELD_ERRORS_TRAILER_BYTES,
 * whoever made them (a plugin's own validate may return any number, of any length). Each part of an entry is cut
 * to MAX_FIELD_ERROR_PART_BYTES; the first entries that fit are kept, at most MAX_REPORTED_FIELD_ERRORS, and one
 * more entry at the path they share says how many were left out.
 */
export function fieldErrorsTrailer(all: readonly FieldError[]): string {
  const part = (text: unknown) =>
    cut(typeof text === 'string' ? text : String(text ?? ''), MAX_FIELD_ERROR_PART_BYTES, (ch) =>
      jsonCost(ch.codePointAt(0)!),
    );
  // Cut as the SDK cuts schema errors' paths, so that the counting entry leaves room for any one field error.
  const path = cut(commonPath(all.map((e) => String(e.path ?? ''))), REST_PATH_BYTES, (ch) =>
    jsonCost(ch.codePointAt(0)!),
  );
  const rest = (n: number): FieldError => {
    const received = `${n} more field errors`;
    const expected = `at most ${MAX_REPORTED_FIELD_ERRORS} field errors in ${MAX_FIELD_ERRORS_TRAILER_BYTES} bytes`;
    return {
      path,
      expected,
      received,
      message: `${path || 'request'}: ${received} left out (the ${FIELD_ERRORS_TRAILER} trailer carries ${expected})`,
    };
  };
  // Room kept for the entry counting the rest, however many that is.
  const reserve = asciiJson(rest(all.length)).length + 1;
  const kept: string[] = [];
  let size = 2; // []
  for (const e of all) {
    if (kept.length === MAX_REPORTED_FIELD_ERRORS) break;
    const entry = asciiJson({
      path: part(e.path),
      expected: part(e.expected),
      received: part(e.received),
      message: part(e.message),
    });
    if (size + entry.length + 1 + reserve > MAX_FIELD_ERRORS_TRAILER_BYTES) break;
    kept.push(entry);
    size += entry.length + 1;
  }
  if (kept.length < all.length) kept.push(asciiJson(rest(all.length - kept.length)));
  return `[${kept.join(',')}]`;
}

/**
 * Turns anything thrown by a use case into a gRPC error. Domain errors keep their message; anything
 * else becomes UNKNOWN with a generic message, and its cause goes only to the log.
 */
export function toServiceError(err: unknown, logger: Logger, method: string): Partial<ServiceError> {
  const metadata = new Metadata();
  if (isSluiceError(err)) {
    metadata.set(ERROR_CODE_TRAILER, err.code);
    // Both trailers within their limits (limits.ts), whatever the error carries: an oversized trailer ends the
    // call on the client's side without its status.
    if (err.details.fieldErrors?.length) {
      metadata.set(FIELD_ERRORS_TRAILER, fieldErrorsTrailer(err.details.fieldErrors));
    } else if (err.details.field) {
      metadata.set(
        FIELD_ERRORS_TRAILER,
        fieldErrorsTrailer([
          {
            path: err.details.field,
            expected: err.details.expected ?? '',
            received: err.details.received ?? '',
            message: err.message,
          },
        ]),
      );
    }
    if (err.code === ERROR_CODES.PLUGIN_FAILED) logger.error('plugin failure', { method, err, cause: err.cause });
    return { code: GRPC_STATUS_BY_CODE[err.code], details: statusMessage(err.message), metadata };
  }
  logger.error('unexpected error', { method, err });
  return { code: status.UNKNOWN, details: 'internal error; see the service log', metadata };
}

/**
 * A gRPC failure of a call to another Sluice service, back as the domain error it was (by the
 * sluice-error-code trailer), so that it crosses service boundaries unchanged; a call that never got
 * an answer is UNAVAILABLE.
 */
export function fromServiceError(err: ServiceError): SluiceError {
  const code = String(err.metadata?.get(ERROR_CODE_TRAILER)[0] ?? '');
  const known = (Object.values(ERROR_CODES) as string[]).includes(code) ? (code as ErrorCode) : undefined;
  const fields = err.metadata?.get(FIELD_ERRORS_TRAILER)[0];
  let fieldErrors: FieldError[] | undefined;
  try {
    fieldErrors = fields ? (JSON.parse(String(fields)) as FieldError[]) : undefined;
  } catch {
    fieldErrors = undefined;
  }
  const first = fieldErrors?.[0];
  return new SluiceError(known ?? ERROR_CODES.UNAVAILABLE, err.details || err.message, {
    ...(fieldErrors ? { fieldErrors } : {}),
    ...(first ? { field: first.path, expected: first.expected, received: first.received } : {}),
  });
}
