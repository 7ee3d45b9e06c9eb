import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { credentials } from '@grpc/grpc-js';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { startTelemetry } from '../../services/telemetry/sdk.js';
import { Group, OperatorServiceClient } from '../../proto/gen/sluice/operator/v1/operator.js';
import { gate, type Probe } from '../helpers/integration.js';
import { bearer, call, type Running, startTestSluice } from '../helpers/sluice.js';

/** Debian's chromium package; playwright-core drives it (no browser download). */
const CHROMIUM = '/usr/bin/chromium';
const status: Probe = existsSync(CHROMIUM)
  ? { ok: true }
  : { ok: false, reason: `no browser at ${CHROMIUM} (apt-get install chromium)` };
const test = gate(anyTest as TestFn, status);

/**
 * Screenshots are taken only when SLUICE_UI_SCREENSHOTS names a folder (e.g. test-results, git-ignored), to
 * look at a failed run again: a run of the suite leaves no files behind.
 */
const SCREENSHOTS = process.env.SLUICE_UI_SCREENSHOTS;

async function screenshot(page: Page, name: string, fullPage = false): Promise<void> {
  if (!SCREENSHOTS) return;
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, name), fullPage });
}
const TOKEN = 'dashboard-test-admin-token-0123';
const HOUR = 3_600_000;
/** The group's first window: six whole hours ago. */
const START = Math.floor(Date.now() / HOUR) * HOUR - 6 * HOUR;

let sluice: Running;
let dir: string;
let browser: Browser;
let base: string;

