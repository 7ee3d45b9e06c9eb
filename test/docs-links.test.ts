/**
 * Docs that point at files must point at files that exist: every relative Markdown link in README.md and
 * docs/, every repository path named in backticks there, and every docs/ path a bench file names.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import test from 'ava';
import { ROOT } from './helpers/process.js';

function files(dir: string, ext: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(ext))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

const DOCS = ['README.md', ...files('docs', '.md')];
/** Top-level folders whose paths docs name in backticks. */
const TREES = /^(services|plugins|test|docs|deploy|bench|proto|extra-plugins|\.ci)\//;

test('every relative link and every repository path in the docs exists', (t) => {
  const broken: string[] = [];
  for (const doc of DOCS) {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:|^#/.test(target!)) continue;
      const path = target!.split('#')[0]!;
      if (!existsSync(join(ROOT, dirname(doc), path))) broken.push(`${doc}: link ${target}`);
    }
    for (const [, path] of text.matchAll(/`([A-Za-z0-9_.\-/]+)`/g)) {
      if (!TREES.test(path!) || /[*<>]/.test(path!)) continue;
      // dist/ and generated paths are made by the build; names with a placeholder are patterns.
      if (!existsSync(join(ROOT, path!))) broken.push(`${doc}: path ${path}`);
    }
  }
  t.deepEqual(broken, []);
});

test('every docs/ path a benchmark names exists', (t) => {
  const broken: string[] = [];
  for (const file of files('bench', '.ts')) {
    for (const [path] of readFileSync(join(ROOT, file), 'utf8').matchAll(/docs\/[A-Za-z0-9_\-/]+\.md/g)) {
      if (!existsSync(join(ROOT, path))) broken.push(`${file}: ${path}`);
    }
  }
  t.deepEqual(broken, []);
});
