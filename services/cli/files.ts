import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { UsageError } from './time.js';

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
