/**
 * Conformance harness of the file sink: each destination is a fresh temporary directory, and a window
 * is read back by parsing the window's JSON lines file (the committed output only: temporary files
 * are hidden and never read).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Options, WindowRef } from 'sluice/sdk';
import { DEFAULT_FILE_NAME, windowFileName } from '../../../plugins/connectors/file/naming.js';
import type { ConformanceHarness, ConformanceRecord } from '../harness.js';

const dirs: string[] = [];

function toRecord(row: Record<string, unknown>): ConformanceRecord {
  const ts = typeof row.ts === 'string' && !/^\d+$/.test(row.ts) ? Date.parse(row.ts) : Number(row.ts);
  return { id: Number(row.id), ts, name: String(row.name) };
}

async function readBack(options: Options, window: WindowRef): Promise<readonly ConformanceRecord[]> {
  const template = typeof options.fileName === 'string' ? options.fileName : DEFAULT_FILE_NAME;
  const file = join(String(options.path), windowFileName(template, window, 'jsonl'));
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => toRecord(JSON.parse(line) as Record<string, unknown>))
    .sort((a, b) => a.id - b.id);
}

const harness: ConformanceHarness = {
  connectorId: 'file',
  // Local files need no external service.
  available: async () => ({ ok: true }),
  sink: {
    async options() {
      const dir = await mkdtemp(join(tmpdir(), 'sluice-file-conformance-'));
      dirs.push(dir);
      return { path: dir, format: 'jsonl' };
    },
    readBack,
  },
  async cleanup() {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  },
};

export default harness;
