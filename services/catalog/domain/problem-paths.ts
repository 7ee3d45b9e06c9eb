import { basename, isAbsolute, sep } from 'node:path';
import type { PluginProblem } from '../../host/problems.js';

/**
 * `text` with every plugin root in it cut away: a path under a root becomes relative to it (`broken-one/
 * sluice-plugin.json`, `connectors/kafka/index.js`), the root itself its folder name. Longest roots first,
 * so a root inside another is cut as a whole; `file://` URLs (import errors) are cut the same way.
 */
function cutRoots(text: string, roots: readonly string[]): string {
  let out = text;
  for (const root of [...roots].sort((a, b) => b.length - a.length)) {
    if (root === sep || root === '') continue;
    out = out.split(`file://${root}${sep}`).join('').split(`${root}${sep}`).join('').split(root).join(basename(root));
  }
  return out;
}

/**
 * The problem as callers see it: its path relative to the plugin root it was found under (a path under
 * no root, such as the plugin settings file, by its file name), in the `path` field and in every text.
 */
export function relativeProblem(p: PluginProblem, roots: readonly string[]): PluginProblem {
  let path = cutRoots(p.path, roots);
  if (isAbsolute(path)) {
    const [file, ...rest] = path.split('#');
    path = [basename(file!), ...rest].join('#');
  }
  const text = (s: string) => cutRoots(p.path === '' ? s : s.split(p.path).join(path), roots);
  return { ...p, path, expected: text(p.expected), found: text(p.found), message: text(p.message) };
}
