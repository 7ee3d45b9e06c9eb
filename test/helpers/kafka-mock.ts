import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Probe, probe } from './integration.js';

/**
 * A Kafka "broker" for tests: librdkafka's mock cluster (one broker on loopback), run by the small C
 * launcher in test/kafka-mock/launcher.c. It speaks produce, fetch, metadata, groups and commits, which
 * is what kafkajs needs. It does not answer ListOffsets by timestamp (-1), does not support kafkajs
 * createTopics (topics are created here, at start) nor idempotent/transactional producers, and a new
 * consumer group waits about 3 s for its partitions.
 */

const TEST_DIR = fileURLToPath(new URL('../', import.meta.url));
const SOURCE = join(TEST_DIR, 'kafka-mock', 'launcher.c');
const BINARY = join(TEST_DIR, '.tmp', 'kafka-mock');

export interface KafkaMock {
  /** Bootstrap servers, `host:port`. */
  readonly brokers: string[];
  /** Stops the cluster (closes its stdin, then SIGTERM, then SIGKILL) and waits for the process. */
  stop(): Promise<void>;
}

function run(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

async function mtime(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Why a compile failed, in words naming what to install. */
function explainCompileError(stderr: string): string {
  if (/rdkafka_mock\.h|rdkafka\.h/.test(stderr) && /No such file/.test(stderr)) {
    return 'librdkafka headers are missing (install librdkafka-dev: librdkafka/rdkafka_mock.h)';
  }
  if (/cannot find -lrdkafka|lrdkafka/.test(stderr))
    return 'the librdkafka library is missing (install librdkafka-dev)';
  return `compiling ${SOURCE} failed: ${stderr.trim().split('\n').slice(0, 3).join(' | ')}`;
}

let building: Promise<string> | undefined;

/**
 * Compiles the launcher into test/.tmp/kafka-mock when the binary is missing or older than the source.
 * Builds into a temporary name and renames, so that test processes building at once do not collide.
 */
export function buildKafkaMock(): Promise<string> {
  building ??= (async () => {
    const [src, bin] = await Promise.all([mtime(SOURCE), mtime(BINARY)]);
    if (src === undefined) throw new Error(`the launcher source ${SOURCE} is missing`);
    if (bin !== undefined && bin >= src) return BINARY;
    try {
      await run('cc', ['--version'], 10_000);
    } catch {
      throw new Error('no C compiler: `cc` is not on PATH (install gcc or clang)');
    }
    await mkdir(dirname(BINARY), { recursive: true });
    const tmp = `${BINARY}.${process.pid}.${Date.now()}`;
    try {
      await run('cc', ['-O1', '-o', tmp, SOURCE, '-lrdkafka']);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new Error(explainCompileError((err as { stderr?: string }).stderr ?? String(err)));
    }
    await rename(tmp, BINARY);
    return BINARY;
  })();
  building.catch(() => {
    building = undefined;
  });
  return building;
}

/**
 * Starts a mock cluster with the given topics (name → partition count) already created. Topics not
 * named are auto-created with 4 partitions when a client asks for them with auto-creation on.
 */
export async function startKafkaMock(
  topics: Readonly<Record<string, number>> = {},
  timeoutMs = 10_000,
): Promise<KafkaMock> {
  const binary = await buildKafkaMock();
  const args = Object.entries(topics).map(([name, partitions]) => `${name}:${partitions}`);
  const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let line: string;
  try {
    line = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error(`the Kafka mock printed no bootstrap servers within ${timeoutMs} ms`)),
        timeoutMs,
      );
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          resolve(out.slice(0, nl).trim());
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the Kafka mock exited with ${code} before it was ready: ${stderr.trim()}`));
      });
    });
  } catch (err) {
    await stopChild(child, exited);
    throw err;
  }
  const brokers = line.split(',').filter(Boolean);
  let stopped: Promise<void> | undefined;
  return {
    brokers,
    stop: () => (stopped ??= stopChild(child, exited)),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin?.end();
  const wait = (ms: number) =>
    Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
  if (await wait(2000)) return;
  child.kill('SIGTERM');
  if (await wait(2000)) return;
  child.kill('SIGKILL');
  await exited;
}

/** Whether a mock cluster can be built and started here; the reason names what is missing. */
export function probeKafkaMock(): Promise<Probe> {
  return probe(
    'Kafka mock cluster (librdkafka)',
    async () => {
      const mock = await startKafkaMock();
      await mock.stop();
    },
    60_000,
  );
}
