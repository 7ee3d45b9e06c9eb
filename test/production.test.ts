/**
 * The production install: what `npm start` imports must be a dependency, not a devDependency. The build
 * goes to a temporary folder with package.json and the lock, `npm ci --omit=dev` installs from npm's local
 * cache (filled by the project's own `npm ci`, so no registry is asked), and `npm start` runs there with
 * OTLP tracing and the Prometheus endpoint on. No Docker engine here: the image itself is not built.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { nodeVersionProblem } from '../services/core/node-version.js';
import { healthCheck } from './helpers/probes.js';
import { ROOT } from './helpers/process.js';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** The machine's own Node.js when it is older than Sluice needs (Debian's 20 here); the old-Node case runs on it. */
const OLD_NODE = ['/usr/bin/node', '/bin/node'].find((p) => existsSync(p));

let dir = '';

test.before(async (t) => {
  t.timeout(600_000);
  dir = mkdtempSync(join(tmpdir(), 'sluice-prod-'));
  // The same steps as `npm run build` and the Dockerfile, into the temporary folder.
  await run(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist')],
    {
      cwd: ROOT,
    },
  );
  cpSync(join(ROOT, 'plugins'), join(dir, 'dist/plugins'), { recursive: true, filter: (s) => !s.endsWith('.ts') });
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(dir, f));
  mkdirSync(join(dir, 'proto/gen'), { recursive: true });
  for (const f of ['sluice.binpb', 'health.binpb']) cpSync(join(ROOT, 'proto/gen', f), join(dir, 'proto/gen', f));
  await run(npm, ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir });
});

test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test.serial('npm ci --omit=dev leaves no devDependency behind', (t) => {
  for (const dev of ['typescript', 'tsx', 'ava', 'js-yaml']) t.false(existsSync(join(dir, 'node_modules', dev)), dev);
  t.true(existsSync(join(dir, 'node_modules/@opentelemetry/exporter-trace-otlp-proto')));
});

test.serial(
  'npm start on the production install starts with OTLP tracing and metrics on, and stops on SIGTERM',
  async (t) => {
    t.timeout(120_000);
    const posts: string[] = [];
    const collector = createServer((req, res) => {
      req.resume().on('end', () => {
        posts.push(`${req.method} ${req.url}`);
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const data = mkdtempSync(join(tmpdir(), 'sluice-prod-data-'));
    try {
      // The start script's own command, run directly so SIGTERM reaches Sluice rather than npm.
      const [command, ...args] = (
        JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { scripts: { start: string } }
      ).scripts.start.split(' ');
      t.is(command, 'node');
      const child = spawn(process.execPath, args, {
        cwd: dir,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          SLUICE_GRPC_ADDR: '127.0.0.1:0',
          SLUICE_METRICS_ADDR: '127.0.0.1:0',
          SLUICE_DATA_DIR: data,
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
          OTEL_SERVICE_NAME: 'sluice-production-test',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const lines: string[] = [];
      const entries: Record<string, unknown>[] = [];
      let buffer = '';
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const seen = (msg: string) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const check = () => {
            const e = entries.find((x) => x.msg === msg);
            if (e) resolve(e);
            else setTimeout(check, 50);
          };
          check();
          void exited.then((code) => reject(new Error(`exited ${code} before "${msg}":\n${lines.join('\n')}`)));
        });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          lines.push(line);
          try {
            entries.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            // npm's own lines are not JSON.
          }
        }
      });
      const listening = await seen('gRPC server listening');
      t.is(await healthCheck(listening.address as string, 'sluice.catalog.v1.CatalogService'), 'SERVING');
      const metrics = await seen('metrics listening');
      const body = await (await fetch(`http://${metrics.address as string}/metrics`)).text();
      t.regex(body, /^# HELP /m);
      t.regex(body, /target_info\{.*service_name="sluice-production-test"/);
      child.kill('SIGTERM');
      t.is(await exited, 0, lines.join('\n'));
      // The health check was traced and flushed to the collector on the way out.
      t.true(posts.includes('POST /v1/traces'), posts.join(', '));
    } finally {
      rmSync(data, { recursive: true, force: true });
      collector.closeAllConnections();
      await new Promise((resolve) => collector.close(resolve));
    }
  },
);

test.serial('an old Node.js gets one line naming the version Sluice needs', async (t) => {
  t.is(nodeVersionProblem('24.1.0'), undefined);
  t.is(nodeVersionProblem('22.0.0'), undefined);
  t.regex(nodeVersionProblem('20.20.2') ?? '', /^sluice: Sluice needs Node\.js >= 22, this is 20\.20\.2/);
  const old = OLD_NODE ? (await run(OLD_NODE, ['--version'])).stdout.trim() : '';
  if (!OLD_NODE || nodeVersionProblem(old.slice(1)) === undefined) {
    t.log('no Node.js older than 22 on this machine: the start of the build on one was not tried');
    return;
  }
  const result = await run(OLD_NODE, ['--import', './dist/services/telemetry/bootstrap.js', 'dist/services/main.js'], {
    cwd: dir,
  }).then(
    () => ({ code: 0, stderr: '' }),
    (err: { code: number; stderr: string }) => err,
  );
  t.is(result.code, 2);
  t.deepEqual(result.stderr.trim().split('\n'), [nodeVersionProblem(old.slice(1))]);
});
