#!/usr/bin/env node
// The `sluice` command. From a clone it runs the TypeScript sources through tsx; from a build, dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = fileURLToPath(new URL('../dist/services/cli/main.js', import.meta.url));
let runCli;
if (existsSync(built)) {
  ({ runCli } = await import(built));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ runCli } = await import('../services/cli/main.ts'));
}
process.exitCode = await runCli(process.argv.slice(2));
