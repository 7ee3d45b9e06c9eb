import test, { type ExecutionContext } from 'ava';
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../services/core/config.js';
import { silentLogger } from '../services/core/logger.js';
import { BUNDLED_PLUGINS_DIR } from '../services/core/paths.js';
import { CALLBACK_PATH } from '../services/operator/http/callback.js';
import { dashboardUrl } from '../services/operator/http/static-ui.js';
import { startSluice } from '../services/runtime.js';
import { healthCheck } from './helpers/probes.js';
import { spawnService } from './helpers/process.js';

const listening = (e: Record<string, unknown>) => e.msg === 'gRPC server listening';

test.serial('all three services run in one process, answer health checks and stop cleanly on SIGTERM', async (t) => {
  const p = spawnService('services/main.ts', { SLUICE_GRPC_ADDR: '127.0.0.1:0' });
  const entry = await p.waitForLog(listening);
  t.deepEqual(entry.services, [
    'sluice.catalog.v1.CatalogService',
    'sluice.schedule.v1.ScheduleService',
    'sluice.operator.v1.OperatorService',
  ]);
  const address = entry.address as string;
  t.regex(address, /^127\.0\.0\.1:\d+$/);
  t.is(await healthCheck(address, 'sluice.operator.v1.OperatorService'), 'SERVING');
  p.child.kill('SIGTERM');
  t.is(await p.exited, 0);
  t.true(p.lines.some((l) => l.includes('"msg":"stopped"')));
  t.false(
    p.lines.some((l) => l.includes('calls still in flight')),
    'with no call open nothing is cut',
  );
});

for (const name of ['catalog', 'schedule', 'operator'] as const) {
  test.serial(`the ${name} service runs alone`, async (t) => {
    const p = spawnService(`services/${name}/main.ts`, { SLUICE_GRPC_ADDR: '127.0.0.1:0' });
    const entry = await p.waitForLog(listening);
    t.deepEqual(
      (entry.services as string[]).map((s) => s.split('.')[1]),
      [name],
    );
    p.child.kill('SIGTERM');
    t.is(await p.exited, 0);
  });
}

test.serial(
  'a bad setting stops start-up with exit 2, naming the variable, what was expected and what came',
  async (t) => {
    const p = spawnService('services/main.ts', { SLUICE_HOOK_TIMEOUT_MS: 'soon' });
    t.is(await p.exited, 2);
    t.deepEqual(
      p.lines.filter((l) => l !== ''),
      ['sluice: SLUICE_HOOK_TIMEOUT_MS: expected a positive integer, got "soon"'],
    );
  },
);

test.serial('a broken plugin in SLUICE_PLUGIN_PATH is logged and left out; the service starts', async (t) => {
  const p = spawnService('services/main.ts', {
    SLUICE_GRPC_ADDR: '127.0.0.1:0',
    SLUICE_PLUGIN_PATH: 'test/fixtures/plugins/broken',
  });
  const loaded = await p.waitForLog((e) => e.msg === 'plugins loaded');
  t.is(loaded.problems, 24);
  t.deepEqual(
    [...(loaded.connectors as string[])].sort(),
    readdirSync(`${BUNDLED_PLUGINS_DIR}/connectors`)
      .filter((n) => !n.startsWith('_'))
      .sort(),
  );
  await p.waitForLog(listening);
  p.child.kill('SIGTERM');
  t.is(await p.exited, 0);
});

test.serial('SIGINT stops the service cleanly, as SIGTERM does', async (t) => {
  const p = spawnService('services/main.ts', { SLUICE_GRPC_ADDR: '127.0.0.1:0' });
  await p.waitForLog(listening);
  p.child.kill('SIGINT');
  t.is(await p.exited, 0);
  t.true(p.lines.some((l) => l.includes('"msg":"shutting down"') && l.includes('"signal":"SIGINT"')));
  t.true(p.lines.some((l) => l.includes('"msg":"stopped"')));
});

test.serial(
  'SLUICE_SHUTDOWN_GRACE_MS: a call still open when the grace period ends is cut, and the service stops',
  async (t) => {
    const p = spawnService('services/main.ts', { SLUICE_GRPC_ADDR: '127.0.0.1:0', SLUICE_SHUTDOWN_GRACE_MS: '300' });
    const address = String((await p.waitForLog(listening)).address);
    // grpc.health.v1.Health/Watch streams until the client ends it: a call in flight for as long as needed.
    const Client = makeGenericClientConstructor(healthService, 'Health');
    const client = new Client(address, credentials.createInsecure());
    t.teardown(() => client.close());
    const stream = (client as unknown as { watch: (req: unknown) => NodeJS.ReadableStream }).watch({ service: '' });
    const statuses: string[] = [];
    const ended = new Promise<{ code?: number } | undefined>((resolve) => {
      stream.on('error', (err: { code?: number }) => resolve(err));
      stream.on('end', () => resolve(undefined));
    });
    await new Promise<void>((resolve) =>
      stream.on('data', (m: { status: string }) => {
        statuses.push(m.status);
        resolve();
      }),
    );
    t.is(statuses[0], 'SERVING', 'the call is open');
    p.child.kill('SIGTERM');
    t.is(await p.exited, 0);
    const cut = p.lines.find((l) => l.includes('calls still in flight after the grace period'));
    t.truthy(cut, p.lines.join('\n'));
    t.like(JSON.parse(cut!) as object, { graceMs: 300 });
    const err = await ended;
    t.truthy(err, 'the open call ended with an error, not a clean end');
    t.true(statuses.includes('NOT_SERVING'), 'it was told the service stopped serving first');
  },
);

