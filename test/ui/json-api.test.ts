import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_ROUTES } from '../../services/operator/http/api-routes.js';
import { ROOT } from '../helpers/process.js';
import { type Running, startTestSluice } from '../helpers/sluice.js';

const ADMIN = 'json-api-admin-token-0123456789';
const VIEWER = 'json-api-viewer-token-012345678';
let sluice: Running;
let base: string;

test.before(async () => {
  sluice = await startTestSluice({
    SLUICE_AUTH_TOKENS: `${ADMIN}:admin,${VIEWER}:viewer`,
    SLUICE_HTTP_ADDR: '127.0.0.1:0',
    SLUICE_TRACE_URL_TEMPLATE: 'http://jaeger:16686/trace/{traceId}',
  });
  base = `http://127.0.0.1:${sluice.sluice.callbackPort}`;
});
test.after.always(async () => {
  await sluice?.close();
});

async function request(path: string, init: { token?: string; method?: string; body?: unknown } = {}) {
  const res = await fetch(base + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: res.status, headers: res.headers, json };
}

test('docs/http-api.md lists every path of the JSON API', (t) => {
  const doc = readFileSync(join(ROOT, 'docs/http-api.md'), 'utf8');
  for (const r of API_ROUTES) t.true(doc.includes(`\`${r.method} ${r.pattern}\``), `${r.method} ${r.pattern}`);
});

test('answers are the RPC messages in proto3 JSON; the dashboard settings carry the trace URL template', async (t) => {
  const groups = await request('/sluice/v1/groups', { token: VIEWER });
  t.is(groups.status, 200);
  t.deepEqual(groups.json, {}); // ListGroupsResponse with no groups: every field at its default
  const settings = await request('/sluice/v1/dashboard', { token: VIEWER });
  t.deepEqual(settings.json, { traceUrlTemplate: 'http://jaeger:16686/trace/{traceId}' });
});

test('the same roles as gRPC: no token 401, a viewer may read but not trigger', async (t) => {
  const none = await request('/sluice/v1/groups');
  t.is(none.status, 401);
  t.is(none.headers.get('www-authenticate'), 'Bearer');
  t.is(none.json.code, 'UNAUTHENTICATED');
  const denied = await request('/sluice/v1/groups/g/trigger', { token: VIEWER, body: { windowStart: '0' } });
  t.is(denied.status, 403);
  t.is(denied.json.code, 'PERMISSION_DENIED');
  const missing = await request('/sluice/v1/groups/nope/trigger', { token: ADMIN, body: { windowStart: '0' } });
  t.is(missing.status, 404);
  t.is(missing.json.code, 'NOT_FOUND');
});

test('unknown query parameters, wrong methods and bad bodies are refused naming what is wrong', async (t) => {
  const query = await request('/sluice/v1/jobs?group=x', { token: ADMIN });
  t.is(query.status, 400);
  t.regex(String(query.json.errMsg), /query\.group: expected one of pageSize, pageToken, groupId/);
  t.like(query.json, { code: 'INVALID_ARGUMENT' });
  const method = await request('/sluice/v1/groups/g/trigger', { token: ADMIN });
  t.is(method.status, 405);
  t.is(method.headers.get('allow'), 'POST');
  const body = await request('/sluice/v1/groups/g/backfill', { token: ADMIN, body: [1] });
  t.is(body.status, 400);
  t.regex(String(body.json.errMsg), /body: expected a JSON object/);
  const unknown = await request('/sluice/v1/nothing', { token: ADMIN });
  t.is(unknown.status, 404);
  // A body too large, or not JSON, is INVALID_ARGUMENT with the statuses the InLong callback answers.
  const post = (body: string, type: string) =>
    fetch(`${base}/sluice/v1/groups/g/backfill`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': type },
      body,
    }).then(async (res) => ({ status: res.status, json: (await res.json()) as Record<string, unknown> }));
  const large = await post(`{"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`, 'application/json');
  t.like(large, { status: 413, json: { code: 'INVALID_ARGUMENT' } });
  const text = await post('{"fromTime":"0"}', 'text/plain');
  t.like(text, { status: 415, json: { code: 'INVALID_ARGUMENT' } });
});

