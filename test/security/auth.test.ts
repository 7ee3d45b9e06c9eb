import anyTest, { type TestFn } from 'ava';
import { credentials, status } from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CatalogServiceClient } from '../../proto/gen/sluice/catalog/v1/catalog.js';
import { OperatorServiceClient, type Group } from '../../proto/gen/sluice/operator/v1/operator.js';
import { encodeInfo } from '../../services/schedule/grpc/adapter.js';
import { Authenticator, parseTokens, roleFor } from '../../services/core/auth.js';
import { ConfigError, loadConfig } from '../../services/core/config.js';
import { schedule } from '../helpers/operator.js';
import { healthCheck, reflectionServices } from '../helpers/probes.js';
import { bearer, call, callError, type Running, startTestSluice } from '../helpers/sluice.js';

const ADMIN = 'admin-token-0123456789abcdef';
const OPERATOR = 'operator-token-0123456789abcd';
const VIEWER = 'viewer-token-0123456789abcdef';

const LIST = { pageSize: 0, pageToken: '', role: 0 };

const test = anyTest as TestFn<{ s: Running; operator: OperatorServiceClient; dir: string }>;

test.before(async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-auth-'));
  const s = await startTestSluice({
    SLUICE_AUTH_TOKENS: `${ADMIN}:admin,${OPERATOR}:operator,${VIEWER}:viewer`,
    SLUICE_HTTP_ADDR: '127.0.0.1:0',
    SLUICE_FILE_ROOTS: dir,
  });
  t.context = { s, operator: new OperatorServiceClient(s.address, credentials.createInsecure()), dir };
});
test.after.always(async (t) => {
  t.context.operator?.close();
  await t.context.s?.close();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

function group(dir: string, groupId: string): Group {
  const start = Date.UTC(2100, 0, 1);
  return {
    groupId,
    description: 'datagen to files',
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'datagen', options: { intervalMs: 10 } },
        sink: { connectorId: 'file', options: { path: dir } },
        fields: [],
      },
    ],
    schedule: encodeInfo({ ...schedule(groupId), startTime: start, endTime: start + 86_400_000 }, 0),
    runner: '',
    retry: undefined,
    status: 0,
    version: 0,
    createdAt: 0,
    updatedAt: 0,
  };
}

test('a call without a token is UNAUTHENTICATED, with the domain code in the trailer; a wrong token too', async (t) => {
  const { catalog } = t.context.s;
  const none = await callError(catalog.listConnectors.bind(catalog), LIST);
  t.is(none.code, status.UNAUTHENTICATED);
  t.is(none.sluiceCode, 'UNAUTHENTICATED');
  const wrong = await callError(catalog.listConnectors.bind(catalog), LIST, bearer('x'.repeat(40)));
  t.is(wrong.code, status.UNAUTHENTICATED);
});

test('roles: viewer reads, operator creates, only admin deletes', async (t) => {
  const { catalog } = t.context.s;
  const { operator, dir } = t.context;
  const listed = await call(catalog.listConnectors.bind(catalog), LIST, bearer(VIEWER));
  t.true(listed.connectors.length > 0);
  const denied = await callError(operator.createGroup.bind(operator), { group: group(dir, 'g-auth') }, bearer(VIEWER));
  t.is(denied.code, status.PERMISSION_DENIED);
  t.is(denied.sluiceCode, 'PERMISSION_DENIED');
  await call(operator.createGroup.bind(operator), { group: group(dir, 'g-auth') }, bearer(OPERATOR));
  const cannotDelete = await callError(
    operator.deleteGroup.bind(operator),
    { groupId: 'g-auth', version: 0 },
    bearer(OPERATOR),
  );
  t.is(cannotDelete.code, status.PERMISSION_DENIED);
  await call(operator.deleteGroup.bind(operator), { groupId: 'g-auth', version: 0 }, bearer(ADMIN));
});

test('ApproveGroup, which calls the schedule service, works when auth is on (the process authenticates to itself)', async (t) => {
  const { operator, dir } = t.context;
  await call(operator.createGroup.bind(operator), { group: group(dir, 'g-approve') }, bearer(OPERATOR));
  const res = await call(operator.approveGroup.bind(operator), { groupId: 'g-approve', version: 0 }, bearer(OPERATOR));
  t.truthy(res);
});

