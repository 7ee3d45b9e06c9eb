import { ERROR_CODES, SluiceError } from 'sluice/sdk';

/**
 * What a pulsar-client failure means. The client rejects with `Error("<what>: <result>")`, where
 * <result> is the C++ client's pulsar_result_str (Reader.cc: "Failed to receive message: TimeOut",
 * "Failed to check if next message is available: ConnectError").
 *   timeout    readNext saw no message within its timeout: ask again.
 *   closed     the reader or client was closed (here, on cancel or close()).
 *   refused    the broker refuses this read: retrying cannot help (FAILED_PRECONDITION).
 *   transient  anything else: connection and broker trouble (UNAVAILABLE).
 */
export type PulsarErrorKind = 'timeout' | 'closed' | 'refused' | 'transient';

const REFUSED = new Set([
  'AuthenticationError',
  'AuthorizationError',
  'TopicNotFound',
  'SubscriptionNotFound',
  'NotAllowedError',
  'InvalidTopicName',
  'InvalidConfiguration',
  'IncompatibleSchema',
  'UnsupportedVersionError',
]);
const CLOSED = new Set(['AlreadyClosed', 'ConsumerClosed']);

/** The pulsar_result name at the end of a pulsar-client error message, or ''. */
export function pulsarResult(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return /: ([A-Za-z]+)\s*$/.exec(message)?.[1] ?? '';
}

export function classifyPulsarError(err: unknown): PulsarErrorKind {
  const result = pulsarResult(err);
  if (result === 'TimeOut') return 'timeout';
  if (CLOSED.has(result)) return 'closed';
  if (REFUSED.has(result)) return 'refused';
  return 'transient';
}

/** The SluiceError of a failure that is not a timeout: FAILED_PRECONDITION when refused, else UNAVAILABLE. */
export function pulsarFailure(kind: PulsarErrorKind, what: string, err: unknown): SluiceError {
  const message = err instanceof Error ? err.message : String(err);
  const code = kind === 'refused' ? ERROR_CODES.FAILED_PRECONDITION : ERROR_CODES.UNAVAILABLE;
  return new SluiceError(code, `pulsar: ${what}: ${message}`, {}, { cause: err });
}
