import { once } from 'node:events';
import { constants } from 'node:fs';
import { type FileHandle, link, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { ERROR_CODES, SluiceError, type Logger, type Row, type WindowRef, type WindowWriter } from 'sluice/sdk';
import { csvLine, jsonLine } from './encode.js';
import type { FileSinkConfig } from './options.js';
import { isJobTempFile, ownershipFileName, tempFileName, windowFileName } from './naming.js';
import { appeared, fileIdentity, ownedIds, replaceableIdentity, writeRecord } from './ownership.js';

/** Characters gathered before they are handed to the stream; the stream buffers at most about a MiB more. */
const CHUNK_CHARS = 64 * 1024;
const STREAM_HIGH_WATER_MARK = 1024 * 1024;
/**
 * Characters handed to the stream between two early syncs of the temporary file. The kernel writes a
 * synced part back while the job goes on encoding, so the fsync at commit is left only the tail: without
 * it a 45 MB window waited about 45 ms at its end with the CPU idle (two windows at once, twice that).
 */
const SYNC_EVERY_CHARS = 8 * 1024 * 1024;
/**
 * Early syncs in flight at once in this thread, across its writers. Each holds one of libuv's threads (4 by
 * default, shared by the process's file system calls and DNS lookups) for as long as the disk takes; one skipped
 * leaves its part to the next sync or to the commit's fsync.
 */
const MAX_EARLY_SYNCS = 2;
let earlySyncs = 0;
/** How many files an ownership record names at most (two jobs of one window racing add one each). */
const MAX_OWNED = 8;
/**
 * Create a new file, never through a symbolic link (O_NOFOLLOW where the platform has it); O_EXCL, as the
 * name is the writer's own: an existing file there is not this writer's to truncate.
 */
const TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

type State = 'open' | 'committed' | 'aborted' | 'failed';

function ioError(what: string, err: unknown): SluiceError {
  const message = err instanceof Error ? err.message : String(err);
  return new SluiceError(ERROR_CODES.UNAVAILABLE, `file sink: ${what}: ${message}`, {}, { cause: err });
}

/** Makes a rename durable: fsyncs the directory that holds the entry (a no-op where directories cannot be opened). */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Windows and some file systems refuse to open or fsync a directory; the rename is still atomic.
  } finally {
    await handle?.close().catch(() => {});
  }
}

/**
 * Writes one window to a hidden temporary file in the target directory. Commit ends the stream (which
 * fsyncs the file before closing it), records it in the window's ownership record, puts it in place
 * (a hard link when no file is there, which cannot overwrite one that appeared meanwhile; a rename, an
 * atomic replace on POSIX file systems, over a file Sluice wrote) and fsyncs the directory. A file at
 * the window's path that Sluice did not write is never replaced (ownership.ts). Abort closes and
 * deletes the temporary file. Operations are serialized, so an abort racing a write waits for it.
 */
