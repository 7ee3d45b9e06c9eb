/**
 * Sluice's instruments, made through @opentelemetry/api only (the SDK and its readers live in
 * services/telemetry/). Names and attributes follow the OpenTelemetry semantic conventions: dotted names,
 * UCUM units, `error.type` for failures, `db.*` for the store. Cardinality is bounded: no window, job or
 * instance ids as attributes; plugin ids and hook names come from the loaded plugins; per-group series
 * stop at SLUICE_METRICS_MAX_GROUPS (docs/metrics.md).
 */
import { type Counter, type Histogram, type MeterProvider, metrics } from '@opentelemetry/api';

/** Seconds: from a few milliseconds (a hook, a store call) to a day (a late window, a long job). */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400];
const COUNTS = [0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];
const BYTES = [0, 1_024, 65_536, 1_048_576, 16_777_216, 268_435_456, 1_073_741_824, 17_179_869_184];
const RATES = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

export interface SluiceInstruments {
  /** sluice.window.fire.lag: dispatch time − due time of a window, by trigger. */
  readonly fireLag: Histogram;
  /** sluice.windows: windows reaching a state, by state and trigger. */
  readonly windows: Counter;
  /** sluice.window.fires.skipped: fires that did not run, by reason (catch-up policy, duplicate claim). */
  readonly firesSkipped: Counter;
  /** sluice.job.duration: from RUNNING to the end, by outcome and runner. */
  readonly jobDuration: Histogram;
  readonly jobRecords: Histogram;
  readonly jobBytes: Histogram;
  /** sluice.job.throughput: records per second of a finished job. */
  readonly jobThroughput: Histogram;
  /** sluice.plugin.hook.duration: every hook call, by plugin, hook and (on failure) error.type. */
  readonly hookDuration: Histogram;
  /** sluice.plugin.hook.failures: failed hook calls, by plugin, hook and error.type. */
  readonly hookFailures: Counter;
  /** db.client.operation.duration: one store call (one transaction), by db.system.name and db.operation.name. */
  readonly storeDuration: Histogram;
}

/** Upper bound of the last succeeded TIME window, per group: what data freshness is measured from. */
const freshness = new Map<string, number>();
let maxGroups = 1000;
let cache: { provider: MeterProvider; instruments: SluiceInstruments } | undefined;

/** Sets the per-group series cap (SLUICE_METRICS_MAX_GROUPS). */
export function configureMetrics(options: { readonly maxGroups: number }): void {
  maxGroups = options.maxGroups;
}

/** Records that a group's window up to `upperBoundMs` (exclusive) succeeded. */
export function recordFreshness(groupId: string, upperBoundMs: number): void {
  if (!Number.isFinite(upperBoundMs)) return;
  const before = freshness.get(groupId);
  if (before === undefined || upperBoundMs > before) freshness.set(groupId, upperBoundMs);
}

/** Forgets a group (unregistered): its series ends. */
export function forgetGroup(groupId: string): void {
  freshness.delete(groupId);
}

/**
 * The instruments on the meter provider that is global now. Made again when the provider changes, since
 * @opentelemetry/api has no proxy meter: an instrument made before the SDK started would stay a no-op.
 */
export function instruments(): SluiceInstruments {
  const provider = metrics.getMeterProvider();
  if (cache?.provider !== provider) cache = { provider, instruments: make(provider) };
  return cache.instruments;
}

function make(provider: MeterProvider): SluiceInstruments {
  const meter = provider.getMeter('sluice');
  const seconds = (name: string, description: string) =>
    meter.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: SECONDS } });
  const stalest = meter.createObservableGauge('sluice.data.freshness.max', {
    unit: 's',
    description: 'The largest data freshness over all groups: now − upper bound of their last succeeded window',
  });
  const perGroup = meter.createObservableGauge('sluice.data.freshness', {
    unit: 's',
    description: `Now − upper bound of a group's last succeeded window (the first SLUICE_METRICS_MAX_GROUPS groups)`,
  });
  const tracked = meter.createObservableGauge('sluice.data.freshness.groups', {
    unit: '{group}',
    description: 'Groups with a succeeded window, and how many of them have no series of their own (over the cap)',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const now = Date.now();
      let worst: number | undefined;
      let n = 0;
      for (const [groupId, upper] of freshness) {
        const age = Math.max(0, (now - upper) / 1000);
        worst = worst === undefined ? age : Math.max(worst, age);
        if (n++ < maxGroups) result.observe(perGroup, age, { 'sluice.group.id': groupId });
      }
      if (worst !== undefined) result.observe(stalest, worst);
      result.observe(tracked, Math.min(n, maxGroups), { 'sluice.series': 'own' });
      result.observe(tracked, Math.max(0, n - maxGroups), { 'sluice.series': 'aggregate_only' });
    },
    [stalest, perGroup, tracked],
  );
  return {
    fireLag: seconds('sluice.window.fire.lag', 'How late a window was dispatched after it was due'),
    windows: meter.createCounter('sluice.windows', {
      unit: '{window}',
      description: 'Windows reaching a state (sluice.window.state), by trigger',
    }),
    firesSkipped: meter.createCounter('sluice.window.fires.skipped', {
      unit: '{window}',
      description: 'Windows not run: skipped by the catch-up policy, or a duplicate fire suppressed by the ledger',
    }),
    jobDuration: seconds('sluice.job.duration', 'How long a job ran, from RUNNING to its end'),
    jobRecords: meter.createHistogram('sluice.job.records', {
      unit: '{record}',
      description: 'Records one job moved',
      advice: { explicitBucketBoundaries: COUNTS },
    }),
    jobBytes: meter.createHistogram('sluice.job.size', {
      unit: 'By',
      description: 'Bytes one job moved (approximate: as JSON)',
      advice: { explicitBucketBoundaries: BYTES },
    }),
    jobThroughput: meter.createHistogram('sluice.job.throughput', {
      unit: '{record}/s',
      description: 'Records per second of one finished job',
      advice: { explicitBucketBoundaries: RATES },
    }),
    hookDuration: seconds('sluice.plugin.hook.duration', 'How long one plugin hook call took'),
    hookFailures: meter.createCounter('sluice.plugin.hook.failures', {
      unit: '{call}',
      description: 'Plugin hook calls that failed, by plugin, hook and error.type',
    }),
    storeDuration: seconds('db.client.operation.duration', 'How long one store call (one transaction) took'),
  };
}
