/**
 * Secret references read only what the service's administrator allowed (SLUICE_SECRET_ENV, SLUICE_SECRETS_DIR),
 * what a job error echoes of a secret is cut out however it was shortened or escaped, and a stored secret sent
 * back masked (`***`) is kept only when it still goes where it went. No database or broker needed.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  describeValue,
  fieldError,
  isSecretEnvAllowed,
  isSluiceError,
  isSluiceSettingName,
  setHostPolicy,
  type JsonSchema,
} from 'sluice/sdk';
import { ConfigError, DEFAULTS, loadConfig } from '../../services/core/config.js';
import {
  OptionSecrets,
  checkSecretRef,
  isSealed,
  maskOptions,
  processSecretBox,
  resolveSecretRefs,
  scrubSecrets,
} from '../../services/core/option-secrets.js';
import type { GroupInput } from '../../services/operator/domain/service.js';
import { datagenToFile, jobWhen, operatorRig } from '../helpers/operator.js';

const ADMIN_TOKEN = 'admin-token-Q7vR2mX9pL4sT8wZ';
/** A secret longer than what describeValue keeps (117 characters), with characters JSON escapes. */
const LONG_SECRET = `pw"with\\quotes-${'Kx7Pq2Lm9Zr4'.repeat(14)}-end`;

async function withDir(fn: (dir: string) => unknown): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-secret-refs-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every piece of `secret` of `n` characters. */
function pieces(secret: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= secret.length; i++) out.push(secret.slice(i, i + n));
  return out;
}

// ---- 1a: where references may point ------------------------------------------------------------

test('env references: only names SLUICE_SECRET_ENV allows, never a Sluice setting', (t) => {
  const env = { SLUICE_AUTH_TOKENS: `${ADMIN_TOKEN}:admin`, HOME: '/root' };
  t.is(checkSecretRef('env:SLUICE_SECRET_PG_URL', env), undefined, 'the default prefix');
  for (const ref of [
    'env:SLUICE_AUTH_TOKENS',
    'env:SLUICE_SECRET_KEY',
    'env:SLUICE_SECRET_ENV',
    'env:SLUICE_SERVICE_TOKEN',
    'env:SLUICE_PLUGIN_DOLPHINSCHEDULER_TOKEN',
    'env:HOME',
    'env:PATH',
    'env:PG_PASSWORD',
  ]) {
    const problem = checkSecretRef(ref, env);
    t.truthy(problem, ref);
    t.regex(problem!, /SLUICE_SECRET_ENV \(SLUICE_SECRET_\*; never a Sluice setting\)/);
    t.regex(problem!, /no file:\/path \(SLUICE_SECRETS_DIR is unset\)/);
    t.false(problem!.includes(ADMIN_TOKEN));
  }
  const listed = { SLUICE_SECRET_ENV: 'PG_PASSWORD, KAFKA_*', SLUICE_AUTH_TOKENS: 'x' };
  t.is(checkSecretRef('env:PG_PASSWORD', listed), undefined);
  t.is(checkSecretRef('env:KAFKA_SASL', listed), undefined);
  t.truthy(checkSecretRef('env:PG_PASSWORD_2', listed));
  t.truthy(checkSecretRef('env:SLUICE_SECRET_PG_URL', listed), 'the default is replaced, not added to');
  // A prefix never reaches Sluice's own settings.
  t.truthy(checkSecretRef('env:SLUICE_AUTH_TOKENS', { SLUICE_SECRET_ENV: 'SLUICE_*' }));
  t.truthy(checkSecretRef('env:SLUICE_SECRET_KEY', { SLUICE_SECRET_ENV: 'SLUICE_SECRET_*' }));
  t.regex(checkSecretRef('env:SLUICE_SECRET_X', { SLUICE_SECRET_ENV: 'none' })!, /no env:NAME/);
});

