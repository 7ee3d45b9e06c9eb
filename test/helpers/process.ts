import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Spawned {
  readonly child: ChildProcess;
  /** Every stderr line so far (the services log JSON lines there). */
  readonly lines: string[];
  /** Resolves with the first parsed log line matching, or rejects after timeoutMs. */
  waitForLog(match: (entry: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>;
}

const ownDataDirs = new Set<string>();
function removeDataDir(dir: string): void {
  ownDataDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}
/** Children still running: a test that fails before it stops its child must not leave it behind. */
const running = new Set<ChildProcess>();
function cleanUp(): void {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of ownDataDirs) removeDataDir(dir);
}
process.once('exit', cleanUp);
// AVA ends a test file's worker with SIGTERM, which runs no 'exit' listener: clean up, then die of it.
process.once('SIGTERM', () => {
  cleanUp();
  process.kill(process.pid, 'SIGTERM');
});

/** The SLUICE_SECRET_KEY of test processes on a shared PostgreSQL store. */
export const TEST_SECRET_KEY = '5e'.repeat(32);

/** Runs a TypeScript entry from sources the way `node dist/...` runs its build. */
export function spawnService(entry: string, env: NodeJS.ProcessEnv = {}): Spawned {
  // A data folder of its own unless the caller gives one, so runs never share an embedded store; it is
  // removed when the process exits (or, if the process outlives it, when this worker exits).
  const ownDataDir = env.SLUICE_DATA_DIR === undefined ? mkdtempSync(join(tmpdir(), 'sluice-proc-')) : undefined;
  if (ownDataDir) ownDataDirs.add(ownDataDir);
  const child = spawn(process.execPath, ['--conditions=development', '--import', 'tsx', entry], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: tmpdir(),
      SLUICE_FILE_ROOTS: tmpdir(),
      // Replicas on a PostgreSQL store share one key for secret options.
      ...(env.SLUICE_DATABASE_URL ? { SLUICE_SECRET_KEY: TEST_SECRET_KEY } : {}),
      ...env,
      SLUICE_DATA_DIR: env.SLUICE_DATA_DIR ?? ownDataDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] =
    [];
  let buffer = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      lines.push(line);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      for (const w of [...waiters]) {
        if (w.match(entry)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(entry);
        }
      }
    }
  });
  running.add(child);
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      if (ownDataDir) removeDataDir(ownDataDir);
      resolve(code ?? signal ?? -1);
    }),
  );
  return {
    child,
    lines,
    exited,
    waitForLog(match, timeoutMs = 60_000) {
      const seen = lines
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return undefined;
          }
        })
        .find((e) => e && match(e));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr:\n${lines.join('\n')}`)),
          timeoutMs,
        );
        waiters.push({
          match,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`process exited (${code}) before the log line; stderr:\n${lines.join('\n')}`));
        });
      });
    },
  };
}
