import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { parseTime, UsageError } from './time.js';

/** Reads a JSON or YAML object (YAML by the .yaml/.yml extension) named by an option; usage errors name the option. */
export async function readObject(flag: string, path: string): Promise<Record<string, unknown>> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(flag, 'a readable file', `${path} (${err.code ?? err.message})`);
  });
  let parsed: unknown;
  try {
    parsed = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new UsageError(flag, 'valid JSON or YAML', (err as Error).message.split('\n')[0] ?? '');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(flag, 'an object', Array.isArray(parsed) ? 'an array' : typeof parsed);
  }
  return parsed as Record<string, unknown>;
}

/**
 * A group document with its schedule's start and end times given as ISO 8601 or durations (`-6h`,
 * `+7d`) turned into the epoch milliseconds the RPC takes; numbers and digit strings pass unchanged.
 */
export function resolveGroupTimes(doc: Record<string, unknown>): Record<string, unknown> {
  const group = (doc.group ?? doc) as Record<string, unknown>;
  const schedule = group.schedule as Record<string, unknown> | undefined;
  if (typeof schedule !== 'object' || schedule === null) return doc;
  for (const key of ['start_time', 'startTime', 'end_time', 'endTime']) {
    const v = schedule[key];
    if (typeof v === 'string' && !/^\d+$/.test(v)) {
      const path = `${doc.group ? 'group.' : ''}schedule.${key}`;
      try {
        schedule[key] = String(parseTime(path, v));
      } catch (err) {
        if (err instanceof UsageError) throw new UsageError(`--file ${path}`, err.expected, v);
        throw err;
      }
    }
  }
  return doc;
}