test('SubmitOfflineJob naming a claimed instance is for admin callers only, whatever role the caller claims', async (t) => {
  const { operator, dir } = t.context;
  await call(operator.createGroup.bind(operator), { group: group(dir, 'g-forged') }, bearer(OPERATOR));
  await call(operator.approveGroup.bind(operator), { groupId: 'g-forged', version: 0 }, bearer(OPERATOR));
  const start = Date.UTC(2100, 0, 1);
  const request = (instanceId: string) => ({
    request: {
      groupId: 'g-forged',
      boundaryType: 1,
      lowerBoundary: '0',
      upperBoundary: String(start),
      instanceId,
    },
    rerun: false,
  });
  const claimed = bearer(OPERATOR);
  claimed.set('sluice-caller-role', 'admin'); // a role claimed by the caller counts for nothing
  for (const metadata of [bearer(OPERATOR), claimed]) {
    const denied = await callError(operator.submitOfflineJob.bind(operator), request('forged'), metadata);
    t.is(denied.code, status.PERMISSION_DENIED);
    t.is(denied.sluiceCode, 'PERMISSION_DENIED');
    t.regex(denied.details, /request\.instance_id/);
  }
  // Without an instance id the window goes through the ledger: a 130-year window is not one of the schedule's.
  const unclaimed = await callError(operator.submitOfflineJob.bind(operator), request(''), bearer(OPERATOR));
  t.is(unclaimed.code, status.INVALID_ARGUMENT);
  const listed = await call(
    operator.listJobs.bind(operator),
    { groupId: 'g-forged', pageSize: 0, pageToken: '', states: [], windowFrom: 0, windowTo: 0 },
    bearer(ADMIN),
  );
  t.deepEqual(listed.jobs, [], 'no job was made');
});

test('health stays open; reflection needs a token', async (t) => {
  const { address } = t.context.s;
  t.is(await healthCheck(address, ''), 'SERVING');
  const refused = await reflectionServices(address).catch((err: { code: number }) => err.code);
  t.is(refused, status.UNAUTHENTICATED);
  t.true((await reflectionServices(address, bearer(VIEWER))).includes('sluice.catalog.v1.CatalogService'));
});

test('the HTTP callback uses the same tokens: 401 without, 403 for a viewer, 415 for a body that is not JSON', async (t) => {
  const url = `http://127.0.0.1:${t.context.s.sluice.callbackPort}/inlong/manager/api/group/submitOfflineJob?token=in-the-query`;
  const body = JSON.stringify({ groupId: 'nobody', boundaryType: 'TIME', lowerBoundary: 0, upperBoundary: 1 });
  const post = (headers: Record<string, string>) => fetch(url, { method: 'POST', headers, body });
  t.is((await post({ 'content-type': 'application/json' })).status, 401);
  const viewer = await post({ 'content-type': 'application/json', authorization: `Bearer ${VIEWER}` });
  t.is(viewer.status, 403);
  t.is(((await viewer.json()) as { code: string }).code, 'PERMISSION_DENIED');
  t.is((await post({ 'content-type': 'text/plain', authorization: `Bearer ${OPERATOR}` })).status, 415);
  // Past authentication, InLong's path answers with InLong's envelope: the group is unknown.
  const known = (await (
    await post({ 'content-type': 'application/json', authorization: `Bearer ${OPERATOR}` })
  ).json()) as {
    success: boolean;
    code: string;
  };
  t.like(known, { success: false, code: 'NOT_FOUND' });
});

test('a token shorter than 16 characters or without a known role is refused at start, without echoing it', (t) => {
  const short = t.throws(() => loadConfig({ SLUICE_AUTH_TOKENS: 'abc:admin' }), { instanceOf: ConfigError });
  t.regex(short!.message, /SLUICE_AUTH_TOKENS entry 1: expected a token of at least 16 characters/);
  t.false(short!.message.includes('abc'));
  const role = t.throws(() => loadConfig({ SLUICE_AUTH_TOKENS: `${ADMIN}:root` }), { instanceOf: ConfigError });
  t.regex(role!.message, /role admin, operator or viewer, got role "root"/);
  t.false(role!.message.includes(ADMIN));
  t.throws(() => loadConfig({ SLUICE_CALLBACK_TOKEN: 'x' }), {
    message: /SLUICE_CALLBACK_TOKEN: expected a token of at least 16/,
  });
});

