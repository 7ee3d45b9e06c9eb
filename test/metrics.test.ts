import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { datagenToFile } from './helpers/operator.js';
import { startTestSluice } from './helpers/sluice.js';

const W0 = Date.UTC(2026, 0, 1);

/** The value of the first sample line starting with `prefix` (name and labels as Prometheus writes them). */
function sample(body: string, prefix: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('after a window runs, /metrics shows fire lag, freshness, windows by state, job and hook figures and store latency', async (t) => {
  t.timeout(120_000);
  const out = await mkdtemp(join(tmpdir(), 'sluice-metrics-'));
  const running = await startTestSluice({ SLUICE_METRICS_ADDR: '127.0.0.1:0', SLUICE_METRICS_MAX_GROUPS: '1' });
  try {
    const { sluice } = running;
    t.regex(sluice.metricsAddress ?? '', /^127\.0\.0\.1:\d+$/);
    for (const g of ['g-metrics', 'g-over-cap']) {
      // One hourly window, long past: it fires at once as a catch-up.
      const group = datagenToFile(g, out);
      await sluice.operator!.createGroup({ ...group, schedule: { ...group.schedule!, endTime: W0 + 3_600_000 } });
      await sluice.operator!.approveGroup(g, 0);
    }
    const done = async (g: string) => {
      for (;;) {
        const [row] = await sluice.schedule!.listInstances({ groupId: g, limit: 1 });
        if (row && ['SUCCEEDED', 'FAILED'].includes(row.state)) return row.state;
        await sleep(50);
      }
    };
    t.deepEqual(await Promise.all(['g-metrics', 'g-over-cap'].map(done)), ['SUCCEEDED', 'SUCCEEDED']);

    const response = await fetch(`http://${sluice.metricsAddress}/metrics`);
    t.is(response.status, 200);
    const body = await response.text();
    t.is(sample(body, 'sluice_window_fire_lag_count{sluice_window_trigger="CATCH_UP"'), 2);
    t.is(sample(body, 'sluice_windows_total{sluice_window_state="SUCCEEDED",sluice_window_trigger="CATCH_UP"'), 2);
    t.is(sample(body, 'sluice_windows_total{sluice_window_state="DISPATCHED",sluice_window_trigger="CATCH_UP"'), 2);
    // Freshness: now − the window's upper bound, for the first group only (SLUICE_METRICS_MAX_GROUPS=1).
    const fresh = body.split('\n').filter((l) => l.startsWith('sluice_data_freshness{'));
    t.is(fresh.length, 1, fresh.join('\n'));
    const age = Number(fresh[0]!.slice(fresh[0]!.lastIndexOf(' ') + 1));
    t.true(Math.abs(age - (Date.now() - (W0 + 3_600_000)) / 1000) < 60, String(age));
    t.true((sample(body, 'sluice_data_freshness_max') ?? 0) >= age);
    t.is(sample(body, 'sluice_data_freshness_groups{sluice_series="aggregate_only"'), 1);
    t.is(sample(body, 'sluice_job_records_sum{sluice_job_state="SUCCEEDED",sluice_runner="embedded"'), 7200);
    t.true((sample(body, 'sluice_job_size_sum{sluice_job_state="SUCCEEDED"') ?? 0) > 0);
    t.is(sample(body, 'sluice_job_duration_count{sluice_job_state="SUCCEEDED"'), 2);
    t.truthy(sample(body, 'sluice_job_throughput_count{'));
    t.true(
      (sample(body, 'sluice_plugin_hook_duration_count{sluice_plugin_id="datagen",sluice_plugin_hook="openReader"') ??
        0) >= 2,
    );
    t.true(
      // The group's two due windows are claimed in one write.
      (sample(body, 'db_client_operation_duration_count{db_system_name="sqlite",db_operation_name="claimInstances"') ??
        0) >= 1,
    );
    // No window, job or instance ids as labels.
    t.notRegex(body, /instance_id|job_id|window_start/);
    t.is((await fetch(`http://${sluice.metricsAddress}/other`)).status, 404);
  } finally {
    await running.close();
    await rm(out, { recursive: true, force: true });
  }
});