test('file references: only files inside SLUICE_SECRETS_DIR, symlinks and .. resolved', async (t) => {
  await withDir((base) => {
    const dir = join(base, 'secrets');
    mkdirSync(dir);
    writeFileSync(join(dir, 'pg-url'), 'postgres://u:p@h/db\n');
    symlinkSync('/etc/passwd', join(dir, 'passwd'));
    symlinkSync('/etc', join(dir, 'etc'));
    const env = { SLUICE_SECRETS_DIR: dir };
    t.truthy(checkSecretRef('file:/etc/passwd', {}), 'no folder set: no file reference');
    t.is(checkSecretRef(`file:${dir}/pg-url`, env), undefined);
    t.is(checkSecretRef(`file:${dir}/not-yet`, env), undefined, 'a file yet to be put there');
    for (const ref of [
      'file:/etc/passwd',
      `file:${dir}/../outside`,
      `file:${dir}/passwd`,
      `file:${dir}/etc/passwd`,
      `file:${dir}`,
      `file:${dir}/`,
    ]) {
      const problem = checkSecretRef(ref, env);
      t.truthy(problem, ref);
      t.true(problem!.includes(`file:/path of a file inside SLUICE_SECRETS_DIR (${dir}`), problem);
    }
    // Sluice's own files are never read, even when the folder holds them.
    t.truthy(checkSecretRef(`file:${dir}/pg-url`, { ...env, SLUICE_AUTH_TOKENS_FILE: join(dir, 'pg-url') }));
    t.truthy(checkSecretRef(`file:${dir}/data/secret.key`, { ...env, SLUICE_DATA_DIR: join(dir, 'data') }));
  });
});

