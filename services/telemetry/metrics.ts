/**
 * The OpenTelemetry metrics SDK, set up once per process. Instruments are made elsewhere through
 * @opentelemetry/api (services/core/metrics.ts); this module owns the provider and its readers: a
 * Prometheus reader always (served at /metrics by serveMetrics), and OTLP export when asked for.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { type IMetricReader, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { metricsOtlpRequested } from './env.js';

export interface Metrics {
  readonly prometheus: PrometheusExporter;
  shutdown(): Promise<void>;
}

let active: Metrics | undefined;

/** Starts the meter provider (idempotent): Prometheus always, OTLP when the OTEL_* variables ask for metrics. */
export async function startMetrics(env: NodeJS.ProcessEnv = process.env): Promise<Metrics> {
  if (active) return active;
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const readers: IMetricReader[] = [prometheus];
  if (metricsOtlpRequested(env)) {
    // OTLP over HTTP/protobuf; endpoint, headers and interval come from the standard OTEL_* variables.
    const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-proto');
    const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter(),
        ...(Number.isSafeInteger(interval) && interval > 0 ? { exportIntervalMillis: interval } : {}),
      }),
    );
  }
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? 'sluice' }),
    readers,
  });
  metrics.setGlobalMeterProvider(provider);
  active = { prometheus, shutdown: () => provider.shutdown() };
  return active;
}

/** The running meter provider, if any: main() flushes it on shutdown. */
export function currentMetrics(): Metrics | undefined {
  return active;
}

export interface MetricsServer {
  /** host:port as bound (port 0 picks one). */
  readonly address: string;
  close(): Promise<void>;
}

/** Serves the Prometheus text format at GET /metrics on host:port; anything else is 404. */
export async function serveMetrics(hostPort: string): Promise<MetricsServer> {
  const { prometheus } = await startMetrics();
  const cut = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, cut).replace(/^\[|\]$/g, '');
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?')))
      prometheus.getMetricsRequestHandler(req, res);
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at GET /metrics\n');
  });
  await new Promise<void>((resolve, reject) =>
    server.once('error', reject).listen(Number(hostPort.slice(cut + 1)), host, () => resolve()),
  );
  const { port } = server.address() as AddressInfo;
  return {
    address: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
