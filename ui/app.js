// The dashboard: groups, a group's window coverage, a window's jobs, rerun and backfill.
import { all, api, ApiError, token } from './api.js';
import { daysBetween, localEndText, localText } from './zone.js';
import { renderTimeline } from './timeline.js';

const main = document.getElementById('main');
const crumbs = document.getElementById('crumbs');
const logout = document.getElementById('logout');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Zoom steps: how many days the timeline shows. */
const ZOOM = [1, 2, 3, 7, 14, 30, 60];
let settings = { traceUrlTemplate: '' };

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== false) e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...children.flat().filter((c) => c !== undefined && c !== null));
  return e;
};
const short = (name, prefix) => (name ?? '').replace(prefix, '');
const utc = (ms) => (Number(ms) ? new Date(Number(ms)).toISOString().replace('.000Z', 'Z') : '-');
const ago = (ms) => {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  if (s < 129600) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
};
const duration = (job) => {
  const a = Number(job.startedAt);
  const b = Number(job.finishedAt) || (a ? Date.now() : 0);
  if (!a) return '-';
  const s = (b - a) / 1000;
  return s < 120 ? `${s.toFixed(1)}s` : `${Math.round(s / 60)}m`;
};

function showError(err) {
  if (err instanceof ApiError && err.status === 401) {
    token.clear();
    return login('The token was refused; enter a valid one.');
  }
  const fields = (err.fieldErrors ?? []).map((f) => `\n  ${f.path}: expected ${f.expected}, got ${f.received}`);
  main.prepend(
    el('p', { class: 'error', role: 'alert' }, `${err.code ? `${err.code}: ` : ''}${err.message}${fields.join('')}`),
  );
}

