import { invalidArgument } from 'sluice/sdk';

/**
 * Every request limit in one place (docs/security.md lists them). A request past one is refused with
 * INVALID_ARGUMENT naming the field; the gRPC message size is enforced by the transport (RESOURCE_EXHAUSTED).
 * Then the limits of what the service holds and answers: open WatchJob streams, and the size of error trailers.
 */

/** Largest gRPC request accepted, in bytes. */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Longest id of any kind (group, stream, job, instance, connector, engine…), in characters. */
export const MAX_ID_LENGTH = 256;
/** Longest description of a group, in characters. */
export const MAX_DESCRIPTION_LENGTH = 4096;
/** Streams in one group. */
export const MAX_STREAMS_PER_GROUP = 100;
/** Field mappings in one stream. */
export const MAX_FIELDS_PER_STREAM = 1000;
/** How deep a Struct (connector options) may nest; the decoder itself stops a little deeper. */
export const MAX_STRUCT_DEPTH = 20;
/** Most items one page may hold (page_size); 0 asks for the default of 50. */
export const MAX_PAGE_SIZE = 500;
/** Longest page token, in characters (tokens Sluice returns are far shorter). */
export const MAX_PAGE_TOKEN_LENGTH = 1024;
/** Longest free-text string anywhere else in a request (e.g. a cron expression), in characters. */
export const MAX_STRING_LENGTH = 64 * 1024;
/** Entries in any one repeated field or map of a request (streams and fields have their own limits above). */
export const MAX_LIST_LENGTH = 10_000;
/**
 * Longest key of a Struct (connector options), in characters. Keys end up in field paths of error answers,
 * which travel in gRPC trailers: a key much longer than any option name is refused before it gets there.
 */
export const MAX_STRUCT_KEY_LENGTH = 256;

/**
 * WatchJob streams one process keeps open at once, unless SLUICE_MAX_WATCH_STREAMS says otherwise: each holds a
 * listener and a place in the watch poller until its job ends or the client goes, so one more is refused with
 * RESOURCE_EXHAUSTED naming the limit and the setting.
 */
export const DEFAULT_MAX_WATCH_STREAMS = 1000;

// What an error answer carries in its gRPC trailers, whatever made the error (a plugin's own `validate` may return
// thousands of field errors, each as long as it likes): grpc-java and gRPC C++ accept 8 KiB of metadata by default
// and end a call whose trailers are larger without its status; the two limits below add up to less. Sizes are
// bytes as sent: the status message percent-encoded as grpc-js sends `grpc-message`, the field errors as their
// ASCII-only JSON (services/core/grpc-status.ts applies both).
/** Longest status message (`grpc-message`) of an error answer; a longer one is cut, ending with `...`. */
export const MAX_STATUS_MESSAGE_BYTES = 2048;
/**
 * Largest `sluice-field-errors` trailer: the first field errors that fit (at most MAX_REPORTED_FIELD_ERRORS of
 * them, each with its path, expected, received and message cut to MAX_FIELD_ERROR_PART_BYTES), then one entry
 * counting those left out.
 */
export const MAX_FIELD_ERRORS_TRAILER_BYTES = 5120;
/** Longest path, expected, received or message of one field error in the `sluice-field-errors` trailer. */
export const MAX_FIELD_ERROR_PART_BYTES = 1024;

/** Request fields (camelCase, as decoded) that are google.protobuf.Struct: their keys are the client's own. */
const STRUCT_FIELDS = new Set(['options', 'boundedOptions', 'resolvedSourceOptions', 'resolvedPositions']);

/** Field names seen, in snake_case: a request's keys are the proto's few field names, over and over. */
const SNAKE = new Map<string, string>();
/** Keys cached at most (map fields' keys are the client's own and need not repeat). */
const SNAKE_CACHE_LIMIT = 1024;

/** camelCase to snake_case, as the .proto names the field. */
function snake(key: string): string {
  let name = SNAKE.get(key);
  if (name === undefined) {
    name = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (SNAKE.size < SNAKE_CACHE_LIMIT) SNAKE.set(key, name);
  }
  return name;
}

function shortPath(path: string): string {
  return path.length > 200 ? `${path.slice(0, 197)}...` : path;
}

/** A Struct key as it may appear in an error path: shortened, so the path stays within bounds. */
function keyShown(key: string): string {
  return key.length > 40 ? `${key.slice(0, 37)}...` : key;
}

/**
 * A Struct (connector options) within the limits: nested at most MAX_STRUCT_DEPTH levels, at most
 * MAX_LIST_LENGTH entries in any one list or object (keys count as entries), keys of at most
 * MAX_STRUCT_KEY_LENGTH characters and strings of at most MAX_STRING_LENGTH. Linear in the Struct's size.
 */
