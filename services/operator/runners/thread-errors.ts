import { ERROR_CODES, type ErrorCode, isSluiceError } from 'sluice/sdk';

/**
 * An error as it crosses between the service and a job's thread, either way: a SluiceError's class does not survive
 * the structured clone, so its code, message and details go as plain fields.
 */
export interface FailedAnswer {
  readonly code?: string;
  readonly message: string;
  readonly details?: unknown;
}

/** `err` as it crosses a thread boundary: a SluiceError keeps its code and details, anything else its message. */
export function failedAnswer(err: unknown): FailedAnswer {
  if (isSluiceError(err)) return { code: err.code, message: err.message, details: { ...err.details } };
  return { message: err instanceof Error ? err.message : String(err) };
}

/** Whether a code that crossed a thread boundary is one of Sluice's error codes. */
export function isErrorCode(code: string | undefined): code is ErrorCode {
  return code !== undefined && (Object.values(ERROR_CODES) as string[]).includes(code);
}

/** The details that crossed with a FailedAnswer, as a SluiceError takes them (anything else: none). */
export function failedDetails(failed: FailedAnswer): Record<string, unknown> {
  return typeof failed.details === 'object' && failed.details !== null ? { ...failed.details } : {};
}
