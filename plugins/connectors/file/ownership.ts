import { randomBytes } from 'node:crypto';
import { type FileHandle, lstat, open, readFile, rename, rm } from 'node:fs/promises';
import { ERROR_CODES, SluiceError } from 'sluice/sdk';

/**
 * Which files the sink may replace. Beside each window file sits its ownership record (`.<name>.sluice`,
 * JSON), listing the files Sluice wrote under that name by device and inode. A rename keeps a file's
 * inode, so the record is written before the temporary file is renamed into place, naming both the file
 * there now (when Sluice's) and the new one: a crash between the two leaves a record that still covers
 * whichever file is in place. A file at the window's path that the record does not name (another
 * program's, a file put there by hand, or one written by a Sluice before ownership records) is never
 * replaced: the job fails with FAILED_PRECONDITION naming options.path.
 */

interface Record_ {
  readonly sluice: 'file-sink';
  readonly owned: readonly string[];
}

/** `dev:ino` of the entry at `path`, whether it is a regular file, or undefined when there is none. */
export async function fileIdentity(path: string): Promise<{ id: string; regular: boolean } | undefined> {
  try {
    const s = await lstat(path, { bigint: true });
    return { id: `${s.dev}:${s.ino}`, regular: s.isFile() };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function ownedIds(recordPath: string): Promise<Set<string>> {
  let text: string;
  try {
    text = await readFile(recordPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw err;
  }
  try {
    const r = JSON.parse(text) as Partial<Record_>;
    return new Set(
      r.sluice === 'file-sink' && Array.isArray(r.owned) ? r.owned.filter((x) => typeof x === 'string') : [],
    );
  } catch {
    return new Set();
  }
}

function notOurs(finalPath: string, why: string): SluiceError {
  return new SluiceError(
    ERROR_CODES.FAILED_PRECONDITION,
    `file sink: options.path: ${finalPath} ${why}, so Sluice does not replace it; move it away, or choose another options.path or options.fileName`,
    { field: 'options.path' },
  );
}

/**
 * The identity of the file at the window's path when Sluice may replace it, undefined when there is
 * none; throws FAILED_PRECONDITION naming options.path when something else is there.
 */
export async function replaceableIdentity(finalPath: string, recordPath: string): Promise<string | undefined> {
  const current = await fileIdentity(finalPath);
  if (!current) return undefined;
  if (!current.regular) throw notOurs(finalPath, 'exists and is not a regular file');
  if (!(await ownedIds(recordPath)).has(current.id)) {
    throw notOurs(finalPath, 'exists and was not written by Sluice (its ownership record does not name it)');
  }
  return current.id;
}

/** Writes the record atomically (a temporary file, fsynced, renamed over it). */
export async function writeRecord(recordPath: string, owned: readonly string[]): Promise<void> {
  const temp = `${recordPath}.${randomBytes(6).toString('hex')}.tmp`;
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx', 0o644);
    await handle.writeFile(JSON.stringify({ sluice: 'file-sink', owned } satisfies Record_));
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, recordPath);
  } catch (err) {
    await handle?.close().catch(() => {});
    await rm(temp, { force: true }).catch(() => {});
    throw err;
  }
}

/** The error for a file that appeared at the window's path while the job wrote (seen when linking). */
export function appeared(finalPath: string): SluiceError {
  return notOurs(finalPath, 'was created by something else while the window was written');
}
