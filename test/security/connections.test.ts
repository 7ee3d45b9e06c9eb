/**
 * Confined connections: SLUICE_ALLOWED_HOSTS is enforced by the PostgreSQL, MySQL, Kafka and Pulsar connectors at
 * validation and again before connecting; unix sockets need their own entry; and a failed connection reads
 * the same whether the port is closed, silent or speaks another protocol, within the connect timeout.
 */
import test from 'ava';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { hostPolicy, setHostPolicy, type ConnectorPlugin, type Options } from 'sluice/sdk';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { type LoadedPlugin, loadPlugins } from '../../services/host/loader.js';

const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
const runner = new HookRunner({ timeoutMs: 10_000 });
const connector = (id: string) => plugins.connectors.get(id) as LoadedPlugin<ConnectorPlugin>;
const before = hostPolicy();
const servers: Server[] = [];
const sockets: Socket[] = [];

test.after.always(async () => {
  setHostPolicy(before);
  for (const s of sockets) s.destroy();
  for (const s of servers) await new Promise((r) => s.close(r));
});

async function listen(onConnection: (socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    sockets.push(socket);
    onConnection(socket);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

async function validate(id: string, role: 'source' | 'sink', options: Options) {
  return runner.call(connector(id), 'validate', { role, options });
}

test.serial('hosts outside SLUICE_ALLOWED_HOSTS and unlisted unix sockets are refused at validation', async (t) => {
  setHostPolicy({
    ...before,
    allowedHosts: ['db.internal:5432', '127.0.0.1', 'unix:/run/mysqld/mysqld.sock', 'kafka.internal:9092'],
  });
  const pg = (url: string) => validate('postgres', 'source', { url, table: 't', keyColumn: 'id' });
  t.deepEqual(await pg('postgres://u:pw@db.internal:5432/x'), []);
  t.deepEqual(await pg('postgres://u:pw@127.0.0.1:6543/x'), []);
  const foreign = await pg('postgres://u:pw@169.254.169.254:5432/x');
  t.is(foreign[0]?.path, 'options.url');
  t.false(JSON.stringify(foreign).includes('pw'));
  t.is((await pg('postgres://u@db.internal:5433/x'))[0]?.path, 'options.url', 'another port of an allowed host:port');
  t.is((await pg('postgres://u@db.internal/x?host=/var/run/postgresql'))[0]?.path, 'options.url', 'a unix socket');
  const my = (url: string) => validate('mysql', 'source', { url, table: 't', keyColumn: 'id' });
  t.is((await my('mysql://root@127.0.0.1/x?socketPath=/tmp/other.sock'))[0]?.path, 'options.url');
  t.deepEqual(await my('mysql://root@localhost/x?socketPath=/run/mysqld/mysqld.sock'), []);
  const kafka = (brokers: string[]) => validate('kafka', 'sink', { brokers, topic: 't' });
  t.deepEqual(await kafka(['kafka.internal:9092']), []);
  t.is((await kafka(['kafka.internal:9092', 'evil.example:9092']))[0]?.path, 'options.brokers[1]');
  const pulsar = (serviceUrl: string) => validate('pulsar', 'source', { serviceUrl, topic: 't' });
  t.deepEqual(await pulsar('pulsar://127.0.0.1:6650'), []);
  t.is((await pulsar('pulsar://127.0.0.1:6650,evil.example:6650'))[0]?.path, 'options.serviceUrl');
});

test.serial('a refused host is refused again when a job connects, before any socket is opened', async (t) => {
  let connections = 0;
  const port = await listen((s) => {
    connections++;
    s.destroy();
  });
  setHostPolicy({ ...before, allowedHosts: ['db.internal'] });
  const options = await runner.call(connector('postgres'), 'fillInBoundaries', {
    options: { url: `postgres://u@127.0.0.1:${port}/x`, table: 't', keyColumn: 'id' },
    boundaries: { boundaryType: 'OFFSET', lowerBound: '0', upperBound: '10' },
  });
  const err = await t.throwsAsync(
    runner.call(connector('postgres'), 'openReader', {
      options,
      boundaries: { boundaryType: 'OFFSET', lowerBound: '0', upperBound: '10' },
    }),
  );
  t.regex(err.message, /not allowed/);
  t.is(connections, 0);
});

test.serial('closed, silent and foreign ports fail alike, within the connect timeout', async (t) => {
  setHostPolicy({ ...before, allowedHosts: undefined as never });
  const silent = await listen(() => {}); // accepts and never answers
  const foreign = await listen((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  const closedServer = await listen(() => {});
  const closed = closedServer;
  await new Promise((r) => servers.pop()!.close(r));
  const boundaries = { boundaryType: 'OFFSET' as const, lowerBound: '0', upperBound: '10' };
  for (const [id, scheme] of [
    ['postgres', 'postgres://u:pw@'],
    ['mysql', 'mysql://u:pw@'],
  ] as const) {
    const messages: string[] = [];
    for (const port of [closed, silent, foreign]) {
      const options = await runner.call(connector(id), 'fillInBoundaries', {
        options: { url: `${scheme}127.0.0.1:${port}/x`, table: 't', keyColumn: 'id', connectTimeoutMs: 500 },
        boundaries,
      });
      const started = Date.now();
      const err = await t.throwsAsync(runner.call(connector(id), 'openReader', { options, boundaries }));
      t.true(Date.now() - started < 5000, `${id} port ${port}: gave up within the timeout`);
      t.is((err as unknown as { code: string }).code, 'UNAVAILABLE');
      // The hook runner names the plugin and hook; what follows is the connector's own message.
      messages.push(err.message.replace(String(port), 'PORT').replace(/^plugin '[a-z]+' openReader: /, ''));
    }
    t.deepEqual(messages, Array(3).fill(`${id}: could not connect to 127.0.0.1:PORT`), id);
  }
});