test('a job reads an allowed reference, and refuses the others naming the option, never their value', async (t) => {
  await withDir(async (base) => {
    const dir = join(base, 'secrets');
    mkdirSync(dir);
    writeFileSync(join(dir, 'pw'), 'file-secret-value\n');
    symlinkSync('/etc/passwd', join(dir, 'passwd'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    mkdirSync(join(dir, 'sub'));
    const env = {
      SLUICE_SECRETS_DIR: dir,
      SLUICE_AUTH_TOKENS: `${ADMIN_TOKEN}:admin`,
      SLUICE_SECRET_PW: 'env-secret-value',
    };
    const ok = await resolveSecretRefs(
      { a: { secretRef: 'env:SLUICE_SECRET_PW' }, b: { secretRef: `file:${dir}/pw` } },
      env,
    );
    t.deepEqual(ok.options, { a: 'env-secret-value', b: 'file-secret-value' });
    for (const [ref, why] of [
      ['env:SLUICE_AUTH_TOKENS', /is not allowed: expected env:NAME/],
      ['file:/etc/passwd', /is not allowed: expected env:NAME/],
      [`file:${dir}/passwd`, /is not allowed/],
      [`file:${dir}/fifo`, /not a regular file/],
      [`file:${dir}/sub`, /not a regular file/],
    ] as const) {
      const err = await t.throwsAsync(resolveSecretRefs({ brokers: [{ secretRef: ref }] }, env));
      t.true(isSluiceError(err), ref);
      t.is((err as { code?: string }).code, 'FAILED_PRECONDITION', ref);
      t.is((err as { details?: { field?: string } }).details?.field, 'options.brokers[0]', ref);
      t.regex(err!.message, why, ref);
      t.false(err!.message.includes(ADMIN_TOKEN));
      t.false(err!.message.includes('root:'), 'nothing of /etc/passwd');
    }
  });
});

test('SLUICE_SECRET_ENV and SLUICE_SECRETS_DIR: defaults, and bad values stop start-up naming the variable', (t) => {
  const c = loadConfig({});
  t.is(c.secretEnv, undefined, 'the default');
  t.is(c.secretsDir, undefined);
  t.is(checkSecretRef('env:SLUICE_SECRET_X', {}), undefined, 'the default: SLUICE_SECRET_*');
  t.deepEqual(loadConfig({ SLUICE_SECRET_ENV: 'PG_PASSWORD,KAFKA_*' }).secretEnv, ['PG_PASSWORD', 'KAFKA_*']);
  t.deepEqual(loadConfig({ SLUICE_SECRET_ENV: 'none' }).secretEnv, []);
  t.is(loadConfig({ SLUICE_SECRETS_DIR: '/run/secrets' }).secretsDir, '/run/secrets');
  for (const [name, value] of [
    ['SLUICE_SECRET_ENV', '*'],
    ['SLUICE_SECRET_ENV', ' , '],
    ['SLUICE_SECRET_ENV', 'PG-PASSWORD'],
    ['SLUICE_SECRET_ENV', 'SLUICE_AUTH_TOKENS'],
    ['SLUICE_SECRET_ENV', 'SLUICE_SECRET_KEY'],
    ['SLUICE_SECRETS_DIR', '/'],
  ] as const) {
    const err = t.throws(() => loadConfig({ [name]: value }), { instanceOf: ConfigError });
    t.true(err!.message.startsWith(`${name}: `), err!.message);
  }
});

test("the SDK's isSecretEnvAllowed is the rule env: references follow; no Sluice setting passes, whatever SLUICE_SECRET_ENV lists", (t) => {
  const env = { SLUICE_SECRET_ENV: 'SLUICE_*,PG_PASSWORD' };
  for (const name of Object.keys(DEFAULTS)) {
    t.true(isSluiceSettingName(name), name);
    t.false(isSecretEnvAllowed(name, env), name);
    t.truthy(checkSecretRef(`env:${name}`, env), name);
  }
  for (const [name, allowed] of [
    ['SLUICE_SECRET_PG', true],
    ['PG_PASSWORD', true],
    ['PG_PASSWORD_2', false],
    ['SLUICE_PLUGIN_AIRFLOW_PASSWORD', false],
    ['HOME', false],
    ['not a name', false],
  ] as const) {
    t.is(isSecretEnvAllowed(name, env), allowed, name);
    t.is(checkSecretRef(`env:${name}`, env) === undefined, allowed, name);
  }
  t.true(isSecretEnvAllowed('SLUICE_SECRET_PG', {}), 'the default: SLUICE_SECRET_*');
  t.false(isSecretEnvAllowed('SLUICE_SECRET_PG', { SLUICE_SECRET_ENV: 'none' }));
  t.false(isSecretEnvAllowed('SLUICE_SECRET_PG', { SLUICE_SECRET_ENV: '*' }), 'a malformed list allows nothing');
});

/** A group writing generated rows to a Kafka sink whose brokers are `brokers`. */
function toKafka(groupId: string, dir: string, brokers: unknown[]): GroupInput {
  const g = datagenToFile(groupId, dir);
  return {
    ...g,
    streams: [{ ...g.streams[0]!, sink: { connectorId: 'kafka', options: { brokers, topic: 't' } } }],
    retry: { maxAttempts: 1, initialBackoffMs: 10 },
  };
}

test.serial('CreateGroup refuses a reference to a Sluice setting or any file, naming the field', async (t) => {
  const rig = await operatorRig();
  process.env.SLUICE_AUTH_TOKENS_FOR_TEST = ADMIN_TOKEN;
  try {
    for (const ref of ['env:SLUICE_AUTH_TOKENS', 'env:SLUICE_AUTH_TOKENS_FOR_TEST', 'env:HOME', 'file:/etc/passwd']) {
      const err = await t.throwsAsync(rig.service.createGroup(toKafka('g-ref', rig.dir, [{ secretRef: ref }])));
      t.is((err as { code?: string }).code, 'INVALID_ARGUMENT', ref);
      const d = (err as { details?: { field?: string; fieldErrors?: { expected: string }[] } }).details;
      t.is(d?.field, 'group.streams[0].sink.options.brokers[0]', ref);
      t.regex(d!.fieldErrors![0]!.expected, /SLUICE_SECRET_ENV .*SLUICE_SECRETS_DIR/);
      t.false(err!.message.includes(ADMIN_TOKEN));
    }
  } finally {
    delete process.env.SLUICE_AUTH_TOKENS_FOR_TEST;
    await rig.close();
  }
});

// ---- 1b: what a message echoes of a secret ------------------------------------------------------

test('the scrubber cuts a secret shortened by describeValue, JSON-escaped, or cut at the end', (t) => {
  for (const echoed of [
    LONG_SECRET,
    [LONG_SECRET],
    { brokers: ['kafka-1:9092', LONG_SECRET] },
    `${'x'.repeat(100)}${LONG_SECRET}`,
  ]) {
    const e = fieldError('options.brokers[0]', 'host:port', echoed);
    const cut = scrubSecrets(`${e.message}; and more`, [LONG_SECRET]);
    for (const p of pieces(LONG_SECRET, 4)) t.false(cut.includes(p), `${p} in ${cut}`);
    for (const p of pieces(JSON.stringify(LONG_SECRET).slice(1, -1), 4)) t.false(cut.includes(p), `${p} in ${cut}`);
    t.true(cut.startsWith('options.brokers[0]: expected host:port, got '), cut);
  }
  // Whole, JSON-escaped in the middle of a text, and cut at the end of a text.
  const escaped = JSON.stringify({ password: LONG_SECRET });
  t.is(scrubSecrets(`sent ${escaped} to the broker`, [LONG_SECRET]), 'sent {"password":"***"} to the broker');
  t.is(scrubSecrets(`error: ${LONG_SECRET.slice(0, 30)}`, [LONG_SECRET]), 'error: ***');
  t.is(scrubSecrets('got "pw\\"w…', [LONG_SECRET]), 'got "***…');
  // A URL: its password's starts are cut, not the start of the URL (which says nothing secret).
  const url = 'postgres://victim:S3cret-Passw0rd@db:5432/x';
  t.is(scrubSecrets(`got "postgres://victim:S3cret-Pa...`, [url]), 'got "postgres://victim:***...');
  t.is(scrubSecrets('could not connect to postgres', [url]), 'could not connect to postgres');
  // Text that only looks like a start of the secret somewhere else is left.
  t.is(scrubSecrets('pw"with is a word here', [LONG_SECRET]), 'pw"with is a word here');
  t.is(scrubSecrets(`got ${describeValue('abcdef')}`, ['abc']), 'got "***def"');
});

test.serial('a job error never shows a referenced secret the connector echoed shortened', async (t) => {
  const rig = await operatorRig();
  process.env.SLUICE_SECRET_TEST_LONG = LONG_SECRET;
  // The connector refuses the host, quoting it as describeValue does: shortened and JSON-escaped.
  setHostPolicy({ fileRoots: [tmpdir()], allowedHosts: ['kafka.internal'] });
  try {
    const g = await rig.service.createGroup(toKafka('g-echo', rig.dir, [{ secretRef: 'env:SLUICE_SECRET_TEST_LONG' }]));
    await rig.service.approveGroup(g.groupId, g.version);
    const { jobs } = await rig.service.submitOfflineJob(
      { groupId: g.groupId, boundaryType: 'OFFSET', lowerBound: '0', upperBound: '3', instanceId: '' },
      false,
    );
    const job = await jobWhen(rig.service, jobs[0]!.jobId);
    t.is(job.state, 'FAILED');
    t.regex(job.error, /is not allowed: a host allowed by SLUICE_ALLOWED_HOSTS/, job.error);
    t.log(job.error);
    for (const p of pieces(LONG_SECRET, 4)) t.false(job.error.includes(p), `${p} in ${job.error}`);
    for (const p of pieces(JSON.stringify(LONG_SECRET).slice(1, -1), 4))
      t.false(job.error.includes(p), `${p} in ${job.error}`);
  } finally {
    setHostPolicy({ fileRoots: [tmpdir()] });
    delete process.env.SLUICE_SECRET_TEST_LONG;
    await rig.close();
  }
});

// ---- 2: a secret sent back masked goes only where it went ---------------------------------------

const secrets = new OptionSecrets(processSecretBox());
const KAFKA_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    sasl: { type: 'object', properties: { password: { type: 'string', writeOnly: true } } },
  },
};

