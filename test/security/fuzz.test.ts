/**
 * Fuzzes every RPC of the three services with requests built from their generated types (random and
 * hostile values: huge and odd strings, out-of-range numbers, unknown enum values, deep Structs, long
 * lists), asserting that each call ends with a status that is not INTERNAL or UNKNOWN (a plugin failure,
 * PLUGIN_FAILED, excepted), that a refused CreateGroup or RegisterSchedule stored nothing, and that the
 * service still answers its health check afterwards. Sized for CI: a few hundred calls, about 30 s.
 */
import anyTest, { type TestFn } from 'ava';
import {
  Client,
  credentials,
  Metadata,
  status,
  type MethodDefinition,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { createFileRegistry, fromBinary, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as catalogPb from '../../proto/gen/sluice/catalog/v1/catalog.js';
import * as operatorPb from '../../proto/gen/sluice/operator/v1/operator.js';
import * as schedulePb from '../../proto/gen/sluice/schedule/v1/schedule.js';
import { DESCRIPTOR_SET } from '../../services/core/paths.js';
import { healthCheck } from '../helpers/probes.js';
import { type Running, startTestSluice } from '../helpers/sluice.js';

const test = anyTest as TestFn<{ s: Running; client: Client; dir: string }>;
const RUNS_PER_METHOD = Number(process.env.SLUICE_FUZZ_RUNS ?? 12);
const SEED = Number(process.env.SLUICE_FUZZ_SEED ?? 20261206);

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(DESCRIPTOR_SET)));

test.before(async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-fuzz-'));
  const s = await startTestSluice({ SLUICE_FILE_ROOTS: dir, SLUICE_HOOK_TIMEOUT_MS: '2000' });
  t.context = { s, client: new Client(s.address, credentials.createInsecure()), dir };
});
test.after.always(async (t) => {
  t.context.client?.close();
  await t.context.s?.close();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

const HOSTILE_STRINGS = [
  '',
  ' ',
  'g1',
  's1',
  'datagen',
  'file',
  'postgres',
  'builtin',
  '../../etc/passwd',
  '/etc/cron.d/x',
  '\u0000',
  '🙂'.repeat(50),
  'x'.repeat(300),
  'y'.repeat(70_000),
  '${jndi:ldap://x}',
  "'; DROP TABLE groups; --",
  '0 0 * * * ?',
  '* * * * *',
  '1970-01-01T00:00:00Z',
  '9999999999999999999999',
  '-1',
  'NaN',
  'postgres://u:p@127.0.0.1:1/db',
];

const jsonLeaf = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom(...HOSTILE_STRINGS.slice(0, 13)),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
);

/** Struct values: ordinary JSON, now and then nested deeper than any limit. */
const structArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  { weight: 6, arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }) },
  {
    weight: 2,
    arbitrary: fc.record({
      path: fc.constantFrom('/tmp', '/etc/passwd', '../x', ''),
      intervalMs: fc.integer(),
      rows: fc.integer(),
      url: fc.constantFrom('postgres://u:pw@127.0.0.1:1/d', 'mysql://x', 'nope'),
      brokers: fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 15, max: 60 }).map((depth) => {
      let o: Record<string, unknown> = { leaf: 1 };
      for (let i = 0; i < depth; i++) o = { x: o };
      return o;
    }),
  },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 5 }), jsonLeaf, { minKeys: 200, maxKeys: 300 }) },
);

const stringArb = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
);

const int32Arb = fc.oneof(
  fc.integer({ min: -5, max: 200 }),
  fc.constantFrom(0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 500, 501, 100_000),
);
const int64Arb = fc.oneof(
  fc.integer({ min: -5, max: 200 }),
  fc.constantFrom(0, Date.UTC(2026, 0, 1), Date.UTC(2100, 0, 1), -1, Number.MAX_SAFE_INTEGER),
  fc.constantFrom(Date.UTC(1970, 0, 1), Date.UTC(2026, 11, 6), Date.UTC(9999, 0, 1)),
  // Outside JavaScript's safe range: encoded as a bigint.
  fc.constantFrom(2n ** 60n, -(2n ** 62n), 2n ** 53n) as fc.Arbitrary<unknown>,
);

function scalarArb(f: DescField & { fieldKind: 'scalar' | 'enum' | 'list' | 'map' }): fc.Arbitrary<unknown> {
  const scalar = 'scalar' in f ? f.scalar : undefined;
  if (f.fieldKind === 'enum' || ('listKind' in f && f.listKind === 'enum') || ('mapKind' in f && f.mapKind === 'enum'))
    return fc.integer({ min: -1, max: 8 });
  switch (scalar) {
    case 9: // string
      return stringArb;
    case 8: // bool
      return fc.boolean();
    case 3: // int64
    case 4: // uint64
    case 18: // sint64
      return int64Arb;
    case 1: // double
    case 2: // float
      return fc.double();
    case 12: // bytes
      return fc.uint8Array({ maxLength: 20 });
    default:
      return int32Arb;
  }
}

const memo = new Map<string, fc.Arbitrary<Record<string, unknown>>>();