function login(message = '') {
  logout.hidden = true;
  crumbs.replaceChildren();
  const input = el('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, id: 'token' });
  main.replaceChildren(
    el(
      'form',
      {
        class: 'login',
        onsubmit: (e) => {
          e.preventDefault();
          token.set(input.value.trim());
          void route();
        },
      },
      el('label', { for: 'token' }, 'Bearer token (kept for this tab only)'),
      input,
      el('button', { type: 'submit' }, 'Open dashboard'),
      message ? el('p', { class: 'error' }, message) : null,
    ),
  );
}

async function groupsView() {
  crumbs.replaceChildren('Groups');
  const groups = await all('/sluice/v1/groups', {}, 'groups');
  const since = Date.now() - 7 * DAY;
  const rows = await Promise.all(
    groups.map(async (g) => {
      const [schedule, instances] = await Promise.all([
        api(`/sluice/v1/groups/${encodeURIComponent(g.groupId)}/schedule`).catch(() => undefined),
        all(
          `/sluice/v1/groups/${encodeURIComponent(g.groupId)}/instances`,
          { windowFrom: String(since) },
          'instances',
        ).catch(() => []),
      ]);
      const done = instances.filter((i) => i.state === 'INSTANCE_STATE_SUCCEEDED').map((i) => Number(i.window.end));
      const failed = instances.filter((i) => i.state === 'INSTANCE_STATE_FAILED').length;
      const fresh = done.length ? Math.max(...done) : 0;
      return el(
        'tr',
        { 'data-group': g.groupId },
        el('td', {}, el('a', { href: `#/groups/${encodeURIComponent(g.groupId)}` }, g.groupId)),
        el('td', {}, short(g.status, 'GROUP_STATUS_')),
        el('td', {}, schedule ? short(schedule.schedule?.status, 'SCHEDULE_STATUS_') : '-'),
        el('td', { title: fresh ? utc(fresh) : '' }, fresh ? `data to ${utc(fresh)} (${ago(fresh)})` : 'no window yet'),
        el('td', {}, failed ? el('span', { class: 'badge failed-count' }, `${failed} failed (7d)`) : ''),
        el('td', { class: 'muted' }, g.description ?? ''),
      );
    }),
  );
  main.replaceChildren(
    el('h1', {}, 'Groups'),
    groups.length === 0
      ? el('p', { class: 'muted' }, 'No groups yet: create one with `sluice groups create -f group.yaml`.')
      : el(
          'table',
          { id: 'groups' },
          el(
            'tr',
            {},
            ...['Group', 'Status', 'Schedule', 'Freshness', 'Failures', 'Description'].map((h) => el('th', {}, h)),
          ),
          rows,
        ),
  );
}

async function groupView(groupId, params) {
  const days = ZOOM.includes(Number(params.get('days'))) ? Number(params.get('days')) : 3;
  crumbs.replaceChildren(el('a', { href: '#/' }, 'Groups'), ' / ', groupId);
  const id = encodeURIComponent(groupId);
  const [{ group }, scheduleAnswer] = await Promise.all([
    api(`/sluice/v1/groups/${id}`),
    api(`/sluice/v1/groups/${id}/schedule`).catch(() => undefined),
  ]);
  const schedule = scheduleAnswer?.schedule;
  const zone = group.schedule?.timeZone || 'UTC';
  const now = Date.now();
  // The view ends now (plus an hour, to show what is next) unless `to` moves it back in time.
  const asked = Date.parse(params.get('to') ?? '');
  const to = Number.isNaN(asked) ? now + HOUR : asked;
  const from = to - days * DAY;
  const [preview, instances] = await Promise.all([
    api(`/sluice/v1/groups/${id}/windows?${new URLSearchParams({ fromTime: String(from), count: '1000' })}`),
    all(`/sluice/v1/groups/${id}/instances`, { windowFrom: String(from - DAY), windowTo: String(to) }, 'instances'),
  ]);
  // The windows the timeline draws: those overlapping [from, to). The preview answers the windows ending
  // after `from` (the one holding `from` among them, started before it); this keeps the bounds explicit.
  const windows = (preview.windows ?? []).filter((w) => Number(w.end) > from && Number(w.start) < to);
  // The span rarely starts and ends at midnight: its first and last day rows are partial days.
  const rows = daysBetween(from, to, zone).length;
  const timeline = el('div', { id: 'timeline' });
  const details = el('div', { id: 'window' });
  const view = (d, end) => {
    const next = `#/groups/${id}?days=${d}${end === undefined ? '' : `&to=${new Date(end).toISOString()}`}`;
    if (location.hash === next) return;
    // Not ready from the click on: the hashchange that draws the new view comes a task later.
    document.body.dataset.ready = 'false';
    location.hash = next;
  };
  const zoom = (d) => view(d, Number.isNaN(asked) ? undefined : to);
  const at = ZOOM.indexOf(days);
  const paused = schedule?.status === 'SCHEDULE_STATUS_PAUSED';
  main.replaceChildren(
    el('h1', {}, groupId, ' ', el('span', { class: 'badge' }, short(group.status, 'GROUP_STATUS_'))),
    el(
      'p',
      { class: 'muted' },
      `${group.description ?? ''} · schedule ${schedule ? short(schedule.status, 'SCHEDULE_STATUS_') : 'none'} · zone ${zone}`,
    ),
    el(
      'div',
      { class: 'toolbar' },
      el('button', { type: 'button', id: 'zoom-in', disabled: at <= 0, onclick: () => zoom(ZOOM[at - 1]) }, 'Zoom in'),
      el(
        'button',
        { type: 'button', id: 'zoom-out', disabled: at >= ZOOM.length - 1, onclick: () => zoom(ZOOM[at + 1]) },
        'Zoom out',
      ),
      el('button', { type: 'button', id: 'earlier', onclick: () => view(days, to - days * DAY) }, 'Earlier'),
      el(
        'button',
        {
          type: 'button',
          id: 'later',
          disabled: Number.isNaN(asked),
          onclick: () => view(days, to + days * DAY > now ? undefined : to + days * DAY),
        },
        'Later',
      ),
      el(
        'span',
        { class: 'muted' },
        `${days} day${days > 1 ? 's' : ''}: ${localText(from, zone)} – ${localEndText(to, zone)} (${zone}),` +
          ` on ${rows} calendar day${rows > 1 ? 's' : ''}` +
          ` · ${windows.length} window${windows.length === 1 ? '' : 's'}${windows.length >= 1000 ? ' (first 1000)' : ''}`,
      ),
    ),
    timeline,
    details,
    backfillPanel(groupId),
  );
  renderTimeline(timeline, {
    windows,
    instances,
    from,
    to,
    zone,
    now,
    paused,
    onPick: (w, instance) => {
      for (const c of timeline.querySelectorAll('.cell.selected')) c.classList.remove('selected');
      timeline.querySelector(`.cell[data-start="${w.start}"]`)?.classList.add('selected');
      void windowPanel(details, groupId, zone, w, instance).catch(showError);
    },
  });
}

async function windowPanel(target, groupId, zone, w, instance) {
  const start = Number(w.start);
  const q = new URLSearchParams({ groupId, windowFrom: String(start), windowTo: String(start + 1) });
  const jobs = await all('/sluice/v1/jobs', Object.fromEntries(q), 'jobs');
  const status = el('p', { class: 'muted', id: 'rerun-status' });
  const rerun = el(
    'button',
    {
      type: 'button',
      id: 'rerun',
      onclick: async () => {
        rerun.disabled = true;
        try {
          const answer = await api(`/sluice/v1/groups/${encodeURIComponent(groupId)}/trigger`, {
            windowStart: String(start),
            rerun: true,
          });
          status.textContent = `re-run: attempt ${answer.instance?.attempt ?? '?'}, ${short(answer.instance?.state, 'INSTANCE_STATE_')}`;
        } catch (err) {
          showError(err);
        } finally {
          rerun.disabled = false;
        }
      },
    },
    instance ? 'Rerun window' : 'Run window',
  );
  const trace = (job) => {
    if (!settings.traceUrlTemplate || !job.traceId) return '-';
    return el(
      'a',
      { href: settings.traceUrlTemplate.replace('{traceId}', job.traceId), target: '_blank', rel: 'noopener' },
      'trace',
    );
  };
  target.replaceChildren(
    el(
      'section',
      { class: 'panel' },
      el('h2', {}, `Window ${localText(start, zone)} – ${localText(Number(w.end), zone)} (${zone})`),
      el(
        'p',
        {},
        `UTC ${utc(start)} – ${utc(w.end)} · `,
        instance
          ? `${short(instance.state, 'INSTANCE_STATE_')}, attempt ${instance.attempt}, ${short(instance.trigger, 'INSTANCE_TRIGGER_')}`
          : 'never fired',
        instance?.error ? el('span', { class: 'error' }, ` · ${instance.error}`) : null,
      ),
      el('div', { class: 'toolbar' }, rerun, status),
      jobs.length === 0
        ? el('p', { class: 'muted' }, 'No jobs for this window.')
        : el(
            'table',
            { id: 'jobs' },
            el(
              'tr',
              {},
              ...[
                'Job',
                'Stream',
                'State',
                'Attempt',
                'Records',
                'Duration',
                'Error',
                'Trace',
                'Resolved source options',
              ].map((h) => el('th', {}, h)),
            ),
            jobs.map((j) =>
              el(
                'tr',
                { 'data-job': j.jobId },
                el('td', {}, j.jobId),
                el('td', {}, j.streamId),
                el('td', {}, short(j.state, 'JOB_STATE_')),
                el('td', {}, String(j.attempt ?? 0)),
                el('td', {}, String(j.progress?.records ?? 0)),
                el('td', {}, duration(j)),
                el('td', { class: 'error' }, j.error ?? ''),
                el('td', {}, trace(j)),
                el('td', {}, el('pre', { class: 'options' }, JSON.stringify(j.resolvedSourceOptions ?? {}, null, 2))),
              ),
            ),
          ),
    ),
  );
}

function backfillPanel(groupId) {
  const id = encodeURIComponent(groupId);
  const now = Date.now();
  const iso = (ms) => new Date(ms).toISOString().slice(0, 16) + 'Z';
  const from = el('input', { name: 'from', id: 'backfill-from', value: iso(now - DAY), size: 20 });
  const to = el('input', { name: 'to', id: 'backfill-to', value: iso(now), size: 20 });
  const mode = el(
    'select',
    { name: 'mode', id: 'backfill-mode' },
    ['MISSING', 'FAILED', 'ALL'].map((m) => el('option', { value: `BACKFILL_MODE_${m}` }, m.toLowerCase())),
  );
  const out = el('div', { id: 'backfill-result' });
  const body = (dryRun) => ({
    fromTime: String(Date.parse(from.value)),
    toTime: String(Date.parse(to.value)),
    mode: mode.value,
    dryRun,
  });
  const run = el('button', { type: 'button', id: 'backfill-run', hidden: true }, 'Run backfill');
  run.addEventListener('click', async () => {
    run.disabled = true;
    try {
      const answer = await api(`/sluice/v1/groups/${id}/backfill`, body(false));
      // The first wave is fired before the answer; the rest follow as windows finish.
      const total = (answer.windows ?? []).length;
      const now = (answer.instances ?? []).length;
      out.replaceChildren(
        el('p', {}, `Backfill started: ${total} windows, ${now} fired now, the rest as those finish.`),
      );
      run.hidden = true;
    } catch (err) {
      showError(err);
    } finally {
      run.disabled = false;
    }
  });
  const preview = el('button', { type: 'button', id: 'backfill-preview' }, 'Preview (dry run)');
  preview.addEventListener('click', async () => {
    try {
      const answer = await api(`/sluice/v1/groups/${id}/backfill`, body(true));
      const windows = answer.windows ?? [];
      out.replaceChildren(
        el('p', {}, `${windows.length} window${windows.length === 1 ? '' : 's'} would run:`),
        el(
          'table',
          { id: 'backfill-windows' },
          el('tr', {}, el('th', {}, 'Start (UTC)'), el('th', {}, 'End (UTC)'), el('th', {}, 'Start (local)')),
          windows.map((w) =>
            el('tr', {}, el('td', {}, utc(w.start)), el('td', {}, utc(w.end)), el('td', {}, w.startLocal ?? '')),
          ),
        ),
      );
      run.hidden = windows.length === 0;
    } catch (err) {
      showError(err);
    }
  });
  return el(
    'section',
    { class: 'panel' },
    el('h2', {}, 'Backfill'),
    el('div', { class: 'toolbar' }, 'From', from, 'to', to, 'mode', mode, preview, run),
    out,
  );
}

async function route() {
  if (!token.get()) return login();
  logout.hidden = false;
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query);
  try {
    settings = await api('/sluice/v1/dashboard');
    const m = /^\/groups\/([^/]+)$/.exec(path ?? '');
    if (m) await groupView(decodeURIComponent(m[1]), params);
    else await groupsView();
    document.body.dataset.ready = 'true';
  } catch (err) {
    showError(err);
  }
}

logout.addEventListener('click', () => {
  token.clear();
  login();
});
window.addEventListener('hashchange', () => {
  document.body.dataset.ready = 'false';
  void route();
});
void route();
