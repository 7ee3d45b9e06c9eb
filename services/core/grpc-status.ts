import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ERROR_CODES, SluiceError, isSluiceError, type ErrorCode, type FieldError, type Logger } from 'sluice/sdk';

/** The one mapping from domain error codes to gRPC status codes (docs/errors.md mirrors it). */
export const GRPC_STATUS_BY_CODE: Readonly<Record<ErrorCode, status>> = {
  [ERROR_CODES.INVALID_ARGUMENT]: status.INVALID_ARGUMENT,
  [ERROR_CODES.NOT_FOUND]: status.NOT_FOUND,
  [ERROR_CODES.ALREADY_EXISTS]: status.ALREADY_EXISTS,
  [ERROR_CODES.FAILED_PRECONDITION]: status.FAILED_PRECONDITION,
  [ERROR_CODES.VERSION_CONFLICT]: status.ABORTED,
  [ERROR_CODES.UNAVAILABLE]: status.UNAVAILABLE,
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

/**
 * Turns anything thrown by a use case into a gRPC error. Domain errors keep their message; anything
 * else becomes UNKNOWN with a generic message, and its cause goes only to the log.
 */
export function toServiceError(err: unknown, logger: Logger, method: string): Partial<ServiceError> {
  const metadata = new Metadata();
  if (isSluiceError(err)) {
    metadata.set(ERROR_CODE_TRAILER, err.code);
    if (err.details.fieldErrors?.length) {
      metadata.set(FIELD_ERRORS_TRAILER, asciiJson(err.details.fieldErrors));
    } else if (err.details.field) {
      metadata.set(
        FIELD_ERRORS_TRAILER,
        asciiJson([
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
    return { code: GRPC_STATUS_BY_CODE[err.code], details: err.message, metadata };
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
