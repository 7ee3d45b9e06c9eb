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
