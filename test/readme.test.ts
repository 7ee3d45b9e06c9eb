/**
 * The README's walkthrough is run as written: every `sh` block of "Your first sync task, step by step"
 * goes through bash against a live Sluice, `npx sluice` being this clone's bin/sluice.js. Lines for
 * other tools (grpcurl, curl, docker, npm, the token made with openssl, and `. .ci/node.sh`) are left out: the test
 * starts Sluice itself, with its own token.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/process.js';
import { type Running, startTestSluice } from './helpers/sluice.js';

const TOKEN = 'readme-walkthrough-token-0123456789';
const SECTION = '## Your first sync task, step by step';
const NOT_RUN = /^(grpcurl|curl|docker|npm)\b|^export TOKEN=|npm start|^\. \.ci\/node\.sh/;

/** The walkthrough's `sh` blocks, without the lines of other tools (and their continuation lines). */
export function walkthroughBlocks(readme: string): string[] {
  const start = readme.indexOf(SECTION);
  const end = readme.indexOf('\n## ', start + SECTION.length);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const blocks: string[] = [];
  for (const [, body] of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const kept: string[] = [];
    let skipping = false;
    let inHeredoc: string | undefined;
    for (const line of body!.split('\n')) {
      if (inHeredoc) {
        kept.push(line);
        if (line === inHeredoc) inHeredoc = undefined;
        continue;
      }
      const dropped: boolean = skipping || NOT_RUN.test(line.trim());
      skipping = dropped && line.trimEnd().endsWith('\\');
      if (dropped) continue;
      const heredoc = /<<'?([A-Z]+)'?\s*$/.exec(line);
      if (heredoc) inHeredoc = heredoc[1];
      kept.push(line.replaceAll('npx sluice', 'sluice'));
    }
    if (kept.some((l) => l.trim() !== '')) blocks.push(kept.join('\n'));
  }
  return blocks;
}

let sluice: Running;
let dir: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-readme-'));
  sluice = await startTestSluice({ SLUICE_AUTH_TOKENS: `${TOKEN}:admin`, SLUICE_HTTP_ADDR: '127.0.0.1:0' });
});
test.after.always(async () => {
  await sluice?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function bash(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const prelude = `sluice() { "${process.execPath}" "${join(ROOT, 'bin/sluice.js')}" "$@"; }\n`;
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['--norc', '--noprofile', '-euo', 'pipefail', '-c', prelude + script],
      {
        cwd: dir,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, TOKEN, SLUICE_ADDR: sluice.address },
        timeout: 240_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const blocks = walkthroughBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));

test('the walkthrough has sluice commands to run, and no grpcurl, curl or npm line is among them', (t) => {
  t.true(blocks.length >= 4, blocks.join('\n---\n'));
  const all = blocks.join('\n');
  t.regex(all, /^sluice groups create -f demo\.yaml$/m);
  t.regex(all, /^sluice backfill demo /m);
  t.notRegex(all, /grpcurl|curl |npm /);
});

test.serial("the README's walkthrough runs as written against a live Sluice", async (t) => {
  t.timeout(600_000);
  // One shell for the whole walkthrough, as a reader's terminal: what a block exports, the next one sees.
  const r = await bash(blocks.map((b, i) => `echo '=== block ${i + 1}'\n${b}`).join('\n'));
  t.is(r.code, 0, `--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  const outputs = [r.stdout, r.stderr];
  const all = outputs.join('\n');
  // What the README says the commands print.
  t.regex(
    all,
    /error: INVALID_ARGUMENT: datagen source options are not valid\n {2}options\.intervalMs: expected a number >= 1, got 0\n {2}options\.sed: /,
  );
  t.regex(all, /exit 3/);
  t.regex(all, /created demo \(NEW\)/);
  t.regex(all, /approved demo \(REGISTERED\)/);
  t.regex(all, /\d+ windows would run \(dry run\)/);
  t.regex(all, /(\d+) of \1 windows succeeded/);
  t.regex(all, /\|[-.#]*#{4,}[-.# ]*\|\n# succeeded \(\d+\)/);
  t.regex(all, /: SUCCEEDED, \d+ records in /);
  t.regex(all, /deleted demo/);
  const files = await readdir(join(dir, '.sluice/files/demo'));
  t.true(files.filter((f) => /^demo-s1-\d+-\d+\.jsonl$/.test(f)).length >= 4, files.join(' '));
});
