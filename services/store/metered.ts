import type { Attributes } from '@opentelemetry/api';
import { forgetGroup, instruments, recordFreshness } from '../core/metrics.js';
import type { JobRecord } from '../operator/domain/model.js';
import type { InstanceRecord, InstanceUpdate, ScheduleRecord, ScheduleStore } from '../schedule/domain/model.js';
import type { SluiceStore } from './index.js';

const FINAL_JOB_STATES = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/**
 * The store with its metrics: every call's latency (db.client.operation.duration), and, read off the rows
 * it writes, windows by state and trigger, fire lag, data freshness, duplicate fires and job figures. The
 * ledger is where every state change lands, whichever replica or code path made it, so one place counts all.
 */
export function meteredStore(store: SluiceStore, system: 'sqlite' | 'postgresql'): SluiceStore {
  // One wrapper and one set of attributes per method, made on first use: a store call used to build a new
  // wrapper, attribute object and callback on every property read, garbage on every request.
  const wrappers = new Map<string, { readonly method: unknown; readonly wrapper: (...args: unknown[]) => unknown }>();
  const wrap = (target: SluiceStore, prop: string, method: (...args: unknown[]) => unknown) => {
    const attributes: Attributes = Object.freeze({ 'db.system.name': system, 'db.operation.name': prop });
    const record = (started: number, error?: unknown) =>
      instruments().storeDuration.record(
        (performance.now() - started) / 1000,
        error === undefined ? attributes : { ...attributes, 'error.type': errorType(error) },
      );
    return (...args: unknown[]) => {
      const started = performance.now();
      let result: unknown;
      try {
        result = method.apply(target, args);
      } catch (err) {
        record(started, err);
        throw err;
      }
      if (!(result instanceof Promise)) return result;
      return result.then(
        (row: unknown) => {
          record(started);
          observe(prop, args, row);
          return row;
        },
        (err: unknown) => {
          record(started, err);
          throw err;
        },
      );
    };
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      const cached = wrappers.get(prop);
      if (cached?.method === value) return cached.wrapper;
      const wrapper = wrap(target, prop, value as (...args: unknown[]) => unknown);
      wrappers.set(prop, { method: value, wrapper });
      return wrapper;
    },
  });
}

/**
 * Fills data freshness from the ledger at start, so that after a restart the gauge shows each group's age at
 * once instead of nothing until its next window succeeds. At most `maxGroups` groups
 * (SLUICE_METRICS_MAX_GROUPS): the per-group series stop there anyway.
 */
export async function restoreFreshness(store: Pick<ScheduleStore, 'lastSucceededWindows'>, maxGroups: number) {
  const rows = await store.lastSucceededWindows(maxGroups);
  for (const { groupId, windowEnd } of rows) recordFreshness(groupId, windowEnd);
  return rows.length;
}

function errorType(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code !== '') return code;
  return err instanceof Error ? err.name : 'Error';
}

/** A window claimed (counted by state; a claim straight into DISPATCHED is its fire) or found taken (a duplicate). */
function observeClaim(wanted: InstanceRecord, row: InstanceRecord | undefined): void {
  const m = instruments();
  if (!row) {
    m.firesSkipped.add(1, { 'sluice.skip.reason': 'duplicate', 'sluice.window.trigger': wanted.trigger });
    return;
  }
  m.windows.add(1, { 'sluice.window.state': row.state, 'sluice.window.trigger': row.trigger });
  if (row.state === 'DISPATCHED' && row.dispatchedAt !== undefined && row.attempt === 1)
    m.fireLag.record(Math.max(0, (row.dispatchedAt - row.dueTime) / 1000), { 'sluice.window.trigger': row.trigger });
}

function observe(method: string, args: unknown[], row: unknown): void {
  const m = instruments();
  switch (method) {
    case 'claimInstance':
      return observeClaim(args[0] as InstanceRecord, row as InstanceRecord | undefined);
    case 'updateInstances': {
      const updates = args[0] as readonly InstanceUpdate[];
      const rows = row as readonly (InstanceRecord | undefined)[];
      updates.forEach((u, i) => observe('updateInstance', [u.instanceId, u.patch], rows[i]));
      return;
    }
    case 'claimInstances': {
      const wanted = args[0] as readonly InstanceRecord[];
      const rows = row as readonly (InstanceRecord | undefined)[];
      wanted.forEach((w, i) => observeClaim(w, rows[i]));
      return;
    }
    case 'rearmInstance':
    case 'updateInstance': {
      const instance = row as InstanceRecord | undefined;
      if (!instance) return;
      const state = method === 'rearmInstance' ? 'SCHEDULED' : (args[1] as { state?: string }).state;
      if (state === undefined) return;
      m.windows.add(1, { 'sluice.window.state': state, 'sluice.window.trigger': instance.trigger });
      if (state === 'DISPATCHED' && instance.dispatchedAt !== undefined && instance.attempt === 1)
        m.fireLag.record(Math.max(0, (instance.dispatchedAt - instance.dueTime) / 1000), {
          'sluice.window.trigger': instance.trigger,
        });
      // An OFFSET window has no window times to be fresh up to.
      if (state === 'SUCCEEDED' && !instance.boundaries) recordFreshness(instance.groupId, instance.windowEnd);
      return;
    }
    case 'updateSchedule': {
      // An unregistered group's freshness series ends.
      const schedule = args[0] as ScheduleRecord;
      if (schedule.status === 'DELETED') forgetGroup(schedule.groupId);
      return;
    }
    case 'updateJob': {
      const job = row as JobRecord | undefined;
      const state = (args[1] as { state?: string }).state;
      if (!job || state === undefined || !FINAL_JOB_STATES.has(state)) return;
      const attributes = { 'sluice.job.state': state, 'sluice.runner': job.runner };
      const seconds =
        job.startedAt !== undefined && job.finishedAt !== undefined ? (job.finishedAt - job.startedAt) / 1000 : 0;
      if (job.startedAt !== undefined) m.jobDuration.record(Math.max(0, seconds), attributes);
      m.jobRecords.record(job.progress.records, attributes);
      m.jobBytes.record(job.progress.bytes, attributes);
      if (seconds > 0) m.jobThroughput.record(job.progress.records / seconds, attributes);
      return;
    }
  }
}
