/**
 * Secret options: a URL password and options marked writeOnly never come back from an RPC, never reach a
 * log line, and are stored encrypted (the SQLite file and PostgreSQL rows are scanned for the cleartext);
 * secret references are read only when a job runs. Needs PostgreSQL (a database of its own).
 */
import anyTest, { type TestFn } from 'ava';
import { credentials } from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ConfigError, loadConfig } from '../../services/core/config.js';
import { createLogger } from '../../services/core/logger.js';
import { OptionSecrets, isSealed } from '../../services/core/option-secrets.js';
import { SecretBox, dataDirSecretKey } from '../../services/core/secret-box.js';
import { encodeInfo } from '../../services/schedule/grpc/adapter.js';
import { CatalogServiceClient } from '../../proto/gen/sluice/catalog/v1/catalog.js';
import { BoundaryType } from '../../proto/gen/sluice/common/v1/common.js';
import { JobState, OperatorServiceClient, type Group, type Job } from '../../proto/gen/sluice/operator/v1/operator.js';
import { PG_URL, probePostgres, uniqueName } from '../helpers/databases.js';
import { gate } from '../helpers/integration.js';
import { schedule } from '../helpers/operator.js';
import { call, type Running, startTestSluice } from '../helpers/sluice.js';

const PASSWORD = 'Xq9-very-secret-PW-7731';
const SASL_PASSWORD = 'sasl-secret-Zk41-kept';
const KEY = 'ab'.repeat(32);
const FUTURE = Date.UTC(2100, 0, 1);

interface Ctx {
  admin: pg.Client;
  db: string;
  /** The test database's URL with a password (trust authentication ignores it). */
  url: string;
  dir: string;
  dataDir: string;
  logs: string[];
  s: Running;
  operator: OperatorServiceClient;
  /** Every response an RPC gave, as JSON. */
  seen: string[];
}

const test = gate(anyTest as TestFn<Ctx>, await probePostgres());

test.before(async (t) => {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  const db = uniqueName('sluice_secrets');
  await admin.query(`CREATE DATABASE ${db}`);
  const base = new URL(PG_URL);
  base.pathname = `/${db}`;
  base.password = PASSWORD;
  if (!base.username) base.username = 'postgres';
  const url = base.toString();
  const seed = new pg.Client({ connectionString: url });
  await seed.connect();
  await seed.query('CREATE TABLE src (id bigint PRIMARY KEY, name text)');
  await seed.query("INSERT INTO src SELECT g, 'row ' || g FROM generate_series(1, 20) g");
  await seed.end();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-secrets-out-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-secrets-data-'));
  const logs: string[] = [];
  const logger = createLogger('debug', {}, (line) => logs.push(line));
  process.env.SLUICE_SECRET_TEST_URL = url;
  const s = await startTestSluice({ SLUICE_DATA_DIR: dataDir, SLUICE_FILE_ROOTS: dir }, { logger });
  t.context = {
    admin,
    db,
    url,
    dir,
    dataDir,
    logs,
    s,
    operator: new OperatorServiceClient(s.address, credentials.createInsecure()),
    seen: [],
  };
});

test.after.always(async (t) => {
  const c = t.context;
  c.operator?.close();
  await c.s?.close();
  if (c.admin) {
    await c.admin.query(`DROP DATABASE IF EXISTS ${c.db} WITH (FORCE)`).catch(() => {});
    await c.admin.end();
  }
  for (const d of [c.dir, c.dataDir]) if (d) rmSync(d, { recursive: true, force: true });
  delete process.env.SLUICE_SECRET_TEST_URL;
});

