import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkAllowedHost, checkUnderFileRoots, setHostPolicy } from 'sluice/sdk';
import { ConnectorRole } from '../../proto/gen/sluice/catalog/v1/catalog.js';
import { datagenToFile } from '../helpers/operator.js';
import { call, startTestSluice } from '../helpers/sluice.js';

test.serial('the file sink path must lie under the file roots, symlinks resolved', (t) => {
  const base = mkdtempSync(join(tmpdir(), 'sluice-roots-'));
  try {
    const root = join(base, 'root');
    const outside = join(base, 'outside');
    mkdirSync(root);
    mkdirSync(outside);
    symlinkSync(outside, join(root, 'escape'));
    setHostPolicy({ fileRoots: [root] });
    t.is(checkUnderFileRoots(join(root, 'a', 'b'), 'options.path'), undefined, 'a folder yet to be made');
    t.is(checkUnderFileRoots(root, 'options.path'), undefined);
    for (const bad of [outside, '/etc', join(root, '..', 'outside'), join(root, 'escape'), join(root, 'escape', 'x')]) {
      const err = checkUnderFileRoots(bad, 'options.path');
      t.is(err?.path, 'options.path', bad);
      t.regex(err!.expected, /under the file roots/);
    }
  } finally {
    setHostPolicy({ fileRoots: [tmpdir()] });
    rmSync(base, { recursive: true, force: true });
  }
});

test.serial(
  'ValidateOptions and CreateGroup refuse a file sink path outside the roots, naming the field',
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'sluice-root-'));
    const s = await startTestSluice({ SLUICE_FILE_ROOTS: root });
    try {
      const res = await call(s.catalog.validateOptions.bind(s.catalog), {
        connectorId: 'file',
        role: ConnectorRole.CONNECTOR_ROLE_SINK,
        options: { path: '/etc/cron.d' },
      });
      t.false(res.valid);
      t.is(res.errors[0]?.path, 'options.path');
      const err = await t.throwsAsync(s.sluice.operator!.createGroup(datagenToFile('g-escape', '/etc/cron.d')));
      t.is((err as { code?: string }).code, 'INVALID_ARGUMENT');
      t.is((err as { details?: { field?: string } }).details?.field, 'group.streams[0].sink.options.path');
      await s.sluice.operator!.createGroup(datagenToFile('g-inside', join(root, 'out')));
    } finally {
      await s.close();
      rmSync(root, { recursive: true, force: true });
    }
  },
);

test.serial('SLUICE_ALLOWED_HOSTS: listed hosts, *.domain, ports; unix sockets only when listed', (t) => {
  try {
    setHostPolicy({ fileRoots: [tmpdir()], allowedHosts: ['db.internal:5432', '*.example.com', 'unix:/run/pg'] });
    t.is(checkAllowedHost('db.internal', 'options.host', 5432), undefined);
    t.truthy(checkAllowedHost('db.internal', 'options.host', 22));
    t.is(checkAllowedHost('kafka1.example.com', 'options.brokers'), undefined);
    t.truthy(checkAllowedHost('example.org', 'options.brokers'));
    t.truthy(checkAllowedHost('/var/run/mysqld/mysqld.sock', 'options.url'));
    t.is(checkAllowedHost('/run/pg', 'options.url'), undefined);
  } finally {
    setHostPolicy({ fileRoots: [tmpdir()] });
  }
});

test.serial(
  'the data folder is 0700 and the SQLite database 0600, even when the folder existed with looser modes',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-data-'));
    chmodSync(dir, 0o755);
    const s = await startTestSluice({ SLUICE_DATA_DIR: dir });
    try {
      t.is(statSync(dir).mode & 0o777, 0o700);
      t.is(statSync(join(dir, 'sluice.db')).mode & 0o777, 0o600);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