function refused(t: ExecutionContext, fn: () => unknown, field: string, secret: string, what: string) {
  const err = t.throws(fn, undefined, what);
  t.true(isSluiceError(err), String(err));
  t.is((err as { code?: string }).code, 'INVALID_ARGUMENT', what);
  t.is((err as { details?: { field?: string } }).details?.field, field);
  t.regex(err!.message, /send the secret again/);
  t.false(err!.message.includes(secret));
}

test('a URL sent back with *** keeps its password only for the same scheme, user, host, port and query', (t) => {
  const stored = secrets.seal({ url: 'postgres://victim:S3cret@127.0.0.1:1/db', table: 'x' }, undefined);
  const open = (o: Record<string, unknown>) => secrets.open(o as never).url;
  t.is(
    open(secrets.restore({ url: 'postgres://victim:***@127.0.0.1:1/db', table: 'x' }, stored)),
    'postgres://victim:S3cret@127.0.0.1:1/db',
  );
  t.is(
    open(secrets.restore({ url: 'postgres://victim:***@127.0.0.1:1/other', table: 'y' }, stored)),
    'postgres://victim:S3cret@127.0.0.1:1/other',
    'another database, another table',
  );
  t.is(open(secrets.restore({ url: '***' }, stored)), 'postgres://victim:S3cret@127.0.0.1:1/db');
  for (const url of [
    'postgres://victim:***@127.0.0.1:57153/db',
    'postgres://victim:***@attacker.example:1/db',
    'postgres://victim:***@127.0.0.1/db',
    'postgres://other:***@127.0.0.1:1/db',
    'mysql://victim:***@127.0.0.1:1/db',
    'postgres://victim:***@127.0.0.1:1/db?host=attacker.example',
    'postgres://victim:***@127.0.0.1:1/db?sslmode=disable',
  ])
    refused(t, () => secrets.restore({ url, table: 'x' }, stored), 'options.url', 'S3cret', url);
  // A new password is the caller's own: taken as sent, wherever it goes.
  t.is(
    open(secrets.restore({ url: 'postgres://victim:new@127.0.0.1:57153/db' }, stored)),
    'postgres://victim:new@127.0.0.1:57153/db',
  );
});

