import { readFileSync } from 'node:fs';
import type {
  MethodDefinition,
  sendUnaryData,
  ServiceDefinition,
  ServiceError,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { createFileRegistry, fromBinary, type DescMessage, type FileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { invalidArgument, type Logger, type SluiceError } from 'sluice/sdk';
import { toServiceError } from './grpc-status.js';
import { MAX_STRUCT_DEPTH, checkRequestLimits } from './limits.js';
import { DESCRIPTOR_SET } from './paths.js';

/**
 * Keeps bad requests from reaching handlers as INTERNAL: a request the generated decoder refuses (an int64
 * outside JavaScript's safe range, nesting past the decoder's recursion limit, bytes that are not the
 * message) and a request past a limit (services/core/limits.ts) both become INVALID_ARGUMENT naming the field.
 */

const DECODE_FAILED = Symbol('sluice.decodeFailed');
type Failed = { [DECODE_FAILED]: SluiceError };

let registry: FileRegistry | undefined;
function descriptors(): FileRegistry {
  registry ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(DESCRIPTOR_SET)));
  return registry;
}

/** The request message of a method path such as /sluice.operator.v1.OperatorService/ListJobs. */
export function requestType(path: string): DescMessage | undefined {
  const [, service, method] = /^\/([^/]+)\/([^/]+)$/.exec(path) ?? [];
  return descriptors()
    .getService(service ?? '')
    ?.methods.find((m) => m.name === method)?.input;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The path of the first 64-bit integer outside the safe range, and its value. */
function unsafeInt(desc: DescMessage, message: Record<string, unknown>, path: string): [string, bigint] | undefined {
  const out = (v: unknown, at: string): [string, bigint] | undefined =>
    typeof v === 'bigint' && (v > SAFE || v < -SAFE) ? [at, v] : undefined;
  for (const f of desc.fields) {
    const v = message[f.localName];
    const at = path ? `${path}.${f.name}` : f.name;
    if (v === undefined || v === null) continue;
    let found: [string, bigint] | undefined;
    if (f.fieldKind === 'scalar') found = out(v, at);
    else if (f.fieldKind === 'message' && !f.message.typeName.startsWith('google.'))
      found = unsafeInt(f.message, v as Record<string, unknown>, at);
    else if (f.fieldKind === 'list')
      for (const [i, item] of (v as unknown[]).entries()) {
        found =
          f.listKind === 'message'
            ? unsafeInt(f.message, item as Record<string, unknown>, `${at}[${i}]`)
            : out(item, `${at}[${i}]`);
        if (found) break;
      }
    else if (f.fieldKind === 'map')
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
        found =
          f.mapKind === 'message'
            ? unsafeInt(f.message, item as Record<string, unknown>, `${at}[${k}]`)
            : out(item, `${at}[${k}]`);
        if (found) break;
      }
    if (found) return found;
  }
  return undefined;
}

/** Paths of the Struct fields of a request type, e.g. group.streams[].source.options. */
function structFields(desc: DescMessage, path: string, depth = 0): string[] {
  if (depth > 6) return [];
  return desc.fields.flatMap((f) => {
    if (f.fieldKind !== 'message' && !(f.fieldKind === 'list' && f.listKind === 'message')) return [];
    const at = `${path ? `${path}.` : ''}${f.name}${f.fieldKind === 'list' ? '[]' : ''}`;
    if (f.message.typeName === 'google.protobuf.Struct') return [at];
    return f.message.typeName.startsWith('google.') ? [] : structFields(f.message, at, depth + 1);
  });
}

/** Why the generated decoder refused the bytes, as INVALID_ARGUMENT naming the field where it can. */
function explain(path: string, bytes: Buffer, err: unknown): SluiceError {
  const text = err instanceof Error ? err.message : String(err);
  const desc = requestType(path);
  if (desc && /MAX_SAFE_INTEGER|MIN_SAFE_INTEGER/.test(text)) {
    try {
      const found = unsafeInt(desc, fromBinary(desc, bytes) as unknown as Record<string, unknown>, '');
      if (found)
        return invalidArgument(
          found[0],
          `an integer from -${Number.MAX_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER} (the range exact in JavaScript)`,
          found[1],
        );
    } catch {
      // fall through to the generic answer
    }
    return invalidArgument('request', `64-bit integers within ±${Number.MAX_SAFE_INTEGER}`, 'a larger one');
  }
  if (/recursion/i.test(text)) {
    const fields = desc ? structFields(desc, '') : [];
    return invalidArgument(
      fields.join(' or ') || 'request',
      `a value nested at most ${MAX_STRUCT_DEPTH} levels deep`,
      'deeper nesting',
    );
  }
  return invalidArgument(
    'request',
    `a ${desc?.typeName ?? 'request'} message in protobuf encoding`,
    'bytes that do not decode',
  );
}

function failed(v: unknown): v is Failed {
  return typeof v === 'object' && v !== null && DECODE_FAILED in v;
}

/**
 * The service with its decoders made total (a refused request reaches the handler as a marker) and its
 * handlers answering INVALID_ARGUMENT for a marker or a request past a limit, before any handler code runs.
 */
export function guardService(
  definition: ServiceDefinition,
  implementation: UntypedServiceImplementation,
  logger: Logger,
): { definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
  const guardedDefinition: Record<string, MethodDefinition<unknown, unknown>> = {};
  const guardedImplementation: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition) as [string, MethodDefinition<unknown, unknown>][]) {
    const handler = implementation[name] as ((call: unknown, callback?: unknown) => void) | undefined;
    if (method.requestStream || !handler) {
      guardedDefinition[name] = method;
      if (handler) guardedImplementation[name] = handler as never;
      continue;
    }
    guardedDefinition[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (err) {
          return { [DECODE_FAILED]: explain(method.path, bytes, err) } satisfies Failed;
        }
      },
    };
    const rpc = method.path.slice(method.path.lastIndexOf('/') + 1);
    guardedImplementation[name] = ((
      call: { request: unknown; emit(event: 'error', e: Partial<ServiceError>): void },
      callback?: sendUnaryData<unknown>,
    ) => {
      let refused: unknown;
      if (failed(call.request)) refused = call.request[DECODE_FAILED];
      else
        try {
          checkRequestLimits(call.request);
        } catch (err) {
          refused = err;
        }
      if (refused === undefined) return handler(call, callback);
      const status = toServiceError(refused, logger, rpc);
      if (method.responseStream) call.emit('error', status);
      else callback?.(status, null);
    }) as never;
  }
  return { definition: guardedDefinition as ServiceDefinition, implementation: guardedImplementation };
}
