/**
 * The machine's own ceiling for two datagen → file jobs at once (bench/runner.ts): a plain worker thread
 * doing a job's CPU work and nothing else. It reads the window through the datagen connector and encodes
 * every row with the file sink's encoder into 64 KiB chunks, as the sink does, then drops them: no
 * runner, no file, no fsync. Two of these at once against one after the other show how much of the
 * second core this machine gives such work.
 *
 * workerData: { records }. Posts 'ready' once the modules are loaded, then waits for 'go'; posts the
 * characters encoded when done.
 */
import { parentPort, workerData } from 'node:worker_threads';
import datagen from '../plugins/connectors/datagen/index.js';
import { jsonLine } from '../plugins/connectors/file/encode.js';

const CHUNK_CHARS = 64 * 1024;
const { records } = workerData as { records: number };
const port = parentPort!;

async function encodeWindow(): Promise<number> {
  const options = {
    intervalMs: 1000,
    seed: 0,
    payloadBytes: 0,
    batchSize: 1000,
    'datagen.start-id': 1,
    'datagen.stop-id': records + 1,
  };
  const reader = await datagen.openReader!({ options } as never);
  let chars = 0;
  let parts: string[] = [];
  let size = 0;
  for await (const batch of reader.batches()) {
    for (const row of batch) {
      const text = jsonLine(row);
      parts.push(text);
      size += text.length;
      if (size >= CHUNK_CHARS) {
        chars += parts.join('').length;
        parts = [];
        size = 0;
      }
    }
  }
  chars += parts.join('').length;
  await reader.close();
  return chars;
}

port.once('message', () => {
  encodeWindow().then(
    (chars) => port.postMessage(chars),
    (err: unknown) => {
      throw err;
    },
  );
});
port.postMessage('ready');