export class WindowFileWriter implements WindowWriter {
  readonly finalPath: string;
  readonly tempPath: string;
  /** The window file's ownership record, beside it. */
  readonly recordPath: string;
  readonly #config: FileSinkConfig;
  readonly #logger: Logger;
  readonly #stream: Writable;
  readonly #handle: FileHandle;
  /** Characters handed to the stream since the last early sync began. */
  #sinceSync = 0;
  /** The early sync in flight, if any (one at a time); settles without rejecting. */
  #syncing: Promise<void> | undefined;
  /** Settles when the stream has closed its file (after the fsync of `flush`), rejects on a stream error. */
  readonly #closed: Promise<void>;
  #state: State = 'open';
  #error: unknown;
  /** CSV columns, fixed by the options or by the first row. */
  #columns: readonly string[] | undefined;
  #known: ReadonlySet<string> | undefined;
  #headerDone = false;
  #rows = 0;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    config: FileSinkConfig,
    logger: Logger,
    paths: { finalPath: string; tempPath: string; recordPath: string },
    handle: FileHandle,
  ) {
    this.#config = config;
    this.#logger = logger;
    this.finalPath = paths.finalPath;
    this.tempPath = paths.tempPath;
    this.recordPath = paths.recordPath;
    this.#columns = config.columns;
    // flush: the stream fsyncs the file before it closes it (on end), so a committed file is on disk.
    const stream = handle.createWriteStream({ highWaterMark: STREAM_HIGH_WATER_MARK, encoding: 'utf8', flush: true });
    stream.on('error', (err) => {
      this.#error ??= err;
    });
    this.#closed = new Promise<void>((resolve, reject) => {
      stream.once('error', reject);
      stream.once('close', resolve);
    });
    this.#closed.catch(() => {});
    this.#stream = stream;
    this.#handle = handle;
  }

  /**
   * Creates the directory when missing, checks that a file already at the window's path is one Sluice
   * wrote (FAILED_PRECONDITION naming options.path otherwise, before anything is written), deletes the
   * temporary files earlier runs of the same job left for this window (a crashed run's; a cancelled run
   * still writing to one writes on into the unlinked file, out of sight, and its abort finds nothing to
   * delete), and creates the writer's own temporary file.
   */
  static async open(config: FileSinkConfig, window: WindowRef, logger: Logger): Promise<WindowFileWriter> {
    const name = windowFileName(config.fileName, window, config.format);
    const finalPath = join(config.path, name);
    const tempPath = join(config.path, tempFileName(name, window.jobId));
    const recordPath = join(config.path, ownershipFileName(name));
    try {
      await mkdir(config.path, { recursive: true });
    } catch (err) {
      throw ioError(`cannot create the directory ${config.path}`, err);
    }
    try {
      await replaceableIdentity(finalPath, recordPath);
    } catch (err) {
      throw err instanceof SluiceError ? err : ioError(`cannot check ${finalPath}`, err);
    }
    try {
      for (const entry of await readdir(config.path)) {
        if (isJobTempFile(entry, name, window.jobId)) await rm(join(config.path, entry), { force: true });
      }
    } catch (err) {
      throw ioError(`cannot delete the earlier temporary files of ${finalPath}`, err);
    }
    let handle: FileHandle;
    try {
      handle = await open(tempPath, TEMP_FLAGS, 0o644);
    } catch (err) {
      throw ioError(`cannot create ${tempPath}`, err);
    }
    return new WindowFileWriter(config, logger, { finalPath, tempPath, recordPath }, handle);
  }

  /**
   * Puts the closed temporary file in place of the window's file, if that file is absent or Sluice's:
   * the ownership record names the new file first, so a crash at any point leaves a record naming
   * whatever file is in place.
   */
  async #putInPlace(): Promise<void> {
    const fresh = (await fileIdentity(this.tempPath))?.id;
    if (fresh === undefined) throw ioError(`cannot commit ${this.finalPath}`, new Error('the temporary file is gone'));
    const current = await replaceableIdentity(this.finalPath, this.recordPath);
    const owned = [...(await ownedIds(this.recordPath))].filter((id) => id !== fresh);
    await writeRecord(this.recordPath, [...owned.slice(-(MAX_OWNED - 1)), fresh]);
    if (current === undefined) {
      try {
        // link, unlike rename, fails when a file appeared at the path since the check.
        await link(this.tempPath, this.finalPath);
        await rm(this.tempPath, { force: true });
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          // Another job of this window placed its file first: replaced only if the record names it.
          await replaceableIdentity(this.finalPath, this.recordPath).catch(() => {
            throw appeared(this.finalPath);
          });
        } else if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
        // A file system without hard links: the rename below (the check above stands).
      }
    }
    await rename(this.tempPath, this.finalPath);
  }

  /** Runs operations one after another, in call order. */
  #serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(op, op);
    this.#queue = next.catch(() => {});
    return next;
  }

  #check(what: string): void {
    if (this.#state !== 'open') {
      throw new SluiceError(
        ERROR_CODES.FAILED_PRECONDITION,
        `file sink: cannot ${what} a writer that is ${this.#state}`,
      );
    }
    if (this.#error !== undefined) throw ioError(`writing ${this.tempPath} failed`, this.#error);
  }

  /** Hands a chunk to the stream and waits for 'drain' when its buffer is full (backpressure). */
  async #push(chunk: string): Promise<void> {
    this.#sinceSync += chunk.length;
    if (this.#sinceSync >= SYNC_EVERY_CHARS && this.#syncing === undefined && earlySyncs < MAX_EARLY_SYNCS)
      this.#syncEarly();
    if (this.#stream.write(chunk)) return;
    try {
      // `once` rejects when the stream emits 'error' while we wait.
      await once(this.#stream, 'drain');
    } catch (err) {
      this.#error ??= err;
      throw ioError(`writing ${this.tempPath} failed`, err);
    }
  }

  /**
   * Starts an fdatasync of what the stream has written so far, without waiting for it. A failed one fails
   * the window: Linux forgets a write-back error once it has reported it, so the fsync at commit could
   * then succeed over lost data.
   */
  #syncEarly(): void {
    this.#sinceSync = 0;
    earlySyncs++;
    this.#syncing = this.#handle.datasync().then(
      () => {
        earlySyncs--;
        this.#syncing = undefined;
      },
      (err: unknown) => {
        earlySyncs--;
        this.#syncing = undefined;
        this.#error ??= err;
      },
    );
  }

  #csvHeaderLine(): string {
    this.#headerDone = true;
    return this.#config.csvHeader && this.#columns ? csvLine(this.#columns) : '';
  }

  #encode(row: Row): string {
    if (this.#config.format === 'jsonl') return jsonLine(row);
    if (!this.#columns) this.#columns = Object.keys(row);
    if (!this.#config.columns) {
      this.#known ??= new Set(this.#columns);
      for (const key of Object.keys(row)) {
        if (!this.#known.has(key)) {
          throw new SluiceError(
            ERROR_CODES.FAILED_PRECONDITION,
            `file sink: row ${this.#rows + 1} has the column '${key}', which the first row (whose keys are the CSV columns: ${this.#columns.join(', ')}) did not have; set the columns option to choose the columns`,
          );
        }
      }
    }
    return csvLine(this.#columns.map((c) => row[c]));
  }

  write(batch: readonly Row[]): Promise<void> {
    return this.#serial(async () => {
      this.#check('write to');
      let parts: string[] = [];
      let size = 0;
      try {
        for (const row of batch) {
          let text = this.#encode(row);
          if (!this.#headerDone && this.#config.format === 'csv') text = this.#csvHeaderLine() + text;
          this.#rows++;
          parts.push(text);
          size += text.length;
          if (size >= CHUNK_CHARS) {
            const chunk = parts.join('');
            parts = [];
            size = 0;
            await this.#push(chunk);
          }
        }
        if (parts.length > 0) await this.#push(parts.join(''));
      } catch (err) {
        this.#state = 'failed';
        throw err;
      }
    });
  }

  commit(): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'committed') return;
      this.#check('commit');
      try {
        if (!this.#headerDone && this.#config.format === 'csv') {
          const header = this.#csvHeaderLine();
          if (header) await this.#push(header);
        }
        await this.#syncing;
        if (this.#error !== undefined) throw this.#error;
        this.#stream.end();
        await this.#closed;
        if (this.#error !== undefined) throw this.#error;
        await this.#putInPlace();
      } catch (err) {
        this.#state = 'failed';
        // Nothing half-written: the temporary file goes, the window's file is as it was.
        await rm(this.tempPath, { force: true }).catch(() => {});
        throw err instanceof SluiceError ? err : ioError(`cannot commit ${this.finalPath}`, err);
      }
      await syncDir(this.#config.path);
      this.#state = 'committed';
      this.#logger.debug('file sink: window committed', { path: this.finalPath, rows: this.#rows });
    });
  }

  abort(reason: unknown): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'committed' || this.#state === 'aborted') return;
      this.#state = 'aborted';
      this.#stream.destroy();
      await this.#syncing;
      await this.#closed.catch(() => {});
      try {
        await rm(this.tempPath, { force: true });
      } catch (err) {
        throw ioError(`cannot delete ${this.tempPath}`, err);
      }
      this.#logger.debug('file sink: window aborted', {
        path: this.finalPath,
        reason: reason instanceof Error ? reason.message : String(reason),
      });
    });
  }
}