test('tokens come from a file, one token:role a line; the callback token is an operator token', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tokens-'));
  try {
    const file = join(dir, 'tokens');
    writeFileSync(file, `# tokens\n${ADMIN}:admin\n${VIEWER}:viewer\n`);
    const c = loadConfig({ SLUICE_AUTH_TOKENS_FILE: file, SLUICE_CALLBACK_TOKEN: OPERATOR });
    t.deepEqual(
      [...c.security.tokens],
      [
        [ADMIN, 'admin'],
        [VIEWER, 'viewer'],
        [OPERATOR, 'operator'],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listening on a non-loopback address needs credentials or SLUICE_INSECURE=1', (t) => {
  const err = t.throws(() => loadConfig({ SLUICE_GRPC_ADDR: '0.0.0.0:50051' }), { instanceOf: ConfigError });
  t.regex(err!.message, /SLUICE_GRPC_ADDR: expected a loopback address, or credentials/);
  t.is(loadConfig({ SLUICE_GRPC_ADDR: '0.0.0.0:50051', SLUICE_INSECURE: '1' }).security.insecure, true);
  t.is(
    loadConfig({ SLUICE_GRPC_ADDR: '0.0.0.0:50051', SLUICE_AUTH_TOKENS: `${ADMIN}:admin` }).grpcAddr,
    '0.0.0.0:50051',
  );
  t.notThrows(() => loadConfig({ SLUICE_GRPC_ADDR: '[::1]:50051' }));
});

test('method roles: reads are viewer, runs are operator, the rest admin; health is open', (t) => {
  t.is(roleFor('/grpc.health.v1.Health/Check'), 'open');
  t.is(roleFor('/sluice.operator.v1.OperatorService/ListJobs'), 'viewer');
  t.is(roleFor('/sluice.operator.v1.OperatorService/CancelJob'), 'operator');
  t.is(roleFor('/sluice.schedule.v1.ScheduleService/Backfill'), 'operator');
  t.is(roleFor('/sluice.schedule.v1.ScheduleService/RegisterSchedule'), 'admin');
  t.is(roleFor('/sluice.operator.v1.OperatorService/DeleteGroup'), 'admin');
});

test('tokens of any length are compared without throwing, and only a whole match counts', (t) => {
  const auth = new Authenticator(parseTokens(`${ADMIN}:admin`, 'test'));
  t.is(auth.roleOf(`Bearer ${ADMIN}`), 'admin');
  t.is(auth.roleOf(`Bearer ${ADMIN.slice(0, -1)}`), undefined);
  t.is(auth.roleOf(`Bearer ${ADMIN}x`), undefined);
  t.is(auth.roleOf('Bearer a'), undefined);
  t.is(auth.roleOf(ADMIN), undefined, 'the Bearer scheme is required');
});

// ---- TLS and mutual TLS -------------------------------------------------------------------------

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const tlsTest = hasOpenssl() ? test : test.skip;
if (!hasOpenssl() && process.env.SLUICE_REQUIRE_INTEGRATION === '1')
  throw new Error('openssl is required for the TLS tests');

/** A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by the CA. */
function makeCerts(dir: string) {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '1',
    '-subj',
    '/CN=sluice-test-ca',
  );
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const name of ['server', 'client']) {
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    );
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      'san.ext',
    );
  }
  return (f: string) => join(dir, f);
}

tlsTest(
  'mutual TLS: a client without a certificate is refused; with one (and no tokens) it may call, and ApproveGroup runs over TLS',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
    let s: Running | undefined;
    try {
      const f = makeCerts(dir);
      s = await startTestSluice({
        SLUICE_TLS_CERT: f('server.crt'),
        SLUICE_TLS_KEY: f('server.key'),
        SLUICE_TLS_CLIENT_CA: f('ca.crt'),
        SLUICE_TLS_CA: f('ca.crt'),
        SLUICE_FILE_ROOTS: dir,
      });
      const { readFileSync } = await import('node:fs');
      const ca = readFileSync(f('ca.crt'));
      const plain = new CatalogServiceClient(s.address, credentials.createInsecure());
      const plainErr = await callError(plain.listConnectors.bind(plain), LIST);
      t.is(plainErr.code, status.UNAVAILABLE, 'a plaintext client cannot even connect');
      plain.close();
      const noCert = new CatalogServiceClient(s.address, credentials.createSsl(ca));
      const noCertErr = await callError(noCert.listConnectors.bind(noCert), LIST);
      t.not(noCertErr.code, status.OK);
      noCert.close();
      const withCert = new CatalogServiceClient(
        s.address,
        credentials.createSsl(ca, readFileSync(f('client.key')), readFileSync(f('client.crt'))),
      );
      t.true((await call(withCert.listConnectors.bind(withCert), LIST)).connectors.length > 0);
      const operator = new OperatorServiceClient(
        s.address,
        credentials.createSsl(ca, readFileSync(f('client.key')), readFileSync(f('client.crt'))),
      );
      await call(operator.createGroup.bind(operator), { group: group(dir, 'g-tls') });
      t.truthy(await call(operator.approveGroup.bind(operator), { groupId: 'g-tls', version: 0 }));
      withCert.close();
      operator.close();
    } finally {
      await s?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