function group(t: { context: Ctx }, groupId: string, url: unknown, description = 'postgres to files'): Group {
  return {
    groupId,
    description,
    streams: [
      {
        streamId: 's1',
        source: { connectorId: 'postgres', options: { url, table: 'src', keyColumn: 'id' } },
        sink: { connectorId: 'file', options: { path: join(t.context.dir, groupId), format: 'jsonl' } },
        fields: [],
      },
    ],
    // Far in the future: no window fires by itself.
    schedule: encodeInfo({ ...schedule(groupId), startTime: FUTURE, endTime: FUTURE + 86_400_000 }, 0),
    runner: '',
    retry: { maxAttempts: 1, initialBackoffMs: 0 },
    status: 0,
    version: 0,
    createdAt: 0,
    updatedAt: 0,
  };
}

/** Calls and keeps the JSON of the answer for the final scan. */
async function rpc<Req, Res>(t: { context: Ctx }, method: keyof OperatorServiceClient, req: Req): Promise<Res> {
  const client = t.context.operator;
  const fn = (client[method] as (...a: unknown[]) => unknown).bind(client) as never;
  const res = await call<Req, Res>(fn, req);
  t.context.seen.push(JSON.stringify(res));
  return res;
}

async function finished(t: { context: Ctx }, jobId: string): Promise<Job> {
  for (let i = 0; i < 300; i++) {
    const { job } = await rpc<{ jobId: string }, { job: Job }>(t, 'getJob', { jobId });
    if ([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED].includes(job.state))
      return job;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${jobId} did not finish`);
}

async function runWindow(t: { context: Ctx }, groupId: string): Promise<Job> {
  const { jobs } = await rpc<unknown, { jobs: Job[] }>(t, 'submitOfflineJob', {
    request: {
      groupId,
      boundaryType: BoundaryType.BOUNDARY_TYPE_OFFSET,
      lowerBoundary: '0',
      upperBoundary: '100',
      instanceId: '',
    },
    rerun: false,
  });
  return finished(t, jobs[0]!.jobId);
}

/** Every byte of the SQLite store (with its WAL), as latin1 text to search. */
function storeBytes(dataDir: string): string {
  return readdirSync(dataDir)
    .filter((f) => f.startsWith('sluice.db'))
    .map((f) => readFileSync(join(dataDir, f)).toString('latin1'))
    .join('\n');
}

test.serial('a URL password is masked in every answer, sealed in the store, and the job still connects', async (t) => {
  const created = await rpc<unknown, { group: Group }>(t, 'createGroup', { group: group(t, 'g-url', t.context.url) });
  const shown = created.group.streams[0]!.source!.options!.url as string;
  t.true(shown.includes(':***@'), shown);
  await rpc(t, 'approveGroup', { groupId: 'g-url', version: 0 });
  const job = await runWindow(t, 'g-url');
  t.is(job.state, JobState.JOB_STATE_SUCCEEDED, job.error);
  t.is(job.progress?.records, 20);
  t.true(String(job.resolvedSourceOptions?.url).includes(':***@'));
  await rpc(t, 'getGroup', { groupId: 'g-url' });
  await rpc(t, 'listGroups', { pageSize: 0, pageToken: '', statuses: [] });
  await rpc(t, 'listJobs', { groupId: 'g-url', states: [], windowFrom: 0, windowTo: 0, pageSize: 0, pageToken: '' });
  const bytes = storeBytes(t.context.dataDir);
  t.true(bytes.includes('g-url'), 'the scan reads the store');
  t.false(bytes.includes(PASSWORD), 'the store holds no cleartext password');
});

test.serial('UpdateGroup keeps the stored secret when the masked value is sent back', async (t) => {
  const { group: read } = await rpc<unknown, { group: Group }>(t, 'getGroup', { groupId: 'g-url' });
  const updated = await rpc<unknown, { group: Group }>(t, 'updateGroup', {
    group: { ...read, description: 'changed, secret sent back masked' },
  });
  t.is(updated.group.description, 'changed, secret sent back masked');
  // The stored value still opens to the password given at CreateGroup.
  const stored = await t.context.s.sluice.operator!.getGroup('g-url');
  const url = stored.streams[0]!.source.options.url;
  t.true(isSealed(url));
  const secrets = new OptionSecrets(new SecretBox(dataDirSecretKey(t.context.dataDir)));
  t.is(secrets.open({ url }).url, t.context.url);
  t.false(storeBytes(t.context.dataDir).includes(PASSWORD));
});

test.serial('a writeOnly option (Kafka sasl.password) is shown as *** and stored sealed', async (t) => {
  const g = group(t, 'g-sasl', t.context.url);
  g.streams[0]!.source = {
    connectorId: 'kafka',
    options: {
      brokers: ['127.0.0.1:9'],
      topic: 't',
      sasl: { mechanism: 'plain', username: 'u', password: SASL_PASSWORD },
    },
  };
  const created = await rpc<unknown, { group: Group }>(t, 'createGroup', { group: g });
  const sasl = created.group.streams[0]!.source!.options!.sasl as Record<string, unknown>;
  t.is(sasl.password, '***');
  t.is(sasl.username, 'u');
  t.false(storeBytes(t.context.dataDir).includes(SASL_PASSWORD));
});

test.serial('a secret reference is stored as written and read only when the job runs', async (t) => {
  await rpc(t, 'createGroup', { group: group(t, 'g-ref', { secretRef: 'env:SLUICE_SECRET_TEST_URL' }) });
  const { group: read } = await rpc<unknown, { group: Group }>(t, 'getGroup', { groupId: 'g-ref' });
  t.deepEqual(read.streams[0]!.source!.options!.url, { secretRef: 'env:SLUICE_SECRET_TEST_URL' });
  await rpc(t, 'approveGroup', { groupId: 'g-ref', version: 0 });
  const job = await runWindow(t, 'g-ref');
  t.is(job.state, JobState.JOB_STATE_SUCCEEDED, job.error);
  t.deepEqual(job.resolvedSourceOptions?.url, { secretRef: 'env:SLUICE_SECRET_TEST_URL' });
  t.false(storeBytes(t.context.dataDir).includes(PASSWORD));
});

test.serial('a reference to a missing variable fails the job, naming the option and the reference', async (t) => {
  await rpc(t, 'createGroup', {
    group: group(t, 'g-ref-missing', { secretRef: 'env:SLUICE_SECRET_TEST_NO_SUCH_VAR' }),
  });
  await rpc(t, 'approveGroup', { groupId: 'g-ref-missing', version: 0 });
  const job = await runWindow(t, 'g-ref-missing');
  t.is(job.state, JobState.JOB_STATE_FAILED);
  t.regex(job.error, /option 'url': secret reference 'env:SLUICE_SECRET_TEST_NO_SUCH_VAR'/);
});

test.serial('a malformed reference is INVALID_ARGUMENT at ValidateOptions', async (t) => {
  const catalog = new CatalogServiceClient(t.context.s.address, credentials.createInsecure());
  try {
    const res = await call(catalog.validateOptions.bind(catalog), {
      connectorId: 'postgres',
      role: 1,
      options: { url: { secretRef: 'vault:x' }, table: 'src', keyColumn: 'id' },
    });
    t.false(res.valid);
    t.is(res.errors[0]!.path, 'options.url');
    const ok = await call(catalog.validateOptions.bind(catalog), {
      connectorId: 'postgres',
      role: 1,
      options: { url: { secretRef: 'env:SLUICE_SECRET_PG_URL' }, table: 'src', keyColumn: 'id' },
    });
    t.true(ok.valid, JSON.stringify(ok.errors));
  } finally {
    catalog.close();
  }
});

test.serial('ResolveBoundaries gives the bounded options back with the URL password masked', async (t) => {
  const catalog = new CatalogServiceClient(t.context.s.address, credentials.createInsecure());
  try {
    const res = await call(catalog.resolveBoundaries.bind(catalog), {
      connectorId: 'postgres',
      options: { url: t.context.url, table: 'src', keyColumn: 'id' },
      boundaries: { boundaryType: BoundaryType.BOUNDARY_TYPE_OFFSET, lowerBound: '0', upperBound: '10' },
    });
    t.context.seen.push(JSON.stringify(res));
    t.true(String(res.boundedOptions?.url).includes(':***@'));
  } finally {
    catalog.close();
  }
});

test.serial('no answer and no log line holds a secret in clear (runs last)', (t) => {
  t.true(t.context.seen.length > 10);
  for (const answer of t.context.seen) {
    t.false(answer.includes(PASSWORD), answer);
    t.false(answer.includes(SASL_PASSWORD), answer);
  }
  t.true(t.context.logs.length > 0);
  for (const line of t.context.logs) {
    t.false(line.includes(PASSWORD), line);
    t.false(line.includes(SASL_PASSWORD), line);
  }
});

test('the data folder key is made once, 0600, and reused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-key-'));
  try {
    const a = dataDirSecretKey(dir);
    t.is(statSync(join(dir, 'secret.key')).mode & 0o777, 0o600);
    t.deepEqual(dataDirSecretKey(dir), a);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SLUICE_SECRET_KEY: hex or base64 accepted; anything else is refused naming the variable, not the value', (t) => {
  t.is(loadConfig({ SLUICE_SECRET_KEY: KEY }).secretKey?.length, 32);
  t.is(loadConfig({ SLUICE_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') }).secretKey?.length, 32);
  const bad = 'not-a-key-but-a-secret-anyway';
  const err = t.throws(() => loadConfig({ SLUICE_SECRET_KEY: bad }), { instanceOf: ConfigError });
  t.regex(err.message, /^SLUICE_SECRET_KEY: /);
  t.false(err.message.includes(bad));
  const noKey = t.throws(() => loadConfig({ SLUICE_DATABASE_URL: 'postgres://u:p@db/x' }), {
    instanceOf: ConfigError,
  });
  t.regex(noKey.message, /^SLUICE_SECRET_KEY: .*SLUICE_DATABASE_URL/);
});

test('a value sealed under one key does not open under another', (t) => {
  const a = new SecretBox(Buffer.alloc(32, 1));
  const b = new SecretBox(Buffer.alloc(32, 2));
  const sealed = a.seal('x');
  t.is(a.open(sealed), 'x');
  t.throws(() => b.open(sealed));
});

test.serial('on a PostgreSQL store no row holds a secret in clear', async (t) => {
  const storeDb = `${t.context.db}_store`;
  await t.context.admin.query(`CREATE DATABASE ${storeDb}`);
  const storeUrl = new URL(PG_URL);
  storeUrl.pathname = `/${storeDb}`;
  const s = await startTestSluice({
    SLUICE_DATABASE_URL: storeUrl.toString(),
    SLUICE_SECRET_KEY: KEY,
    SLUICE_FILE_ROOTS: t.context.dir,
  });
  const operator = new OperatorServiceClient(s.address, credentials.createInsecure());
  const rows = new pg.Client({ connectionString: storeUrl.toString() });
  try {
    const g = group(t, 'g-pg-store', t.context.url);
    await call(operator.createGroup.bind(operator), { group: g });
    await call(operator.approveGroup.bind(operator), { groupId: 'g-pg-store', version: 0 });
    await call(operator.submitOfflineJob.bind(operator), {
      request: {
        groupId: 'g-pg-store',
        boundaryType: BoundaryType.BOUNDARY_TYPE_OFFSET,
        lowerBoundary: '0',
        upperBoundary: '100',
        instanceId: '',
      },
      rerun: false,
    });
    await rows.connect();
    const tables = await rows.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    );
    let all = '';
    for (const { table_name } of tables.rows) {
      const r = await rows.query<{ t: string }>(`SELECT r::text AS t FROM "${table_name}" r`);
      all += r.rows.map((x) => x.t).join('\n');
    }
    t.true(all.includes('g-pg-store'), 'the scan reads the rows');
    t.false(all.includes(PASSWORD));
  } finally {
    await rows.end().catch(() => {});
    operator.close();
    await s.close();
    await t.context.admin.query(`DROP DATABASE IF EXISTS ${storeDb} WITH (FORCE)`).catch(() => {});
  }
});
