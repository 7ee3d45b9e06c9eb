/**
 * Sluice's closed set of domain errors. Every error that crosses a service boundary carries one of
 * these codes; the gRPC adapter maps each to one status in one place (services/core/grpc-status.ts).
 *
 * Errors are recognised by their `code` and a global brand, never by `instanceof`: a plugin may load
 * its own copy of this SDK, and its errors must still be understood by the service.
 */

/** Every code, with the gRPC status it maps to (documented in docs/errors.md). */
export const ERROR_CODES = {
  /** A request field or option is malformed; `details.field` names it. gRPC INVALID_ARGUMENT. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** The named entity does not exist. gRPC NOT_FOUND. */
  NOT_FOUND: 'NOT_FOUND',
  /** The entity exists already. gRPC ALREADY_EXISTS. */
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  /** The request is well formed but the system is not in a state that allows it. gRPC FAILED_PRECONDITION. */
  FAILED_PRECONDITION: 'FAILED_PRECONDITION',
  /** An optimistic-lock version was stale, or a concurrent change won. gRPC ABORTED. */
  VERSION_CONFLICT: 'VERSION_CONFLICT',
  /** A dependency (database, broker, another service) cannot be reached; retrying may help. gRPC UNAVAILABLE. */
  UNAVAILABLE: 'UNAVAILABLE',
  /**
   * A limit of the service's own resources is reached (e.g. open WatchJob streams); the message names the limit and
   * its setting. Retrying later may help. gRPC RESOURCE_EXHAUSTED.
   */
  RESOURCE_EXHAUSTED: 'RESOURCE_EXHAUSTED',
  /** No valid credential came with the call (a bearer token or a client certificate). gRPC UNAUTHENTICATED. */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The credential is valid but its role does not allow the call. gRPC PERMISSION_DENIED. */
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  /** A plugin hook did not finish within its timeout. gRPC DEADLINE_EXCEEDED. */
  PLUGIN_TIMEOUT: 'PLUGIN_TIMEOUT',
  /** A plugin hook threw something that is not a Sluice error. gRPC INTERNAL. */
  PLUGIN_FAILED: 'PLUGIN_FAILED',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** One problem with one field. */
export interface FieldError {
  /** Dotted path, e.g. `options.topic`. */
  readonly path: string;
  /** What was expected, e.g. `an integer >= 1`. */
  readonly expected: string;
  /** What came, rendered as JSON. */
  readonly received: string;
  /** A sentence for people. */
  readonly message: string;
}

export interface SluiceErrorDetails {
  /** The field at fault, for INVALID_ARGUMENT. */
  readonly field?: string;
  readonly expected?: string;
  readonly received?: string;
  /** Every field at fault, when there are several. */
  readonly fieldErrors?: readonly FieldError[];
  /** Plugin and hook, for PLUGIN_* codes. */
  readonly pluginId?: string;
  readonly hook?: string;
}

const BRAND = Symbol.for('sluice.error');
const KNOWN = new Set<string>(Object.values(ERROR_CODES));

/** A domain error with a stable code. Throw it from services and plugins alike. */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly details: SluiceErrorDetails;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, details: SluiceErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SluiceError';
    this.code = code;
    this.details = details;
  }
}

/** True for any Sluice error, whichever copy of the SDK created it. */
export function isSluiceError(value: unknown): value is SluiceError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { code?: unknown; [BRAND]?: unknown };
  return v[BRAND] === true && typeof v.code === 'string' && KNOWN.has(v.code);
}

/** Renders a received value for an error message: JSON, shortened. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = typeof value === 'bigint' ? `${value}` : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** An INVALID_ARGUMENT error naming the field, what was expected and what came. */
export function invalidArgument(field: string, expected: string, received: unknown): SluiceError {
  const got = describeValue(received);
  return new SluiceError(ERROR_CODES.INVALID_ARGUMENT, `${field}: expected ${expected}, got ${got}`, {
    field,
    expected,
    received: got,
  });
}

/** An INVALID_ARGUMENT error carrying several field errors; the message lists them all. */
export function invalidFields(all: readonly FieldError[], prefix = 'invalid request'): SluiceError {
  const fieldErrors = all.slice(0, MAX_REPORTED_FIELD_ERRORS);
  const first = fieldErrors[0];
  const more = all.length - fieldErrors.length;
  const message = `${prefix}: ${fieldErrors.map((e) => e.message).join('; ')}${more > 0 ? `; and ${more} more` : ''}`;
  return new SluiceError(ERROR_CODES.INVALID_ARGUMENT, message, {
    ...(first ? { field: first.path, expected: first.expected, received: first.received } : {}),
    fieldErrors,
  });
}

/** A field error value, with the message built from its parts. */
export function fieldError(path: string, expected: string, received: unknown): FieldError {
  const got = describeValue(received);
  return { path, expected, received: got, message: `${path}: expected ${expected}, got ${got}` };
}

/**
 * At most MAX_REPORTED_FIELD_ERRORS of `all`, then one more entry at `path` saying how many were left out: a
 * reply listing field errors stays small whatever the input (Ajv reports every problem, one per array item).
 */
export function capFieldErrors(all: readonly FieldError[], path: string): FieldError[] {
  if (all.length <= MAX_REPORTED_FIELD_ERRORS) return [...all];
  const more = all.length - MAX_REPORTED_FIELD_ERRORS;
  const rest = fieldError(path, `at most ${MAX_REPORTED_FIELD_ERRORS} problems reported`, undefined);
  const received = `${more} more problems`;
  return [
    ...all.slice(0, MAX_REPORTED_FIELD_ERRORS),
    { ...rest, received, message: `${path}: ${received} (at most ${MAX_REPORTED_FIELD_ERRORS} are reported)` },
  ];
}

/** Field errors reported in one error at most; the message says how many more there were. */
export const MAX_REPORTED_FIELD_ERRORS = 20;

export function notFound(what: string, id: string): SluiceError {
  // An id is echoed shortened: a huge one must not swell the status trailer past what clients accept.
  const shown = id.length > 120 ? `${id.slice(0, 117)}...` : id;
  return new SluiceError(ERROR_CODES.NOT_FOUND, `${what} '${shown}' not found`);
}

export function failedPrecondition(message: string, details: SluiceErrorDetails = {}): SluiceError {
  return new SluiceError(ERROR_CODES.FAILED_PRECONDITION, message, details);
}