async function api(path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(base + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(answer)}`);
  return answer;
}

interface InstanceJson {
  window: { start: string };
  state: string;
}

/** Waits until the window's instance reached a final state; returns it. */
async function settled(groupId: string, start: number): Promise<InstanceJson> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { instances = [] } = (await api(`/sluice/v1/groups/${groupId}/instances`)) as {
      instances?: InstanceJson[];
    };
    const i = instances.find((x) => Number(x.window.start) === start);
    if (i && /SUCCEEDED|FAILED|SKIPPED/.test(i.state)) return i;
    if (Date.now() > deadline) throw new Error(`window ${start} of ${groupId} did not finish: ${JSON.stringify(i)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Spans of this worker's Sluice, kept in memory: the trace links must point at real traces. */
const spans = new InMemorySpanExporter();

test.before(async () => {
  // Tracing on in this worker (as OTEL_* variables turn it on in production), so jobs carry trace ids.
  startTelemetry({ exporter: spans, serviceName: 'sluice-dashboard-test', simple: true });
  dir = await mkdtemp(join(tmpdir(), 'sluice-ui-'));
  sluice = await startTestSluice({
    SLUICE_AUTH_TOKENS: `${TOKEN}:admin`,
    SLUICE_HTTP_ADDR: '127.0.0.1:0',
    SLUICE_TRACE_URL_TEMPLATE: 'http://jaeger.example:16686/trace/{traceId}',
  });
  base = `http://127.0.0.1:${sluice.sluice.callbackPort}`;
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

test.after.always(async () => {
  await browser?.close();
  await sluice?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A manual group (engine None: nothing fires by itself) of hourly windows from START, writing files under `out`. */
async function createGroup(groupId: string, out: string, extra: Partial<Group> = {}): Promise<void> {
  const client = new OperatorServiceClient(sluice.address, credentials.createInsecure());
  try {
    const created = await call(
      client.createGroup.bind(client),
      {
        group: Group.fromPartial({
          groupId,
          description: 'generated rows to files',
          streams: [
            {
              streamId: 's1',
              source: { connectorId: 'datagen', options: { intervalMs: 60_000 } },
              sink: { connectorId: 'file', options: { path: out, format: 'jsonl' } },
            },
          ],
          schedule: {
            groupId,
            scheduleUnit: 'H',
            scheduleInterval: 1,
            startTime: START,
            endTime: START + 30 * 86_400_000,
            scheduleEngine: 'None',
            timeZone: 'UTC',
          },
          retry: { maxAttempts: 1, initialBackoffMs: 10 },
          ...extra,
        }),
      },
      bearer(TOKEN),
    );
    await call(client.approveGroup.bind(client), { groupId, version: created.group!.version }, bearer(TOKEN));
  } finally {
    client.close();
  }
}

async function openDashboard(hash: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${base}/ui/`);
  await page.fill('#token', TOKEN);
  await page.click('button[type=submit]');
  await page.waitForSelector('body[data-ready="true"]');
  if (hash) {
    // Browser-side code as strings: this project's TypeScript has no DOM types.
    await page.evaluate(`document.body.dataset.ready = 'false'; location.hash = ${JSON.stringify(hash)};`);
    await page.waitForSelector('body[data-ready="true"]');
  }
  return page;
}

/** The computed background colour of a window's cell (browser code as a string: no DOM types here). */
const colour = (page: Page, start: number) =>
  page.evaluate(
    `getComputedStyle(document.querySelector('#timeline .cell[data-start="${start}"]')).backgroundColor`,
  ) as Promise<string>;

interface ViewSpan {
  days: number;
  /** "YYYY-MM-DD HH:MM" in the group's zone; the end may read "24:00" (it is exclusive). */
  from: string;
  to: string;
  zone: string;
  rows: number;
  windows: number;
}

/**
 * Reads the toolbar's span ("3 days: 2026-12-04 11:23 – 2026-12-07 11:23 (UTC), on 4 calendar days · 73 windows")
 * and checks it against the timeline below: the oldest day row is the start's date, the newest the end's, there are
 * as many rows as calendar days named, and as many windows drawn (distinct cells) as counted.
 */
async function viewSpan(t: ExecutionContext, page: Page): Promise<ViewSpan> {
  const text = await page.locator('#main > .toolbar > span.muted').innerText();
  const m =
    /^(\d+) days?: (\d{4}-\d\d-\d\d \d\d:\d\d) – (\d{4}-\d\d-\d\d \d\d:\d\d) \(([^)]+)\), on (\d+) calendar days? · (\d+) windows?( \(first 1000\))?$/.exec(
      text,
    );
  if (!m) {
    t.fail(`the toolbar does not state the span with its bounds: ${JSON.stringify(text)}`);
    throw new Error('no span');
  }
  const span = { days: +m[1]!, from: m[2]!, to: m[3]!, zone: m[4]!, rows: +m[5]!, windows: +m[6]! };
  const days = await page.locator('#timeline .day').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-day')));
  // Rows are newest first.
  t.is(days.length, span.rows, `${text}: ${days.join(', ')}`);
  t.is(days[days.length - 1], span.from.slice(0, 10), `${text}: the oldest row is the start's day`);
  t.is(days[0], span.to.slice(0, 10), `${text}: the newest row is the end's day`);
  const starts = await page
    .locator('#timeline .day .cell')
    .evaluateAll((cells) => cells.map((c) => c.getAttribute('data-start')));
  t.is(new Set(starts).size, span.windows, `${text}: windows drawn`);
  return span;
}

/** Minutes between two "YYYY-MM-DD HH:MM" texts of UTC. */
const utcMinutes = (a: string, b: string) =>
  (Date.parse(`${b.replace(' ', 'T')}Z`) - Date.parse(`${a.replace(' ', 'T')}Z`)) / 60_000;

test.serial('the coverage timeline shows succeeded, failed and missing windows each in its colour', async (t) => {
  const out = join(dir, 'coverage');
  await createGroup('ui_coverage', out);
  for (const start of [START, START + HOUR]) {
    await api('/sluice/v1/groups/ui_coverage/trigger', { windowStart: String(start) });
    t.is((await settled('ui_coverage', start)).state, 'INSTANCE_STATE_SUCCEEDED');
  }
  // A regular file where the sink wants its directory: this window's job fails.
  await rm(out, { recursive: true, force: true });
  await writeFile(out, 'not a directory');
  await api('/sluice/v1/groups/ui_coverage/trigger', { windowStart: String(START + 2 * HOUR) });
  t.is((await settled('ui_coverage', START + 2 * HOUR)).state, 'INSTANCE_STATE_FAILED');
  await rm(out, { force: true });

  const page = await openDashboard('');
  try {
    const row = page.locator('#groups tr[data-group="ui_coverage"]');
    t.regex(await row.innerText(), /REGISTERED/);
    t.regex(await row.innerText(), /1 failed/);
    t.regex(await row.innerText(), new RegExp(`data to ${new Date(START + 2 * HOUR).toISOString().slice(0, 16)}`));
    await screenshot(page, 'dashboard-groups.png');

    await page.click('#groups a[href="#/groups/ui_coverage"]');
    await page.waitForSelector('#timeline .cell');
    // The toolbar names the span the rows show: 72 hours ending an hour from now, on 4 calendar days (3 when
    // it starts at midnight), with every window since START counted.
    const span = await viewSpan(t, page);
    t.like(span, { days: 3, zone: 'UTC' });
    t.is(utcMinutes(span.from, span.to), 3 * 24 * 60);
    t.true(span.rows === 3 || span.rows === 4, String(span.rows));
    t.true(span.windows >= 7, String(span.windows));
    t.is(await colour(page, START), 'rgb(46, 125, 50)'); // succeeded: green
    t.is(await colour(page, START + HOUR), 'rgb(46, 125, 50)');
    t.is(await colour(page, START + 2 * HOUR), 'rgb(198, 40, 40)'); // failed: red
    t.is(await colour(page, START + 3 * HOUR), 'rgb(249, 168, 37)'); // missing: amber
    t.is(await page.getAttribute(`#timeline .cell[data-start="${START + 4 * HOUR}"]`, 'data-state'), 'missing');

    // Zooming out shows more days (and so more window cells).
    const before = await page.locator('#timeline .day').count();
    await page.click('#zoom-out');
    await page.waitForSelector('body[data-ready="true"]');
    t.true((await page.locator('#timeline .day').count()) > before);
    const wider = await viewSpan(t, page);
    t.like(wider, { days: 7, zone: 'UTC', to: span.to, windows: span.windows });
    t.is(utcMinutes(wider.from, wider.to), 7 * 24 * 60);

    await page.click(`#timeline .cell[data-start="${START + 2 * HOUR}"]`);
    await page.waitForSelector('#jobs tr[data-job]');
    const jobRow = await page.locator('#jobs tr[data-job]').first().innerText();
    t.regex(jobRow, /FAILED/);
    t.regex(await page.locator('#jobs pre.options').first().innerText(), /intervalMs/);
    // The trace link: SLUICE_TRACE_URL_TEMPLATE with the trace id of the job's run.
    const href = await page.locator('#jobs tr[data-job] a').first().getAttribute('href');
    const traceId = /^http:\/\/jaeger\.example:16686\/trace\/([0-9a-f]{32})$/.exec(href ?? '')?.[1];
    t.truthy(traceId, String(href));
    t.true(
      spans.getFinishedSpans().some((s) => s.name === 'job run' && s.spanContext().traceId === traceId),
      'a job run span of that trace was recorded',
    );
    await screenshot(page, 'dashboard-group.png', true);
  } finally {
    await page.close();
  }
});

test.serial('rerunning a window from the dashboard creates the next generation of its jobs', async (t) => {
  const failed = START + 2 * HOUR;
  const before = await sluice.sluice.operator!.listJobs({ groupId: 'ui_coverage', limit: 100 });
  const generations = (list: typeof before) =>
    list.filter((j) => j.boundaries.lowerBound === String(failed)).map((j) => j.generation);
  t.deepEqual(generations(before), [1]);

  const page = await openDashboard('#/groups/ui_coverage');
  try {
    await page.click(`#timeline .cell[data-start="${failed}"]`);
    await page.waitForSelector('#rerun');
    await page.click('#rerun');
    // A locator waits without evaluating a string in the page, which the dashboard's CSP (script-src 'self') forbids.
    await page.locator('#rerun-status', { hasText: /re-run: attempt 2/ }).waitFor();
    t.is((await settled('ui_coverage', failed)).state, 'INSTANCE_STATE_SUCCEEDED');
    const after = await sluice.sluice.operator!.listJobs({ groupId: 'ui_coverage', limit: 100 });
    t.deepEqual(generations(after).sort(), [1, 2]);

    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    t.is(await colour(page, failed), 'rgb(46, 125, 50)');
    await screenshot(page, 'dashboard-rerun.png', true);
  } finally {
    await page.close();
  }
});

test.serial('backfill lists the windows of a dry run before it runs them', async (t) => {
  const page = await openDashboard('#/groups/ui_coverage');
  try {
    await page.fill('#backfill-from', new Date(START).toISOString());
    await page.fill('#backfill-to', new Date(START + 6 * HOUR).toISOString());
    await page.selectOption('#backfill-mode', 'BACKFILL_MODE_MISSING');
    await page.click('#backfill-preview');
    await page.waitForSelector('#backfill-windows');
    const rows = await page.locator('#backfill-windows tr').allInnerTexts();
    // Header plus the three windows never run (START+3h .. START+5h).
    t.is(rows.length, 4, rows.join('\n'));
    t.regex(rows[1]!, new RegExp(new Date(START + 3 * HOUR).toISOString().slice(0, 16)));
    // The dry run fired nothing.
    const { instances = [] } = (await api('/sluice/v1/groups/ui_coverage/instances')) as { instances?: unknown[] };
    t.is(instances.length, 3);
    await page.click('#backfill-run');
    await page.locator('main', { hasText: /Backfill started|error/i }).waitFor();
    t.regex(await page.locator('main').innerText(), /Backfill started: 3 windows, 1 fired now/);
    t.is((await settled('ui_coverage', START + 5 * HOUR)).state, 'INSTANCE_STATE_SUCCEEDED');
  } finally {
    await page.close();
  }
});

test.serial('a day on which the clocks change is marked in the group zone', async (t) => {
  await createGroup('ui_berlin', join(dir, 'berlin'), {
    schedule: {
      groupId: 'ui_berlin',
      scheduleType: 0,
      scheduleUnit: 'D',
      scheduleInterval: 1,
      startTime: Date.UTC(2026, 9, 1),
      endTime: Date.UTC(2027, 0, 1),
      delayTime: 0,
      selfDepend: 0,
      taskParallelism: 0,
      crontabExpression: '',
      scheduleEngine: 'None',
      version: 0,
      timeZone: 'Europe/Berlin',
      catchUp: undefined,
      alignment: 0,
    },
  });
  // Summer time ended in Europe on 2026-10-25 (a 25-hour day) and began on 2026-03-29 (23 hours).
  const page = await openDashboard('#/groups/ui_berlin?days=7&to=2026-10-28T00:00:00Z');
  try {
    const labels = await page.locator('#timeline .day.dst .day-label').allInnerTexts();
    t.deepEqual(
      labels.map((l) => l.replace(/\s+/g, '')),
      ['2026-10-25DST25h'],
    );
    t.is(await page.locator('#timeline .day').count(), 8); // 21 Oct .. 28 Oct (Berlin), newest first
    t.true((await page.locator('#timeline .cell').count()) >= 7);
    t.is(await page.locator('#timeline .day:not(.dst) .dst-badge').count(), 0);
    // The toolbar states the span in Berlin time: it starts and ends within a day, so 7 days show as 8 rows.
    t.like(await viewSpan(t, page), {
      days: 7,
      from: '2026-10-21 02:00',
      to: '2026-10-28 01:00',
      zone: 'Europe/Berlin',
      rows: 8,
      windows: 7, // daily, from 02:00 in Berlin
    });

    await page.click('#earlier');
    await page.waitForSelector('body[data-ready="true"]');
    t.like(await viewSpan(t, page), {
      days: 7,
      from: '2026-10-14 02:00',
      to: '2026-10-21 02:00',
      zone: 'Europe/Berlin',
      rows: 8,
    });
  } finally {
    await page.close();
  }
});

test.serial('a span ending at midnight in the group zone ends at 24:00 of its last day row', async (t) => {
  // 2026-10-25T23:00Z is midnight in Berlin (CET); the day before it has 25 hours, so a 1-day span starts at 01:00.
  const page = await openDashboard('#/groups/ui_berlin?days=1&to=2026-10-25T23:00:00Z');
  try {
    t.like(await viewSpan(t, page), {
      days: 1,
      from: '2026-10-25 01:00',
      to: '2026-10-25 24:00',
      zone: 'Europe/Berlin',
      rows: 1,
      windows: 2, // from 02:00 (summer time) on 24 and on 25 Oct
    });
    t.is(await page.locator('#timeline .day.dst').count(), 1);
  } finally {
    await page.close();
  }
});

test.serial('the dashboard asks for a token again when the one given is refused', async (t) => {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/ui/`);
    await page.fill('#token', 'not-the-right-token-0000');
    await page.click('button[type=submit]');
    await page.waitForSelector('form.login .error');
    t.regex(await page.locator('form.login .error').innerText(), /refused/);
    t.is(await page.evaluate(`sessionStorage.getItem('sluice.token')`), null);
  } finally {
    await page.close();
  }
});
