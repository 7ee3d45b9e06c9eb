import { invalidArgument } from 'sluice/sdk';

/**
 * Every request limit in one place (docs/security.md lists them). A request past one is refused with
 * INVALID_ARGUMENT naming the field; the gRPC message size is enforced by the transport (RESOURCE_EXHAUSTED).
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

function checkStructDepth(value: unknown, path: string, depth: number): void {
  if (depth > MAX_STRUCT_DEPTH)
    throw invalidArgument(shortPath(path), `a value nested at most ${MAX_STRUCT_DEPTH} levels deep`, 'deeper nesting');
  if (Array.isArray(value)) {
    if (value.length > MAX_LIST_LENGTH)
      throw invalidArgument(shortPath(path), `a list of at most ${MAX_LIST_LENGTH} values`, `${value.length} values`);
    value.forEach((v, i) => checkStructDepth(v, `${path}[${i}]`, depth + 1));
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) checkStructDepth(v, `${path}.${k}`, depth + 1);
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
  for (const k of Object.keys(fields)) {
    if (STRUCT_FIELDS.has(k)) checkStructDepth(fields[k], pathOf(path, k), 0);
    else walk(fields[k], path, k, k);
  }
}

/**
 * Checks a decoded request against the limits above: ids, descriptions and other strings, list lengths,
 * page sizes, Struct nesting. Throws INVALID_ARGUMENT naming the field (snake_case, as in the .proto).
 */
export function checkRequestLimits(request: unknown): void {
  walk(request, '', '', '');
}
