/**
 * Data freshness after a restart: read from the ledger at start (the last SUCCEEDED window per group), not empty
 * until a window succeeds. Its own file, so its process starts with no freshness recorded.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstanceRecord, ScheduleRecord } from '../services/schedule/domain/model.js';
import { SqliteStore } from '../services/store/sqlite.js';
import { info } from './helpers/schedule.js';
import { startTestSluice } from './helpers/sluice.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
const NOW = Date.now();

function schedule(groupId: string, status: ScheduleRecord['status']): ScheduleRecord {
  // PAUSED: the restarted service arms nothing, so only the restored values can show.
  return { groupId, info: info(groupId), status, engineId: 'builtin', version: 1, createdAt: NOW, updatedAt: NOW };
}

function window(groupId: string, k: number, state: InstanceRecord['state']): InstanceRecord {
  const windowStart = T0 + k * HOUR;
  return {
    instanceId: `${groupId}-${k}`,
    groupId,
    windowStart,
    windowEnd: windowStart + HOUR,
    dueTime: windowStart + HOUR,
    state,
    trigger: 'SCHEDULE',
    jobIds: [],
    attempt: 1,
    owner: 'before-restart',
    createdAt: NOW,
    updatedAt: NOW,
  };
}

/** Sample lines of one metric, as `{labels}` (without the exporter's otel_scope_name) → value. */
function samples(body: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const cut = line.lastIndexOf(' ');
    const labels = line
      .slice(name.length, cut)
      .replace(/,?otel_scope_name="[^"]*"/, '')
      .replace('{,', '{');
    out.set(labels, Number(line.slice(cut + 1)));
  }
  return out;
}

test('after a restart /metrics shows each group’s freshness from the ledger, capped by SLUICE_METRICS_MAX_GROUPS; unregistering drops it from the aggregates', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-metrics-restore-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  // What a previous run left in the ledger.
  const store = await SqliteStore.open(join(dataDir, 'sluice.db'));
  try {
    await store.migrate();
    for (const g of ['g-a', 'g-b', 'g-c']) await store.insertSchedule(schedule(g, 'PAUSED'));
    await store.insertSchedule(schedule('g-deleted', 'DELETED'));
    await store.claimInstance(window('g-a', 5, 'SUCCEEDED'));
    await store.claimInstance(window('g-a', 9, 'SUCCEEDED'));
    await store.claimInstance(window('g-a', 10, 'FAILED'));
    await store.claimInstance(window('g-b', 2, 'SUCCEEDED'));
    await store.claimInstance(window('g-c', 1, 'SUCCEEDED'));
    await store.claimInstance(window('g-deleted', 20, 'SUCCEEDED'));
  } finally {
    await store.close();
  }

  const running = await startTestSluice({
    SLUICE_DATA_DIR: dataDir,
    SLUICE_METRICS_ADDR: '127.0.0.1:0',
    SLUICE_METRICS_MAX_GROUPS: '2',
  });
  try {
    const body = await (await fetch(`http://${running.sluice.metricsAddress}/metrics`)).text();
    const age = (k: number) => (Date.now() - (T0 + (k + 1) * HOUR)) / 1000;
    const fresh = samples(body, 'sluice_data_freshness');
    t.deepEqual([...fresh.keys()].sort(), ['{sluice_group_id="g-a"}', '{sluice_group_id="g-b"}'], body);
    // g-a: its last SUCCEEDED window (9), not the later FAILED one; within a minute of the expected age.
    t.true(Math.abs(fresh.get('{sluice_group_id="g-a"}')! - age(9)) < 60);
    t.true(Math.abs(fresh.get('{sluice_group_id="g-b"}')! - age(2)) < 60);
    // Restored are the first two groups by id only; the DELETED group never.
    t.is(samples(body, 'sluice_data_freshness_groups').get('{sluice_series="own"}'), 2);
    t.is(samples(body, 'sluice_data_freshness_groups').get('{sluice_series="aggregate_only"}'), 0);
    t.true(Math.abs(samples(body, 'sluice_data_freshness_max').values().next().value! - age(2)) < 60);

    // Unregistering a group takes it out of the aggregates. (Its per-group series keeps its last value in the
    // Prometheus output: the metrics SDK keeps exporting an attribute set an observable gauge no longer observes.)
    await running.sluice.schedule!.unregister('g-a');
    const after = await (await fetch(`http://${running.sluice.metricsAddress}/metrics`)).text();
    t.is(samples(after, 'sluice_data_freshness_groups').get('{sluice_series="own"}'), 1);
    t.true(Math.abs(samples(after, 'sluice_data_freshness_max').values().next().value! - age(2)) < 60);
  } finally {
    await running.close();
  }
});