/** Holds a port on 127.0.0.1 until the test ends, so that Sluice cannot listen there. */
async function takenPort(t: ExecutionContext): Promise<number> {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  return (blocker.address() as AddressInfo).port;
}

for (const setting of ['SLUICE_GRPC_ADDR', 'SLUICE_HTTP_ADDR'] as const) {
  test.serial(
    `a port in use (${setting}) fails start-up naming the setting, and what was opened is closed again`,
    async (t) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'sluice-start-'));
      t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
      const port = await takenPort(t);
      const env = {
        SLUICE_DATA_DIR: dataDir,
        SLUICE_FILE_ROOTS: tmpdir(),
        SLUICE_GRPC_ADDR: '127.0.0.1:0',
        SLUICE_HTTP_ADDR: '127.0.0.1:0',
        // A token turns the HTTP server on.
        SLUICE_AUTH_TOKENS: `${'t'.repeat(32)}:admin`,
        [setting]: `127.0.0.1:${port}`,
      };
      const err = await t.throwsAsync(startSluice({ config: loadConfig(env), logger: silentLogger }), {
        code: 'FAILED_PRECONDITION',
      });
      t.true(err?.message.startsWith(`${setting}: cannot listen on 127.0.0.1:${port}: `), err?.message);
      t.regex(err?.message ?? '', /EADDRINUSE|address already in use/);
      // The store was closed: its last connection gone, SQLite removed the WAL.
      t.false(existsSync(join(dataDir, 'sluice.db-wal')), 'the store is closed');
      // Nothing else holds on: the same data folder starts at once on free ports.
      const again = await startSluice({
        config: loadConfig({ ...env, SLUICE_GRPC_ADDR: '127.0.0.1:0', SLUICE_HTTP_ADDR: '127.0.0.1:0' }),
        logger: silentLogger,
      });
      await again.close();
      t.pass();
    },
  );
}

test.serial(
  'the HTTP server logs its address and the URL of the dashboard, whose page links an icon of its own',
  async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sluice-start-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const logged: [string, Record<string, unknown> | undefined][] = [];
    const sluice = await startSluice({
      config: loadConfig({
        SLUICE_DATA_DIR: dataDir,
        SLUICE_FILE_ROOTS: tmpdir(),
        SLUICE_GRPC_ADDR: '127.0.0.1:0',
        SLUICE_HTTP_ADDR: '127.0.0.1:0',
        // A token turns the HTTP server on.
        SLUICE_AUTH_TOKENS: `${'t'.repeat(32)}:admin`,
      }),
      logger: { ...silentLogger, info: (message, fields) => logged.push([message, fields]) },
    });
    t.teardown(() => sluice.close());
    const port = sluice.callbackPort!;
    const line = logged.find(([message]) => message === 'HTTP server listening')?.[1];
    t.deepEqual(line, {
      address: `127.0.0.1:${port}`,
      callback: CALLBACK_PATH,
      dashboard: `http://127.0.0.1:${port}/ui/`,
    });
    const page = await fetch(String(line?.dashboard));
    t.is(page.status, 200);
    const html = await page.text();
    t.regex(html, /<title>Sluice<\/title>/);
    // The page links an icon of its own, so the browser asks for no /favicon.ico (no path of Sluice's).
    const href = /<link rel="icon" type="image\/svg\+xml" href="([^"]+)"/.exec(html)?.[1];
    t.is(href, '/ui/favicon.svg');
    const icon = await fetch(new URL(href!, String(line?.dashboard)));
    t.is(icon.status, 200);
    t.is(icon.headers.get('content-type'), 'image/svg+xml');
    const svg = await icon.text();
    t.regex(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    t.true(svg.length < 2048, `a small icon (${svg.length} bytes)`);
    // Elsewhere: TLS, wildcard and IPv6 addresses, and the public URL others reach the server at.
    t.is(dashboardUrl({ host: '0.0.0.0', port: 8080, tls: true }), 'https://127.0.0.1:8080/ui/');
    t.is(dashboardUrl({ host: '::', port: 8080, tls: false }), 'http://[::1]:8080/ui/');
    t.is(dashboardUrl({ host: 'fd00::5', port: 80, tls: false }), 'http://[fd00::5]:80/ui/');
    t.is(
      dashboardUrl({ host: '0.0.0.0', port: 8080, tls: false }, 'https://sluice.example.com/'),
      'https://sluice.example.com/ui/',
    );
  },
);
