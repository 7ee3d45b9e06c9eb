import { invalidArgument } from 'sluice/sdk';
import { MAX_PAGE_SIZE } from './limits.js';

export const DEFAULT_PAGE_SIZE = 50;
export { MAX_PAGE_SIZE };

export interface Page<T> {
  readonly items: readonly T[];
  /** Empty on the last page. */
  readonly nextPageToken: string;
}

/** Opaque token: the key of the last item returned, so pages stay stable when items are added. */
export function encodePageToken(key: string): string {
  return Buffer.from(JSON.stringify({ k: key }), 'utf8').toString('base64url');
}

export function decodePageToken(token: string): string | undefined {
  if (token === '') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { k?: unknown };
    if (typeof parsed.k === 'string') return parsed.k;
  } catch {
    // fall through to the error below
  }
  throw invalidArgument('page_token', 'a token returned by a previous call', token);
}

export function checkPageSize(pageSize: number): number {
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE)
    throw invalidArgument('page_size', `an integer from 0 to ${MAX_PAGE_SIZE} (0: ${DEFAULT_PAGE_SIZE})`, pageSize);
  if (pageSize === 0) return DEFAULT_PAGE_SIZE;
  return pageSize;
}

/** One page of items sorted by key. */
export function paginate<T>(
  items: readonly T[],
  key: (item: T) => string,
  pageSize: number,
  pageToken: string,
): Page<T> {
  const size = checkPageSize(pageSize);
  const after = decodePageToken(pageToken);
  const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const start = after === undefined ? 0 : sorted.findIndex((i) => key(i) > after);
  const rest = start < 0 ? [] : sorted.slice(start);
  const page = rest.slice(0, size);
  const last = page[page.length - 1];
  return { items: page, nextPageToken: rest.length > size && last !== undefined ? encodePageToken(key(last)) : '' };
}
