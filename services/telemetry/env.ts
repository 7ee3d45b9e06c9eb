/**
 * Whether the standard OTEL_* variables ask for traces. Unlike the OpenTelemetry default, nothing is
 * exported unless an endpoint or an exporter is named: a Sluice started with no settings sends nothing.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER;
  if (exporter === 'none') return false;
  return Boolean(exporter || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Whether the OTEL_* variables ask for metrics over OTLP: OTEL_METRICS_EXPORTER=otlp or a metrics
 * endpoint. A plain OTEL_EXPORTER_OTLP_ENDPOINT does not, as trace backends such as Jaeger take no metrics;
 * Prometheus scrapes SLUICE_METRICS_ADDR instead.
 */
export function metricsOtlpRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  const exporters = (env.OTEL_METRICS_EXPORTER ?? '').split(',').map((s) => s.trim());
  if (exporters.includes('none')) return false;
  return exporters.includes('otlp') || Boolean(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT);
}