test('fields of the wrong type and malformed paths are 400 naming them, never a 500', async (t) => {
  for (const [path, body, field, received] of [
    ['/sluice/v1/groups/g/trigger', { windowStart: 'abc' }, 'windowStart', '"abc"'],
    ['/sluice/v1/groups/g/trigger', { windowStart: {} }, 'windowStart', '{}'],
    // proto3 JSON takes a boolean only: "false" would have been read as true, a re-run.
    ['/sluice/v1/groups/g/trigger', { windowStart: 0, rerun: 'false' }, 'rerun', '"false"'],
    ['/sluice/v1/groups/g/backfill', { maxParallel: 'x' }, 'maxParallel', '"x"'],
    ['/sluice/v1/groups/g/backfill', { mode: 'BACKFILL_MODE_SOME' }, 'mode', '"BACKFILL_MODE_SOME"'],
  ] as const) {
    const res = await request(path, { token: ADMIN, body });
    t.is(res.status, 400, `${path} ${JSON.stringify(body)}`);
    t.like(res.json, { code: 'INVALID_ARGUMENT' });
    t.regex(String(res.json.errMsg), new RegExp(`^${field}: expected`));
    t.deepEqual((res.json.fieldErrors as { path: string; received: string }[])[0], {
      path: field,
      expected:
        field === 'rerun' ? 'true or false' : field === 'mode' ? 'one of the names the API documents' : 'a number',
      received,
    });
  }
  const page = await request('/sluice/v1/groups?pageSize=abc', { token: ADMIN });
  t.is(page.status, 400);
  t.regex(String(page.json.errMsg), /^pageSize: expected a number/);
  // A numeric string is a number in proto3 JSON (int64 values come as strings).
  const numeric = await request('/sluice/v1/groups?pageSize=5', { token: ADMIN });
  t.is(numeric.status, 200);
  // An enum by its name, numbers as strings: what the dashboard sends for a dry run.
  const dryRun = await request('/sluice/v1/groups/nobody/backfill', {
    token: ADMIN,
    body: { fromTime: '0', toTime: '3600000', mode: 'BACKFILL_MODE_MISSING', dryRun: true },
  });
  t.is(dryRun.status, 404, JSON.stringify(dryRun.json));
  for (const [path, method] of [
    ['/sluice/v1/groups/%E0%A4%A', 'GET'],
    ['/sluice/v1/groups/%E0%A4%A/fire-due', 'POST'],
  ] as const) {
    const res = await request(path, { token: ADMIN, method, ...(method === 'POST' ? { body: {} } : {}) });
    t.is(res.status, 400, path);
    t.regex(String(res.json.errMsg), /path: expected a path whose %-escapes are UTF-8/);
  }
  // Before any credential is checked too: no 500 for an anonymous caller.
  t.is((await request('/sluice/v1/groups/%E0%A4%A')).status, 400);
  // A body that is not JSON is described, never echoed: it may hold a password.
  const res = await fetch(`${base}/sluice/v1/groups/g/trigger`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: '{"windowStart": 0, "note": "postgres://u:hunter2-secret@db/x"',
  });
  const text = await res.text();
  t.is(res.status, 400);
  t.false(text.includes('hunter2'), text);
  t.regex(text, /body: expected a JSON object, got \W*61 bytes that are not JSON \(from character 61\)/);
  // A mistyped field's value is shown cut to 120 characters.
  const long = await request('/sluice/v1/groups/g/trigger', {
    token: ADMIN,
    body: { windowStart: 'x'.repeat(60_000) },
  });
  t.is(long.status, 400);
  t.true(JSON.stringify(long.json).length < 1000, `${JSON.stringify(long.json).length} characters`);
});

test('the dashboard files are served from ui/ only, with a strict content policy', async (t) => {
  for (const path of ['/ui', '/ui/']) {
    const page = await fetch(base + path);
    t.is(page.status, 200);
    t.regex(page.headers.get('content-type') ?? '', /text\/html/);
    t.regex(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    t.regex(await page.text(), /<script type="module" src="\/ui\/app.js">/);
  }
  const js = await fetch(`${base}/ui/app.js`);
  t.regex(js.headers.get('content-type') ?? '', /text\/javascript/);
  for (const path of ['/ui/..%2Fpackage.json', '/ui/.hidden.js', '/ui/none.js', '/ui/sub/app.js']) {
    t.is((await fetch(base + path)).status, 404, path);
  }
});

test('with InLong users alone (no bearer tokens) a bearer token opens neither FireDue nor InLong path', async (t) => {
  const inlongOnly = await startTestSluice({
    SLUICE_CALLBACK_INLONG_USERS: 'admin:inlong-password-0123',
    SLUICE_HTTP_ADDR: '127.0.0.1:0',
  });
  try {
    const base = `http://127.0.0.1:${inlongOnly.sluice.callbackPort}`;
    const post = (path: string, authorization: string) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: '{}',
      });
    for (const path of ['/sluice/v1/groups/g1/fire-due', '/inlong/manager/api/group/submitOfflineJob']) {
      const res = await post(path, 'Bearer anything-at-all');
      t.is(res.status, 401, path);
      await res.body?.cancel();
    }
    // The InLong user still gets in on InLong's path (the request is then checked: an empty one is refused).
    const inlong = await post(
      '/inlong/manager/api/group/submitOfflineJob',
      'Basic YWRtaW46aW5sb25nLXBhc3N3b3JkLTAxMjM=',
    );
    t.not(inlong.status, 401);
    await inlong.body?.cancel();
  } finally {
    await inlongOnly.close();
  }
});

test('with InLong users alone (no bearer tokens) the JSON API stays closed', async (t) => {
  const inlongOnly = await startTestSluice({
    SLUICE_CALLBACK_INLONG_USERS: 'admin:inlong-password-0123',
    SLUICE_HTTP_ADDR: '127.0.0.1:0',
  });
  try {
    const res = await fetch(`http://127.0.0.1:${inlongOnly.sluice.callbackPort}/sluice/v1/groups`, {
      headers: { authorization: 'Basic YWRtaW46aW5sb25nLXBhc3N3b3JkLTAxMjM=' },
    });
    t.is(res.status, 401);
    t.regex(((await res.json()) as { errMsg: string }).errMsg, /needs bearer tokens: set SLUICE_AUTH_TOKENS/);
  } finally {
    await inlongOnly.close();
  }
});