/** A request of the message type: every field random (or absent), messages nested up to `depth`. */
function messageArb(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  if (desc.typeName === 'google.protobuf.Struct') return structArb;
  const key = `${desc.typeName}:${depth}`;
  const known = memo.get(key);
  if (known) return known;
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of desc.fields) {
    let arb: fc.Arbitrary<unknown> | undefined;
    if (f.fieldKind === 'message') arb = depth < 5 ? messageArb(f.message, depth + 1) : undefined;
    else if (f.fieldKind === 'list')
      arb =
        f.listKind === 'message'
          ? depth < 5
            ? fc.array(messageArb(f.message, depth + 1), { maxLength: 3 })
            : undefined
          : fc.oneof(
              fc.array(scalarArb(f), { maxLength: 4 }),
              fc.array(scalarArb(f), { minLength: 150, maxLength: 200 }),
            );
    else if (f.fieldKind === 'map')
      arb =
        f.mapKind === 'scalar' ? fc.dictionary(fc.string({ maxLength: 8 }), scalarArb(f), { maxKeys: 4 }) : undefined;
    else arb = scalarArb(f);
    if (arb) fields[f.localName] = arb;
  }
  const out = fc.record(fields, { requiredKeys: [] });
  memo.set(key, out);
  return out;
}

interface Outcome {
  code: status;
  sluiceCode: string;
  details: string;
}

function outcome(err: ServiceError | null): Outcome {
  if (!err) return { code: status.OK, sluiceCode: '', details: '' };
  return {
    code: err.code,
    sluiceCode: String(err.metadata?.get('sluice-error-code')[0] ?? ''),
    details: err.details,
  };
}

function invoke(client: Client, method: MethodDefinition<unknown, unknown>, request: unknown): Promise<Outcome> {
  const deadline = Date.now() + 10_000;
  return new Promise((resolve) => {
    if (method.responseStream) {
      const stream = client.makeServerStreamRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        new Metadata(),
        { deadline },
      );
      // The first message is enough: a watch of a live job would otherwise last as long as the job.
      stream.on('data', () => stream.cancel());
      stream.on('error', (err: ServiceError) => resolve(err.code === status.CANCELLED ? outcome(null) : outcome(err)));
      stream.on('end', () => resolve(outcome(null)));
    } else {
      client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        new Metadata(),
        { deadline },
        (err) => resolve(outcome(err)),
      );
    }
  });
}

const GENERATED = { ...catalogPb, ...schedulePb, ...operatorPb };
const big = (_k: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v);

/** Ids a successful CreateGroup / RegisterSchedule stored (a refused one must store nothing). */
const createdGroups = new Set<string>();
const registeredSchedules = new Set<string>();

const SERVICES: [string, ServiceDefinition][] = [
  ['sluice.catalog.v1.CatalogService', catalogPb.CatalogServiceService as unknown as ServiceDefinition],
  ['sluice.schedule.v1.ScheduleService', schedulePb.ScheduleServiceService as unknown as ServiceDefinition],
  ['sluice.operator.v1.OperatorService', operatorPb.OperatorServiceService as unknown as ServiceDefinition],
];

for (const [serviceName, definition] of SERVICES) {
  const service = registry.getService(serviceName);
  if (!service) throw new Error(`${serviceName} is not in the descriptor set`);
  for (const [name, method] of Object.entries(definition) as [string, MethodDefinition<unknown, unknown>][]) {
    const desc = service.methods.find((m) => `/${serviceName}/${m.name}` === method.path)!.input;
    // The generated type fills in what the random request leaves out, as a client's fromPartial would.
    const fns = (GENERATED as unknown as Record<string, { fromPartial(o: unknown): unknown }>)[desc.name]!;
    test.serial(
      `${serviceName.split('.')[1]}: ${name} answers random and hostile requests with a status`,
      async (t) => {
        const { client, s } = t.context;
        const bad: string[] = [];
        await fc
          .assert(
            fc.asyncProperty(messageArb(desc), async (raw) => {
              const result = await invoke(client, method, fns.fromPartial(raw));
              const internal =
                (result.code === status.INTERNAL && result.sluiceCode !== 'PLUGIN_FAILED') ||
                result.code === status.UNKNOWN ||
                result.code === status.DEADLINE_EXCEEDED;
              if (internal)
                bad.push(
                  `${name} ${status[result.code]}: ${result.details} <- ${JSON.stringify(raw, big).slice(0, 300)}`,
                );
              if (internal) return false;
              // No partial write: a refused create of an id never created leaves nothing behind.
              const groupId =
                name === 'createGroup'
                  ? (raw.group as { groupId?: unknown } | undefined)?.groupId
                  : name === 'registerSchedule'
                    ? (raw.info as { groupId?: unknown } | undefined)?.groupId
                    : undefined;
              if (typeof groupId === 'string' && groupId !== '') {
                const set = name === 'createGroup' ? createdGroups : registeredSchedules;
                if (result.code === status.OK) set.add(groupId);
                else if (!set.has(groupId)) {
                  const stored =
                    name === 'createGroup'
                      ? await s.sluice.operator!.getGroup(groupId).catch(() => undefined)
                      : await s.sluice.schedule!.get(groupId).catch(() => undefined);
                  if (stored) {
                    bad.push(`refused ${name} stored '${groupId}'`);
                    return false;
                  }
                }
              }
              return true;
            }),
            { numRuns: RUNS_PER_METHOD, seed: SEED, endOnFailure: true },
          )
          .catch((err: unknown) => {
            if (bad.length === 0) throw err;
          });
        t.deepEqual(bad, []);
        t.is(await healthCheck(s.address, ''), 'SERVING');
      },
    );
  }
}
