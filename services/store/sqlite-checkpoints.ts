import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints of a SQLite file, run on a worker thread of their own.
 *
 * node:sqlite runs every statement on the event loop, and SQLite's automatic checkpoint runs inside the
 * commit that crosses its threshold. That commit then copies about 1,000 pages into the database file and
 * waits for two fsyncs, which often takes several milliseconds. Every call waiting on the event loop
 * waits too: at one RegisterSchedule commit after another, the checkpoints were a third or more of the
 * insert's mean time on this project's 2-core machine. Here a second connection, on another thread,
 * checkpoints once WRITES_PER_CHECKPOINT statements that may write ran since its last checkpoint, or
 * `intervalMs` after the first of fewer. A checkpoint takes CPU from whatever else runs: asked every 100 ms
 * after any write, the thread cost other calls their p99 on 2 cores (ResolveBoundaries over loopback: 1.5-2.6x
 * of a no-op, against 0.8-1.5x without the thread), so it is asked about as rarely as SQLite's own threshold
 * would run it, and a store that is not written to wakes no thread at all.
 *
 * The checkpoint is PASSIVE: it takes no write lock, so the service's commits never wait for it, and it
 * never runs the busy handler. Durability does not change: a commit is in the WAL before its answer, as
 * before, and a checkpoint only copies committed pages into the database file.
 *
 * The service's own connection keeps an automatic checkpoint as a safety net, at a higher threshold
 * ({@link SAFETY_NET_PAGES}). If this thread falls behind, stops or fails, the WAL is still checkpointed
 * as it was before, only later.
 */
export interface Checkpoints {
  /** WAL frames this thread has copied into the database file so far. */
  readonly framesCheckpointed: number;
  /** Checkpoints asked of the thread so far (none without a write). */
  readonly checkpointsAsked: number;
  /** Tells the thread that the connection may have written (one statement). */
  written(): void;
  /** Stops the thread after the checkpoint under way, if any; its connection is closed first. */
  close(): Promise<void>;
}

/**
 * The service connection's wal_autocheckpoint (pages) while a checkpoint thread runs (SQLite's default is
 * 1,000). Continuous commits may keep the WAL from starting over while the thread checkpoints, so the WAL
 * can grow this far (about 40 MB of 4 KiB pages). Then the service's connection checkpoints it, as it did
 * at 1,000 pages without the thread; while the thread holds the checkpoint lock that attempt is skipped, so
 * the file can pass this size (71 MB once over 8,000 back-to-back inserts, with the thread asked every 100 ms). It starts over after a pause.
 */
export const SAFETY_NET_PAGES = 10_000;
/** SQLite's own threshold, which the service's connection goes back to when the thread fails. */
export const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;
/**
 * Statements that may write after which the thread checkpoints: a registration is one of them and about three WAL
 * pages, so this is about SQLite's own 1,000-page threshold.
 */
export const WRITES_PER_CHECKPOINT = 300;
/** How long after the first of fewer writes the thread checkpoints them anyway (ms). */
export const CHECKPOINT_INTERVAL_MS = 2000;

/*
 * The thread's code, plain CommonJS run with no loader (execArgv []), so starting it costs neither the
 * TypeScript loader of a development run nor a file next to the compiled one. It opens its own connection,
 * runs PRAGMA wal_checkpoint(PASSIVE) when asked and reports the frames each checkpoint copied (the count
 * starts again when the WAL does). Another process's checkpoint under way makes one answer busy, not an
 * error; an error ends the thread, and the service's connection checkpoints by itself again.
 */
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(workerData.file);
db.exec('PRAGMA synchronous = NORMAL');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let last = 0;
parentPort.on('message', (m) => {
  if (m === 'checkpoint') {
    const done = Number(checkpoint.get().checkpointed);
    if (done > 0 && done !== last) parentPort.postMessage({ frames: done > last ? done - last : done });
    last = done;
    return;
  }
  db.close();
  parentPort.close();
});
`;

/**
 * Starts checkpointing `file` (an absolute path; not `:memory:`) on a worker thread, which does not keep
 * the process alive. `onFailure` is called once if the thread fails or ends before close(): the caller
 * then lets its own connection checkpoint again.
 */
export function startCheckpoints(
  file: string,
  onFailure: (err: Error) => void,
  intervalMs = CHECKPOINT_INTERVAL_MS,
  writesPerCheckpoint = WRITES_PER_CHECKPOINT,
): Checkpoints {
  const worker = new Worker(WORKER_CODE, { eval: true, execArgv: [], workerData: { file, intervalMs } });
  let frames = 0;
  let closing = false;
  let failure: Error | undefined;
  worker.on('message', (m: { frames: number }) => (frames += m.frames));
  worker.on('error', (err) => (failure ??= err));
  // After the listeners: adding a 'message' listener refs the thread's port again, and a store left unclosed
  // would then keep its process from ever exiting.
  worker.unref();
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', (code) => {
      if (!closing) onFailure(failure ?? new Error(`SQLite checkpoint thread of ${file} ended (exit code ${code})`));
      resolve();
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  let asked = 0;
  let writes = 0;
  const ask = () => {
    clearTimeout(timer);
    timer = undefined;
    writes = 0;
    if (closing) return;
    asked++;
    worker.postMessage('checkpoint');
  };
  return {
    get framesCheckpointed() {
      return frames;
    },
    get checkpointsAsked() {
      return asked;
    },
    written() {
      if (closing) return;
      if (++writes >= writesPerCheckpoint) ask();
      else timer ??= setTimeout(ask, intervalMs).unref();
    },
    async close() {
      if (!closing) {
        closing = true;
        clearTimeout(timer);
        // Held while it ends: an unreferenced thread's exit would not keep this process waiting for it.
        worker.ref();
        worker.postMessage('close');
      }
      await exited;
    },
  };
}