test('a writeOnly option sent back as *** keeps the stored secret only when the other options are unchanged', (t) => {
  const given = {
    brokers: ['kafka-1:9092'],
    topic: 't',
    ssl: true,
    sasl: { mechanism: 'plain', username: 'u', password: 'sasl-S3cret' },
  };
  const stored = secrets.seal(given, KAFKA_SCHEMA);
  t.true(isSealed((stored.sasl as Record<string, unknown>).password));
  const shown = maskOptions(stored, KAFKA_SCHEMA) as typeof given;
  t.is(shown.sasl.password, '***');
  // Sent back as read (keys in another order too): kept.
  const back = secrets.restore({ sasl: { ...shown.sasl }, ssl: true, topic: 't', brokers: ['kafka-1:9092'] }, stored);
  t.deepEqual(secrets.open(back), { sasl: given.sasl, ssl: true, topic: 't', brokers: ['kafka-1:9092'] });
  for (const [what, changed] of [
    ['brokers', { ...shown, brokers: ['attacker.example:9092'] }],
    ['another broker added', { ...shown, brokers: ['kafka-1:9092', 'attacker.example:9092'] }],
    ['ssl off', { ...shown, ssl: false }],
    ['mechanism', { ...shown, sasl: { ...shown.sasl, mechanism: 'scram-sha-256' } }],
    ['topic', { ...shown, topic: 'other' }],
    ['an option added', { ...shown, clientId: 'x' }],
  ] as const)
    refused(t, () => secrets.restore(changed as never, stored), 'options.sasl.password', 'sasl-S3cret', what);
  // With the secret sent again, anything may change.
  const moved = secrets.restore(
    { ...shown, brokers: ['kafka-2:9092'], sasl: { ...shown.sasl, password: 'new-pw' } },
    stored,
  );
  t.is((secrets.open(moved).sasl as Record<string, unknown>).password, 'new-pw');
});

test.serial('UpdateGroup refuses a masked URL password moved to another port (the reviewed repro)', async (t) => {
  const rig = await operatorRig();
  try {
    const g = datagenToFile('g-move', rig.dir);
    const created = await rig.service.createGroup({
      ...g,
      streams: [
        {
          ...g.streams[0]!,
          sink: { connectorId: 'postgres', options: { url: 'postgres://victim:S3cret@127.0.0.1:1/db', table: 't' } },
        },
      ],
    });
    const shown = maskOptions(created.streams[0]!.sink.options);
    t.is(shown.url, 'postgres://victim:***@127.0.0.1:1/db');
    const send = (url: string) =>
      rig.service.updateGroup({
        ...g,
        version: created.version,
        streams: [{ ...g.streams[0]!, sink: { connectorId: 'postgres', options: { ...shown, url } } }],
      });
    const err = await t.throwsAsync(send('postgres://victim:***@127.0.0.1:57153/db'));
    t.is((err as { code?: string }).code, 'INVALID_ARGUMENT');
    t.is((err as { details?: { field?: string } }).details?.field, 'options.url');
    t.false(err!.message.includes('S3cret'));
    const kept = await send('postgres://victim:***@127.0.0.1:1/db');
    t.is(secrets.open(kept.streams[0]!.sink.options).url, 'postgres://victim:S3cret@127.0.0.1:1/db');
  } finally {
    await rig.close();
  }
});

test('the scrubber cuts overlapping starts as one, and stays fast on long texts and secrets', (t) => {
  // Two secrets whose shortened echoes overlap: one cut, nothing of either left.
  t.is(scrubSecrets('got wxyzabcd...efgh... end', ['wxyzabcdQQ', 'abcd...efghZ']), 'got ***... end');
  const secret = 'Z'.repeat(64 * 1024);
  const text = `${'a... '.repeat(20_000)}${secret.slice(0, 117)}...`;
  const started = Date.now();
  const cut = scrubSecrets(text, [secret, 'b'.repeat(64 * 1024)]);
  t.true(Date.now() - started < 2000, `${Date.now() - started} ms`);
  t.false(cut.includes('ZZZZ'));
  t.true(cut.endsWith('a... ***...'));
});
