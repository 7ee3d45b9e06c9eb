import { invalidArgument } from 'sluice/sdk';

/**
 * The body parsed as JSON; otherwise INVALID_ARGUMENT naming `body`, what was expected, and where the text stops
 * being JSON, without echoing any of it (a malformed body may still hold a password, and error answers end up
 * in clients' logs).
 */
export function parseJsonBody(text: string, expected: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const at = /at position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
    const length = Buffer.byteLength(text);
    throw invalidArgument(
      'body',
      expected,
      `${length} bytes that are not JSON${at !== undefined ? ` (from character ${at})` : ' (it ends too early or starts wrong)'}`,
    );
  }
}

/** What a JSON body that is not an object is, named by its kind only: its content may hold a password. */
export function bodyKind(body: unknown): string {
  return Array.isArray(body) ? 'an array' : body === null ? 'null' : `a ${typeof body}`;
}
