/**
 * The Pulsar connector declares the part of pulsar-client it uses (plugins/connectors/pulsar/client.ts),
 * because the package is optional and its native binding does not load here; the reader's tests run on a
 * stand-in typed by those declarations. This test holds the declarations to the real package: it packs
 * pulsar-client at the version in package-lock.json from the npm registry, takes its `index.d.ts`, and
 * type-checks both ways: the real classes are assignable to what the connector declares (every call the
 * connector makes exists, with these types), and the declared members are assignable back (the stand-in
 * cannot return what the real client never would, e.g. a Promise where it returns a boolean).
 */
import anyTest, { type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gate, probe } from '../helpers/integration.js';
import { ROOT } from '../helpers/process.js';

const run = promisify(execFile);
const test = anyTest as TestFn<{ dir: string }>;

const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string }>;
};
const VERSION = lock.packages['node_modules/pulsar-client']?.version ?? '';

// Packed once at load, so that an unreachable registry is a declared skip, not a pass.
const dir = await mkdtemp(join(tmpdir(), 'sluice-pulsar-types-'));
const packed = await probe(
  `packing pulsar-client@${VERSION} from the npm registry`,
  async () => {
    if (!VERSION) throw new Error('package-lock.json has no pulsar-client');
    await run('npm', ['pack', `pulsar-client@${VERSION}`, '--silent', '--pack-destination', dir], { cwd: dir });
    await run('tar', ['-xzf', `pulsar-client-${VERSION}.tgz`, 'package/index.d.ts'], { cwd: dir });
  },
  90_000,
);
const typed = gate(test, packed);

test.after.always(() => rm(dir, { recursive: true, force: true }));

const CLIENT = join(ROOT, 'plugins/connectors/pulsar/client.ts');

/** Declarations that must hold between the real package (`Real`) and the connector's (`Ours`). */
const CHECKS = `
import * as Real from 'pulsar-client';
import type * as Ours from ${JSON.stringify(CLIENT)};

type Both<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** The same return type on both sides, for members whose result the connector (or the stand-in) makes. */
type Same<R, O, K extends keyof R & keyof O> = R[K] extends (...a: never[]) => infer RR
  ? O[K] extends (...a: never[]) => infer OR
    ? Both<RR, OR>
    : false
  : false;
const yes = <T extends true>(): T => true as T;

// The module as the connector loads it: every call it makes exists on the real client, with these types
// (checked member by member, down to Reader, Message and MessageId).
export const api: Ours.PulsarApi = Real;
yes<[keyof Ours.PulsarClient] extends [keyof Real.Client] ? true : false>();
yes<[keyof Ours.PulsarReader] extends [keyof Real.Reader] ? true : false>();
yes<[keyof Ours.PulsarMessage] extends [keyof Real.Message] ? true : false>();
yes<[keyof Ours.PulsarMessageId] extends [keyof Real.MessageId] ? true : false>();
// What the stand-in returns has exactly the real type: synchronous where the real is, null where it is.
yes<Same<Real.Reader, Ours.PulsarReader, 'hasNext'>>();
yes<Same<Real.Reader, Ours.PulsarReader, 'isConnected'>>();
yes<Same<Real.Reader, Ours.PulsarReader, 'seekTimestamp'>>();
yes<Same<Real.Reader, Ours.PulsarReader, 'close'>>();
yes<Same<Real.Client, Ours.PulsarClient, 'close'>>();
yes<Same<Real.Client, Ours.PulsarClient, 'getPartitionsForTopic'>>();
yes<Same<Real.Message, Ours.PulsarMessage, 'getData'>>();
yes<Same<Real.Message, Ours.PulsarMessage, 'getProperties'>>();
yes<Same<Real.Message, Ours.PulsarMessage, 'getPublishTimestamp'>>();
yes<Same<Real.Message, Ours.PulsarMessage, 'getEventTimestamp'>>();
yes<Same<Real.Message, Ours.PulsarMessage, 'getPartitionKey'>>();
yes<Same<Real.MessageId, Ours.PulsarMessageId, 'serialize'>>();
yes<Same<Real.MessageId, Ours.PulsarMessageId, 'toString'>>();
export const client = (c: Real.Client): Ours.PulsarClient => c;
export const readerConfig = (c: Ours.PulsarReaderConfig): Real.ReaderConfig => ({
  ...c,
  startMessageId: c.startMessageId as Real.MessageId,
});
export const clientConfig = (c: Ours.PulsarClientConfig): Real.ClientConfig => ({
  ...c,
  authentication: c.authentication as Real.AuthenticationToken | undefined,
});
`;

async function typeCheck(source: string): Promise<{ ok: boolean; output: string }> {
  await writeFile(join(dir, 'check.ts'), source);
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        allowImportingTsExtensions: true,
        skipLibCheck: false,
        typeRoots: [join(ROOT, 'node_modules/@types')],
        types: ['node'],
        paths: { 'pulsar-client': ['./package/index.d.ts'] },
      },
      files: ['check.ts'],
    }),
  );
  try {
    const { stdout } = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir]);
    return { ok: true, output: stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

typed.serial(
  `the connector's pulsar-client declarations match pulsar-client ${VERSION}'s own index.d.ts`,
  async (t) => {
    const result = await typeCheck(CHECKS);
    t.true(result.ok, result.output);
  },
);

typed.serial('the check fails on a declaration the real client does not have (a control)', async (t) => {
  // hasNext returning a Promise, as an asynchronous client would: the real one is synchronous.
  const wrong = CHECKS.replace(
    `yes<Same<Real.Reader, Ours.PulsarReader, 'hasNext'>>();`,
    `yes<Same<Real.Reader, Omit<Ours.PulsarReader, 'hasNext'> & { hasNext(): Promise<boolean> }, 'hasNext'>>();`,
  );
  t.not(wrong, CHECKS);
  const result = await typeCheck(wrong);
  t.false(result.ok, 'a wrong declaration type-checks');
  t.regex(result.output, /check\.ts/);
});