function checkStruct(value: unknown, path: string, depth: number): void {
  if (depth > MAX_STRUCT_DEPTH)
    throw invalidArgument(shortPath(path), `a value nested at most ${MAX_STRUCT_DEPTH} levels deep`, 'deeper nesting');
  if (typeof value === 'string') {
    if (value.length > MAX_STRING_LENGTH)
      throw invalidArgument(
        shortPath(path),
        `a string of at most ${MAX_STRING_LENGTH} characters`,
        `${value.length} characters`,
      );
    return;
  }
  if (Array.isArray(value)) {
    if (value.length > MAX_LIST_LENGTH)
      throw invalidArgument(shortPath(path), `a list of at most ${MAX_LIST_LENGTH} values`, `${value.length} values`);
    value.forEach((v, i) => checkStruct(v, `${path}[${i}]`, depth + 1));
  } else if (typeof value === 'object' && value !== null && !Buffer.isBuffer(value)) {
    const keys = Object.keys(value);
    if (keys.length > MAX_LIST_LENGTH)
      throw invalidArgument(shortPath(path), `an object of at most ${MAX_LIST_LENGTH} keys`, `${keys.length} keys`);
    for (const k of keys)
      if (k.length > MAX_STRUCT_KEY_LENGTH)
        throw invalidArgument(
          shortPath(`${path}.${keyShown(k)}`),
          `an option name of at most ${MAX_STRUCT_KEY_LENGTH} characters`,
          `a name of ${k.length} characters`,
        );
    for (const k of keys) checkStruct((value as Record<string, unknown>)[k], `${path}.${k}`, depth + 1);
  }
}

function checkString(key: string, value: string, parent: string, name: string): void {
  const limit = key.endsWith('Id')
    ? MAX_ID_LENGTH
    : key === 'description'
      ? MAX_DESCRIPTION_LENGTH
      : key === 'pageToken'
        ? MAX_PAGE_TOKEN_LENGTH
        : MAX_STRING_LENGTH;
  if (value.length > limit)
    throw invalidArgument(pathOf(parent, name), `at most ${limit} characters`, `${value.length} characters`);
}

function checkList(key: string, value: readonly unknown[], path: string): void {
  const limit = key === 'streams' ? MAX_STREAMS_PER_GROUP : key === 'fields' ? MAX_FIELDS_PER_STREAM : MAX_LIST_LENGTH;
  if (value.length > limit) throw invalidArgument(path, `at most ${limit} entries`, `${value.length} entries`);
}

/**
 * The field's path (snake_case, as in the .proto): `parent` is the enclosing object's path, `name` the field's
 * camelCase name, or '' when `parent` already ends with it (a list element). Built only when needed (an error,
 * an object or list to descend into), not once per scalar field of every request.
 */
function pathOf(parent: string, name: string): string {
  if (name === '') return parent;
  return parent ? `${parent}.${snake(name)}` : snake(name);
}

function walk(value: unknown, parent: string, name: string, key: string): void {
  if (typeof value === 'string') return checkString(key, value, parent, name);
  if (typeof value === 'number') {
    if (key === 'pageSize' && (!Number.isInteger(value) || value < 0 || value > MAX_PAGE_SIZE))
      throw invalidArgument(pathOf(parent, name), `an integer from 0 to ${MAX_PAGE_SIZE} (0: the default)`, value);
    return;
  }
  if (Array.isArray(value)) {
    const path = pathOf(parent, name);
    checkList(key, value, path);
    value.forEach((v, i) => walk(v, `${path}[${i}]`, '', key));
    return;
  }
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value)) return;
  const path = pathOf(parent, name);
  const fields = value as Record<string, unknown>;
  const keys = Object.keys(fields);
  // A message has a few fields; more keys than a list may hold is a map field past its limit.
  if (keys.length > MAX_LIST_LENGTH)
    throw invalidArgument(shortPath(path), `at most ${MAX_LIST_LENGTH} entries`, `${keys.length} entries`);
  for (const k of keys) {
    if (STRUCT_FIELDS.has(k)) checkStruct(fields[k], pathOf(path, k), 0);
    else walk(fields[k], path, k, k);
  }
}

/**
 * Checks a decoded request against the limits above: ids, descriptions and other strings, list lengths,
 * page sizes, Struct nesting, width, key and string lengths. Throws INVALID_ARGUMENT naming the field (snake_case, as in the .proto).
 */
export function checkRequestLimits(request: unknown): void {
  walk(request, '', '', '');
}
