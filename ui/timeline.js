// The window-coverage timeline: one row per calendar day in the group's zone, one cell per window.
import { daysBetween, localText } from './zone.js';

/** What a window shows as: its instance's state, or, for a past window without one, missing or paused. */
export function coverage(window, instance, { now, paused }) {
  switch (instance?.state) {
    case 'INSTANCE_STATE_SUCCEEDED':
      return 'succeeded';
    case 'INSTANCE_STATE_FAILED':
      return 'failed';
    case 'INSTANCE_STATE_SKIPPED':
      return 'skipped';
    case 'INSTANCE_STATE_SCHEDULED':
    case 'INSTANCE_STATE_DISPATCHED':
    case 'INSTANCE_STATE_RUNNING':
      return 'running';
    default:
      if (Number(window.dueTime || window.end) > now) return 'future';
      return paused ? 'paused' : 'missing';
  }
}

export const LEGEND = ['succeeded', 'failed', 'running', 'missing', 'skipped', 'paused', 'future'];

/**
 * Draws `windows` (with their instances) from `from` to `to` into an element. A day of 23 or 25 hours
 * (the clocks changed) is marked; cells sit at their offset within the day, so a short day's bar ends early.
 */
export function renderTimeline(el, { windows, instances, from, to, zone, now, paused, onPick }) {
  const byStart = new Map(instances.map((i) => [String(i.window?.start), i]));
  const days = daysBetween(from, to, zone);
  const longest = Math.max(24, ...days.map((d) => d.hours));
  el.replaceChildren();
  const legend = document.createElement('div');
  legend.className = 'legend';
  for (const state of LEGEND) {
    const item = document.createElement('span');
    item.innerHTML = `<i class="cell ${state}"></i>${state}`;
    legend.append(item);
  }
  el.append(legend);
  for (const day of days.reverse()) {
    const row = document.createElement('div');
    row.className = 'day';
    row.dataset.day = day.label;
    const label = document.createElement('span');
    label.className = 'day-label';
    label.textContent = day.label;
    if (day.hours !== 24) {
      row.classList.add('dst');
      const badge = document.createElement('b');
      badge.className = 'dst-badge';
      badge.title = `clocks changed: this day has ${day.hours} hours in ${zone}`;
      badge.textContent = `DST ${day.hours}h`;
      label.append(badge);
    }
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.style.width = `${(day.hours / longest) * 100}%`;
    for (const w of windows) {
      const start = Number(w.start);
      const end = Number(w.end);
      if (end <= day.start || start >= day.end) continue;
      const instance = byStart.get(String(w.start));
      const state = coverage(w, instance, { now, paused });
      const cell = document.createElement('button');
      cell.type = 'button';
      cell.className = `cell ${state}`;
      cell.dataset.start = String(start);
      cell.dataset.state = state;
      const a = Math.max(start, day.start);
      const b = Math.min(end, day.end);
      cell.style.left = `${((a - day.start) / (day.end - day.start)) * 100}%`;
      cell.style.width = `${((b - a) / (day.end - day.start)) * 100}%`;
      cell.title = `${localText(start, zone)} – ${localText(end, zone)} (${zone}): ${state}`;
      cell.addEventListener('click', () => onPick(w, instance));
      bar.append(cell);
    }
    const area = document.createElement('div');
    area.className = 'timeline-area';
    area.append(bar);
    row.append(label, area);
    el.append(row);
  }
}
